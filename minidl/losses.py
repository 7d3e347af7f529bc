"""The losses of PyTorch's beginner course beyond cross-entropy and MSE (those are in ``functional.py``):
binary cross-entropy, from probabilities and from logits, and the smooth L1 loss. Each is a ``Function``,
forward beside backward; ``functional.py`` has the lowercase functions that apply them. Notation: g = dL/dy
for the reduced loss y; "mean" divides by the number of elements n.
"""
import numpy as np

from .autograd import Function


def _reduce(losses, reduction, dtype):
    """The per-element losses, or their mean or sum (as a 0-d array of ``dtype``)."""
    return losses if reduction == "none" else np.asarray(getattr(losses, reduction)(), dtype=dtype)


def _per_element(g, reduction, n):
    """dL/d(each element's loss) from the g of the reduced loss: g itself for "none" and "sum" (each
    element's loss enters the sum once), g / n for "mean"."""
    return g / n if reduction == "mean" else g


class BinaryCrossEntropy(Function):
    """L = -w [t log p + (1 - t) log(1 - p)] for probabilities p in [0, 1] and targets t (same shape),
    then the mean over the elements ("mean"), their sum ("sum") or each one ("none"); w = ``weight``
    (broadcast against p; 1 when None). Each log is clamped at -100, as in PyTorch, so p = 0 or 1 gives
    a finite loss (100 per element when the target is the other end).

        dL/dp = g w (p - t) / max(p (1 - p), 1e-12)        dL/dt = g w (log(1 - p) - log p)   (clamped logs)

    (1e-12 is PyTorch's guard for p = 0 or 1, where p(1 - p) = 0.)
    """
    torch_name = "BinaryCrossEntropyBackward0"

    def forward(self, p, t, weight=None, reduction="mean"):
        if p.shape != t.shape:
            raise ValueError(f"binary_cross_entropy: input {p.shape} and target {t.shape} must have the same shape")
        if p.size and (p.min() < 0 or p.max() > 1):  # also catches NaN-free logits passed by mistake
            raise ValueError(f"binary_cross_entropy: input must be probabilities in [0, 1], got values from "
                             f"{p.min():.4g} to {p.max():.4g} (for logits use binary_cross_entropy_with_logits)")
        t = t.astype(p.dtype, copy=False)
        w = np.ones((), p.dtype) if weight is None else weight.astype(p.dtype, copy=False)
        with np.errstate(divide="ignore"):  # log 0 = -inf, clamped next
            log_p, log_q = np.maximum(np.log(p), -100), np.maximum(np.log1p(-p), -100)
        self.p, self.t, self.w, self.log_p, self.log_q, self.reduction = p, t, w, log_p, log_q, reduction
        return _reduce(-w * (t * log_p + (1 - t) * log_q), reduction, p.dtype)

    def backward(self, g):
        g = _per_element(g, self.reduction, self.p.size) * self.w
        dp = g * (self.p - self.t) / np.maximum(self.p * (1 - self.p), 1e-12)
        dt = g * (self.log_q - self.log_p) if self.needs_input_grad[1] else None
        return np.broadcast_to(dp, self.p.shape), dt, None


class BinaryCrossEntropyWithLogits(Function):
    """The binary cross-entropy of p = σ(x) with targets t, computed from the logits x without forming p:

        L = w [(1 - t) x + l · softplus(-x)],   l = 1 + (pos_weight - 1) t,   softplus(z) = log(1 + eᶻ)

    which is -w [pos_weight · t log σ(x) + (1 - t) log(1 - σ(x))], since log σ(x) = -softplus(-x) and
    log(1 - σ(x)) = -x - softplus(-x). softplus(-x) = max(-x, 0) + log(1 + e^-|x|) never overflows, so
    logits of ±1000 give exact losses (0 or 1000), where log σ(x) would give log 0. ``pos_weight`` (one per
    class, broadcast along the last dimension) weighs the positive targets; ``weight`` w every element.
    Then the mean ("mean"), sum ("sum") or each element ("none").

        dL/dx = g w [(1 - t) - l σ(-x)]     (= g w (σ(x) - t) without pos_weight)
        dL/dt = g w [(pos_weight - 1) softplus(-x) - x]
    """
    torch_name = "BinaryCrossEntropyWithLogitsBackward0"

    def forward(self, x, t, weight=None, pos_weight=None, reduction="mean"):
        if x.shape != t.shape:
            raise ValueError(f"binary_cross_entropy_with_logits: input {x.shape} and target {t.shape} must have "
                             "the same shape")
        t = t.astype(x.dtype, copy=False)
        self.w = np.ones((), x.dtype) if weight is None else weight.astype(x.dtype, copy=False)
        self.pw = np.ones((), x.dtype) if pos_weight is None else pos_weight.astype(x.dtype, copy=False)
        self.l = 1 + (self.pw - 1) * t
        self.softplus_neg = np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))
        self.x, self.t, self.reduction = x, t, reduction
        return _reduce(self.w * ((1 - t) * x + self.l * self.softplus_neg), reduction, x.dtype)

    def backward(self, g):
        g = _per_element(g, self.reduction, self.x.size) * self.w
        sigmoid_neg = 0.5 * (1 - np.tanh(0.5 * self.x))  # σ(-x), without overflow (as Sigmoid)
        dx = g * ((1 - self.t) - self.l * sigmoid_neg)
        dt = g * ((self.pw - 1) * self.softplus_neg - self.x) if self.needs_input_grad[1] else None
        return np.broadcast_to(dx, self.x.shape), dt, None, None


class SmoothL1Loss(Function):
    """Huber-like loss of d = a - b: 0.5 d² / β where |d| < β, |d| - 0.5 β elsewhere (β = ``beta``; β = 0
    is the L1 loss |d|); then the mean, sum or each element. Quadratic near 0 (small steps for small
    errors), linear far away (outliers do not dominate).

        dL/da = g · (d / β where |d| < β, sign(d) elsewhere)        dL/db = -dL/da
    """
    torch_name = "SmoothL1LossBackward0"

    def forward(self, a, b, beta=1.0, reduction="mean"):
        if a.shape != b.shape:
            raise ValueError(f"smooth_l1_loss: shapes {a.shape} and {b.shape} differ")
        if beta < 0:
            raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
        d = a - b.astype(a.dtype, copy=False)
        self.inside = np.abs(d) < beta
        self.slope = np.where(self.inside, d / (beta if beta else 1), np.sign(d))
        self.reduction = reduction
        losses = np.where(self.inside, 0.5 * d * d / (beta if beta else 1), np.abs(d) - 0.5 * beta)
        return _reduce(losses.astype(a.dtype, copy=False), reduction, a.dtype)

    def backward(self, g):
        da = _per_element(g, self.reduction, self.slope.size) * self.slope
        return da, -da if self.needs_input_grad[1] else None
