"""Convolution as its definition: plain loops over output pixels. The oracle both kernel sets are tested against."""
import numpy as np

from ..conv_geometry import output_size, pair


def conv2d_loops(x, weight, bias=None, stride=1, padding=0):
    """The definition of conv2d as plain loops over output pixels: slow, obviously correct; the tests' oracle.

    y[n, o, h, w] = b[o] + Σ_{c, i, j} x_padded[n, c, h·sh + i, w·sw + j] · W[o, c, i, j]
    Takes and returns NumPy arrays.
    """
    x, weight = np.asarray(x), np.asarray(weight)
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xp[:, :, ph : ph + H, pw : pw + W] = x
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    y = np.zeros((N, O, Ho, Wo), dtype=np.result_type(x, weight))
    for n in range(N):
        for o in range(O):
            for h in range(Ho):
                for w in range(Wo):
                    patch = xp[n, :, h * sh : h * sh + kh, w * sw : w * sw + kw]
                    y[n, o, h, w] = np.sum(patch * weight[o]) + (0 if bias is None else bias[o])
    return y
