"""ReLU with its arrays kept from step to step (the plain twin: ``functional.ReLU``).

The same numbers as ``functional.ReLU``: y = max(x, 0), dL/dx = g ⊙ [y > 0] (0 at the kink). What differs:
y, the mask and dL/dx come from ``memory.empty``, so from the second training step on they are arrays
whose pages are mapped already (a fresh 6 MB array costs more in page faults than the ReLU's pass over
it). The mask [y > 0] is made in the forward, while y is in the cache, and kept instead of y: one byte per
element instead of four, and y itself can be freed as soon as the next layer is done with it (a max pool
keeps only its winners' positions).
"""
import numpy as np

from ..autograd import Function
from . import memory


class FastReLU(Function):
    """y = max(x, 0).   dL/dx = g ⊙ [x > 0]  (the kink at 0 gets gradient 0, as in PyTorch)."""
    torch_name = "ReluBackward0"

    def forward(self, x):
        y = memory.empty(x.shape, x.dtype)
        np.maximum(x, 0, out=y)
        if self.needs_input_grad[0]:
            self.mask = np.greater(y, 0, out=memory.empty(y.shape, bool))
        return y

    def backward(self, g):
        dx = memory.empty(g.shape, np.result_type(g, self.mask))
        return (np.multiply(g, self.mask, out=dx),)


def relu(x):
    """max(x, 0), elementwise (see ``FastReLU``)."""
    return FastReLU.apply(x)
