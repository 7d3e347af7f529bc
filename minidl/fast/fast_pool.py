"""Max and average pooling through strided views, separably, the max pool split over the cores.

The textbook twins are in ``minidl/textbook/pooling.py``; these compute the same numbers.

A pooling window is kh × kw; the view ``x[..., i::stride_h, j::stride_w]`` (cut to H_out × W_out) holds
element (i, j) of every window at once. Pools are *separable*: the max (or sum) over a window is the max over
its kh rows of the max over its kw columns: kh + kw - 2 passes instead of kh·kw - 1. The max pool reduces
the rows first, because the row views ``x[..., i::stride_h, :]`` are contiguous rows (the fastest kind of
pass) and the columns' strided views then touch a map kh times smaller (measurements in
``docs/performance.md``).
"""
import numpy as np

from ..autograd import Function
from ..conv_geometry import pool_geometry
from . import memory, parallel


def _rows(a, i, stride, count):
    """Rows i, i + stride, ... (``count`` of them) of a (..., H, W) array, as a view."""
    return a[..., i : i + (count - 1) * stride + 1 : stride, :]


def _columns(a, j, stride, count):
    """Columns j, j + stride, ... (``count`` of them) of a (..., H, W) array, as a view."""
    return a[..., j : j + (count - 1) * stride + 1 : stride]


def _split(part, shape):
    """Call ``part(block)`` on the workers at once, ``block`` indexing a share of an (N, C, H, W) array: a
    range of images, or of channels when there are fewer images than workers (VGG's one image). Images
    first, because a worker's share is then one stretch of memory instead of N pieces of it (the gain is
    measured in docs/performance.md)."""
    if shape[0] >= parallel.WORKERS:
        parallel.each(lambda lo, hi: part(np.s_[lo:hi]), shape[0])
    else:
        parallel.each(lambda lo, hi: part(np.s_[:, lo:hi]), shape[1])


