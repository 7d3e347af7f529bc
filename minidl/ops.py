"""The elementary ops behind ``Tensor``'s operators and methods, each forward next to its backward.

Notation in the docstrings: y is the op's output, g = dL/dy the gradient arriving from the loss L, and
the backward returns dL/dx for each input x. ``⊙`` is the element-wise product.

Broadcasting: when NumPy broadcasts an input of shape (3, 1) against (3, 4), the input is used four times,
so its gradient is the sum of the four contributions. ``unbroadcast`` performs that sum for every op.
"""
import numpy as np

from .autograd import Function


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting.

    Broadcasting prepends axes and stretches axes of length 1; the gradient of a stretched input is the
    sum over the axes it was stretched along.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Add(Function):
    """y = a + b.   dL/da = g,  dL/db = g  (each summed back to its shape)."""
    torch_name = "AddBackward0"

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a + b

    def backward(self, g):
        return unbroadcast(g, self.a_shape), unbroadcast(g, self.b_shape)


class Sub(Function):
    """y = a - b.   dL/da = g,  dL/db = -g."""
    torch_name = "SubBackward0"

    def forward(self, a, b):
        self.a_shape, self.b_shape = a.shape, b.shape
        return a - b

    def backward(self, g):
        return unbroadcast(g, self.a_shape), unbroadcast(-g, self.b_shape) if self.needs_input_grad[1] else None


class Mul(Function):
    """y = a ⊙ b.   dL/da = g ⊙ b,  dL/db = g ⊙ a."""
    torch_name = "MulBackward0"

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, g):
        da = unbroadcast(g * self.b, self.a.shape) if self.needs_input_grad[0] else None
        db = unbroadcast(g * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return da, db


class Div(Function):
    """y = a / b.   dL/da = g / b,  dL/db = -g ⊙ a / b² = -g ⊙ y / b."""
    torch_name = "DivBackward0"

    def forward(self, a, b):
        self.a_shape, self.b = a.shape, b
        self.y = a / b
        return self.y

    def backward(self, g):
        da = unbroadcast(g / self.b, self.a_shape) if self.needs_input_grad[0] else None
        db = unbroadcast(-g * self.y / self.b, self.b.shape) if self.needs_input_grad[1] else None
        return da, db


class Neg(Function):
    """y = -x.   dL/dx = -g."""
    torch_name = "NegBackward0"

    def forward(self, x):
        return -x

    def backward(self, g):
        return (-g,)


class Pow(Function):
    """y = x^p, p a number or a tensor (broadcast against x).

        dL/dx = g ⊙ p x^(p-1)        dL/dp = g ⊙ y ⊙ ln x   (only where p needs a gradient)
    """

    def forward(self, x, p):
        if p.dtype.kind in "iub" and x.dtype.kind == "f":  # PyTorch keeps x's float dtype; NumPy would widen
            p = p.astype(x.dtype)
        self.x, self.p = x, p
        self.torch_name = "PowBackward0" if p.ndim == 0 else "PowBackward2" if x.ndim == 0 else "PowBackward1"
        self.y = x**p
        return self.y

    def backward(self, g):
        dx = unbroadcast(g * self.p * self.x ** (self.p - 1), self.x.shape)
        dp = None
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):  # ln x of x ≤ 0: nan, as in PyTorch
                dp = unbroadcast(g * self.y * np.log(self.x), self.p.shape)
        return dx, dp


class Exp(Function):
    """y = eˣ.   dL/dx = g ⊙ y  (the exponential is its own derivative)."""
    torch_name = "ExpBackward0"

    def forward(self, x):
        self.y = np.exp(x)
        return self.y

    def backward(self, g):
        return (g * self.y,)


class Log(Function):
    """y = ln x.   dL/dx = g / x."""
    torch_name = "LogBackward0"

    def forward(self, x):
        self.x = x
        return np.log(x)

    def backward(self, g):
        return (g / self.x,)


