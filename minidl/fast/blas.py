"""NumPy's own BLAS, called directly for the two things ``np.matmul`` cannot ask of it.

``np.matmul`` hands a matrix product to BLAS's GEMM routine, which computes C ← α·A·B + β·C, always with
α = 1 and β = 0. minidl needs two more things from that same library (OpenBLAS, in NumPy's wheels):

- ``gemm(a, b, out, accumulate=True)``: β = 1, out ← a @ b + out. That adds a product into an array that
  already holds a sum, inside the GEMM, with no temporary and no extra pass over the output.
  fast_conv.py's shifted-view convolution adds kh·kw products into one output this way.
- ``thread_functions()``: OpenBLAS's ``openblas_get_num_threads`` / ``openblas_set_num_threads``, which
  parallel.py uses to run BLAS single-threaded while minidl splits the work itself.

The library is the OpenBLAS that NumPy loaded, found in ``/proc/self/maps`` and opened with ctypes (the
approach of the threadpoolctl package). Its function names carry the build's prefix and suffix: NumPy's
wheels use a private build with 64-bit integers (``scipy_cblas_sgemm64_``); a system OpenBLAS has the plain
names (``cblas_sgemm``). SciPy's wheels bring another OpenBLAS of their own, so NumPy's is the one whose
path lies under NumPy's folder. When none is found (another BLAS, another operating system),
``gemm_available()`` and ``thread_functions()`` say so and their callers take their NumPy-only paths.
"""
import ctypes
import os

import numpy as np

_PREFIXES = ("scipy_", "")
_SUFFIXES = ("64_", "_64", "")
_ROW_MAJOR, _NO_TRANS = 101, 111  # CBLAS's enum values (cblas.h)

_found = None  # once looked up: {"threads": (get, set), "gemm": {dtype: function}}, or {} if none


def _openblas():
    """What was found of NumPy's OpenBLAS: thread-count functions and GEMMs (empty if nothing)."""
    global _found
    if _found is not None:
        return _found
    _found = {}
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    except OSError:
        paths = set()
    numpy_dir = os.path.dirname(os.path.dirname(np.__file__))  # numpy.libs/ sits beside numpy/
    for path in sorted(paths, key=lambda p: not p.startswith(os.path.join(numpy_dir, "numpy"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}openblas_get_num_threads{suffix}", None)
                set_ = getattr(lib, f"{prefix}openblas_set_num_threads{suffix}", None)
                if get is None or set_ is None:
                    continue
                get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                _found = {"threads": (get, set_), "gemm": {}}
                index = ctypes.c_int64 if "64" in suffix else ctypes.c_int  # BLAS's integer size
                for dtype, letter, scalar in ((np.float32, "s", ctypes.c_float), (np.float64, "d", ctypes.c_double)):
                    gemm = getattr(lib, f"{prefix}cblas_{letter}gemm{suffix}", None)
                    if gemm is not None:
                        gemm.restype = None
                        gemm.argtypes = ([ctypes.c_int] * 3 + [index] * 3 + [scalar, ctypes.c_void_p, index] +
                                         [ctypes.c_void_p, index, scalar, ctypes.c_void_p, index])
                        _found["gemm"][np.dtype(dtype)] = gemm
                return _found
    return _found


def thread_functions():
    """(get_num_threads, set_num_threads) of NumPy's OpenBLAS, or None if it was not found."""
    return _openblas().get("threads")


def gemm_available(dtype):
    """True when ``gemm`` can run for arrays of ``dtype`` (float32 or float64 with NumPy's OpenBLAS)."""
    return np.dtype(dtype) in _openblas().get("gemm", {})


def gemm(a, b, out, accumulate=False):
    """out = a @ b, or out += a @ b with ``accumulate``, by one call to BLAS's GEMM (β = 0 or 1).

    a (M, K), b (K, N) and out (M, N) must have one dtype (float32 or float64) and rows of contiguous
    elements; the rows themselves may lie any distance apart (BLAS's "leading dimension"), so a window
    of a larger array, such as ``x[:, s : s + N]``, is taken as it is, without a copy.
    """
    (M, K), (K2, N) = a.shape, b.shape
    if K2 != K or out.shape != (M, N) or not (a.dtype == b.dtype == out.dtype) or not out.flags.writeable:
        raise ValueError(f"gemm: cannot compute out {out.shape} {out.dtype} (+)= a {a.shape} {a.dtype} @ "
                         f"b {b.shape} {b.dtype}")
    if M == 0 or N == 0:
        return
    if K == 0:  # an empty sum (BLAS's leading dimensions would be 0)
        if not accumulate:
            out[...] = 0
        return
    leading = []
    for name, m in (("a", a), ("b", b), ("out", out)):
        rows, cols = m.shape
        row_step = m.strides[0] // m.itemsize if rows > 1 else cols
        if (cols > 1 and m.strides[1] != m.itemsize) or m.strides[0] % m.itemsize or row_step < max(1, cols):
            raise ValueError(f"gemm: {name} {m.shape} with strides {m.strides} does not have contiguous rows")
        leading.append(max(1, row_step))
    routine = _openblas()["gemm"][out.dtype]
    routine(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, M, N, K, 1.0, a.ctypes.data, leading[0], b.ctypes.data, leading[1],
            1.0 if accumulate else 0.0, out.ctypes.data, leading[2])
