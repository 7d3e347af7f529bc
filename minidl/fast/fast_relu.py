"""ReLU with its arrays kept from step to step, large ones split over the cores (the plain twin:
``functional.ReLU``).

The same numbers as ``functional.ReLU``: y = max(x, 0), dL/dx = g ⊙ [y > 0] (0 at the kink). What differs:
y, the mask and dL/dx come from ``memory.empty``, so from the second training step on they are arrays
whose pages are mapped already (a fresh 6 MB array costs more in page faults than the ReLU's pass over
it). The mask [y > 0] is made in the forward, while y is in the cache, and kept instead of y: one byte per
element instead of four, and y itself can be freed as soon as the next layer is done with it (a max pool
keeps only its winners' positions). Arrays of ``SPLIT_ELEMENTS`` or more are cut into one contiguous range
per core (``parallel.each_range``): the passes are bound by memory, but two cores move more of it than one.
"""
import numpy as np

from ..autograd import Function
from . import memory, parallel

#: Inputs of at least this many elements are split over the workers. Measured for the ReLU after the
#: CNN's first convolution (64 × 32 × 28 × 28, 1.6 million floats), forward 0.78 ms split against 1.14 ms
#: on one core, backward 0.82 against 1.20; for 64 × 64 × 14 × 14 (0.8 million), 0.54 against 0.52 and
#: 0.55 against 0.61: below about a million, the hand-over eats the gain.
SPLIT_ELEMENTS = 2**20


class FastReLU(Function):
    """y = max(x, 0).   dL/dx = g ⊙ [x > 0]  (the kink at 0 gets gradient 0, as in PyTorch)."""
    torch_name = "ReluBackward0"

    def forward(self, x):
        y = memory.empty(x.shape, x.dtype)
        if not self.needs_input_grad[0]:
            parallel.each_range(lambda x, y: np.maximum(x, 0, out=y), (x, y), SPLIT_ELEMENTS)
            return y
        self.mask = memory.empty(y.shape, bool)
        parallel.each_range(_relu_and_mask, (x, y, self.mask), SPLIT_ELEMENTS)
        return y

    def backward(self, g):
        dx = memory.empty(g.shape, np.result_type(g, self.mask))
        parallel.each_range(lambda g, mask, dx: np.multiply(g, mask, out=dx), (g, self.mask, dx), SPLIT_ELEMENTS)
        return (dx,)


def _relu_and_mask(x, y, mask):
    """y = max(x, 0), then mask = [y > 0] while y is in the cache."""
    np.maximum(x, 0, out=y)
    np.greater(y, 0, out=mask)


def relu(x):
    """max(x, 0), elementwise (see ``FastReLU``)."""
    return FastReLU.apply(x)
