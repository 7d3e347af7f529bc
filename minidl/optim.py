"""Optimizers: ``SGD`` (with momentum), ``Adam``, ``RMSprop`` and ``Adagrad``, with PyTorch's names and rules;
and one learning-rate schedule, ``ExponentialLR``.

Each ``step()`` updates the parameters' arrays in place. For SGD and Adam, the ones minidl's examples
train with, the state (momentum buffers, Adam's moments) and one scratch array per parameter are allocated
once, on the first step; after that a step allocates nothing parameter-sized, because for a small model
the optimizer is a large share of the training time. RMSprop and Adagrad are written plainly.
"""
import inspect
import math

import numpy as np

from .autograd import Tensor


class Optimizer:
    def __init__(self, params, lr):
        self.params = _trainable(params, type(self).__name__)
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        self.lr = lr
        self.state = [None] * len(self.params)  # per-parameter buffers, created lazily by step()

    def zero_grad(self):
        """Forget the gradients (set to None, as PyTorch does by default: cheaper than filling zeros)."""
        for p in self.params:
            p.grad = None

    def step(self):
        for i, p in enumerate(self.params):
            if p.grad is not None:
                if self.state[i] is None:
                    self.state[i] = self.init_state(p)
                self.update(p.data, p.grad, self.state[i])
                p._version += 1  # an in-place change: a graph recorded before the step may not backward

    def init_state(self, p):
        raise NotImplementedError

    def decayed(self, grad, param):
        """g + λθ, PyTorch's L2 weight decay (λ = ``self.weight_decay``); g itself when λ = 0. A new array:
        the rare path, so the common one stays free of allocations."""
        return grad + self.weight_decay * param if self.weight_decay else grad

    def update(self, param, grad, state):
        raise NotImplementedError


