"""A ``Conv2d`` followed by a ``ReLU`` in a ``Sequential``, run as one op: the ReLU fused into the convolution.

``nn.Sequential(nn.Conv2d(...), nn.ReLU(), ...)`` is how a PyTorch program writes a convolutional layer.
Run as written, the ReLU is a separate pass over the convolution's output (reading it, writing its own
output and mask) and its backward a separate pass over the gradient. The fast convolution can apply the
ReLU itself, to each chunk of its output while it is in the cache, and multiply the gradient by the ReLU's
mask in the pass that copies it into its own layout (``Conv2d(..., activation="relu")``, Keras's way):
measured on the Fashion-MNIST CNN, a training step 0-12% faster (docs/performance.md).

Inside a ``Sequential`` the two are always fused when they can be, with nothing to ask: the convolution's
output before the ReLU is not visible anywhere (the ``Sequential`` hands it only to the ReLU), so the result
and every gradient are the same numbers either way (``tests/test_fusion.py``). Only minidl's own layers are
fused (the classes themselves, not subclasses, whose ``forward`` may do something else), and only on the
fast kernels: on the textbook kernels (``minidl.use_kernels("textbook")``) every layer runs as written, so
that a debugger steps through each layer's own forward and backward.
"""
from functools import partial

from .. import functional as F


def sequential_steps(layers):
    """The steps a ``Sequential`` of ``layers`` runs: each layer, except that a ``Conv2d`` without an
    activation followed by a ``ReLU`` is one step, the convolution with the ReLU fused."""
    from ..nn.conv import Conv2d  # here, not at the top: minidl.nn imports the kernels
    from ..nn.layers import ReLU

    steps, i = [], 0
    while i < len(layers):
        layer = layers[i]
        if type(layer) is Conv2d and layer.activation is None and i + 1 < len(layers) and type(layers[i + 1]) is ReLU:
            steps.append(partial(_conv_relu, layer))
            i += 2
        else:
            steps.append(layer)
            i += 1
    return steps


def _conv_relu(conv, x):
    return F.conv2d(x, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding, activation="relu")
