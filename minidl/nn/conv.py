"""Convolution and pooling layers: thin wrappers that hold the weights and call ``minidl.functional``."""

from .. import functional as F
from ..conv_geometry import ACTIVATIONS, pair
from . import init
from .module import Module, Parameter


class Conv2d(Module):
    """y = conv2d(x, W) + b for x (N, in_channels, H, W) and W (out_channels, in_channels, kh, kw), as in PyTorch.

    ``kernel_size``, ``stride`` and ``padding`` are an int or a (height, width) pair. W is Glorot-uniform
    initialised (fans count the kernel area) and b starts at zero, Keras's Conv2D defaults, like ``Linear``
    (PyTorch's U(±1/√fan_in) for both under ``minidl.set_defaults("torch")``).
    ``activation="relu"`` fuses a ReLU into the layer, as Keras's ``Conv2D(activation="relu")``: the same
    output as ``ReLU()`` after it, computed in one op (faster, and less memory while training).
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, activation=None):
        if activation not in ACTIVATIONS:
            raise ValueError(f"Conv2d: activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.activation = activation
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.stride, self.padding = pair(stride, "stride"), pair(padding, "padding")
        shape = (out_channels, in_channels, *self.kernel_size)
        self.weight = Parameter(init.layer_weight(shape))
        self.bias = Parameter(init.layer_bias(out_channels, init.fans(shape)[0])) if bias else None

    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, stride=self.stride, padding=self.padding,
                           activation=self.activation)

    def get_config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels, "kernel_size": self.kernel_size,
                "stride": self.stride, "padding": self.padding, "bias": self.bias is not None,
                "activation": self.activation}

    def extra_repr(self):
        """As PyTorch prints a Conv2d: padding only when there is some, ``bias=False`` only without one."""
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
                + (f", padding={self.padding}" if self.padding != (0, 0) else "")
                + (", bias=False" if self.bias is None else "")
                + (f", activation={self.activation!r}" if self.activation else ""))


class _Pool2d(Module):
    """Shared by the pooling layers: a window size and a stride (default: the window size, no overlap)."""

    pool = None  # the functional op, set by each subclass

    def __init__(self, kernel_size, stride=None):
        self.kernel_size, self.stride = kernel_size, stride

    def forward(self, x):
        return self.pool(x, self.kernel_size, self.stride)

    def get_config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride}

    def extra_repr(self):
        stride = self.stride if self.stride is not None else self.kernel_size
        return f"kernel_size={self.kernel_size}, stride={stride}, padding=0" + self.extra_options


class MaxPool2d(_Pool2d):
    """Max over ``kernel_size`` windows, ``stride`` apart (default: the kernel size, i.e. no overlap)."""

    pool = staticmethod(F.max_pool2d)
    extra_options = ", dilation=1, ceil_mode=False"  # PyTorch's defaults, the only ones minidl has


class AvgPool2d(_Pool2d):
    """Mean over ``kernel_size`` windows, ``stride`` apart (default: the kernel size, i.e. no overlap)."""

    pool = staticmethod(F.avg_pool2d)
    extra_options = ""


class AdaptiveAvgPool2d(Module):
    """Mean over the windows that tile each image into ``output_size`` (an int or an (H_out, W_out) pair,
    None keeping that size), whatever the input's size: ``functional.adaptive_avg_pool2d``. torchvision's
    VGG puts ``AdaptiveAvgPool2d((7, 7))`` before its classifier, so the classifier takes any image size."""

    def __init__(self, output_size):
        # a pair read back from a model file is a JSON list: the tuple again, so it prints as PyTorch's
        self.output_size = tuple(output_size) if isinstance(output_size, list) else output_size

    def forward(self, x):
        return F.adaptive_avg_pool2d(x, self.output_size)

    def get_config(self):
        return {"output_size": self.output_size}

    def extra_repr(self):
        return f"output_size={self.output_size}"
