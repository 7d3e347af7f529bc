"""Neural-network ops: activations, losses, ``linear``, ``dropout`` and adaptive pooling (import as ``F``).

Each op is a ``Function`` (forward and backward side by side, backward math in the docstring) plus a
lowercase function that applies it, as in ``torch.nn.functional``. Notation: y the output, g = dL/dy.
``conv2d``, ``max_pool2d`` and ``avg_pool2d`` run on the kernel set selected by ``minidl.use_kernels``:
the plain ones of ``minidl/textbook/`` (read those) or the engineered ones of ``minidl/fast/`` (the default);
so do ``relu`` and ``linear``, whose plain versions are the Functions in this file.
"""
import warnings

import numpy as np

from . import kernels, random
from .autograd import Function, Tensor
from .losses import BinaryCrossEntropy, BinaryCrossEntropyWithLogits, SmoothL1Loss


class ReLU(Function):
    """y = max(x, 0).   dL/dx = g ⊙ [x > 0]  (the kink at 0 gets gradient 0, as in PyTorch)."""
    torch_name = "ReluBackward0"

    def forward(self, x):
        y = np.maximum(x, 0)
        self.y = y
        return y

    def backward(self, g):
        return (g * (self.y > 0),)


class Sigmoid(Function):
    """y = σ(x) = 1 / (1 + e⁻ˣ).   dL/dx = g ⊙ y ⊙ (1 - y)."""
    torch_name = "SigmoidBackward0"

    def forward(self, x):
        # σ(x) = (1 + tanh(x/2)) / 2 is an identity; unlike 1 / (1 + e⁻ˣ) it never overflows for large -x
        self.y = 0.5 * (1 + np.tanh(0.5 * x))
        return self.y

    def backward(self, g):
        return (g * self.y * (1 - self.y),)


class Tanh(Function):
    """y = tanh x.   dL/dx = g ⊙ (1 - y²)."""
    torch_name = "TanhBackward0"

    def forward(self, x):
        self.y = np.tanh(x)
        return self.y

    def backward(self, g):
        return (g * (1 - self.y * self.y),)


