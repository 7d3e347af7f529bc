"""Max and average pooling, the textbook way: each window offset is one strided view of the input.

A pooling window is kh × kw, windows ``stride`` apart, no padding. For a fixed offset (i, j) inside the
window, the view ``x[:, :, i::sh, j::sw]`` (cut to H_out × W_out) holds element (i, j) of every window at
once. Stacking the kh·kw views gives every window's elements along a new first axis, and pooling becomes
a max (or a mean) over that axis; the backward sends g back through the same views.
"""
import numpy as np

from ..autograd import Function
from ..conv_geometry import pool_geometry


def window_views(a, geometry):
    """[(i, j, view)] for every offset (i, j) of a window: view = element (i, j) of every window of a,
    shape (N, C, H_out, W_out). A view, not a copy: writing into it writes into a."""
    (kh, kw), (sh, sw), (Ho, Wo) = geometry
    return [(i, j, a[:, :, i : i + sh * (Ho - 1) + 1 : sh, j : j + sw * (Wo - 1) + 1 : sw])
            for i in range(kh) for j in range(kw)]


class MaxPool2dFunction(Function):
    """y = the maximum of x over each kh×kw window.

    Only a window's maximum influences y, so its gradient goes there and nowhere else:

        dL/dx[p] = Σ over the windows whose maximum is p of g[window]      (0 for every other pixel)

    (a sum because overlapping windows can share a winner). With ties, one element wins: the first in
    row-major order of the window (``argmax`` returns the first), as in PyTorch and ``minidl.fast``.
    """
    torch_name = "MaxPool2DWithIndicesBackward0"

    def forward(self, x, kernel_size, stride=None):
        geometry = pool_geometry(x, kernel_size, stride, "max_pool2d")
        windows = np.stack([view for _, _, view in window_views(x, geometry)])  # (kh·kw, N, C, H_out, W_out)
        if self.needs_input_grad[0]:
            self.winner = windows.argmax(axis=0)  # offset k = i·kw + j of each window's maximum
            self.x_shape, self.geometry = x.shape, geometry
        return windows.max(axis=0)

    def backward(self, g):
        dx = np.zeros(self.x_shape, dtype=g.dtype)
        kw = self.geometry[0][1]
        for i, j, dx_ij in window_views(dx, self.geometry):
            dx_ij += g * (self.winner == i * kw + j)  # g goes to offset (i, j) where that offset won
        return (dx,)


def max_pool2d(x, kernel_size, stride=None):
    """Max over kh×kw windows of x (N, C, H, W), ``stride`` apart (default: kernel_size, no overlap)."""
    return MaxPool2dFunction.apply(x, kernel_size=kernel_size, stride=stride)


class AvgPool2dFunction(Function):
    """y = the mean of x over each kh×kw window.

    Every element of a window counts 1/(kh·kw), so each gets that share of the window's gradient:

        dL/dx[p] = Σ over the windows that contain p of g[window] / (kh·kw)
    """
    torch_name = "AvgPool2DBackward0"

    def forward(self, x, kernel_size, stride=None):
        geometry = pool_geometry(x, kernel_size, stride, "avg_pool2d")
        self.x_shape, self.geometry = x.shape, geometry
        return np.mean([view for _, _, view in window_views(x, geometry)], axis=0, dtype=x.dtype)

    def backward(self, g):
        (kh, kw), _, _ = self.geometry
        dx = np.zeros(self.x_shape, dtype=g.dtype)
        for _, _, dx_ij in window_views(dx, self.geometry):
            dx_ij += g / (kh * kw)
        return (dx,)


def avg_pool2d(x, kernel_size, stride=None):
    """Mean over kh×kw windows of x (N, C, H, W), ``stride`` apart (default: kernel_size, no overlap)."""
    return AvgPool2dFunction.apply(x, kernel_size=kernel_size, stride=stride)
