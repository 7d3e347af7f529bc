"""The textbook kernels: convolution, pooling and Gram matrices written for reading, not for speed.

Each op is a ``Function`` with its forward and backward side by side and the math in the docstring. They
run whenever ``minidl.use_kernels("textbook")`` is selected (or ``MINIDL_KERNELS=textbook``), and the
engineered kernels of ``minidl.fast`` are tested against them; ``conv2d_loops`` is the definition as plain
loops, the oracle of both.
"""
from .loops import conv2d_loops

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "gram_matrix", "conv2d_loops"]