def _trainable(params, who):
    """The list of tensors to train, or a one-line error for each way of handing an optimizer nothing to train."""
    hint = "pass model.parameters()"
    if hasattr(params, "parameters") or isinstance(params, Tensor) or inspect.ismethod(params):
        if isinstance(params, Tensor):
            what = "a single tensor"
        elif inspect.ismethod(params):  # model.parameters without the call
            what = f"the method {type(params.__self__).__name__}.{params.__name__} itself, not called"
        else:
            what = f"the model ({type(params).__name__}) itself"
        raise TypeError(f"{who} needs an iterable of parameter tensors, got {what}: {hint}")
    params = list(params)
    if not params:
        raise ValueError(f"{who} got an empty parameter list (a generator such as model.named_parameters() "
                         f"is empty once read: call it again); {hint}")
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{who} can only train tensors, but parameter {i} is a {type(p).__name__}: {hint}")
        if not p.is_leaf:
            raise ValueError(f"{who} can't train a non-leaf tensor (parameter {i}, computed by {p.grad_fn}): "
                             "train the leaf tensors it was computed from")
    first = {}
    for i, p in enumerate(params):
        if first.setdefault(id(p), i) != i:  # one step would move it twice, with two states
            raise ValueError(f"{who} got parameter {i} twice (first as parameter {first[id(p)]}): list each tensor "
                             "once (model.parameters() lists a shared layer's tensors once)")
    if not any(p.requires_grad for p in params):
        raise ValueError(f"{who}: none of the {len(params)} tensors requires grad, so nothing would be trained; "
                         f"{hint} (or unfreeze with requires_grad_())")
    return params


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and L2 weight decay (PyTorch's formulation):

        g ← g + λ θ              (weight_decay λ)
        v ← μ v + g               (momentum μ; v starts at the first g)
        θ ← θ - lr · v            (θ ← θ - lr · g when μ = 0)

    ``nesterov=True`` steps by where the momentum is about to carry the weights: θ ← θ - lr · (g + μ v).
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr)
        if nesterov and momentum <= 0:
            raise ValueError(f"SGD: nesterov=True needs a momentum above 0, got momentum={momentum}")
        self.momentum, self.weight_decay, self.nesterov = momentum, weight_decay, nesterov

    def init_state(self, p):
        # v starting at zero makes the first step v = g, PyTorch's initialisation of the buffer
        return {"scratch": np.empty_like(p.data), "velocity": np.zeros_like(p.data) if self.momentum else None}

    def update(self, param, grad, state):
        s = state["scratch"]
        np.multiply(param, self.weight_decay, out=s)  # λθ
        s += grad
        if self.momentum:
            v = state["velocity"]
            v *= self.momentum
            v += s
            if self.nesterov:
                s += self.momentum * v  # g + μ v (a temporary: the rare path)
                s *= self.lr
            else:
                np.multiply(v, self.lr, out=s)
        else:
            s *= self.lr
        param -= s


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): per-parameter step sizes from running moments of the gradient.

        m ← β₁ m + (1 - β₁) g            (first moment: a momentum)
        v ← β₂ v + (1 - β₂) g²           (second moment: the gradient's scale)

    and then, with t the step count, one of two updates that differ only in where ε is added:

        eps_placement="keras" (default):  θ ← θ - lr · √(1 - β₂ᵗ) / (1 - β₁ᵗ) · m / (√v + ε)
        eps_placement="torch":            θ ← θ - lr · m̂ / (√v̂ + ε),   m̂ = m / (1 - β₁ᵗ),  v̂ = v / (1 - β₂ᵗ)

    Both are lr · m̂ / (√v̂ + ε'), with ε' = ε for PyTorch but ε' = ε / √(1 - β₂ᵗ) for Keras: Keras adds ε
    before the bias correction, so in the first steps (when √(1 - β₂ᵗ) is small) its ε acts larger, e.g.
    ε / √(1 - 0.999) ≈ 32 ε at t = 1, shrinking to ε as t grows. With a tiny ε (1e-7, the MLP) the two agree;
    with style transfer's ε = 0.1 they give different early steps. Keras is the default because the project's
    reference programs (TensorFlow's "Basic classification" and "Neural style transfer") run on Keras.

    ε defaults to 1e-7 (Keras's value; PyTorch uses 1e-8). No m̂ or v̂ array is made: the bias corrections
    are folded into two scalars (for "torch", lr · m̂ / (√v̂ + ε) = (lr · c / (1 - β₁ᵗ)) · m / (√v + ε c),
    c = √(1 - β₂ᵗ)).
    """

    EPS_PLACEMENTS = ("keras", "torch")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7, weight_decay=0.0, eps_placement="keras"):
        super().__init__(params, lr)
        if eps_placement not in self.EPS_PLACEMENTS:
            raise ValueError(f"Adam: eps_placement must be one of {self.EPS_PLACEMENTS}, got {eps_placement!r}")
        self.beta1, self.beta2 = betas
        self.eps, self.weight_decay, self.eps_placement = eps, weight_decay, eps_placement
        self.t = 0

    def step(self):
        self.t += 1
        super().step()

    def init_state(self, p):
        return {"m": np.zeros_like(p.data), "v": np.zeros_like(p.data), "scratch": np.empty_like(p.data)}

    def update(self, param, grad, state):
        m, v, s = state["m"], state["v"], state["scratch"]
        grad = self.decayed(grad, param)
        b1, b2 = self.beta1, self.beta2
        # m += (1 - β₁)(g - m)  is  β₁ m + (1 - β₁) g  with one scratch array
        np.subtract(grad, m, out=s)
        s *= 1 - b1
        m += s
        np.multiply(grad, grad, out=s)
        s -= v
        s *= 1 - b2
        v += s
        c = math.sqrt(1 - b2**self.t)
        np.sqrt(v, out=s)
        s += self.eps if self.eps_placement == "keras" else self.eps * c
        np.divide(m, s, out=s)
        s *= self.lr * c / (1 - b1**self.t)
        param -= s


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture notes; PyTorch's formulation): divide each step by a running RMS of g.

        g ← g + λ θ                       (weight_decay λ)
        v ← α v + (1 - α) g²              (running mean of g², alpha α)
        d ← √v + ε                        (centered: √(v - ḡ²) + ε, ḡ ← α ḡ + (1 - α) g the running mean of g)
        θ ← θ - lr · g / d                (momentum μ: b ← μ b + g / d,  θ ← θ - lr · b)
    """

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        super().__init__(params, lr)
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay
        self.momentum, self.centered = momentum, centered

    def init_state(self, p):
        zeros = lambda: np.zeros_like(p.data)  # noqa: E731
        return {"v": zeros(), "mean": zeros() if self.centered else None, "buffer": zeros() if self.momentum else None}

    def update(self, param, grad, state):
        grad = self.decayed(grad, param)
        v, a = state["v"], self.alpha
        v *= a
        v += (1 - a) * grad * grad
        if self.centered:
            state["mean"] *= a
            state["mean"] += (1 - a) * grad
            d = np.sqrt(v - state["mean"] ** 2) + self.eps
        else:
            d = np.sqrt(v) + self.eps
        if self.momentum:
            b = state["buffer"]
            b *= self.momentum
            b += grad / d
            param -= self.lr * b
        else:
            param -= self.lr * grad / d


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): each weight's step shrinks with the sum of its squared gradients.

        g ← g + λ θ                                  (weight_decay λ)
        s ← s + g²                                   (s starts at initial_accumulator_value)
        θ ← θ - lr_t · g / (√s + ε),   lr_t = lr / (1 + (t - 1) · lr_decay),  t this parameter's step count
    """

    def __init__(self, params, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
        super().__init__(params, lr)
        self.lr_decay, self.weight_decay, self.eps = lr_decay, weight_decay, eps
        self.initial_accumulator_value = initial_accumulator_value

    def init_state(self, p):
        return {"sum": np.full_like(p.data, self.initial_accumulator_value), "t": 0}

    def update(self, param, grad, state):
        grad = self.decayed(grad, param)
        state["t"] += 1
        state["sum"] += grad * grad
        param -= self.lr / (1 + (state["t"] - 1) * self.lr_decay) * grad / (np.sqrt(state["sum"]) + self.eps)


class ExponentialLR:
    """Multiplies the optimizer's learning rate by ``gamma`` at each ``step()``, which the training loop calls
    once per epoch: after e epochs, lr = lr₀ · γᵉ (PyTorch's ``optim.lr_scheduler.ExponentialLR``; Keras's
    ``ExponentialDecay`` with ``decay_steps`` one epoch and ``staircase=True``).

    Large steps early cover ground fast; smaller ones late let the weights settle instead of jumping around
    a minimum, so the last epoch's accuracy depends less on which batches came last.
    """

    def __init__(self, optimizer, gamma):
        if not 0 < gamma <= 1:
            raise ValueError(f"ExponentialLR: gamma must be in (0, 1], got {gamma}")
        self.optimizer, self.gamma = optimizer, gamma

    def step(self):
        self.optimizer.lr *= self.gamma
