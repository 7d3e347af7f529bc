"""Adam's step in place: the numbers of ``optim.Adam.update`` without a parameter-sized temporary.

For a small model the optimizer is a large share of the training time, and the plain step of
``optim.Adam.update`` makes several parameter-sized temporaries per parameter and step (new memory and
its page faults each time). This one updates the moments in place through one reused scratch array, in
the plain step's order of operations (so the moments come out the same bits), and folds the two bias
corrections into scalars:

    m ← β₁ m + (1 - β₁) g,   then, every ``FLUSH_EVERY`` steps, each |m| below the smallest normal float set to 0
    v ← β₂ v + (1 - β₂) g²
    θ -= (lr · c / (1 - β₁ᵗ)) · m / (√v + ε'),   c = √(1 - β₂ᵗ)

with ε' = ε for eps_placement="keras" (Keras's formula exactly) and ε' = ε c for "torch", where it equals
lr · m̂ / (√v̂ + ε) with m̂ = m / (1 - β₁ᵗ), v̂ = v / (1 - β₂ᵗ). ``tests/test_optim.py`` checks it
against the plain step.

Why m is flushed. Wherever g is exactly 0 step after step (the weights of a pixel that is 0 in every image
of the batch, such as Fashion-MNIST's borders; a dead ReLU's), m shrinks by β₁ each step, and after
several hundred steps it falls below 1.2e-38, float32's smallest normal number. Below that lie the *subnormal*
numbers, which the CPU handles in microcode, 10-100 times slower than normal ones: after one epoch of
the MLP 7% of its first layer's m was subnormal, and each pass over m touching them took about 4 times as
long (measured: Adam's step 0.25 ms with no subnormal m, 1.0 ms with 7%). TensorFlow runs its CPU threads
with subnormals flushed to zero (its thread pool sets the processor's flush-to-zero flags), so Keras's Adam
never sees them; NumPy offers no such flag, so this step sets m's subnormals to 0 itself. An m that small
moves θ by less than lr · 1.2e-38 / ε, nothing a float32 weight can show. It does so every ``FLUSH_EVERY``
steps rather than every step: the test costs three of the step's fourteen passes, and an m that has just
become subnormal is still far above 0 (β₁ = 0.9 takes about 150 steps from 1.2e-38 down to 0 in float32),
so it lives as a subnormal for at most ``FLUSH_EVERY - 1`` steps, a few elements at a time.

Every element's update reads only that element, so a large parameter (the CNN's 3136 × 128 dense layer) is
cut into one contiguous range per worker (``parallel.each_range``), and each range into pieces that fit the
core's cache (``PIECE_ELEMENTS``), each updated by the same passes: the same bits as in one piece.
"""
import math

import numpy as np

from . import parallel

#: Parameters of at least this many elements are split over the workers. Measured alone, Adam's step on
#: 400,000 float32 elements took 0.64 ms split over two workers against 1.17 ms in one piece, and on 100,000
#: 0.36 ms against 0.20 ms: below a few hundred thousand, handing work to a worker costs more than it saves.
SPLIT_ELEMENTS = 2**18

#: Each worker's range is updated in pieces of at most this many elements, so that the piece's five float
#: arrays (θ, g, m, v, scratch) stay in the core's 2 MB L2 cache through all the passes instead of each pass
#: streaming them from memory. Measured on one core, caches cold as after a backward pass: half the CNN's
#: 3136 × 128 weights (200,704 elements) in one piece 0.86 ms, in two 0.71 ms, in four 0.71, in eight 0.78.
PIECE_ELEMENTS = 2**17

#: m's subnormals are set to 0 on every step whose count t is a multiple of this (module docstring). On the
#: Fashion-MNIST MLP, in one script, alternating: a training step 0.557 ms (median; Adam's share 0.204) with
#: 16, against 0.608 (0.251) flushing on every step; under 0.05% of its first layer's m subnormal in between.
FLUSH_EVERY = 16


def adam_update(adam, param, grad, state):
    """One Adam step of ``adam`` (an ``optim.Adam``) on ``param`` in place; ``grad`` already decayed."""
    if "scratch" not in state:  # allocated once, on the first step: a float and a flag per element
        state["scratch"] = np.empty_like(param), np.empty(param.shape, bool)
    s, flags = state["scratch"]
    c = math.sqrt(1 - adam.beta2**adam.t)
    eps = adam.eps if adam.eps_placement == "keras" else adam.eps * c
    rate = adam.lr * c / (1 - adam.beta1**adam.t)
    flush = adam.t % FLUSH_EVERY == 0

    arrays = (param, grad, state["m"], state["v"], s, flags)
    if param.size <= PIECE_ELEMENTS:  # one piece on this thread (the MLP's layers): no splitting to set up
        _passes(*arrays, adam.beta1, adam.beta2, eps, rate, flush)
        return

    def update(*arrays):  # one worker's range of the elements (or all of them), piece by piece
        n = arrays[0].size
        if arrays[0].ndim != 1:  # not flattened by each_range (another layout): taken whole
            _passes(*arrays, adam.beta1, adam.beta2, eps, rate, flush)
            return
        for a, b in parallel.even_ranges(n, -(-n // PIECE_ELEMENTS)):
            _passes(*(x[a:b] for x in arrays), adam.beta1, adam.beta2, eps, rate, flush)

    parallel.each_range(update, arrays, SPLIT_ELEMENTS)


def _passes(theta, g, m, v, s, flags, b1, b2, eps, rate, flush):
    """The module docstring's three lines on arrays of one shape, through the scratch arrays s and flags
    (m's subnormals set to 0 if ``flush``)."""
    m *= b1
    np.multiply(g, 1 - b1, out=s)
    m += s
    if flush:
        np.less(np.abs(m, out=s), np.finfo(m.dtype).tiny, out=flags)  # the subnormals (module docstring)
        np.copyto(m, 0, where=flags)
    v *= b2
    np.multiply(g, 1 - b2, out=s)
    s *= g
    v += s
    np.sqrt(v, out=s)
    s += eps
    np.divide(m, s, out=s)
    s *= rate
    theta -= s