class Softmax(Function):
    """y_i = e^{x_i} / Σ_j e^{x_j} along ``axis``.

    The Jacobian is dy_i/dx_k = y_i (δ_ik - y_k), so dL/dx = y ⊙ (g - Σ_i g_i y_i).
    The max is subtracted before exponentiating: it cancels in the ratio and keeps e^x from overflowing.
    """
    torch_name = "SoftmaxBackward0"

    def forward(self, x, axis=-1):
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        self.y, self.axis = e / e.sum(axis=axis, keepdims=True), axis
        return self.y

    def backward(self, g):
        return (self.y * (g - (g * self.y).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    """y = x - logΣexp(x) along ``axis``, computed as (x - m) - log Σ e^{x - m} with m = max x (stable).

    dy_i/dx_k = δ_ik - softmax(x)_k, so dL/dx = g - softmax(x) ⊙ Σ_i g_i.
    """
    torch_name = "LogSoftmaxBackward0"

    def forward(self, x, axis=-1):
        shifted = x - x.max(axis=axis, keepdims=True)
        self.y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        self.axis = axis
        return self.y

    def backward(self, g):
        return (g - np.exp(self.y) * g.sum(axis=self.axis, keepdims=True),)


class CrossEntropy(Function):
    """L = -(1/N) Σ_n log softmax(z_n)[t_n] for logits z (N, C) and integer labels t (N,) (``reduction``
    "sum" drops the 1/N, "none" returns the N terms).

    Fusing log-softmax with the loss gives the famous simple gradient
        dL/dz = (softmax(z) - onehot(t)) / N   (times the incoming g, a scalar),
    and avoids ever taking the log of a probability that underflowed to 0.
    """
    torch_name = "NllLossBackward0"

    def forward(self, logits, labels, reduction="mean"):
        if logits.ndim != 2 or labels.shape != (logits.shape[0],):
            raise ValueError(f"cross_entropy expects logits (N, C) and labels (N,), got {logits.shape} and {labels.shape}")
        if labels.dtype.kind not in "iu":
            raise ValueError(f"cross_entropy expects integer class labels, got dtype {labels.dtype}")
        n, c = logits.shape
        if n and (labels.min() < 0 or labels.max() >= c):
            raise ValueError(f"cross_entropy: labels must lie in [0, {c - 1}], got values from {labels.min()} to {labels.max()}")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        self.log_probs, self.labels, self.reduction = log_probs, labels, reduction
        losses = -log_probs[np.arange(n), labels]
        return losses if reduction == "none" else np.asarray(getattr(losses, reduction)(), dtype=logits.dtype)

    def backward(self, g):
        n = len(self.labels)
        dz = np.exp(self.log_probs)
        dz[np.arange(n), self.labels] -= 1
        if self.reduction == "none":  # one g per sample
            dz *= g[:, None]
        elif self.reduction == "mean":  # each sample counts 1/n
            dz *= g / n
        else:  # "sum": the same g for every sample
            dz *= g
        return dz, None


class MSELoss(Function):
    """L = (1/n) Σ (a - b)² over the n elements ("mean"), or Σ (a - b)² ("sum"), or (a - b)² itself ("none").

        dL/da = 2 g ⊙ (a - b) (/ n for "mean"),   dL/db = -dL/da
    """
    torch_name = "MseLossBackward0"

    def forward(self, a, b, reduction="mean"):
        if a.shape != b.shape:
            raise ValueError(f"mse_loss: shapes {a.shape} and {b.shape} differ")
        self.diff, self.reduction = a - b.astype(a.dtype, copy=False), reduction  # an integer target counts as a's dtype
        squares = self.diff * self.diff
        return squares if reduction == "none" else np.asarray(getattr(squares, reduction)(), dtype=a.dtype)

    def backward(self, g):
        da = self.diff * (2 * g / (self.diff.size if self.reduction == "mean" else 1))
        return da, -da if self.needs_input_grad[1] else None


class Linear(Function):
    """y = x Wᵀ + b for x (..., in), W (out, in) as in PyTorch, b (out,).

        dL/dx = g W          dL/dW = gᵀ x (summed over all leading axes)          dL/db = Σ g
    """
    torch_name = "AddmmBackward0"

    def forward(self, x, weight, bias=None):
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input has {x.shape[-1]} features but weight {weight.shape} expects {weight.shape[1]}")
        self.x, self.weight = x, weight
        self.torch_name = "ViewBackward0" if x.ndim != 2 else "AddmmBackward0" if bias is not None else "MmBackward0"
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    def backward(self, g):
        dx = g @ self.weight if self.needs_input_grad[0] else None
        g2 = g.reshape(-1, g.shape[-1])
        dw = g2.T @ self.x.reshape(-1, self.x.shape[-1]) if self.needs_input_grad[1] else None
        db = g2.sum(axis=0) if self.needs_input_grad[2] else None
        return dx, dw, db


class Dropout(Function):
    """Inverted dropout: y = x ⊙ m / (1 - p), m_i ~ Bernoulli(1 - p).   dL/dx = g ⊙ m / (1 - p).

    Scaling at training time keeps E[y] = x, so evaluation needs no rescaling.
    """
    torch_name = "MulBackward0"

    def forward(self, x, p):
        self.scaled_mask = (random.generator().random(x.shape) >= p).astype(x.dtype) / (1 - p)
        return x * self.scaled_mask

    def backward(self, g):
        return (g * self.scaled_mask,)


class AdaptiveAvgPool2d(Function):
    """y = the mean of x over H_out × W_out windows that tile each (H, W) image as evenly as possible.

    As in PyTorch, output row i averages input rows ⌊i·H/H_out⌋ up to ⌈(i+1)·H/H_out⌉ (exclusive), and
    likewise for the columns: when H_out does not divide H (10 → 7) neighbouring windows share a row, and
    when H_out > H (1 → 7) rows repeat. A mean over a rectangle is the mean over its rows of the means over
    its columns, so with A (H_out, H) holding 1/(window size) at [i, rows of window i] and B (W_out, W)
    the same for the columns, the pooling is two matrix products per image and channel:

        y = A x Bᵀ          dL/dx = Aᵀ g B
    """
    torch_name = "AdaptiveAvgPool2DBackward0"

    def forward(self, x, output_size):
        (H, W), (Ho, Wo) = x.shape[-2:], output_size
        self.A, self.B = window_means(H, Ho, x.dtype), window_means(W, Wo, x.dtype)
        if (Ho, Wo) == (1, 1):
            self.torch_name = "MeanBackward1"  # PyTorch takes a mean over (H, W) for a 1 × 1 output
        return self.A @ x @ self.B.T

    def backward(self, g):
        return (self.A.T @ g @ self.B,)


def window_means(size, out, dtype):
    """The (out, size) matrix whose row i averages adaptive pooling's window i of ``size`` inputs:
    1/(end - start) at columns start = ⌊i·size/out⌋ to end = ⌈(i+1)·size/out⌉, 0 elsewhere."""
    m = np.zeros((out, size), dtype=dtype)
    for i in range(out):
        start, end = i * size // out, -(-(i + 1) * size // out)
        m[i, start:end] = 1 / (end - start)
    return m


def relu(x):
    """max(x, 0): ``ReLU`` above, or the fast kernel set's twin (the same numbers; ``minidl.kernels``)."""
    return kernels.op("relu", ReLU.apply)(x)


def sigmoid(x):
    return Sigmoid.apply(x)


def tanh(x):
    return Tanh.apply(x)


def softmax(x, dim=None, _stacklevel=3):
    """Probabilities along ``dim``. Without ``dim``, PyTorch's old implicit choice (``implicit_dim``)."""
    return Softmax.apply(x, axis=implicit_dim("softmax", x.ndim, _stacklevel) if dim is None else dim)


def log_softmax(x, dim=None, _stacklevel=3):
    """log softmax along ``dim``. Without ``dim``, PyTorch's old implicit choice (``implicit_dim``)."""
    return LogSoftmax.apply(x, axis=implicit_dim("log_softmax", x.ndim, _stacklevel) if dim is None else dim)


def implicit_dim(name, ndim, stacklevel):
    """The dimension PyTorch normalises when ``dim`` is left out: 0 for 0-, 1- and 3-dimensional inputs
    (a vector; one (C, H, W) image), 1 otherwise (a batch's classes, (N, C) or (N, C, H, W)), with
    PyTorch's warning, since the guess is wrong for e.g. (N, T, C) sequences. ``stacklevel`` points the
    warning at the caller's line."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. Change the call to include dim=X "
                  "as an argument.", UserWarning, stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


def _check_reduction(reduction):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def cross_entropy(logits, labels, reduction="mean"):
    """Cross-entropy between logits (N, C) and integer labels (N,), averaged over the N samples (``reduction``:
    "mean", "sum" or "none"); labels never need grad."""
    if not isinstance(labels, Tensor):
        labels = Tensor(np.asarray(labels))  # an int array stays int (only Python lists become float32)
    return CrossEntropy.apply(logits, labels, reduction=_check_reduction(reduction))


def mse_loss(input, target, reduction="mean"):
    """Mean squared error between two tensors of one shape (``reduction``: "mean", "sum" or "none")."""
    return MSELoss.apply(input, target, reduction=_check_reduction(reduction))


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy between probabilities ``input`` in [0, 1] and ``target`` (same shape), each
    element weighted by ``weight`` (broadcast); logs clamped at -100 as in PyTorch."""
    return BinaryCrossEntropy.apply(input, target, weight, reduction=_check_reduction(reduction))


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Binary cross-entropy of sigmoid(``input``) and ``target``, computed stably from the logits;
    ``pos_weight`` weighs positive targets (one value per class, the last dimension)."""
    return BinaryCrossEntropyWithLogits.apply(input, target, weight, pos_weight, reduction=_check_reduction(reduction))


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error |input - target| (``reduction``: "mean", "sum" or "none"). Built from ``Sub``,
    ``Abs`` and ``Mean``/``Sum``, as PyTorch builds it: the backward is theirs, dL/dinput = g sign(d) / n."""
    losses = (input - target).abs()
    reduction = _check_reduction(reduction)
    return losses if reduction == "none" else getattr(losses, reduction)()


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Quadratic (0.5 d² / beta) for |d| < beta, linear (|d| - 0.5 beta) beyond, d = input - target."""
    return SmoothL1Loss.apply(input, target, beta=beta, reduction=_check_reduction(reduction))


def linear(x, weight, bias=None):
    """x Wᵀ + b: ``Linear`` above, or the fast kernel set's twin (the same numbers; ``minidl.kernels``)."""
    return kernels.op("linear", Linear.apply)(x, weight, bias)


def dropout(x, p=0.5, training=True):
    """Zero each element with probability ``p`` during training (identity when not training or p == 0)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0:
        return x if isinstance(x, Tensor) else Tensor(x)
    return Dropout.apply(x, p=p)


def conv2d(x, weight, bias=None, stride=1, padding=0, activation=None):
    """2-D convolution (cross-correlation, as in every DL framework) of x (N, C, H, W) with weight (O, C, kh, kw).

    ``stride`` and ``padding`` are an int or a (height, width) pair; padding adds zeros on both sides.
    Returns (N, O, H_out, W_out) with H_out = (H + 2·pad - kh) // stride + 1. ``activation="relu"`` returns
    relu(conv2d(...)) computed in one op, as Keras's ``Conv2D(activation="relu")``. The math, forward and
    backward: ``minidl/textbook/convolution.py``.
    """
    return kernels.active().conv2d(x, weight, bias, stride=stride, padding=padding, activation=activation)


def max_pool2d(x, kernel_size, stride=None):
    """Max over kh×kw windows of x (N, C, H, W), ``stride`` apart (default: kernel_size, no overlap)."""
    return kernels.active().max_pool2d(x, kernel_size, stride)


def avg_pool2d(x, kernel_size, stride=None):
    """Mean over kh×kw windows of x (N, C, H, W), ``stride`` apart (default: kernel_size, no overlap)."""
    return kernels.active().avg_pool2d(x, kernel_size, stride)


def adaptive_avg_pool2d(x, output_size):
    """Mean over the windows that tile x (N, C, H, W) or (C, H, W) into ``output_size`` (an int, or an
    (H_out, W_out) pair; None keeps that dimension's size), as PyTorch places them (``AdaptiveAvgPool2d``)."""
    x = x if isinstance(x, Tensor) else Tensor(x)
    sizes = (output_size, output_size) if output_size is None or np.isscalar(output_size) else tuple(output_size)
    if len(sizes) != 2 or not all(s is None or (isinstance(s, (int, np.integer)) and s >= 1) for s in sizes):
        raise ValueError(f"adaptive_avg_pool2d: output_size must be a positive int or a pair of them (or None), "
                         f"got {output_size!r}")
    if x.ndim not in (3, 4):
        raise ValueError(f"adaptive_avg_pool2d expects x of shape (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    sizes = tuple(int(n if s is None else s) for s, n in zip(sizes, x.shape[-2:]))
    return AdaptiveAvgPool2d.apply(x, output_size=sizes)
