"""Argument checks and output sizes shared by both kernel sets (``minidl.textbook``, ``minidl.fast``) and
the layers of ``minidl.nn``: one home, so that a change to a textbook kernel never changes the fast ones.

Shapes follow PyTorch: images NCHW, weights OIHW. Output sizes use floor, as in PyTorch:

    H_out = (H + 2·pad_h - kh) // stride_h + 1        (and likewise for the width)
"""
import numpy as np

#: What ``conv2d(..., activation=...)`` can fuse into the convolution (Keras's ``Conv2D(activation=...)``).
ACTIVATIONS = (None, "relu")


def pair(value, name):
    """An int or a pair of ints -> a tuple (for_height, for_width), validated."""
    both = (value, value) if np.isscalar(value) else tuple(value)
    if len(both) != 2 or not all(isinstance(v, (int, np.integer)) for v in both):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(both[0]), int(both[1])


def output_size(size, kernel, stride, pad):
    return (size + 2 * pad - kernel) // stride + 1


def check_conv2d(x, weight, bias, stride, padding, activation):
    """Validate conv2d's arguments (arrays, and stride/padding already as pairs); return (H_out, W_out).

    Every error names the shapes at fault."""
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"conv2d expects x of shape (N, C, H, W) and weight of shape (O, C, kh, kw), "
                         f"got x {x.shape} and weight {weight.shape}")
    N, C, H, W = x.shape
    O, Cw, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    if C != Cw:
        raise ValueError(f"input x {x.shape} has {C} channels but weight {weight.shape} expects {Cw} (weight.shape[1])")
    if bias is not None and bias.shape != (O,):
        raise ValueError(f"bias {bias.shape} must have shape ({O},), one value per output channel of weight {weight.shape}")
    if min(sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"stride must be >= 1 and padding >= 0, got stride {stride} and padding {padding}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"conv2d: activation must be one of {ACTIVATIONS}, got {activation!r}")
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(f"kernel {kh}×{kw} (weight {weight.shape}) is larger than the padded input "
                         f"{H + 2 * ph}×{W + 2 * pw} (x {x.shape} with padding {padding})")
    return output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)


def pool_geometry(x, kernel_size, stride, name):
    """Validate a pooling call on x; return ((kh, kw), (sh, sw), (H_out, W_out)). No padding."""
    kh, kw = pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else pair(stride, "stride")
    if x.ndim != 4:
        raise ValueError(f"{name} expects x of shape (N, C, H, W), got {x.shape}")
    if min(kh, kw, sh, sw) < 1:
        raise ValueError(f"kernel_size and stride must be >= 1, got kernel {(kh, kw)} and stride {(sh, sw)}")
    H, W = x.shape[2:]
    if kh > H or kw > W:
        raise ValueError(f"pooling kernel {kh}×{kw} is larger than the input {H}×{W} (x {x.shape})")
    return (kh, kw), (sh, sw), (output_size(H, kh, sh, 0), output_size(W, kw, sw, 0))
