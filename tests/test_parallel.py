"""parallel.py and the convolution split over worker threads: same numbers as one thread, BLAS restored;
memory.py's kept memory."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.fast import blas, memory, parallel
from minidl.fast import fast_conv as conv
from minidl.fast import flat_conv
from minidl.textbook import conv2d_loops
from minidl import functional as F

needs_threads = pytest.mark.skipif(blas.thread_functions() is None,
                                   reason="BLAS thread count not settable here (not NumPy's OpenBLAS)")
rng = np.random.default_rng(0)


@pytest.fixture
def two_workers(monkeypatch):
    monkeypatch.setattr(parallel, "WORKERS", 2)
    calls = []
    run = parallel.run
    monkeypatch.setattr(parallel, "run", lambda tasks: calls.append(len(tasks)) or run(tasks))
    return calls


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setattr(parallel, "available", lambda: False)


@needs_threads
def test_blas_threads_are_restored():
    get, _ = blas.thread_functions()
    before = get()
    with parallel.blas_threads(1):
        assert get() == 1
    assert get() == before
    with pytest.raises(ZeroDivisionError):  # restored on errors too, and the task's error reaches the caller
        parallel.run([lambda: 1 / 0, lambda: None])
    assert get() == before


@needs_threads
@pytest.mark.parametrize("M", [1, 3, 4, 37])
def test_parallel_matmul_equals_numpy(two_workers, M):
    a, b = rng.standard_normal((M, 20)), rng.standard_normal((20, 9))
    np.testing.assert_allclose(parallel.matmul(a, b), a @ b, rtol=1e-13)
    out = np.empty((M, 9))
    assert parallel.matmul(a, b.copy(), out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-13)
    assert two_workers == [2, 2]  # by rows, or by b's 9 columns when a has too few rows


@needs_threads
def test_parallel_matmul_runs_small_products_alone_with_blas_on_one_thread(two_workers, monkeypatch):
    get, _ = blas.thread_functions()
    before, seen = get(), []
    a, b = rng.standard_normal((8, 20)), rng.standard_normal((20, 3))
    real = np.matmul
    monkeypatch.setattr(parallel.np, "matmul", lambda *args, **kw: seen.append(get()) or real(*args, **kw))
    np.testing.assert_allclose(parallel.matmul(a, b, min_flops=2 * 8 * 20 * 3 + 1), a @ b, rtol=1e-13)
    np.testing.assert_allclose(parallel.matmul(a[:3], b), a[:3] @ b, rtol=1e-13)  # 3 × 3: too small to split
    assert two_workers == [] and seen == [1, 1] and get() == before  # on the caller, BLAS restored after
    parallel.matmul(a, b, min_flops=2 * 8 * 20 * 3)
    assert two_workers == [2]


def conv_grads(x, w, b, stride, padding):
    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, stride=stride, padding=padding, activation="relu")  # the fused mask too
    y.backward(np.cos(np.arange(y.data.size)).reshape(y.shape))
    return y.data, xt.grad, wt.grad, bt.grad


# (x shape, weight shape, stride, padding, chunk budget): few filters on many columns, split by chunks;
# many filters on few columns, split inside each GEMM; col2im (O > C) in two waves; several images per chunk
SPLIT_CASES = [
    ((1, 3, 20, 9), (2, 3, 3, 3), 1, 1, 600),
    ((1, 4, 6, 5), (40, 4, 3, 3), 1, 1, 600),
    ((1, 4, 9, 8), (40, 4, 3, 3), 2, 1, 600),  # strided: dL/dW from an im2col of x, split by its columns
    ((1, 2, 17, 8), (6, 2, 3, 3), 1, 1, 500),
    ((1, 2, 24, 12), (4, 2, 3, 3), 1, 1, 13824),
    ((1, 2, 15, 8), (3, 2, 3, 2), 2, (1, 0), 400),
    ((6, 2, 5, 4), (3, 2, 3, 3), 1, 1, 3000),
]


@needs_threads
@pytest.mark.parametrize("x_shape, w_shape, stride, padding, budget", SPLIT_CASES)
def test_split_convolution_equals_one_thread(monkeypatch, two_workers, x_shape, w_shape, stride, padding, budget):
    monkeypatch.setattr(conv, "CHUNK_BYTES", budget)
    if budget == 13824:
        monkeypatch.setattr(conv, "ROTATED_MAX_CHANNELS", 0)  # col2im, not the rotated kernel
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    split = conv_grads(x, w, b, stride, padding)
    assert two_workers, "the convolution was not split"
    if budget == 13824:  # col2im by chunks of 4 rows: the forward, the ReLU mask, two waves of dL/dx, dL/dW, dL/db
        assert len(two_workers) == 6
    monkeypatch.setattr(parallel, "available", lambda: False)
    for got, expected in zip(split, conv_grads(x, w, b, stride, padding)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    expected = np.maximum(conv2d_loops(x, w, b, stride, padding), 0)
    np.testing.assert_allclose(split[0], expected, rtol=1e-12, atol=1e-12)


@needs_threads
def test_split_shifted_view_convolution_equals_one_thread(monkeypatch, two_workers):
    monkeypatch.setattr(flat_conv, "MAX_PIXELS", 0)  # fast_conv's own paths, not the flat layout's
    monkeypatch.setattr(conv, "SHIFTED_CHANNELS", (1, 10**9))  # the forward as shifted-view GEMMs
    monkeypatch.setattr(conv, "CHUNK_BYTES", 600)
    x, w, b = rng.standard_normal((2, 3, 20, 9)), rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2)
    split = conv_grads(x, w, b, 1, 1)
    assert two_workers
    monkeypatch.setattr(parallel, "available", lambda: False)
    for got, expected in zip(split, conv_grads(x, w, b, 1, 1)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(split[0], np.maximum(conv2d_loops(x, w, b, 1, 1), 0), rtol=1e-12, atol=1e-12)


def test_without_threads_everything_runs_here(monkeypatch, one_thread):
    calls = []
    monkeypatch.setattr(parallel, "run", lambda tasks: calls.append(tasks))
    monkeypatch.setattr(conv, "CHUNK_BYTES", 600)
    x, w, b = rng.standard_normal((1, 3, 20, 9)), rng.standard_normal((2, 3, 3, 3)), rng.standard_normal(2)
    y = conv_grads(x, w, b, 1, 1)[0]
    assert calls == []
    np.testing.assert_allclose(y, np.maximum(conv2d_loops(x, w, b, 1, 1), 0), rtol=1e-12)


@pytest.mark.parametrize("count, parts, most, expected", [(1, 1, 9, 1), (1, 2, 9, 4), (5, 2, 9, 6), (7, 2, 5, 5)])
def test_balanced_chunk_counts(count, parts, most, expected):
    assert parallel.balanced_count(count, parts, most) == expected


@needs_threads
@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 2)])
@pytest.mark.parametrize("batch", [1, 3])  # one image: split by channels; a batch: by images
def test_split_max_pool_equals_one_thread(monkeypatch, two_workers, kernel, stride, batch):
    x = rng.permutation(batch * 6 * 9 * 8).reshape(batch, 6, 9, 8).astype(np.float64)  # no ties
    results = []
    for split in (True, False):
        if not split:
            monkeypatch.setattr(parallel, "available", lambda: False)
        xt = Tensor(x, requires_grad=True)
        y = F.max_pool2d(xt, kernel, stride)
        y.backward(np.cos(np.arange(y.data.size)).reshape(y.shape))
        results.append((y.data, xt.grad))
        if split:
            assert len(two_workers) == 2  # forward and backward
    for got, expected in zip(*results):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("shape", [(3, 5000), (1, 64, 30, 30), (0, 4)])
def test_prefaulted_zeros(shape):
    z = parallel.zeros(shape, np.float32)
    assert z.shape == shape and z.dtype == np.float32 and not z.any()
    e = parallel.empty(shape, np.float64)
    assert e.shape == shape and e.dtype == np.float64


@needs_threads
@pytest.mark.parametrize("input_grad", [False, True])  # dL/dW from an im2col of x, or from the columns of g
def test_split_weight_gradient_is_the_same_on_every_run(monkeypatch, two_workers, input_grad):
    # many small chunks, each delayed by a random few milliseconds: which worker takes which chunk would
    # vary from run to run if it were left to timing, and with it the rounding of each worker's sum
    monkeypatch.setattr(conv, "CHUNK_BYTES", 2000)
    im2col, jitter = conv.im2col, np.random.default_rng(1)
    monkeypatch.setattr(conv, "im2col", lambda *a: time.sleep(jitter.uniform(0, 0.003)) or im2col(*a))
    x, w = rng.standard_normal((1, 3, 40, 24)).astype(np.float32), rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((1, 4, 40, 24)).astype(np.float32)
    grads = []
    for _ in range(5):
        wt = Tensor(w, requires_grad=True)
        F.conv2d(Tensor(x, requires_grad=input_grad), wt, padding=1).backward(g)
        grads.append(wt.grad)
    assert two_workers  # split
    for other in grads[1:]:
        np.testing.assert_array_equal(other, grads[0])


@needs_threads
@pytest.mark.parametrize("input_grad", [False, True])  # dL/dW alone (a first layer), or with dL/dx
def test_split_flat_convolution_equals_one_thread(monkeypatch, two_workers, input_grad):
    monkeypatch.setattr(flat_conv, "CHUNK_BYTES", 1)  # one image per chunk: 9 chunks over 2 workers
    x, w, b = rng.standard_normal((9, 3, 10, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)

    def grads():
        xt, wt, bt = Tensor(x, requires_grad=input_grad), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
        y = F.conv2d(xt, wt, bt, padding=1, activation="relu")
        y.backward(np.random.default_rng(3).standard_normal(y.shape))
        return [y.data, wt.grad, bt.grad] + ([xt.grad] if input_grad else [])

    split = grads()
    assert two_workers == [2, 2]  # the forward and the backward, each split once
    monkeypatch.setattr(parallel, "available", lambda: False)
    for got, expected in zip(split, grads()):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(split[0], np.maximum(conv2d_loops(x, w, b, 1, 1), 0), rtol=1e-12, atol=1e-12)


@needs_threads
def test_flat_weight_gradient_is_the_same_on_every_run(monkeypatch, two_workers):
    # one image per chunk, each delayed by a random few milliseconds, so that the workers take the chunks
    # in a different order on every run: the chunks' shares are still summed in image order
    monkeypatch.setattr(flat_conv, "CHUNK_BYTES", 1)
    columns, jitter = flat_conv.Layout.columns, np.random.default_rng(1)
    monkeypatch.setattr(flat_conv.Layout, "columns", lambda *a: time.sleep(jitter.uniform(0, 0.003)) or columns(*a))
    x, w = rng.standard_normal((12, 3, 9, 8)).astype(np.float32), rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((12, 4, 9, 8)).astype(np.float32)
    grads = []
    for _ in range(5):
        wt, bt = Tensor(w, requires_grad=True), Tensor(np.zeros(4, np.float32), requires_grad=True)
        F.conv2d(Tensor(x, requires_grad=True), wt, bt, padding=1).backward(g)
        grads.append((wt.grad, bt.grad))
    assert two_workers
    for other in grads[1:]:
        np.testing.assert_array_equal(other[0], grads[0][0])
        np.testing.assert_array_equal(other[1], grads[0][1])


# A 64 MB array allocated, written and freed, in a fresh process: how far the resident memory stays above
# where it was before. Importing minidl changes nothing; keep_freed_memory() makes malloc keep it.
FREED_MEMORY_KEPT = """
import sys
import numpy as np, minidl
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096
was_set = False
if sys.argv[1] == "call":
    from minidl.fast.memory import keep_freed_memory
    was_set = keep_freed_memory()