class Sqrt(Function):
    """y = √x.   dL/dx = g / (2y)."""
    torch_name = "SqrtBackward0"

    def forward(self, x):
        self.y = np.sqrt(x)
        return self.y

    def backward(self, g):
        return (g / (2 * self.y),)


class MatMul(Function):
    """y = a @ b, with ``np.matmul`` semantics (batched over leading axes, 1-D operands promoted).

    For matrices, y_ij = Σ_k a_ik b_kj, hence
        dL/da = g @ bᵀ      dL/db = aᵀ @ g
    where ᵀ swaps the last two axes. Batch axes that were broadcast are summed back (``unbroadcast``).
    A 1-D ``a`` is treated as a row (1, n) and a 1-D ``b`` as a column (n, 1), as NumPy does.
    """

    def forward(self, a, b):
        k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.ndim == 0 or b.ndim == 0 or a.shape[-1] != k_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align (inner sizes differ)")
        self.a, self.b = a, b
        self.torch_name = {(2, 2): "MmBackward0", (1, 1): "DotBackward0", (2, 1): "MvBackward0",
                           (1, 2): "SqueezeBackward4"}.get((a.ndim, b.ndim), "UnsafeViewBackward0")
        return a @ b

    def backward(self, g):
        a = self.a[None, :] if self.a.ndim == 1 else self.a
        b = self.b[:, None] if self.b.ndim == 1 else self.b
        if self.a.ndim == 1:
            g = np.expand_dims(g, -2)
        if self.b.ndim == 1:
            g = np.expand_dims(g, -1)
        da = db = None
        if self.needs_input_grad[0]:
            da = unbroadcast(g @ np.swapaxes(b, -1, -2), a.shape).reshape(self.a.shape)
        if self.needs_input_grad[1]:
            db = unbroadcast(np.swapaxes(a, -1, -2) @ g, b.shape).reshape(self.b.shape)
        return da, db


def _as_axes(axis, ndim):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    return tuple(a % ndim for a in axes)


class Sum(Function):
    """y = Σ x over ``axis``.   dL/dx = g broadcast back over the summed axes (each x feeds y once)."""

    def forward(self, x, axis=None, keepdims=False):
        self.x_shape, self.axes = x.shape, _as_axes(axis, x.ndim)
        self.keepdims = keepdims
        self.torch_name = "SumBackward0" if axis is None else "SumBackward1"
        return np.asarray(x.sum(axis=self.axes, keepdims=keepdims))

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axes)
        return (np.broadcast_to(g, self.x_shape),)


class Mean(Function):
    """y = (1/n) Σ x over ``axis``, n the number of elements averaged.   dL/dx = g / n, broadcast back."""

    def forward(self, x, axis=None, keepdims=False):
        self.x_shape, self.axes = x.shape, _as_axes(axis, x.ndim)
        self.keepdims = keepdims
        self.n = int(np.prod([x.shape[a] for a in self.axes]))
        self.torch_name = "MeanBackward0" if axis is None else "MeanBackward1"
        return np.asarray(x.mean(axis=self.axes, keepdims=keepdims))

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axes)
        return (np.broadcast_to(g / self.n, self.x_shape),)


class Max(Function):
    """y = max x over ``axis``.

    Only the maximal element influences y, so dL/dx = g where x is the maximum and 0 elsewhere. With ties,
    the gradient is split evenly among the tied elements (a subgradient; finite differences are undefined
    there).
    """

    def forward(self, x, axis=None, keepdims=False):
        self.axes, self.keepdims = _as_axes(axis, x.ndim), keepdims
        self.torch_name = "MaxBackward1" if axis is None else "MaxBackward0"
        y = x.max(axis=self.axes, keepdims=True)
        self.mask = x == y
        return y if keepdims else np.squeeze(y, axis=self.axes)

    def backward(self, g):
        if not self.keepdims:
            g = np.expand_dims(g, self.axes)
        count = self.mask.sum(axis=self.axes, keepdims=True)
        return (self.mask * (g / count),)


