"""Weight initialisation schemes, drawing from ``minidl.random`` (seed it with ``minidl.manual_seed``).

Both keep the variance of activations roughly constant from layer to layer, so deep stacks neither blow up
nor fade out at the start of training:
- Glorot/Xavier uniform: U(-a, a), a = √(6 / (fan_in + fan_out)), for tanh/sigmoid-like or linear layers
  (Keras's default for Dense and Conv2D);
- He/Kaiming normal: N(0, 2 / fan_in), which compensates for ReLU zeroing half of its inputs.
fan_in / fan_out are the number of inputs / outputs each unit connects to (× kernel area for convolutions).
"""
import numpy as np

from .. import random


def fans(shape):
    """(fan_in, fan_out) of a weight of shape (out, in) or (out, in, kh, kw)."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def glorot_uniform(shape, dtype=np.float32, rng=None):
    """U(-a, a), a = √(6 / (fan_in + fan_out)), drawn from ``rng`` (default: minidl's seedable generator)."""
    fan_in, fan_out = fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    # drawn directly in the target dtype: a float64 draw would double the memory of a 100M-weight layer
    w = (rng if rng is not None else random.generator()).random(shape, dtype=dtype)
    w *= 2 * limit
    w -= limit
    return w


def he_normal(shape, dtype=np.float32):
    fan_in, _ = fans(shape)
    w = random.generator().standard_normal(shape, dtype=dtype)
    w *= np.sqrt(2.0 / fan_in)
    return w
