"""Adam's step in place: the numbers of ``optim.Adam.update`` without a parameter-sized temporary.

For a small model the optimizer is a large share of the training time, and the plain step of
``optim.Adam.update`` makes several parameter-sized temporaries per parameter and step (new memory and
its page faults each time). This one updates the moments in place through one reused scratch array and
folds the two bias corrections into scalars:

    m += (1 - β₁)(g - m)                     is  m ← β₁ m + (1 - β₁) g
    v += (1 - β₂)(g² - v)                    is  v ← β₂ v + (1 - β₂) g²
    θ -= (lr · c / (1 - β₁ᵗ)) · m / (√v + ε'),   c = √(1 - β₂ᵗ)

with ε' = ε for eps_placement="keras" (Keras's formula exactly) and ε' = ε c for "torch", where it equals
lr · m̂ / (√v̂ + ε) with m̂ = m / (1 - β₁ᵗ), v̂ = v / (1 - β₂ᵗ). ``tests/test_optim.py`` checks it
against the plain step.
"""
import math

import numpy as np


def adam_update(adam, param, grad, state):
    """One Adam step of ``adam`` (an ``optim.Adam``) on ``param`` in place; ``grad`` already decayed."""
    m, v = state["m"], state["v"]
    s = state.get("scratch")
    if s is None:  # allocated once, on the first step
        s = state["scratch"] = np.empty_like(param)
    b1, b2 = adam.beta1, adam.beta2
    np.subtract(grad, m, out=s)
    s *= 1 - b1
    m += s
    np.multiply(grad, grad, out=s)
    s -= v
    s *= 1 - b2
    v += s
    c = math.sqrt(1 - b2**adam.t)
    np.sqrt(v, out=s)
    s += adam.eps if adam.eps_placement == "keras" else adam.eps * c
    np.divide(m, s, out=s)
    s *= adam.lr * c / (1 - b1**adam.t)
    param -= s
