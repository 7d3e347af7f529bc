"""minidl/fast's Linear and ReLU against functional.py's, the kernel door that picks them, and the arrays
the fast kernels keep from one step to the next (memory.empty)."""
import gc

import numpy as np
import pytest

import minidl
from minidl import Tensor, nn
from minidl import functional as F
from minidl.fast import blas, fast_linear, fast_relu, memory, parallel

rng = np.random.default_rng(5)


def grads_of(apply, inputs, grad_seed=1):
    tensors = [None if a is None else Tensor(np.array(a), requires_grad=True) for a in inputs]
    y = apply(*tensors)
    y.backward(np.random.default_rng(grad_seed).standard_normal(y.shape).astype(y.dtype))
    return y.data, [None if t is None else t.grad for t in tensors]


@pytest.mark.parametrize("x_shape", [(7, 5), (5,), (2, 3, 5), (0, 5), (64, 5)])
@pytest.mark.parametrize("with_bias", [True, False])
def test_fast_linear_agrees_with_functional(x_shape, with_bias, monkeypatch):
    monkeypatch.setattr(fast_linear, "SPLIT_FLOPS", 0)  # split whatever can be, to test that path too
    x, w = rng.standard_normal(x_shape), rng.standard_normal((4, 5))
    b = rng.standard_normal(4) if with_bias else None
    (y1, g1), (y2, g2) = (grads_of(f, [x, w, b]) for f in (F.Linear.apply, fast_linear.linear))
    assert y2.shape == y1.shape
    np.testing.assert_allclose(y2, y1, rtol=1e-12, atol=1e-12)
    for a, c in zip(g1, g2):
        assert (a is None) == (c is None)
        if a is not None:
            np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)


def test_fast_linear_keeps_float32_and_reports_bad_shapes():
    x, w = np.ones((3, 5), np.float32), np.ones((4, 5), np.float32)
    assert fast_linear.linear(Tensor(x), Tensor(w)).dtype == np.float32
    with pytest.raises(ValueError, match=r"linear: input has 6 features but weight \(4, 5\) expects 5"):
        fast_linear.linear(Tensor(np.ones((3, 6))), Tensor(w))


def test_fast_linear_skips_the_gradients_nobody_asked_for():
    x, w = Tensor(rng.standard_normal((3, 5))), Tensor(rng.standard_normal((4, 5)), requires_grad=True)
    fast_linear.linear(x, w).sum().backward()
    assert x.grad is None and w.grad.shape == (4, 5)


@pytest.mark.parametrize("split", [False, True])
def test_fast_relu_agrees_with_functional_at_the_kink(monkeypatch, split):
    """Also split over the workers (``split``: a large input, here every input), each worker's range of
    elements its own: the same bits."""
    ranges = []
    if split:
        each = parallel.each
        monkeypatch.setattr(fast_relu, "SPLIT_ELEMENTS", 10)
        monkeypatch.setattr(parallel, "each", lambda fn, n: each(lambda lo, hi: (ranges.append((lo, hi)), fn(lo, hi)), n))
    x = rng.standard_normal((3, 4, 5, 6))
    x[0, 0, 0, :3] = 0.0  # exactly at the kink: gradient 0, as in PyTorch
    x[1, 1] = -0.0
    (y1, (g1,)), (y2, (g2,)) = (grads_of(f, [x]) for f in (F.ReLU.apply, fast_relu.relu))
    np.testing.assert_array_equal(y2, y1)
    np.testing.assert_array_equal(g2, g1)
    assert not g2[0, 0, 0, :3].any() and not g2[1, 1].any()
    if split and parallel.available():  # forward and backward, each over all 360 elements
        assert len(ranges) == 2 * parallel.WORKERS and sum(hi - lo for lo, hi in ranges) == 2 * x.size


def test_functional_relu_and_linear_take_the_selected_kernel_set():
    x, w = Tensor(rng.standard_normal((2, 5)), requires_grad=True), Tensor(rng.standard_normal((3, 5)))
    for name, module in (("textbook", "minidl.functional"), ("fast", "minidl.fast.")):
        with minidl.use_kernels(name):
            for y in (F.relu(x), F.linear(x, w), nn.ReLU()(x), x.relu()):
                assert type(y._ctx).__module__.startswith(module), (name, type(y._ctx))


