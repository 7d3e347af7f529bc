"""The PyTorch-named surface of ``Tensor``: operators, reductions, shape changes, conversions, in-place ops.

``Tensor`` (in ``autograd.py``) inherits these methods. Each one only forwards to a ``Function`` of
``ops.py`` or ``functional.py``, where the forward and the backward are; reading this file tells you which.

PyTorch's words win where they differ from NumPy's: ``size()`` is the shape (``size(d)`` one entry of it)
and ``numel()`` the number of elements; reductions take ``dim`` and ``keepdim`` (NumPy's ``axis`` and
``keepdims`` are accepted too, as PyTorch accepts them); ``transpose(d0, d1)`` swaps two dimensions and
``permute(*dims)`` reorders them all; ``max(dim)`` returns ``(values, indices)``.

In-place ops (``-=``, ``add_()``, ``zero_()``, ...) change ``data`` itself and add 1 to the tensor's
version counter, ``_version``. They are refused, as in PyTorch, on a tensor that is part of a graph
being recorded (a leaf that requires grad: do the update inside ``no_grad()``); a backward that saved a
tensor later changed in place finds the version moved on and refuses too, instead of using stale values.
The counter belongs to the Tensor object: a view made by ``reshape`` or indexing shares the data but not
the counter (PyTorch keeps one counter per storage).
"""
from collections import namedtuple

import numpy as np

from . import dtypes, indexing, ops
from .autograd import is_grad_enabled  # defined before autograd.py imports this file

_MinMax = namedtuple("_MinMax", "values indices")  # what x.max(dim) returns, as torch.return_types.max


def _functional():
    """minidl.functional, imported on first use: it needs ``Tensor``, which autograd.py defines only after
    importing this file (the ops of ops.py have no such need: they need only ``Function``)."""
    from . import functional

    return functional


def _pick_dim(dim, axis):
    return axis if dim is None else dim


