"""Keeping memory for the next step, so that big arrays do not page-fault afresh at every step.

A training or style-transfer step allocates the same big arrays again and again. glibc's ``malloc`` takes
each one above a threshold (up to 32 MB) straight from the operating system with ``mmap`` and returns it
with ``munmap`` when freed, so the next step's array gets fresh pages, each costing a page fault at its
first write: expensive on virtual machines (numbers in ``docs/performance.md``).

``keep_freed_memory`` sets two of ``malloc``'s parameters (``mallopt``): every allocation comes from the
heap, and freed memory stays there for the next allocation. It is an opt-in for a whole program, never
made by minidl itself (it changes the whole process), on Linux with glibc; elsewhere it does nothing. The cost: the process keeps the memory of its peak once it has reached it.
``MINIDL_KEEP_MEMORY=0`` in the environment turns it off.

Inside minidl, with nothing to call, two things do the same for the arrays the kernels make:

- ``scratch``: the work buffers of the convolutions' worker threads are kept from one call to the next;
- ``empty``: the kernels' outputs and gradients (feature maps, masks, dL/dx) come from arrays the kernels
  made before and that nobody holds any more. A training step makes the same shapes every time, so from the
  second step on each big array is one whose pages are already mapped. The arrays are kept only while a
  model that uses them is alive: the kernels of the layers with weights name each weight array as an
  owner (``owned_by``), and when the last owner is freed, so are all the kept arrays. An array not handed
  out again for ``STALE_AFTER`` requests (a shape no longer used) is let go, too.
"""
import ctypes
import math
import os
import sys
import threading
import weakref

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


#: Arrays smaller than this come from ``np.empty`` as usual: malloc keeps small blocks in the process anyway.
MIN_BYTES = 256 * 2**10

#: A kept array that has not been handed out for this many requests is let go (a shape no longer in use).
STALE_AFTER = 500

_kept = {}  # (shape, dtype) -> [[array, request number when last handed out], ...]
_owners = {}  # id(weight array) -> its weakref.finalize
_requests = 0
_kept_lock = threading.Lock()
_counts_references = hasattr(sys, "getrefcount")  # CPython: an array nobody else holds has 2 (list, argument)


def owned_by(array):
    """Name ``array`` (a layer's weight) as an owner of the kept arrays: they are freed once no owner lives."""
    if not _counts_references or id(array) in _owners:
        return
    try:
        _owners[id(array)] = weakref.finalize(array, _owner_freed, id(array))
    except TypeError:  # not weak-referenceable: it cannot own anything
        pass


def _owner_freed(key):
    _owners.pop(key, None)
    if not _owners:
        with _kept_lock:
            _kept.clear()


def empty(shape, dtype):
    """An uninitialised array of ``shape`` and ``dtype``, for a kernel's output or gradient: one made
    before whose last user is gone, while a model lives (see the module docstring); else ``np.empty``."""
    global _requests
    dtype = np.dtype(dtype)
    shape = tuple(int(n) for n in shape)
    size = dtype.itemsize * math.prod(shape)
    if size < MIN_BYTES or not _owners:
        return np.empty(shape, dtype=dtype)
    with _kept_lock:
        _requests += 1
        if _requests % 64 == 0:
            _let_go_of_stale()
        arrays = _kept.setdefault((shape, dtype), [])
        for entry in arrays:
            if sys.getrefcount(entry[0]) == 2:  # held by this list (and the call's argument) alone
                entry[1] = _requests
                return entry[0]
        array = np.empty(shape, dtype=dtype)
        arrays.append([array, _requests])
        return array


def zeros(shape, dtype):
    """``empty``, filled with zeros."""
    array = empty(shape, dtype)
    array.fill(0)
    return array


def _let_go_of_stale():
    for key in list(_kept):
        _kept[key] = [entry for entry in _kept[key] if _requests - entry[1] <= STALE_AFTER]
        if not _kept[key]:
            del _kept[key]
