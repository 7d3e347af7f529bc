"""How tensors, shapes and gradients print: as PyTorch prints them.

``print(x)`` shows ``tensor([[1., 0.], [0., 1.]])`` laid out and rounded by PyTorch's rules (4 decimals;
integers-only floats as ``1.``; scientific notation when the magnitudes span more than 1000×, or reach
1e8, or fall under 1e-4; more than 1000 elements summarized with ``...``; lines wrapped at 80 characters),
followed by ``dtype=`` for a dtype other than the defaults (float32, int64, bool) and ``grad_fn=<...>``
or ``requires_grad=True``. ``x.shape`` is a ``Size``, a tuple that prints as ``minidl.Size([64, 1, 28, 28])``.

``MODULE`` is the name printed before ``Size`` and the dtypes: "minidl", or "torch" while
``python -m minidl.as_torch`` runs a PyTorch program, which then prints what it prints under PyTorch.
"""
import math

import numpy as np

MODULE = "minidl"

PRECISION, THRESHOLD, EDGEITEMS, LINEWIDTH = 4, 1000, 3, 80  # PyTorch's default print options
DEFAULT_DTYPES = (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_), np.dtype(np.complex64))


class Size(tuple):
    """A tensor's shape: a tuple of ints (``x.shape == (2, 3)`` holds) printed as PyTorch prints its
    ``torch.Size``. Slicing it or adding a tuple gives a ``Size`` again, as in PyTorch."""

    __slots__ = ()

    def __getitem__(self, index):
        item = tuple.__getitem__(self, index)
        return Size(item) if isinstance(index, slice) else item

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __radd__(self, other):
        return Size(tuple(other) + tuple(self))

    def numel(self):
        return math.prod(self)

    def __repr__(self):
        return f"{MODULE}.Size({list(self)})"


class Grad(np.ndarray):
    """What ``.grad`` holds: a NumPy array (dL/dx, of x's shape and dtype) that prints as PyTorch prints a
    gradient, ``tensor([...])``, and has PyTorch's ``zero_()``, so that ``print(w.grad)`` and
    ``w.grad.zero_()`` work as a PyTorch course writes them. Everything else is NumPy's."""

    def __repr__(self):
        return tensor_repr(self.view(np.ndarray))

    __str__ = __repr__

    def zero_(self):
        self.fill(0)
        return self


class DType:
    """A tensor's dtype (``x.dtype``) and ``minidl.float32`` and the other dtype names: NumPy's dtype
    underneath, printed as PyTorch prints its dtypes.

    ``np.dtype(x.dtype)``, ``np.zeros(3, dtype=x.dtype)``, ``x.dtype == np.float32`` (or ``minidl.float32``),
    ``.kind``, ``.itemsize`` and every other attribute of NumPy's dtype work on it (NumPy takes any object
    with a ``.dtype`` as that dtype); ``print(x.dtype)`` shows ``minidl.float32``, ``torch.float32`` under
    ``python -m minidl.as_torch``, as PyTorch shows ``torch.float32``."""

    __slots__ = ("dtype",)
    _made = {}

    def __new__(cls, dtype):  # one object per dtype, made once: x.dtype is read often
        made = cls._made.get(dtype)
        if made is None:
            dtype = np.dtype(dtype)
            made = cls._made.setdefault(dtype, object.__new__(cls))
            made.dtype = dtype
        return made

    def __eq__(self, other):
        if other is None:
            return False
        try:
            return self.dtype == np.dtype(other)
        except TypeError:
            return NotImplemented

    def __hash__(self):
        return hash(self.dtype)

    def __getattr__(self, name):  # only for what DType lacks: NumPy's dtype answers
        return getattr(object.__getattribute__(self, "dtype"), name)

    def __reduce__(self):
        return DType, (self.dtype,)

    def __call__(self, *value):
        """A NumPy scalar of this dtype: ``minidl.float32(0.5)`` is ``np.float32(0.5)``."""
        return self.dtype.type(*value)

    @property
    def is_floating_point(self):
        return self.dtype.kind == "f"

    def __repr__(self):
        return f"{MODULE}.{self.dtype.name}"


def dtype_name(dtype):
    return repr(DType(dtype))


