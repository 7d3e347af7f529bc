"""The function spellings PyTorch has next to its Tensor methods: ``minidl.sin(x)`` is ``x.sin()``, and so on.

Each one only forwards to the method (``tensor_methods.py``), so there is one implementation of each op;
the keywords are PyTorch's (``input``, ``other``, ``dim``, ``keepdim``). ``cat`` and ``stack`` exist only
here, since they take a list of tensors.

The binary functions take PyTorch's ``out=``: ``torch.matmul(a, b, out=y)`` writes the product into the
existing tensor ``y`` (an in-place change of y) and returns y. As in PyTorch, ``out=`` is refused when an
argument requires grad (the write could not be differentiated).
"""
import warnings

import numpy as np

from . import ops
from .autograd import Tensor, is_grad_enabled


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


def _out(name, out, compute, *args):
    """``compute()``, or, with ``out=``, its result written into ``out`` (PyTorch's meaning)."""
    if out is None:
        return compute()
    if is_grad_enabled() and any(getattr(a, "requires_grad", False) for a in args):
        raise RuntimeError(f"{name}(): functions with out=... arguments don't support automatic differentiation, "
                           "but one of the arguments requires grad.")
    result = compute().data
    out._changed_in_place(f"{name}(out=)")
    if out.data.shape != result.shape:  # PyTorch resizes out (and warns unless it was empty)
        if out.data.size:
            warnings.warn(f"{name}(): an output with shape {list(out.data.shape)} was resized to the result's "
                          f"shape {list(result.shape)}", UserWarning, stacklevel=3)
        out.data = np.empty(result.shape, dtype=out.data.dtype)
    if not np.can_cast(result.dtype, out.data.dtype, casting="same_kind"):
        raise RuntimeError(f"{name}(): result type {result.dtype} can't be cast to the desired output type {out.data.dtype}")
    np.copyto(out.data, result, casting="same_kind")
    return out


def sin(input):
    return _t(input).sin()


def cos(input):
    return _t(input).cos()


def exp(input):
    return _t(input).exp()


def log(input):
    return _t(input).log()


def sqrt(input):
    return _t(input).sqrt()


def abs(input):
    return _t(input).abs()


def tanh(input):
    return _t(input).tanh()


def sigmoid(input):
    return _t(input).sigmoid()


def relu(input):
    return _t(input).relu()


def softmax(input, dim):
    return _t(input).softmax(dim)


def log_softmax(input, dim):
    return _t(input).log_softmax(dim)


def clamp(input, min=None, max=None):
    return _t(input).clamp(min, max)


def pow(input, exponent, *, out=None):
    return _out("pow", out, lambda: _t(input).pow(exponent), input, exponent)


def matmul(input, other, *, out=None):
    return _out("matmul", out, lambda: _t(input).matmul(other), input, other)


def mm(input, mat2, *, out=None):
    """Matrix product of two matrices only (2 dimensions each); ``matmul`` also takes vectors and batches."""
    return _out("mm", out, lambda: _t(input).mm(mat2), input, mat2)


def add(input, other, *, alpha=1, out=None):
    """input + alpha · other."""
    return _out("add", out, lambda: _t(input) + (other if alpha == 1 else other * alpha), input, other)


def sub(input, other, *, alpha=1, out=None):
    """input - alpha · other."""
    return _out("sub", out, lambda: _t(input) - (other if alpha == 1 else other * alpha), input, other)


def mul(input, other, *, out=None):
    return _out("mul", out, lambda: _t(input) * other, input, other)


def div(input, other, *, out=None):
    return _out("div", out, lambda: _t(input) / other, input, other)


def gather(input, dim, index):
    return _t(input).gather(dim, index)


def scatter(input, dim, index, src=None, *, value=None):
    return _t(input).scatter(dim, index, src, value=value)


def scatter_add(input, dim, index, src):
    return _t(input).scatter_add(dim, index, src)


def sum(input, dim=None, keepdim=False):
    return _t(input).sum(dim, keepdim)


def mean(input, dim=None, keepdim=False):
    return _t(input).mean(dim, keepdim)


def max(input, dim=None, keepdim=False):
    return _t(input).max(dim, keepdim)


def min(input, dim=None, keepdim=False):
    return _t(input).min(dim, keepdim)


def argmax(input, dim=None, keepdim=False):
    return _t(input).argmax(dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _t(input).argmin(dim, keepdim)


def reshape(input, shape):
    return _t(input).reshape(shape)


def flatten(input, start_dim=0, end_dim=-1):
    return _t(input).flatten(start_dim, end_dim)


def squeeze(input, dim=None):
    return _t(input).squeeze(dim)


def unsqueeze(input, dim):
    return _t(input).unsqueeze(dim)


def permute(input, dims):
    return _t(input).permute(dims)


def transpose(input, dim0, dim1):
    return _t(input).transpose(dim0, dim1)


def numel(input):
    return _t(input).numel()


def cat(tensors, dim=0):
    """Join tensors along an existing dimension ``dim`` (their other dimensions must agree)."""
    return ops.Cat.apply(*tensors, dim=dim)


def stack(tensors, dim=0):
    """Join tensors of one shape along a new dimension ``dim``."""
    return cat([_t(t).unsqueeze(dim) for t in tensors], dim=dim)
