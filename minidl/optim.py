"""Optimizers: ``SGD`` (with momentum) and ``Adam``, with PyTorch's names and update rules.

Each ``step()`` updates the parameters' arrays in place. The state (momentum buffers, Adam's moments) and
one scratch array per parameter are allocated once, on the first step; after that a step allocates
nothing parameter-sized, because for a small model the optimizer is a large share of the training time.
"""
import math

import numpy as np


class Optimizer:
    def __init__(self, params, lr):
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
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

    def init_state(self, p):
        raise NotImplementedError

    def update(self, param, grad, state):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and L2 weight decay (PyTorch's formulation):

        g ← g + λ θ              (weight_decay λ)
        v ← μ v + g               (momentum μ; v starts at the first g)
        θ ← θ - lr · v            (θ ← θ - lr · g when μ = 0)
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum, self.weight_decay = momentum, weight_decay

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
        if self.weight_decay:
            grad = grad + self.weight_decay * param  # rare path: allocating here keeps the common one lean
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