class FastMaxPool2dFunction(Function):
    """y = max of x over each kh×kw window (windows ``stride`` apart, no padding).

    Only the maximum of a window influences y, so dL/dx = g at the argmax of each window and 0 elsewhere
    (summed where overlapping windows share a winner). With ties there is one winner, the first in row-major
    order, like PyTorch.

    Forward, separably (see the module docstring): rm = max over each window's kh rows, for every input
    column, then y = max of rm over the window's kw columns. The backward needs only the winner's position
    o = i·kw + j in each window, one byte per output, and only when a gradient will be needed (none under
    ``no_grad``): it is the first offset o whose element equals y. With n_o = [x_o != y] (1 where offset o
    is not a maximum) and K = kh·kw offsets,

        index = n_0·(1 + n_1·(1 + ... (1 + n_{K-2})))

    (if x_0 is a maximum the product is 0; if not, it is 1 + the same for the offsets after it), computed
    from the inside out: one comparison, one addition and one multiplication per offset, in bytes
    (arithmetic rather than ``np.where``: it measured faster; docs/performance.md).

    Backward: for each offset (i, j), the window elements at that offset are the strided view
    dx[..., i::sh, j::sw]; it receives g where index == i·kw + j.

    Images and channels are independent, so both passes run on blocks of them split over the cores
    (``_split``).
    """
    torch_name = "MaxPool2DWithIndicesBackward0"

    def forward(self, x, kernel_size, stride=None):
        (kh, kw), (sh, sw), (Ho, Wo) = pool_geometry(x, kernel_size, stride, "max_pool2d")
        y = memory.empty((*x.shape[:2], Ho, Wo), x.dtype)
        keep_index = self.needs_input_grad[0]
        index_type = np.min_scalar_type(kh * kw - 1)
        index = memory.empty(y.shape, index_type) if keep_index else None

        def part(block):
            xc, yc = x[block], y[block]
            rm = np.maximum(_rows(xc, 0, sh, Ho), _rows(xc, 1, sh, Ho)) if kh > 1 else _rows(xc, 0, sh, Ho).copy()
            for i in range(2, kh):
                np.maximum(rm, _rows(xc, i, sh, Ho), out=rm)
            yc[...] = _columns(rm, 0, sw, Wo)
            for j in range(1, kw):
                np.maximum(yc, _columns(rm, j, sw, Wo), out=yc)
            if keep_index:  # index = n_0·(1 + n_1·(1 + ... (1 + n_{K-2}))), from the inside out
                ic = index[block]
                x_o = [_columns(_rows(xc, o // kw, sh, Ho), o % kw, sw, Wo) for o in range(kh * kw)]
                if len(x_o) == 1:
                    ic[...] = 0
                    return
                np.not_equal(x_o[-2], yc, out=ic)
                for element in reversed(x_o[:-2]):
                    ic += 1
                    ic *= element != yc

        _split(part, x.shape)
        if keep_index:
            self.index, self.x_shape, self.geometry = index, x.shape, ((kh, kw), (sh, sw), (Ho, Wo))
        return y

    def backward(self, g):
        (kh, kw), (sh, sw), (Ho, Wo) = self.geometry
        overlapping = sh < kh or sw < kw
        if overlapping or sh > kh or sw > kw:
            dx = parallel.zeros(self.x_shape, g.dtype)
        else:  # windows that tile x: each element below is written once; zero only the rows and columns left over
            dx = parallel.empty(self.x_shape, g.dtype)
            dx[..., Ho * sh :, :], dx[..., : Ho * sh, Wo * sw :] = 0, 0

        def part(block):
            dxc, gc, ic = dx[block], g[block], self.index[block]
            for i in range(kh):
                for j in range(kw):
                    window_ij = _columns(_rows(dxc, i, sh, Ho), j, sw, Wo)  # element (i, j) of every window
                    if overlapping:
                        window_ij += gc * (ic == i * kw + j)  # an input in several windows sums their g
                    else:
                        np.multiply(gc, ic == i * kw + j, out=window_ij)  # at most one window: plain write

        _split(part, dx.shape)
        return (dx,)


def max_pool2d(x, kernel_size, stride=None):
    """Max over kh×kw windows of x (N, C, H, W), ``stride`` apart (default: kernel_size, no overlap)."""
    return FastMaxPool2dFunction.apply(x, kernel_size=kernel_size, stride=stride)


class FastAvgPool2dFunction(Function):
    """y = mean of x over each kh×kw window.   dL/dx = g / (kh·kw) spread over the window (summed if shared).

    Forward separably (sum over each window's columns, then over its rows, then divide); the backward is the
    same in reverse: spread g / (kh·kw) over the rows, then over the columns.
    """
    torch_name = "AvgPool2DBackward0"

    def forward(self, x, kernel_size, stride=None):
        (kh, kw), (sh, sw), (Ho, Wo) = pool_geometry(x, kernel_size, stride, "avg_pool2d")
        cs = _columns(x, 0, sw, Wo).copy()
        for j in range(1, kw):
            cs += _columns(x, j, sw, Wo)
        y = _rows(cs, 0, sh, Ho).copy()
        for i in range(1, kh):
            y += _rows(cs, i, sh, Ho)
        y *= 1.0 / (kh * kw)
        self.x_shape, self.geometry = x.shape, ((kh, kw), (sh, sw), (Ho, Wo))
        return y

    def backward(self, g):
        (kh, kw), (sh, sw), (Ho, Wo) = self.geometry
        N, C, H, W = self.x_shape
        g = g * (1.0 / (kh * kw))
        dcs = np.zeros((N, C, H, Wo), dtype=g.dtype)  # gradient of the column sums cs
        for i in range(kh):
            _rows(dcs, i, sh, Ho)[...] += g
        dx = np.zeros(self.x_shape, dtype=g.dtype)
        for j in range(kw):
            _columns(dx, j, sw, Wo)[...] += dcs
        return (dx,)


def avg_pool2d(x, kernel_size, stride=None):
    """Mean over kh×kw windows of x (N, C, H, W), ``stride`` apart (default: kernel_size, no overlap)."""
    return FastAvgPool2dFunction.apply(x, kernel_size=kernel_size, stride=stride)
