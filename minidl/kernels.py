"""Which kernels run the convolution, pooling and Gram-matrix ops: the textbook ones or the fast ones.

``minidl.textbook`` holds the plain versions a student reads (im2col over the whole batch, one matrix
product, col2im); ``minidl.fast`` holds engineered versions that compute the same numbers faster
(chunks, threads, direct BLAS calls). ``F.conv2d``, ``F.max_pool2d``, ``F.avg_pool2d`` and
``style.gram_matrix``, and everything built on them (``nn.Conv2d``, VGG19, style transfer), run on the
selected set:

    minidl.use_kernels("textbook")          # from now on
    with minidl.use_kernels("textbook"):    # inside the block only
        ...

or ``MINIDL_KERNELS=textbook python examples/fashion_cnn.py`` to run a program unchanged on the textbook
kernels (so a debugger steps through the very code you read). The default is "fast".
"""
import importlib
import os

KERNEL_SETS = ("fast", "textbook")

_selected = None  # None until the first use: then MINIDL_KERNELS, or "fast"


def _from_environment():
    name = os.environ.get("MINIDL_KERNELS", "fast")
    if name not in KERNEL_SETS:
        raise ValueError(f"MINIDL_KERNELS={name!r} is not a kernel set: set it to {' or '.join(KERNEL_SETS)} (both "
                         "run on the CPU), or unset it for the default, fast")
    return name


def selected():
    """The name of the kernel set in use: "fast" or "textbook"."""
    global _selected
    if _selected is None:
        _selected = _from_environment()
    return _selected


def active():
    """The module of the kernel set in use (``minidl.fast`` or ``minidl.textbook``), imported on first use."""
    return importlib.import_module(f"minidl.{selected()}")


class use_kernels:
    """Select the kernel set: ``use_kernels("textbook")`` switches from now on; used in a ``with``
    statement, it switches for the block only and restores the previous set afterwards."""

    def __init__(self, name):
        global _selected
        if name not in KERNEL_SETS:
            raise ValueError(f"use_kernels: unknown kernel set {name!r}; choose one of {', '.join(KERNEL_SETS)}")
        self.previous, _selected = selected(), name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _selected
        _selected = self.previous
