"""The function spellings PyTorch has next to its Tensor methods: ``minidl.sin(x)`` is ``x.sin()``, and so on.

Each one only forwards to the method (``tensor_methods.py``), so there is one implementation of each op;
the keywords are PyTorch's (``input``, ``other``, ``dim``, ``keepdim``). ``cat`` and ``stack`` exist only
here, since they take a list of tensors.
"""
from . import ops
from .autograd import Tensor


def _t(x):
    return x if isinstance(x, Tensor) else Tensor(x)


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


def clamp(input, min=None, max=None):
    return _t(input).clamp(min, max)


def pow(input, exponent):
    return _t(input).pow(exponent)


def matmul(input, other):
    return _t(input).matmul(other)


mm = matmul


def add(input, other):
    return _t(input) + other


def sub(input, other):
    return _t(input) - other


def mul(input, other):
    return _t(input) * other


def div(input, other):
    return _t(input) / other


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
