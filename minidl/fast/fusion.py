"""A ``Conv2d`` (or a ``Linear``) followed by a ``ReLU`` in a ``Sequential``, run as one op: the ReLU fused in.

``nn.Sequential(nn.Conv2d(...), nn.ReLU(), ...)`` is how a PyTorch program writes a convolutional layer.
Run as written, the ReLU is a separate pass over the convolution's output (reading it, writing its own
output and mask) and its backward a separate pass over the gradient. The fast convolution can apply the
ReLU itself, to each chunk of its output while it is in the cache, and multiply the gradient by the ReLU's
mask in the pass that copies it into its own layout (``Conv2d(..., activation="relu")``, Keras's way):
measured on the Fashion-MNIST CNN, a training step 0-12% faster (docs/performance.md). A ``MaxPool2d``
right after the ReLU joins the same step (``ConvReLUMaxPool``): its backward applies the ReLU's mask to the
pool's gradient, a quarter of the size. A ``Linear`` and the ``ReLU`` after it are one op as well
(``LinearReLU``): one node instead of two, the ReLU applied to the product's fresh output.

Inside a ``Sequential`` the two are always fused when they can be, with nothing to ask: the layer's
output before the ReLU is not visible anywhere (the ``Sequential`` hands it only to the ReLU), so the result
and every gradient are the same numbers either way (``tests/test_fusion.py``). Only minidl's own layers are
fused (the classes themselves, not subclasses, whose ``forward`` may do something else), and only on the
fast kernels: on the textbook kernels (``minidl.use_kernels("textbook")``) every layer runs as written, so
that a debugger steps through each layer's own forward and backward.
"""
from functools import partial

import numpy as np

from .. import functional as F
from ..autograd import Function
from ..conv_geometry import pair
from .fast_conv import FastConv2dFunction
from .fast_linear import FastLinear
from .fast_pool import FastMaxPool2dFunction


def sequential_steps(layers):
    """The steps a ``Sequential`` of ``layers`` runs: each layer, except that a ``Conv2d`` whose ReLU is fused
    (``activation="relu"``, or no activation and a ``ReLU`` next) is one step, and one step with the
    ``MaxPool2d`` after it, if there is one; and a ``Linear`` with the ``ReLU`` after it is one step."""
    from ..nn.conv import Conv2d, MaxPool2d  # here, not at the top: minidl.nn imports the kernels
    from ..nn.layers import Linear, ReLU

    steps, i = [], 0
    while i < len(layers):
        layer = layers[i]
        if type(layer) is Linear and i + 1 < len(layers) and type(layers[i + 1]) is ReLU:
            steps.append(partial(_linear_relu, layer))
            i += 2
            continue
        if type(layer) is Conv2d and layer.activation is None and i + 1 < len(layers) and type(layers[i + 1]) is ReLU:
            end = i + 2  # the convolution and its ReLU layer
        elif type(layer) is Conv2d and layer.activation == "relu":
            end = i + 1
        else:
            steps.append(layer)
            i += 1
            continue
        if end < len(layers) and type(layers[end]) is MaxPool2d:
            steps.append(partial(_conv_relu_pool, layer, layers[end]))
            end += 1
        else:
            steps.append(partial(_conv_relu, layer) if layer.activation is None else layer)
        i = end
    return steps


def _linear_relu(linear, x):
    return LinearReLU.apply(x, linear.weight, linear.bias)


def _conv_relu(conv, x):
    return F.conv2d(x, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding, activation="relu")


def _conv_relu_pool(conv, pool, x):
    return ConvReLUMaxPool.apply(x, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding,
                                 kernel_size=pool.kernel_size, pool_stride=pool.stride)


class ConvReLUMaxPool(Function):
    """p = max_pool2d(max(conv2d(x, W) + b, 0)): the fused convolution, then the max pool, as one op.

    The backward is the two ops' backwards, but with the ReLU's mask applied to the pool's gradient g_p
    instead of to the convolution's: the pool hands each window's gradient to its winner and 0 to the rest,
    and the winner's ReLU output is the window's maximum p, so

        dL/dy = pool_backward(g_p) ⊙ [y > 0] = pool_backward(g_p ⊙ [p > 0])

    with a mask a quarter the size (for 2 × 2 windows), and the ReLU's output y need not be kept for the
    backward: only p and the pool's winners are.
    """
    torch_name = "MaxPool2DWithIndicesBackward0"

    def forward(self, x, weight, bias=None, stride=1, padding=0, kernel_size=2, pool_stride=None):
        self.conv, self.pool = FastConv2dFunction(), FastMaxPool2dFunction()
        self.conv.needs_input_grad = self.needs_input_grad
        self.pool.needs_input_grad = (any(self.needs_input_grad),)
        y = self.conv.forward(x, weight, bias, stride=pair(stride, "stride"),
                              padding=pair(padding, "padding"), activation="relu")
        self.conv.y = None  # its mask goes on the pool's gradient (backward)
        p = self.pool.forward(y, kernel_size, pool_stride)
        self.p = p if any(self.needs_input_grad) else None
        return p

    def backward(self, g):
        (dy,) = self.pool.backward(g * (self.p > 0))
        return self.conv.backward(dy)


class LinearReLU(Function):
    """y = max(x Wᵀ + b, 0): a ``Linear`` and the ``ReLU`` after it as one op (``FastLinear``, then the ReLU
    in place on its fresh output). With m = [y > 0], the ReLU's mask kept from the forward,

        dL/dx = (g ⊙ m) W        dL/dW = (g ⊙ m)ᵀ x        dL/db = Σ g ⊙ m

    One op instead of two: no second output array and no second node in the graph (measured on the
    Fashion-MNIST MLP, a training step 0.59 against 0.61 ms).
    """
    torch_name = "ReluBackward0"

    def forward(self, x, weight, bias=None):
        self.linear = FastLinear()
        self.linear.needs_input_grad = self.needs_input_grad
        y = self.linear.forward(x, weight, bias)
        np.maximum(y, 0, out=y)
        self.mask = y > 0 if any(self.needs_input_grad) else None
        return y

    def backward(self, g):
        return self.linear.backward(g * self.mask)
