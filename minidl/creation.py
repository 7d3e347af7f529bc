"""Making tensors, with PyTorch's names and keywords: ``tensor``, ``zeros``, ``randn``, ``linspace``, ...

Every function takes ``dtype`` (default float32, PyTorch's default float), ``device`` (only "cpu") and
``requires_grad``, and a shape either as separate numbers or as one tuple: ``randn(2, 3)``, ``randn((2, 3))``
and ``randn(())`` (a 0-dimensional tensor, a single number). Random draws come from ``minidl.random``, so
``minidl.manual_seed`` makes them reproducible (not the same numbers as PyTorch's generator).
"""
import numpy as np

from . import random
from .autograd import Tensor
from .dtypes import as_dtype, check_device
from .tensor_methods import _shape_args


def _make(array, dtype, device, requires_grad, default=np.float32):
    check_device(device)
    return Tensor(np.asarray(array, dtype=as_dtype(dtype, default)), requires_grad=requires_grad)


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of ``data`` (numbers, nested lists, an array or a tensor). Without a
    dtype: floats become float32, integers int64, booleans bool, as in PyTorch; arrays keep theirs."""
    check_device(device)
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.ndarray) or dtype is not None:  # otherwise Tensor() picks the dtype, as above
        data = np.array(data, dtype=as_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like ``tensor`` but without a copy when ``data`` is already an array of that dtype."""
    if isinstance(data, Tensor) and (dtype is None or as_dtype(dtype) == data.dtype):
        return data
    check_device(device)
    return Tensor(data if dtype is None else np.asarray(data, dtype=as_dtype(dtype)))


def from_numpy(array):
    """A tensor sharing ``array``'s memory and dtype."""
    return Tensor(np.asarray(array))


def is_tensor(x):
    return isinstance(x, Tensor)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.zeros(_shape_args(size)), dtype, device, requires_grad)


def ones(*size, dtype=None, device=None, requires_grad=False):
    return _make(np.ones(_shape_args(size)), dtype, device, requires_grad)


def empty(*size, dtype=None, device=None, requires_grad=False):
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """A tensor of shape ``size`` filled with ``fill_value`` (its dtype: float32 for a float, int64 for an int)."""
    default = np.int64 if isinstance(fill_value, (int, np.integer)) and not isinstance(fill_value, bool) else np.float32
    return _make(np.full(_shape_args((size,)), fill_value), dtype, device, requires_grad, default)


def zeros_like(x, dtype=None, device=None, requires_grad=False):
    return _make(np.zeros(x.shape), dtype or x.dtype, device, requires_grad)


def ones_like(x, dtype=None, device=None, requires_grad=False):
    return _make(np.ones(x.shape), dtype or x.dtype, device, requires_grad)


def rand(*size, dtype=None, device=None, requires_grad=False):
    """Uniform on [0, 1)."""
    return _make(random.generator().random(_shape_args(size)), dtype, device, requires_grad)


def randn(*size, dtype=None, device=None, requires_grad=False):
    """Standard normal: mean 0, variance 1."""
    return _make(random.generator().standard_normal(_shape_args(size)), dtype, device, requires_grad)


def rand_like(x, dtype=None, device=None, requires_grad=False):
    return rand(x.shape, dtype=dtype or x.dtype, device=device, requires_grad=requires_grad)


def randn_like(x, dtype=None, device=None, requires_grad=False):
    return randn(x.shape, dtype=dtype or x.dtype, device=device, requires_grad=requires_grad)


def randint(low, high=None, size=(), dtype=None, device=None):
    """Integers uniform in [low, high) (in [0, low) when ``high`` is omitted), int64 by default."""
    low, high = (0, low) if high is None else (low, high)
    return _make(random.generator().integers(low, high, size=size), dtype, device, False, np.int64)


def arange(start, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """start, start + step, ... up to but excluding ``end`` (from 0 when only one number is given).
    int64 when every argument is an integer, float32 otherwise."""
    start, end = (0, start) if end is None else (start, end)
    integral = all(isinstance(v, (int, np.integer)) for v in (start, end, step))
    return _make(np.arange(start, end, step), dtype, device, requires_grad, np.int64 if integral else np.float32)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced numbers from ``start`` to ``end``, both included."""
    return _make(np.linspace(start, end, steps), dtype, device, requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    return _make(np.eye(n, m), dtype, device, requires_grad)
