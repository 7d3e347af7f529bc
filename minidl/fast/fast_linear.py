"""``Linear``'s products with BLAS kept on one thread per core (the plain twin: ``minidl/functional.py``).

The same math as ``functional.Linear``: y = x Wᵀ + b, dL/dx = g W, dL/dW = gᵀ x, dL/db = Σ g. What differs is
who runs the products. On BLAS's own threads a small product (a CNN's 64 × 3136 @ 3136 × 128) leaves
OpenBLAS's second thread spinning on a core after it, against the convolutions' split work that follows;
on a machine whose other core is busy it waits for that core instead: measured here, 0.7 ms on one thread
against 30-60 ms on BLAS's two. So every product goes through ``parallel.matmul``: split over the workers
(each single-threaded) when it is large enough to pay for the hand-over, else on the calling thread with
BLAS on one thread for its duration (``parallel.one_blas_thread``: nothing outside the call changes).
"""
import numpy as np

from ..autograd import Function
from . import memory, parallel

#: Products below this many floating-point operations (2·M·K·N) run on the calling thread alone. The CNN's
#: 3136 → 128 layer (51 MFLOP a product) measured 0.98 ms on one thread against 1.96 split in two, with
#: the machine shared (the hand-over waits for the other core); an MLP's products are smaller still.
SPLIT_FLOPS = 10**8


def _matmul(a, b):
    return parallel.matmul(a, b, min_flops=SPLIT_FLOPS)


class FastLinear(Function):
    """y = x Wᵀ + b for x (..., in), W (out, in), b (out,).

        dL/dx = g W          dL/dW = gᵀ x (summed over all leading axes)          dL/db = Σ g
    """
    torch_name = "AddmmBackward0"

    def forward(self, x, weight, bias=None):
        if x.shape[-1] != weight.shape[1]:
            raise ValueError(f"linear: input has {x.shape[-1]} features but weight {weight.shape} expects {weight.shape[1]}")
        memory.owned_by(weight)
        self.torch_name = "ViewBackward0" if x.ndim != 2 else "AddmmBackward0" if bias is not None else "MmBackward0"
        self.x, self.weight = x, weight
        x2 = x.reshape(-1, x.shape[-1])
        # computed as yᵀ = W xᵀ: OpenBLAS multiplies the row-major W faster than the transposed view Wᵀ
        # (x Wᵀ) here: 30% for the MLP's (32, 784) x (784, 128), 12% for the CNN's 3136 → 128 layer
        y_t = _matmul(weight, x2.T)
        y = np.empty((x2.shape[0], weight.shape[0]), dtype=y_t.dtype)  # row-major again, the bias added on the way
        if bias is not None:
            np.add(y_t.T, bias, out=y)
        else:
            y[...] = y_t.T
        return y.reshape(*x.shape[:-1], weight.shape[0])

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        g2 = g.reshape(-1, g.shape[-1])
        dx = _matmul(g2, self.weight).reshape(self.x.shape) if need_x else None
        dw = _matmul(g2.T, self.x.reshape(-1, self.x.shape[-1])) if need_w else None
        db = g2.sum(axis=0) if need_b else None
        return dx, dw, db


def linear(x, weight, bias=None):
    """y = x Wᵀ + b (see ``FastLinear``)."""
    return FastLinear.apply(x, weight, bias)