before = rss()
a = np.ones(2**24, dtype=np.float32)
del a
print(was_set, (rss() - before) / 2**20)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/statm") or memory._mallopt() is None, reason="needs Linux with glibc")
@pytest.mark.parametrize("how, setting, kept", [("import only", "1", False), ("call", "1", True), ("call", "0", False)])
def test_freed_memory_stays_for_the_next_step_only_when_asked(how, setting, kept):
    env = dict(os.environ, MINIDL_KEEP_MEMORY=setting)
    out = subprocess.run([sys.executable, "-c", FREED_MEMORY_KEPT, how], env=env, capture_output=True, text=True,
                         check=True)
    was_set, mb = out.stdout.split()
    assert was_set == str(kept)
    assert (float(mb) > 60) == kept  # kept: still resident, the next array finds its pages mapped


SINGLE_THREADED_BLAS = """
import numpy as np
import minidl
from minidl import functional as F
from minidl.fast import blas, parallel
get = blas.thread_functions()[0]
before = get()
F.conv2d(np.ones((8, 3, 12, 12), np.float32), np.ones((4, 3, 3, 3), np.float32), padding=1)
after_conv = get()
was_set = parallel.single_threaded_blas()
F.conv2d(np.ones((8, 3, 12, 12), np.float32), np.ones((4, 3, 3, 3), np.float32), padding=1)
print(before, after_conv, was_set, get())
"""


@needs_threads
def test_single_threaded_blas_only_when_asked():
    # a convolution restores BLAS's thread count; single_threaded_blas() sets it to 1 for good
    env = dict(os.environ, OPENBLAS_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", SINGLE_THREADED_BLAS], capture_output=True, text=True, env=env,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), check=True)
    assert out.stdout.split() == ["2", "2", "True", "1"]