def tensor_repr(array, suffixes=(), prefix="tensor("):
    """``prefix`` + the values of ``array`` as PyTorch lays them out + ", dtype=..." + ``suffixes`` + ")"."""
    array = np.asarray(array)
    indent = len(prefix)
    extra = []
    if array.size == 0:
        if array.ndim != 1:
            extra.append(f"size={tuple(array.shape)}")
        body = "[]"
    else:
        body = _tensor_str(array, indent)
    if array.dtype not in DEFAULT_DTYPES:
        extra.append(f"dtype={dtype_name(array.dtype)}")
    return _add_suffixes(prefix + body, [*extra, *suffixes], indent)


def _tensor_str(array, indent):
    if array.dtype == np.float16:  # formatted as float32, as PyTorch does
        array = array.astype(np.float32)
    summarize = array.size > THRESHOLD
    formatter = _Formatter(_summarized(array) if summarize else array)
    return _nested_str(array, indent, summarize, formatter)


class _Formatter:
    """One width and one style (fixed, integer-valued or scientific) for all the values printed."""

    def __init__(self, values):
        self.floating = values.dtype.kind in "fc"
        self.int_mode, self.sci_mode, self.width = True, False, 1
        flat = values.reshape(-1)
        if not self.floating:
            self.width = max(len(str(v)) for v in flat.tolist())
            return
        shown = flat[np.isfinite(flat) & (flat != 0)]
        if shown.size == 0:
            return
        magnitude = np.abs(shown.astype(np.float64))
        lo, hi = magnitude.min(), magnitude.max()
        values = shown.tolist()
        self.int_mode = bool(np.all(shown == np.ceil(shown)))
        if self.int_mode:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8
            widths = [len(f"{v:.{PRECISION}e}") if self.sci_mode else len(f"{v:.0f}") + 1 for v in values]
        else:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
            widths = [len(f"{v:.{PRECISION}e}" if self.sci_mode else f"{v:.{PRECISION}f}") for v in values]
        self.width = max(self.width, *widths)

    def format(self, value):
        if not self.floating:
            text = f"{value}"
        elif self.sci_mode:
            text = f"{value:{self.width}.{PRECISION}e}"
        elif self.int_mode:
            text = f"{value:.0f}" + ("" if math.isinf(value) or math.isnan(value) else ".")
        else:
            text = f"{value:.{PRECISION}f}"
        return " " * (self.width - len(text)) + text


def _summarized(array):
    """The values a summarized print shows: the first and last EDGEITEMS along every dimension."""
    if array.ndim == 0:
        return array
    if array.ndim == 1:
        return np.concatenate([array[:EDGEITEMS], array[-EDGEITEMS:]]) if len(array) > 2 * EDGEITEMS else array
    rows = list(array[:EDGEITEMS]) + list(array[-EDGEITEMS:]) if len(array) > 2 * EDGEITEMS else list(array)
    return np.stack([_summarized(row) for row in rows])


def _nested_str(array, indent, summarize, formatter):
    if array.ndim == 0:
        return formatter.format(array.item())
    if array.ndim == 1:
        return _vector_str(array, indent, summarize, formatter)
    if summarize and len(array) > 2 * EDGEITEMS:
        rows = ([_nested_str(array[i], indent + 1, summarize, formatter) for i in range(EDGEITEMS)] + ["..."]
                + [_nested_str(array[i], indent + 1, summarize, formatter) for i in range(len(array) - EDGEITEMS, len(array))])
    else:
        rows = [_nested_str(row, indent + 1, summarize, formatter) for row in array]
    return "[" + ("," + "\n" * (array.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def _vector_str(array, indent, summarize, formatter):
    per_line = max(1, (LINEWIDTH - indent) // (formatter.width + 2))  # ", " between elements
    if summarize and len(array) > 2 * EDGEITEMS:
        items = ([formatter.format(v) for v in array[:EDGEITEMS].tolist()] + [" ..."]
                 + [formatter.format(v) for v in array[-EDGEITEMS:].tolist()])
    else:
        items = [formatter.format(v) for v in array.tolist()]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _add_suffixes(text, suffixes, indent):
    parts = [text]
    last_line = len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if last_line + len(suffix) + 2 > LINEWIDTH:
            parts.append(",\n" + " " * indent + suffix)
            last_line = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line += len(suffix) + 2
    return "".join(parts) + ")"
