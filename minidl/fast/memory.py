"""Keeping freed memory in the process, so that big arrays do not page-fault afresh at every step.

A training or style-transfer step allocates the same big arrays again and again. glibc's ``malloc`` takes
each one above a threshold (up to 32 MB) straight from the operating system with ``mmap`` and returns it
with ``munmap`` when freed, so the next step's array gets fresh pages, each costing a page fault at its
first write: expensive on virtual machines (numbers in ``docs/performance.md``).

``keep_freed_memory`` sets two of ``malloc``'s parameters (``mallopt``): every allocation comes from the
heap, and freed memory stays there for the next allocation. It is an explicit call, never made by importing
minidl (it changes the whole process): the style-transfer example and the benchmarks make it, on Linux with
glibc; elsewhere it does nothing. The cost: the process keeps the memory of its peak once it has reached it.
``MINIDL_KEEP_MEMORY=0`` in the environment turns it off.

``scratch`` is the same idea inside minidl, needing no setting: the work buffers of the convolutions'
worker threads are kept from one call to the next.
"""
import ctypes
import os
import threading

import numpy as np

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


_scratch_space = threading.local()  # per calling thread: {(worker, dtype): buffer}


def scratch(worker, size, dtype):
    """A work buffer of ``size`` elements for ``worker``, kept from one convolution to the next, so that the
    workers do not page-fault fresh memory on every call. Kept as long as the calling thread: at most
    ``fast_conv.CHUNK_BYTES`` per worker."""
    buffers = getattr(_scratch_space, "buffers", None)
    if buffers is None:
        buffers = _scratch_space.buffers = {}
    key = (worker, np.dtype(dtype))
    buffer = buffers.get(key)
    if buffer is None or buffer.size < size:
        buffer = buffers[key] = np.empty(size, dtype=dtype)
    return buffer[:size]