@pytest.mark.skipif(blas.thread_functions() is None, reason="BLAS thread count not settable here")
def test_a_training_step_leaves_blas_threads_as_it_found_them():
    get, _ = blas.thread_functions()
    before = get()
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(4 * 16, 300), nn.ReLU(), nn.Linear(300, 3))
    y = model(Tensor(rng.standard_normal((8, 1, 8, 8)).astype(np.float32)))
    F.cross_entropy(y, np.array([0, 1, 2, 0, 1, 2, 0, 1])).backward()
    assert get() == before


# --- memory.empty: arrays kept for the next step ---------------------------------------------------------

@pytest.fixture
def an_owner(monkeypatch):
    """A fresh pool with one live owner (as a model's weight), and small arrays counting as big."""
    monkeypatch.setattr(memory, "MIN_BYTES", 0)
    monkeypatch.setattr(memory, "_kept", {})
    monkeypatch.setattr(memory, "_owners", {})
    weight = np.ones(3)
    memory.owned_by(weight)
    return weight


def test_an_array_is_handed_out_again_only_once_nobody_holds_it(an_owner):
    a = memory.empty((4, 5), np.float32)
    b = memory.empty((4, 5), np.float32)
    assert a is not b  # a is still held
    view = a[1:]
    a_id = id(a)
    del a
    c = memory.empty((4, 5), np.float32)
    assert id(c) != a_id and c is not b  # a view of a still holds it
    del view, c
    kept = [id(entry[0]) for entry in memory._kept[((4, 5), np.dtype(np.float32))]]
    assert len(kept) == 3
    d = memory.empty((4, 5), np.float32)
    assert id(d) in kept and d is not b  # a kept array comes back, not the one still held
    assert len(memory._kept[((4, 5), np.dtype(np.float32))]) == 3
    assert memory.empty((4, 5), np.float64).dtype == np.float64  # another dtype: another array
    held = Tensor(memory.empty((2, 2), np.float32))
    assert memory.empty((2, 2), np.float32) is not held.data  # a tensor holding it keeps it


def test_kept_arrays_go_with_the_last_owner(an_owner):
    second_owner = np.ones(2)
    memory.owned_by(second_owner)
    memory._owners.pop(id(an_owner)).detach()  # the fixture's owner stays alive: leave second_owner alone
    a = memory.empty((4, 5), np.float32)
    del a
    assert memory._kept
    del second_owner
    gc.collect()
    assert not memory._kept and not memory._owners
    b, c = memory.empty((4, 5), np.float32), None  # no owner left: plain np.empty, nothing kept
    assert not memory._kept and b.shape == (4, 5)


def test_a_shape_not_asked_for_again_is_let_go(an_owner, monkeypatch):
    monkeypatch.setattr(memory, "STALE_AFTER", 10)
    memory.empty((3, 3), np.float32)
    for _ in range(100):
        memory.empty((2, 2), np.float32)
    assert ((3, 3), np.dtype(np.float32)) not in memory._kept and ((2, 2), np.dtype(np.float32)) in memory._kept


def test_training_steps_reuse_the_kernels_arrays_and_still_agree():
    """Two steps on the fast kernels from the same weights as on the textbook ones: the kept arrays change
    nothing in the numbers, and the second step gets the first step's arrays back."""
    def step(model, x, labels):
        loss = F.cross_entropy(model(Tensor(x)), labels)
        loss.backward()
        return float(loss.item()), [p.grad.copy() for p in model.parameters()]

    x = rng.standard_normal((8, 1, 12, 12)).astype(np.float32)
    labels = np.arange(8) % 3
    minidl.manual_seed(0)
    fast_model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                               nn.Linear(4 * 36, 3))
    minidl.manual_seed(0)
    plain_model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                nn.Linear(4 * 36, 3))
    with minidl.use_kernels("textbook"):
        expected = step(plain_model, x, labels)
    first = step(fast_model, x, labels)
    fast_model.zero_grad()
    second = step(fast_model, x, labels)
    for got in (first, second):
        assert got[0] == pytest.approx(expected[0], rel=1e-5)
        for a, b in zip(got[1], expected[1]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