class Reshape(Function):
    """y = x viewed with a new shape.   dL/dx = g reshaped back to x's shape."""
    torch_name = "ViewBackward0"

    def forward(self, x, shape):
        self.x_shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return (g.reshape(self.x_shape),)


class Transpose(Function):
    """y = x with its axes permuted by ``axes`` (reversed when None).   dL/dx = g permuted back."""
    torch_name = "PermuteBackward0"

    def forward(self, x, axes=None):
        self.axes = axes
        return np.transpose(x, axes)

    def backward(self, g):
        return (np.transpose(g, None if self.axes is None else np.argsort(self.axes)),)


class GetItem(Function):
    """y = x[index] (basic or advanced NumPy indexing).

    Each selected element of x receives its element of g; unselected elements receive 0:
        dL/dx = zeros like x, then dL/dx[index] += g
    An index that selects the same element several times (advanced indexing) adds up the contributions
    (``np.add.at``; a plain ``dx[index] += g`` would keep only one of them).
    """

    def forward(self, x, index):
        self.x_shape, self.x_dtype, self.index = x.shape, x.dtype, index
        parts = index if isinstance(index, tuple) else (index,)
        basic = all(i is None or i is Ellipsis or isinstance(i, (int, np.integer, slice)) for i in parts)
        self.torch_name = ("IndexBackward0" if not basic else "SelectBackward0" if all(isinstance(i, (int, np.integer)) for i in parts)
                           else "UnsqueezeBackward0" if all(i is None for i in parts) else "SliceBackward0")
        return x[index]

    def backward(self, g):
        dx = np.zeros(self.x_shape, dtype=self.x_dtype)
        np.add.at(dx, self.index, g)
        return (dx,)


class Sin(Function):
    """y = sin x.   dL/dx = g ⊙ cos x."""
    torch_name = "SinBackward0"

    def forward(self, x):
        self.x = x
        return np.sin(x)

    def backward(self, g):
        return (g * np.cos(self.x),)


class Cos(Function):
    """y = cos x.   dL/dx = -g ⊙ sin x."""
    torch_name = "CosBackward0"

    def forward(self, x):
        self.x = x
        return np.cos(x)

    def backward(self, g):
        return (-g * np.sin(self.x),)


class Abs(Function):
    """y = |x|.   dL/dx = g ⊙ sign(x)  (0 at x = 0, as in PyTorch)."""
    torch_name = "AbsBackward0"

    def forward(self, x):
        self.x = x
        return np.abs(x)

    def backward(self, g):
        return (g * np.sign(self.x),)


class Clamp(Function):
    """y = min(max(x, low), high) (a missing bound is no bound).   dL/dx = g where low ≤ x ≤ high, else 0."""
    torch_name = "ClampBackward1"

    def forward(self, x, low=None, high=None):
        self.inside = (x >= (-np.inf if low is None else low)) & (x <= (np.inf if high is None else high))
        return np.clip(x, low, high)

    def backward(self, g):
        return (g * self.inside,)


class Cat(Function):
    """y = the inputs joined along ``dim``.   dL/d(input i) = the slice of g where input i was placed."""
    torch_name = "CatBackward0"

    def forward(self, *arrays, dim=0):
        self.dim, self.ends = dim, np.cumsum([a.shape[dim] for a in arrays])
        return np.concatenate(arrays, axis=dim)

    def backward(self, g):
        return tuple(np.split(g, self.ends[:-1], axis=self.dim))


class Cast(Function):
    """y = x converted to ``dtype``.   dL/dx = g converted back to x's dtype."""
    torch_name = "ToCopyBackward0"

    def forward(self, x, dtype):
        self.x_dtype = x.dtype
        return x.astype(dtype)

    def backward(self, g):
        return (g.astype(self.x_dtype),)
