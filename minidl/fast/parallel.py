"""Using every core for a convolution: one thread per core, each with single-threaded BLAS.

NumPy hands a matrix product to BLAS (OpenBLAS, in NumPy's wheels), and BLAS splits that one product over the
cores. Everything else NumPy does, such as im2col's copies and col2im's additions, runs on one core. For a
VGG layer that is about a quarter of the time, and the second core cannot even pick up other work: after a
product, OpenBLAS's worker threads keep spinning on the cores for a while, waiting for the next one.

So minidl splits the work the other way round, as convolution libraries such as oneDNN do: the output is
cut into chunks, and each core takes whole chunks (copies and product alike), each product single-threaded.
For the duration of a split, ``run`` sets BLAS to one thread and runs the tasks on ``WORKERS`` Python
threads; NumPy releases the GIL inside copies, ufuncs and matmul, so the threads really do run at once.
It must be all or nothing (a GEMM on BLAS's threads leaves them spinning, slowing any split that follows),
so the fast kernels go through ``run``, ``each`` and ``matmul`` here, never through BLAS's threads while
splitting is available; work too small to split runs on the calling thread with BLAS on one thread for its
duration (``one_blas_thread``). The count is restored when each call returns: nothing outside minidl's
calls changes. (Measurements: ``docs/performance.md``.)

NumPy has no function to set BLAS's thread count while running. ``blas_threads`` calls the
``openblas_set_num_threads`` of the OpenBLAS library that NumPy loaded (``blas.py`` finds it). If it is not
found (another BLAS, another operating system), ``available()`` is False and ``fast_conv.py`` processes
the chunks one after another, each product on BLAS's own threads.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

import numpy as np

from . import blas, memory

#: Threads a convolution is split over: the cores this process may run on.
WORKERS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

_THREAD_NAME = "minidl-worker"
_pool = None
# one split at a time: the workers are shared, and two callers changing BLAS's thread count at once could
# leave it at 1 for good
_lock = threading.Lock()


def available():
    """True when the work can be split over several threads (several cores, and BLAS threads settable)."""
    return WORKERS > 1 and blas.thread_functions() is not None


class blas_threads:
    """``with blas_threads(count):`` runs the block with BLAS limited to ``count`` threads; the previous
    count is restored afterwards. The count is set only when it differs (a class, not a ``contextmanager``
    generator: the small products of a training step enter it several times a step, 4 µs an entry here
    against 7 as a generator)."""

    def __init__(self, count):
        self.count = count

    def __enter__(self):
        api, self.restore = blas.thread_functions(), None
        if api is not None:
            get, set_ = api
            before = get()
            if before != self.count:
                set_(self.count)
                self.restore = set_, before
        return self

    def __exit__(self, *exc):
        if self.restore is not None:
            set_, before = self.restore
            set_(before)


def single_threaded_blas():
    """Run NumPy's BLAS on one thread for the rest of the process; minidl's kernels still split their own
    work over ``WORKERS`` threads. For training loops, where the matrix products outside the kernels
    (``Linear``'s) are small: on two threads each of them leaves OpenBLAS's second thread spinning on a core
    for the next split convolution to compete with (see the module docstring). Never called by importing
    minidl; True if the count was set (False if NumPy's OpenBLAS was not found)."""
    api = blas.thread_functions()
    if api is None:
        return False
    api[1](1)
    return True


def run(tasks):
    """Call every function of ``tasks`` (no arguments) at once, BLAS single-threaded: the first on the calling
    thread, each other one on a worker thread (handing a task over and waiting for it costs ~0.1 ms here,
    as much as a ReLU over 200,000 floats, so the caller does a share itself rather than wait idle).

    Returns when all have finished; an exception in a task is raised here.
    """
    global _pool
    with _lock, blas_threads(1):
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix=_THREAD_NAME)
        futures = [_pool.submit(task) for task in tasks[1:]]
        _splitting.active = True
        try:
            tasks[0]()
        finally:
            _splitting.active = False
            wait(futures)  # all of them, even if one fails, before BLAS gets its threads back
    for future in futures:
        future.result()


_splitting = threading.local()  # .active: this thread is running its share of a split


def _in_worker():
    """True on a worker thread, or on the caller while it runs its own share: the work there is already
    split, so it runs as it is."""
    return getattr(_splitting, "active", False) or threading.current_thread().name.startswith(_THREAD_NAME)


def run_chunks(work, chunks, parts, waves=1, fixed_shares=False):
    """Call ``work(chunk, worker)`` for every chunk, over ``parts`` workers (one after another if 1).

    ``waves=2`` runs the even-numbered chunks, then the odd ones; ``fixed_shares`` gives worker k every
    parts-th chunk instead of the next free one (see ``fast_conv._for_chunks``)."""
    if parts == 1:
        for chunk in chunks:
            work(chunk, 0)
        return
    for wave in [chunks[k::waves] for k in range(waves)]:
        todo, lock = iter(wave), threading.Lock()

        def take_chunks(worker):  # each worker takes the next chunk when it is free: a core the machine
            while True:  # lends to another process for a while does not hold the others up
                with lock:
                    chunk = next(todo, None)
                if chunk is None:
                    return
                work(chunk, worker)

        def take_share(worker):
            for chunk in wave[worker::parts]:
                work(chunk, worker)

        take = take_share if fixed_shares else take_chunks
        run([lambda k=k: take(k) for k in range(parts)])


def each(fn, n):
    """Call fn(lo, hi) for ``WORKERS`` consecutive ranges covering 0..n-1, on the workers at once.

    Plain ``fn(0, n)`` instead (BLAS single-threaded, see ``one_blas_thread``) when splitting is not
    ``available()``, when n is too small to split, or when already on a worker thread.
    """
    if n < WORKERS or _in_worker() or not available():
        with one_blas_thread():
            fn(0, n)
        return
    run([lambda lo=lo, hi=hi: fn(lo, hi) for lo, hi in even_ranges(n, WORKERS)])


def even_ranges(n, count):
    """``count`` consecutive ranges (lo, hi) covering 0..n-1, their sizes differing by one at most."""
    return [(n * k // count, n * (k + 1) // count) for k in range(count)]


def balanced_count(count, parts, most):
    """``count`` rounded up to a multiple of ``parts`` (at least 2·parts when splitting), but at most
    ``most``: a count of chunks the workers finish together."""
    if parts == 1:
        return count
    return min(most, -(-max(count, 2 * parts) // parts) * parts)


def matmul(a, b, out=None, min_flops=0):
    """a @ b for 2-D a (M, K) and b (K, N) on the workers, BLAS single-threaded: split by rows of a (and of
    the result), or by columns of b when a has too few rows, for products of at least ``min_flops``
    (2·M·K·N) floating-point operations; a smaller product runs on the calling thread alone.

    Each worker multiplies its block single-threaded, so that no BLAS thread is left spinning (see the
    module docstring), and packs only its share of a, the larger operand in the deep VGG layers. On a
    worker, or when splitting is not ``available()``, plain ``np.matmul``.
    """
    (M, K), N = a.shape, b.shape[1]
    if _in_worker() or not available():
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty((M, N), dtype=np.result_type(a, b))
    if 2 * M * K * N < min_flops or max(M, N) < 2 * WORKERS:
        with one_blas_thread():
            return np.matmul(a, b, out=out)
    if M >= 2 * WORKERS:
        each(lambda lo, hi: np.matmul(a[lo:hi], b, out=out[lo:hi]), M)
    else:
        each(lambda lo, hi: np.matmul(a, b[:, lo:hi], out=out[:, lo:hi]), N)
    return out


class one_blas_thread:
    """``with one_blas_thread():`` runs the block (on the calling thread) with BLAS on one thread, restored
    afterwards: a product too small to split, kept off BLAS's own threads, which would spin on the cores
    after it (and, on a busy machine, wait for a core: a 0.7 ms product measured 30-60 ms on BLAS's two
    threads there; the MLP's training step 3.5 ms against 1.3 ms with one core taken by another program)."""

    def __enter__(self):
        self.splits = not _in_worker() and available()
        if self.splits:  # what the block calls from here runs as it is (see _in_worker)
            _lock.acquire()
            self.threads = blas_threads(1).__enter__()
            _splitting.active = True
        return self

    def __exit__(self, *exc):
        if self.splits:
            _splitting.active = False
            self.threads.__exit__(*exc)
            _lock.release()


def each_range(fn, arrays, min_elements):
    """``fn(*views)`` for one range of the arrays' elements per worker, at once, when they hold at least
    ``min_elements`` each: elementwise passes (a ReLU, Adam's step) split over the cores, each range of
    every array a contiguous stretch of memory. Smaller arrays go to ``fn`` whole, flattened; arrays that
    are not all C-contiguous of one shape go to it as they are."""
    if not all(a.flags.c_contiguous and a.shape == arrays[0].shape for a in arrays):
        fn(*arrays)
        return
    flat = [a.reshape(-1) for a in arrays]  # views: what fn writes lands in the arrays
    if flat[0].size < min_elements:
        fn(*flat)
        return
    each(lambda lo, hi: fn(*(a[lo:hi] for a in flat)), flat[0].size)


def ordered_sum(parts):
    """Partial results (a dict keyed by worker number or range start) added in key order, in place into the
    first one.

    Floating-point addition is not associative, so adding the parts in whatever order the threads finish
    would change the last bits from run to run; a fixed order gives the same result every time."""
    total, *others = (parts[k] for k in sorted(parts))
    for other in others:
        total += other
    return total


_PAGE = 4096


def zeros(shape, dtype):
    """An array of zeros the workers will add into (from ``memory.zeros``: an array kept from an earlier
    call when one is free), its memory pages mapped here first.

    A large ``np.zeros`` gets fresh memory from the operating system, mapped page by page at the first
    write (a page fault), and two threads taking page faults in the same process at once wait for each
    other. Writing every page from this one thread first keeps that out of the split work.
    """
    return memory.zeros(shape, dtype)


def empty(shape, dtype):
    """An array the workers will write every element of (``memory.empty``), its pages mapped here first
    (see ``zeros``)."""
    return _prefault(memory.empty(shape, dtype))


def _prefault(a):
    a.reshape(-1)[:: max(1, _PAGE // a.itemsize)] = 0
    return a
