"""The engineered kernels: the same ops as ``minidl.textbook``, made fast.

Behind this one door live the chunked im2col with its threads and BLAS calls (``fast_conv.py``), its
flat layout for batches of small images (``flat_conv.py``, taken by ``fast_conv.FastConv2dFunction``), pooling
and Gram matrices split over the cores (``fast_pool.py``, ``fast_gram.py``), ReLU and Linear
(``fast_relu.py``, ``fast_linear.py``), a Sequential's Conv2d and ReLU run as one op (``fusion.py``),
Adam's step in place (``fast_adam.py``), the thread pool
(``parallel.py``), direct calls into NumPy's OpenBLAS (``blas.py``) and the arrays kept from step to step
(``memory.py``). Each op computes what its textbook twin computes, and the tests check that it does;
``docs/performance.md`` tells what each trick buys, as measured. Nothing outside this package imports it
except ``minidl.kernels``, which selects it (the default) or the textbook kernels.
"""
from .fast_adam import adam_update
from .fast_conv import conv2d
from .fast_gram import gram_matrix
from .fast_linear import linear
from .fast_pool import avg_pool2d, max_pool2d
from .fast_relu import relu
from .fusion import sequential_steps
from .memory import keep_freed_memory

__all__ = ["adam_update", "conv2d", "max_pool2d", "avg_pool2d", "gram_matrix", "linear", "relu", "sequential_steps",
           "keep_freed_memory"]