def _shape_args(shape):
    """f(2, 3) and f((2, 3)) both mean the shape (2, 3), as in PyTorch."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)


class TensorMethods:
    # --- what the tensor is -------------------------------------------------------------------------
    def size(self, dim=None):
        return self.shape if dim is None else self.data.shape[dim]

    def dim(self):
        return self.data.ndim

    def numel(self):
        return self.data.size

    def __len__(self):
        return len(self.data)

    def numpy(self, force=False):
        """The NumPy array itself, sharing memory both ways, as PyTorch's ``numpy()``: ``t.add_(1)`` changes
        it, and writing into it changes ``t``. Refused on a tensor that requires grad, as in PyTorch
        (changes to the array would escape the graph): use ``t.detach().numpy()``, or ``force=True``."""
        if self.requires_grad and not force:
            raise RuntimeError("Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.")
        return self.data

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)`` is ``t.data`` (no copy): NumPy, matplotlib's ``imshow``, and the rest read
        tensors as arrays."""
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __float__(self):
        return float(self.data)

    def __int__(self):
        return int(self.data)

    def __index__(self):
        """A one-element integer tensor indexes a list (``classes[pred.argmax(0)]``), as in PyTorch."""
        if self.data.size != 1 or self.data.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors of a single element can be converted to an index, got a "
                            f"{self.data.dtype} tensor of shape {self.shape}")
        return int(self.data.item())

    device = property(lambda self: dtypes.device("cpu"))
    is_cuda = False

    def to(self, *args, dtype=None, device=None):
        """``to("cpu")``, ``to(minidl.float64)``, ``to(device, dtype)``: a device is checked (CPU only), a
        new dtype makes a copy, as in PyTorch (recorded, so gradients flow back)."""
        dtype, device = dtypes.to_arguments(args, dtype, device)
        if dtype is None or np.dtype(dtype) == self.dtype:
            return self
        return ops.Cast.apply(self, dtype=np.dtype(dtype))

    def clone(self):
        """A copy with its own data, still in the graph (the copy is a Cast to the same dtype)."""
        return ops.Cast.apply(self, dtype=self.dtype)

    def cpu(self):
        return self

    def cuda(self, device=None):
        return self.to("cuda")

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def long(self):
        return self.to(np.int64)

    def type(self, dtype=None):
        """``x.type(minidl.float)`` is ``x.to(minidl.float)``; ``x.type()`` names the type as PyTorch does
        (``'torch.FloatTensor'``)."""
        if dtype is None:
            return f"torch.{_TYPE_NAMES.get(self.dtype, str(self.dtype))}Tensor"
        return self.to(dtype)

    # --- arithmetic: ops.py ----------------------------------------------------------------------------
    def __add__(self, other):
        return ops.Add.apply(self, other)

    def __radd__(self, other):
        return ops.Add.apply(other, self)

    def __sub__(self, other):
        return ops.Sub.apply(self, other)

    def __rsub__(self, other):
        return ops.Sub.apply(other, self)

    def __mul__(self, other):
        return ops.Mul.apply(self, other)

    def __rmul__(self, other):
        return ops.Mul.apply(other, self)

    def __truediv__(self, other):
        return ops.Div.apply(self, other)

    def __rtruediv__(self, other):
        return ops.Div.apply(other, self)

    def __neg__(self):
        return ops.Neg.apply(self)

    def __pow__(self, exponent):
        return ops.Pow.apply(self, exponent)

    def __rpow__(self, base):
        return ops.Pow.apply(base, self)

    def __matmul__(self, other):
        return ops.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return ops.MatMul.apply(other, self)

    add, sub, mul, div, pow, matmul, neg = __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__, __neg__

    # comparisons give bool tensors, outside the graph. == and != compare element by element, as in
    # PyTorch; hashing stays by identity, so tensors still work as dict keys and in sets.
    def __eq__(self, other):
        return _compare(self, other, np.equal)

    def __ne__(self, other):
        return _compare(self, other, np.not_equal)

    __hash__ = object.__hash__

    def __lt__(self, other):
        return type(self)(self.data < _array(other))

    def __le__(self, other):
        return type(self)(self.data <= _array(other))

    def __gt__(self, other):
        return type(self)(self.data > _array(other))

    def __ge__(self, other):
        return type(self)(self.data >= _array(other))

    def exp(self):
        return ops.Exp.apply(self)

    def log(self):
        return ops.Log.apply(self)

    def sqrt(self):
        return ops.Sqrt.apply(self)

    def sin(self):
        return ops.Sin.apply(self)

    def cos(self):
        return ops.Cos.apply(self)

    def abs(self):
        return ops.Abs.apply(self)

    def clamp(self, min=None, max=None):
        return ops.Clamp.apply(self, low=min, high=max)

    clip = clamp

    def relu(self):
        return _functional().relu(self)

    def sigmoid(self):
        return _functional().sigmoid(self)

    def tanh(self):
        return _functional().tanh(self)

    def softmax(self, dim):
        return _functional().softmax(self, dim)

    def log_softmax(self, dim):
        return _functional().log_softmax(self, dim)

    # --- reductions ----------------------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=False):
        return ops.Sum.apply(self, axis=_pick_dim(dim, axis), keepdims=keepdim or keepdims)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=False):
        return ops.Mean.apply(self, axis=_pick_dim(dim, axis), keepdims=keepdim or keepdims)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=False):
        """The largest element; with ``dim``, ``(values, indices)`` along it (the indices need no grad)."""
        dim, keepdim = _pick_dim(dim, axis), keepdim or keepdims
        values = ops.Max.apply(self, axis=dim, keepdims=keepdim)
        return values if dim is None else _MinMax(values, self.argmax(dim, keepdim))

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=False):
        """min x = -max(-x); with ``dim``, ``(values, indices)``."""
        dim, keepdim = _pick_dim(dim, axis), keepdim or keepdims
        values = -ops.Max.apply(-self, axis=dim, keepdims=keepdim)
        return values if dim is None else _MinMax(values, self.argmin(dim, keepdim))

    def argmax(self, dim=None, keepdim=False):
        """Index of the largest element (of the flattened tensor when ``dim`` is None); int64, no grad."""
        return type(self)(np.argmax(self.data, axis=dim, keepdims=keepdim and dim is not None))

    def argmin(self, dim=None, keepdim=False):
        return type(self)(np.argmin(self.data, axis=dim, keepdims=keepdim and dim is not None))

    # --- shapes: Reshape, Transpose and GetItem of ops.py ----------------------------------------------
    def reshape(self, *shape):
        return ops.Reshape.apply(self, shape=_shape_args(shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dimensions start_dim..end_dim (inclusive) into one."""
        shape = self.shape
        start, end = start_dim % max(len(shape), 1), end_dim % max(len(shape), 1)
        return self.reshape(shape[:start] + (-1,) + shape[end + 1:]) if shape else self.reshape(1)

    def unsqueeze(self, dim):
        """Insert a dimension of size 1 at ``dim`` (negative counts from the end of the new shape)."""
        shape = list(self.shape)
        shape.insert(dim % (len(shape) + 1), 1)
        return self.reshape(shape)

    def squeeze(self, dim=None):
        """Drop dimensions of size 1 (only ``dim``, when given and of size 1)."""
        shape = self.shape
        if dim is None:
            return self.reshape([n for n in shape if n != 1])
        dim = dim % len(shape)
        return self.reshape(shape[:dim] + shape[dim + 1:]) if shape[dim] == 1 else self

    def permute(self, *dims):
        return ops.Transpose.apply(self, axes=_shape_args(dims))

    def transpose(self, dim0, dim1):
        """Swap two dimensions (PyTorch's meaning; ``permute`` reorders all of them)."""
        axes = list(range(self.ndim))
        axes[dim0], axes[dim1] = axes[dim1], axes[dim0]
        return ops.Transpose.apply(self, axes=tuple(axes))

    @property
    def T(self):
        """All dimensions reversed (for a matrix, its transpose)."""
        return ops.Transpose.apply(self, axes=None)

    def t(self):
        """The transpose of a matrix (a vector or a number is returned as it is); PyTorch's ``t()``."""
        if self.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {self.ndim}D")
        return self if self.ndim < 2 else self.transpose(0, 1)

    def mm(self, mat2):
        """Matrix product of two matrices (``matmul`` also takes vectors and batches)."""
        _check_matrices(self, mat2)
        return ops.MatMul.apply(self, mat2)

    def gather(self, dim, index):
        """out[i][j] = self[index[i][j]][j] (dim 0) or self[i][index[i][j]] (dim 1), and so on: indexing.Gather."""
        return indexing.Gather.apply(self, index, dim=dim)

    def scatter(self, dim, index, src=None, *, value=None):
        """A copy of self with src's elements (or ``value``) written where ``index`` says: indexing.Scatter."""
        if src is not None and not isinstance(src, TensorMethods):
            src, value = None, src  # scatter(dim, index, 0.5): a number
        return indexing.Scatter.apply(self, index, src, dim=dim, value=value)

    def scatter_add(self, dim, index, src):
        """A copy of self with src's elements added where ``index`` says (repeated indices add up)."""
        return indexing.Scatter.apply(self, index, src, dim=dim, reduce="add")

    def __getitem__(self, index):
        return ops.GetItem.apply(self, index=index)

    # --- in place --------------------------------------------------------------------------------------
    def _changed_in_place(self, what, other=None):
        """Refuse an in-place change the graph cannot follow; otherwise count it (``_version``)."""
        if is_grad_enabled() and self.requires_grad and self.is_leaf:
            raise RuntimeError(f"a leaf Variable that requires grad is being used in an in-place operation "
                               f"({what}): update weights inside `with minidl.no_grad():`")
        if is_grad_enabled() and (self.requires_grad or getattr(other, "requires_grad", False)):
            raise RuntimeError(f"in-place operation ({what}) on a tensor that is part of the graph: minidl does "
                               "not record in-place ops; make a new tensor instead (y = y + 1 rather than y += 1)")
        self._version += 1

    def __iadd__(self, other):
        self._changed_in_place("+=", other)
        self.data += _array(other)
        return self

    def __isub__(self, other):
        self._changed_in_place("-=", other)
        self.data -= _array(other)
        return self

    def __imul__(self, other):
        self._changed_in_place("*=", other)
        self.data *= _array(other)
        return self

    def __itruediv__(self, other):
        self._changed_in_place("/=", other)
        self.data /= _array(other)
        return self

    def add_(self, other, alpha=1):
        return self.__iadd__(_array(other) * alpha if alpha != 1 else other)

    def sub_(self, other, alpha=1):
        return self.__isub__(_array(other) * alpha if alpha != 1 else other)

    mul_, div_ = __imul__, __itruediv__

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        self._changed_in_place("fill_", value)
        self.data[...] = _array(value)
        return self

    def copy_(self, src):
        return self.fill_(src)

    def clamp_(self, min=None, max=None):
        self._changed_in_place("clamp_")
        np.clip(self.data, min, max, out=self.data)
        return self

    def scatter_(self, dim, index, src=None, *, value=None):
        """``scatter`` written into self (outside any graph, as every in-place op here)."""
        self._changed_in_place("scatter_", src)
        self.data[...] = self.scatter(dim, index, src, value=value).data
        return self

    def scatter_add_(self, dim, index, src):
        self._changed_in_place("scatter_add_", src)
        self.data[...] = self.scatter_add(dim, index, src).data
        return self

    def __setitem__(self, index, value):
        self._changed_in_place("[...] =", value)
        self.data[index] = _array(value)


def _check_matrices(a, b):
    for name, x in (("self", a), ("mat2", b)):
        if np.ndim(_array(x)) != 2:
            raise RuntimeError(f"mm: {name} must be a matrix (2 dimensions), got shape {np.shape(_array(x))}")


def _array(x):
    return x.data if isinstance(x, TensorMethods) else x


def _compare(tensor, other, op):
    from .autograd import Tensor

    if other is None or not isinstance(other, (TensorMethods, np.ndarray, np.generic, int, float, bool, complex)):
        return NotImplemented  # x == "text", x == None: Python's answer (False, True for !=)
    return Tensor(op(tensor.data, _array(other)))


_TYPE_NAMES = {np.dtype(np.float32): "Float", np.dtype(np.float64): "Double", np.dtype(np.float16): "Half",
               np.dtype(np.int64): "Long", np.dtype(np.int32): "Int", np.dtype(np.int16): "Short",
               np.dtype(np.int8): "Char", np.dtype(np.uint8): "Byte", np.dtype(np.bool_): "Bool"}

