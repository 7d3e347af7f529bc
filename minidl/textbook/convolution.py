"""2-D convolution, the textbook way: im2col, one matrix product, col2im.

Shapes follow PyTorch: images are NCHW (batch, channels, height, width), weights are OIHW (out channels,
in channels, kernel height, kernel width). Output sizes use floor, as in PyTorch:

    H_out = (H + 2·pad_h - kh) // stride_h + 1        (and likewise for the width)
"""
import numpy as np

from ..autograd import Function
from ..conv_geometry import check_conv2d, output_size, pair


# --- im2col and its transpose, col2im ---------------------------------------------------------------------
def im2col(x, kernel, stride, padding):
    """Every kh×kw patch of the padded batch x (N, C, H, W) as a column: (C·kh·kw, N·H_out·W_out).

        cols[(c, i, j), (n, h, w)] = x_padded[n, c, h·sh + i, w·sw + j]

    No loop over pixels: for a fixed kernel offset (i, j), the values all windows read there form the
    strided view x_padded[:, :, i::sh, j::sw] (cut to H_out × W_out), so there is one copy per offset,
    kh·kw copies in all. The channels come first and the images second, so that one matrix product
    ``W (O, C·kh·kw) @ cols`` convolves the whole batch.
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    cols = np.empty((C, kh, kw, N, Ho, Wo), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            window_ij = xp[:, :, i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw]  # (N, C, Ho, Wo)
            cols[:, i, j] = window_ij.transpose(1, 0, 2, 3)
    return cols.reshape(C * kh * kw, N * Ho * Wo)


def col2im(dcols, x_shape, kernel, stride, padding):
    """The transpose of ``im2col``: add every column (a patch) back where it was read from -> (N, C, H, W).

    Same index arithmetic with ``+=`` instead of ``=``: a pixel that several windows read gets the sum of
    their gradients, as the chain rule wants. What was read from the padding is cut off at the end.
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    N, C, H, W = x_shape
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    dcols = dcols.reshape(C, kh, kw, N, Ho, Wo)
    dxp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, :, i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw] += dcols[:, i, j].transpose(1, 0, 2, 3)
    return dxp[:, :, ph : ph + H, pw : pw + W]


class Im2col(Function):
    """cols = im2col(x) as an op of its own: (N, C, H, W) -> (C·kh·kw, N·H_out·W_out).

    Each output element is a copy of one input element, so the backward sends each column's gradient back
    to the pixel it was copied from:   dL/dx = col2im(dL/dcols).
    With it, a convolution is ``W.reshape(O, -1) @ Im2col.apply(x, ...)`` and autograd does the rest
    (``examples/conv_walkthrough.py`` builds one this way and checks it against ``Conv2dFunction``).
    """

    def forward(self, x, kernel_size, stride=1, padding=0):
        geometry = pair(kernel_size, "kernel_size"), pair(stride, "stride"), pair(padding, "padding")
        self.x_shape, self.geometry = x.shape, geometry
        return im2col(x, *geometry)

    def backward(self, g):
        return (col2im(g, self.x_shape, *self.geometry),)


# --- the convolution --------------------------------------------------------------------------------------
class Conv2dFunction(Function):
    """y = conv2d(x, W) + b: im2col, then one matrix product for the whole batch.

    With cols = im2col(x) (C·kh·kw, N·H_out·W_out) and W seen as a matrix (O, C·kh·kw):

        forward     y = W @ cols + b           (O, N·H_out·W_out), reshaped to (N, O, H_out, W_out)

    and with g = dL/dy arranged the same way, (O, N·H_out·W_out), the backward of a matrix product:

        dL/dW    = g @ colsᵀ                   (O, C·kh·kw), reshaped to (O, C, kh, kw)
        dL/dcols = Wᵀ @ g                      (C·kh·kw, N·H_out·W_out)
        dL/dx    = col2im(dL/dcols)            each patch's gradient added back where the patch came from
        dL/db    = Σ g over images and pixels

    ``activation="relu"`` fuses a ReLU into the op, as Keras's ``Conv2D(activation="relu")`` (VGG19's
    layers use it): y = max(W @ cols + b, 0), and the backward first multiplies g by [y > 0], ReLU's
    backward (a pre-activation of exactly 0 gets gradient 0, as in ``F.relu``).
    """
    torch_name = "ConvolutionBackward0"

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), activation=None):
        Ho, Wo = check_conv2d(x, weight, bias, stride, padding, activation)
        N, O = x.shape[0], weight.shape[0]
        kernel = weight.shape[2:]
        cols = im2col(x, kernel, stride, padding)
        y = weight.reshape(O, -1) @ cols
        if bias is not None:
            y += bias.reshape(O, 1)
        if activation == "relu":
            y = np.maximum(y, 0)
        # keep for the backward only what it will read: cols for dL/dW, W for dL/dx
        need_x, need_w = self.needs_input_grad[:2]
        self.cols = cols if need_w else None
        self.weight = weight if need_x else None
        self.x_shape, self.geometry = x.shape, (kernel, stride, padding)
        self.y = y if activation == "relu" and any(self.needs_input_grad) else None
        return y.reshape(O, N, Ho, Wo).transpose(1, 0, 2, 3)  # images first again: NCHW

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        O = g.shape[1]
        g = g.transpose(1, 0, 2, 3).reshape(O, -1)  # (O, N·H_out·W_out), the layout of y in forward
        if self.y is not None:
            g = g * (self.y > 0)  # the fused ReLU's backward
        dx = dw = db = None
        if need_w:
            dw = (g @ self.cols.T).reshape(O, -1, *self.geometry[0])
        if need_x:
            dcols = self.weight.reshape(O, -1).T @ g
            dx = col2im(dcols, self.x_shape, *self.geometry)
        if need_b:
            db = g.sum(axis=1)
        return dx, dw, db


def conv2d(x, weight, bias=None, stride=1, padding=0, activation=None):
    """2-D convolution (cross-correlation, as in every DL framework) of x (N, C, H, W) with weight (O, C, kh, kw).

    ``stride`` and ``padding`` are an int or a (height, width) pair; padding adds zeros on both sides.
    Returns (N, O, H_out, W_out). ``activation="relu"`` returns relu(conv2d(...)) in one op. See ``Conv2dFunction``.
    """
    return Conv2dFunction.apply(x, weight, bias, stride=pair(stride, "stride"), padding=pair(padding, "padding"),
                        activation=activation)
