"""Weight initialisation schemes, drawing from ``minidl.random`` (seed it with ``minidl.manual_seed``).

They keep the variance of activations roughly constant from layer to layer, so deep stacks neither blow up
nor fade out at the start of training:
- Glorot/Xavier uniform: U(-a, a), a = √(6 / (fan_in + fan_out)), for tanh/sigmoid-like or linear layers
  (Keras's default for Dense and Conv2D);
- He/Kaiming uniform: U(-a, a), a = gain · √(3 / fan_in), gain = √(2 / (1 + a_neg²)) for a leaky ReLU of
  negative slope a_neg; PyTorch starts Linear and Conv2d with a_neg = √5, which makes a = 1/√fan_in;
- He/Kaiming normal: N(0, 2 / fan_in), which compensates for ReLU zeroing half of its inputs (``fan_out``
  instead of ``fan_in`` keeps the gradients' variance in the backward pass).
fan_in / fan_out are the number of inputs / outputs each unit connects to (× kernel area for convolutions).
``layer_weight`` and ``layer_bias`` pick the scheme of the convention selected by ``minidl.set_defaults``;
``kaiming_normal_``, ``normal_``, ``constant_`` and ``zeros_`` are PyTorch's in-place initialisers.
"""
import math

import numpy as np

from .. import conventions, random


def layer_weight(shape):
    """The starting weight of a Linear or Conv2d layer: Glorot uniform ("keras"), or PyTorch's kaiming
    uniform with a = √5 ("torch")."""
    if conventions.get_defaults() == "torch":
        return kaiming_uniform(shape, a=math.sqrt(5))
    return glorot_uniform(shape)


def layer_bias(n, fan_in):
    """The starting bias of a Linear or Conv2d layer with ``n`` outputs: zeros ("keras"), or
    U(±1/√fan_in) ("torch")."""
    if conventions.get_defaults() == "torch":
        return uniform((n,), 1 / math.sqrt(fan_in) if fan_in else 0.0)
    return np.zeros(n, dtype=np.float32)


def uniform(shape, bound, dtype=np.float32, rng=None):
    """U(-bound, bound), drawn from ``rng`` (default: minidl's seedable generator)."""
    # drawn directly in the target dtype: a float64 draw would double the memory of a 100M-weight layer
    w = (rng if rng is not None else random.generator()).random(shape, dtype=dtype)
    w *= 2 * bound
    w -= bound
    return w


def kaiming_uniform(shape, a=0.0, dtype=np.float32):
    """U(-b, b), b = √(2 / (1 + a²)) · √(3 / fan_in): He's uniform scheme for a leaky ReLU of slope ``a``."""
    fan_in, _ = fans(shape)
    return uniform(shape, calculate_gain("leaky_relu", a) * math.sqrt(3.0 / fan_in), dtype)


def fans(shape):
    """(fan_in, fan_out) of a weight of shape (out, in) or (out, in, kh, kw)."""
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def glorot_uniform(shape, dtype=np.float32, rng=None):
    """U(-a, a), a = √(6 / (fan_in + fan_out)), drawn from ``rng`` (default: minidl's seedable generator)."""
    fan_in, fan_out = fans(shape)
    return uniform(shape, np.sqrt(6.0 / (fan_in + fan_out)), dtype, rng)


def calculate_gain(nonlinearity, param=None):
    """PyTorch's gain of a nonlinearity, the factor its initialisers put on the standard deviation to make
    up for what the nonlinearity takes from the variance: 1 for "linear", "conv2d" and "sigmoid", √2 for
    "relu", √(2 / (1 + a²)) for "leaky_relu" of slope a = ``param`` (default 0.01), 5/3 for "tanh"."""
    if nonlinearity in ("linear", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        a = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity == "tanh":
        return 5.0 / 3
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r} (minidl knows linear, conv2d, "
                     "sigmoid, relu, leaky_relu and tanh)")


def kaiming_normal(shape, a=0.0, mode="fan_in", nonlinearity="leaky_relu", dtype=np.float32):
    """N(0, std²), std = gain / √fan: He's normal scheme (gain √2 for a ReLU: N(0, 2 / fan)).

    ``mode="fan_in"`` keeps the variance of the activations from layer to layer in the forward pass;
    ``"fan_out"`` keeps that of the gradients in the backward pass (torchvision starts VGG's convolutions so).
    """
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"kaiming_normal: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fans(shape)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan_in if mode == "fan_in" else fan_out)
    w = random.generator().standard_normal(shape, dtype=dtype)
    w *= std
    return w


# PyTorch's in-place spellings (``nn.init.kaiming_normal_(layer.weight, ...)``): each replaces the values of
# a tensor (a Parameter), keeping its shape and dtype, and returns it.
def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """``kaiming_normal`` into ``tensor``."""
    tensor.data[...] = kaiming_normal(tensor.shape, a, mode, nonlinearity, tensor.data.dtype)
    return tensor


def normal_(tensor, mean=0.0, std=1.0):
    """N(mean, std²)."""
    values = random.generator().standard_normal(tensor.shape, dtype=tensor.data.dtype)
    values *= std
    values += mean
    tensor.data[...] = values
    return tensor


def constant_(tensor, val):
    """Every value ``val``."""
    tensor.data[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)
