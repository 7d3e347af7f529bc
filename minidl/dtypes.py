"""PyTorch's dtype and device names. minidl's dtypes are NumPy's; minidl runs on the CPU only.

``minidl.float`` is ``float32`` (PyTorch's default float), ``minidl.long`` is ``int64``, and so on. Each is
the ``DType`` a tensor's ``x.dtype`` is (``minidl.printing``): NumPy's dtype underneath, so
``x.dtype == minidl.float32``, ``np.dtype(minidl.float32)``, ``a.astype(minidl.float32)`` and
``np.zeros(3, dtype=minidl.float32)`` work as with ``np.float32``, and printed as PyTorch prints its dtypes
(``torch.float32`` under ``python -m minidl.as_torch``). Calling one makes a NumPy scalar
(``minidl.float32(0.5)`` is ``np.float32(0.5)``); unlike ``np.float32`` it is not a class
(``isinstance(v, minidl.float32)`` is refused, as in PyTorch).

``device="cpu"`` is accepted wherever PyTorch takes a device; any other device raises one line saying so,
and ``minidl.cuda.is_available()`` is False, so PyTorch's ``"cuda" if torch.cuda.is_available() else
"cpu"`` picks the CPU.
"""
import numpy as np

from .printing import DType

float32 = float = DType(np.float32)
float64 = double = DType(np.float64)
float16 = half = DType(np.float16)
int64 = long = DType(np.int64)
int32 = int = DType(np.int32)
int16 = short = DType(np.int16)
int8, uint8, bool = DType(np.int8), DType(np.uint8), DType(np.bool_)


class device:
    """``minidl.device("cpu")``, the only device there is. Other devices PyTorch knows can be named, as
    PyTorch allows without the hardware (``device("cuda").index``), but using one is refused."""

    TYPES = ("cpu", "cuda", "mps", "xpu", "meta")

    def __init__(self, type="cpu", index=None):
        name, _, number = str(type).partition(":")
        if name not in self.TYPES:
            raise RuntimeError(f"Expected one of {', '.join(self.TYPES)} device type at start of device string: {type}")
        self.type, self.index = name, int(number) if number else index

    def __eq__(self, other):
        return isinstance(other, (device, str)) and str(self) == str(other)

    __hash__ = object.__hash__

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        return f"device(type='{self.type}')" if self.index is None else f"device(type='{self.type}', index={self.index})"


device_type = device


def check_device(d):
    """Accept None, "cpu" and ``device("cpu")``; anything else is a device minidl does not have."""
    if d is None or str(d).split(":")[0] == "cpu":
        return
    raise RuntimeError(f"device {str(d)!r} is not available: minidl runs on the CPU only (use device='cpu')")


def to_arguments(args, dtype=None, device=None):
    """(dtype, device) of a PyTorch ``.to(...)`` call: ``to("cpu")``, ``to(float64)``, ``to(device, dtype)``,
    keywords or positions; the device is checked (CPU only)."""
    for a in args:
        if isinstance(a, (str, device_type)):
            device = a
        else:
            dtype = a
    check_device(device)
    return dtype, device


def set_default_device(d):
    """PyTorch's switch of the device new tensors go to; here only the CPU is accepted."""
    check_device(d)


def get_default_device():
    return device("cpu")


class _NoAccelerator:
    """``minidl.cuda`` and ``minidl.accelerator``: there is none, minidl runs on the CPU."""

    @staticmethod
    def is_available():
        return False

    @staticmethod
    def device_count():
        return 0

    @staticmethod
    def current_accelerator():
        return None


cuda = accelerator = _NoAccelerator()


def as_dtype(dtype, default=None):
    """NumPy's dtype for any spelling PyTorch takes (minidl.float, np.float32, "float32", float)."""
    return default if dtype is None else np.dtype(dtype)
