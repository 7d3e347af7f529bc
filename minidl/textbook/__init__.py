"""The textbook kernels: convolution, pooling and Gram matrices written for reading, not for speed.

Each op is a ``Function`` with its forward and backward side by side and the math in the docstring:
``convolution.py`` (im2col, one matrix product, col2im), ``pooling.py`` (max and average pooling through
strided views), ``gram.py`` (the Gram matrix of style transfer). They run whenever
``minidl.use_kernels("textbook")`` is selected (or ``MINIDL_KERNELS=textbook``), and the engineered
kernels of ``minidl.fast`` are tested against them; ``conv2d_loops`` (``loops.py``) is the definition as
plain loops, the oracle of both.
"""
from .convolution import conv2d
from .gram import gram_matrix
from .loops import conv2d_loops
from .pooling import avg_pool2d, max_pool2d

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "gram_matrix", "conv2d_loops"]
