"""Keeping freed memory in the process, so that big arrays do not page-fault afresh at every step.

A training step, or a style-transfer step, allocates the same big arrays again and again: activations,
gradients, their ReLU masks. glibc's ``malloc`` takes an allocation above a threshold (which it adjusts at
run time, up to 32 MB) straight from the operating system with ``mmap`` and returns it with ``munmap`` when
it is freed. The next step's array then gets fresh pages, and each fresh page costs a page fault at its
first write. On the virtual machines minidl is measured on, that is expensive: filling a freshly allocated
50 MB array took 8-134 ms, against 6-9 ms for an array whose pages were already mapped (NumPy asks for 2 MB
pages for big arrays, which the host has to find and clear). In VGG19's forward and backward at 384×512,
the 50 MB maps of block 1 are above the threshold, and the ReLU mask of one of them took 89 ms instead of 8.

``keep_freed_memory`` sets two of ``malloc``'s parameters (``mallopt``): every allocation comes from the
heap, and freed memory stays there for the next allocation instead of going back to the system. It is
never called by importing minidl (that would change every program that imports it): the style-transfer
example and the benchmarks call it, on Linux with glibc; elsewhere it does nothing. The cost: the process
keeps the memory of its peak once it has reached it (the peak itself does not grow). ``MINIDL_KEEP_MEMORY=0``
in the environment turns it off. (PyTorch's guides give the same advice for CPU training, through jemalloc or
tcmalloc.)
"""
import ctypes
import os

# mallopt's parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_LIMIT = 2**30  # the largest value both accept; arrays above 1 GiB still come from mmap


def _mallopt():
    """glibc's ``mallopt``, or None where the C library is not glibc (macOS, Windows, musl)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def keep_freed_memory():
    """Make glibc's malloc keep freed memory for reuse, for the rest of the process (see the module
    docstring). True if it was set; False with ``MINIDL_KEEP_MEMORY=0`` or without glibc."""
    mallopt = _mallopt()
    if mallopt is None or os.environ.get("MINIDL_KEEP_MEMORY", "1") == "0":
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, _LIMIT)) and bool(mallopt(_M_TRIM_THRESHOLD, _LIMIT))
