"""Optimizer steps against updates computed by hand from the published formulas."""
import numpy as np
import pytest

import minidl
from minidl import nn, optim


def param(values):
    p = nn.Parameter(np.array(values, dtype=np.float64))
    return p


def test_sgd_plain_step():
    p = param([1.0, -2.0])
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.array([0.5, 1.0])
    opt.step()
    np.testing.assert_allclose(p.data, [1.0 - 0.05, -2.0 - 0.1])


def test_sgd_momentum_and_weight_decay_by_hand():
    p = param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    theta, v = 1.0, 0.0
    for g in [0.5, -0.2, 0.3]:
        p.grad = np.array([g])
        opt.step()
        d = g + 0.01 * theta
        v = 0.9 * v + d
        theta -= 0.1 * v
        np.testing.assert_allclose(p.data, [theta], rtol=1e-12)


def test_sgd_nesterov_by_hand():
    p = param([1.0, -0.5])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True)
    theta, v = np.array([1.0, -0.5]), np.zeros(2)
    for g in [np.array([0.5, 0.1]), np.array([-0.2, 0.4]), np.array([0.3, -0.3])]:
        p.grad = g
        opt.step()
        v = 0.9 * v + g
        theta = theta - 0.1 * (g + 0.9 * v)  # the look-ahead: plain momentum would step by v
        np.testing.assert_allclose(p.data, theta, rtol=1e-12)
    with pytest.raises(ValueError, match="nesterov=True needs a momentum above 0"):
        optim.SGD([p], lr=0.1, nesterov=True)


def test_rmsprop_momentum_alone_by_hand():
    """momentum without centered: b ← μ b + g / (√v + ε), θ ← θ - lr · b."""
    p = param([1.0, -2.0])
    opt = optim.RMSprop([p], lr=0.01, alpha=0.9, eps=1e-8, momentum=0.8)
    theta, v, b = np.array([1.0, -2.0]), np.zeros(2), np.zeros(2)
    for g in [np.array([0.5, -1.0]), np.array([0.1, 0.3]), np.array([-0.4, 0.2])]:
        p.grad = g
        opt.step()
        v = 0.9 * v + 0.1 * g * g
        b = 0.8 * b + g / (np.sqrt(v) + 1e-8)
        theta = theta - 0.01 * b
        np.testing.assert_allclose(p.data, theta, rtol=1e-12)


def adam_by_hand(grads, theta, lr, b1, b2, eps, placement):
    """The published formulas, written out with m̂ and v̂ (Keras: ε added to √v before the bias correction)."""
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        if placement == "keras":
            theta = theta - lr * np.sqrt(1 - b2**t) / (1 - b1**t) * m / (np.sqrt(v) + eps)
        else:
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
            theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        yield theta


@pytest.mark.parametrize("kernels", ["fast", "textbook"])  # the in-place step of minidl.fast, the plain one
@pytest.mark.parametrize("placement", ["keras", "torch"])
@pytest.mark.parametrize("eps", [1e-7, 0.1])
def test_adam_by_hand(placement, eps, kernels):
    p = param([0.5, -1.0])
    opt = optim.Adam([p], lr=0.01, betas=(0.8, 0.9), eps=eps, eps_placement=placement)
    grads = [np.array([0.1, -0.3]), np.array([0.2, 0.4]), np.array([-0.5, 0.1])]
    with minidl.use_kernels(kernels):
        for g, theta in zip(grads, adam_by_hand(grads, np.array([0.5, -1.0]), 0.01, 0.8, 0.9, eps, placement)):
            p.grad = g
            opt.step()
            np.testing.assert_allclose(p.data, theta, rtol=1e-12)


@pytest.mark.parametrize("placement", ["keras", "torch"])
def test_adam_fast_step_equals_the_plain_step_in_float32(placement):
    """minidl/fast/fast_adam.py (moments in place, bias corrections folded) against optim.Adam's plain code,
    step by step, with weight decay, on float32 weights (minidl's default) where rounding differs most."""
    rng = np.random.default_rng(0)
    start = rng.standard_normal((7, 5)).astype(np.float32)
    weights = {name: nn.Parameter(start.copy()) for name in ("fast", "textbook")}
    opts = {name: optim.Adam([w], lr=0.05, eps=1e-3, weight_decay=0.01, eps_placement=placement)
            for name, w in weights.items()}
    for _ in range(20):
        g = rng.standard_normal(start.shape).astype(np.float32)
        g[0, 0] = 0.0  # an exact zero gradient: m and v decay, the step stays finite
        for name, w in weights.items():
            w.grad = g.copy()
            with minidl.use_kernels(name):
                opts[name].step()
        assert weights["fast"].dtype == weights["textbook"].dtype == np.float32
        np.testing.assert_allclose(weights["fast"].data, weights["textbook"].data, rtol=1e-5, atol=1e-6)
        for key in ("m", "v"):
            np.testing.assert_allclose(opts["fast"].state[0][key], opts["textbook"].state[0][key], rtol=1e-5,
                                       atol=1e-7)
    assert not np.allclose(weights["fast"].data, start)  # the weights did move


def test_adam_fast_step_flushes_subnormal_first_moments_to_zero():
    """Under an exactly-zero gradient m decays by β₁ a step into float32's subnormal range (below 1.2e-38),
    where the CPU's arithmetic is many times slower; every ``FLUSH_EVERY`` steps the fast step sets such an m
    to 0 (as TensorFlow's flush-to-zero threads do), the plain step keeps it. Everything else agrees: the
    moments to the bit (the fast step computes them in the plain step's order; no weight decay, so the
    gradients are the same), the weights to rounding."""
    from minidl.fast.fast_adam import FLUSH_EVERY

    tiny = np.finfo(np.float32).tiny
    start = np.array([0.5, -0.25, 1.0], np.float32)
    weights = {name: nn.Parameter(start.copy()) for name in ("fast", "textbook")}
    opts = {name: optim.Adam([w], lr=0.01) for name, w in weights.items()}
    for name, w in weights.items():  # one ordinary step creates the moments
        w.grad = np.array([0.1, -0.2, 0.3], np.float32)
        with minidl.use_kernels(name):
            opts[name].step()
        opts[name].state[0]["m"][:] = [1.05 * tiny, -1.1 * tiny, 1e-3]  # just above the subnormal range

    def steps(count):
        for _ in range(count):
            for name, w in weights.items():
                w.grad = np.array([0.0, 0.0, 0.2], np.float32)
                with minidl.use_kernels(name):
                    opts[name].step()
        return opts["fast"].state[0]["m"], opts["textbook"].state[0]["m"]

    assert FLUSH_EVERY > 2
    m_fast, m_plain = steps(FLUSH_EVERY - 2)  # up to step FLUSH_EVERY - 1: subnormals, not flushed yet
    assert 0 < abs(m_plain[0]) < tiny and 0 < abs(m_plain[1]) < tiny  # the plain step made subnormals
    np.testing.assert_array_equal(m_fast, m_plain)
    m_fast, m_plain = steps(1)  # step FLUSH_EVERY flushes them
    assert 0 < abs(m_plain[0]) < tiny and 0 < abs(m_plain[1]) < tiny
    np.testing.assert_array_equal(m_fast[:2], 0.0)
    assert m_fast[2] == m_plain[2] and m_fast[2] > tiny  # normal moments are untouched
    np.testing.assert_array_equal(opts["fast"].state[0]["v"], opts["textbook"].state[0]["v"])
    np.testing.assert_allclose(weights["fast"].data, weights["textbook"].data, rtol=1e-6)
    m_fast, m_plain = steps(1)  # and they stay 0 under a zero gradient
    np.testing.assert_array_equal(m_fast[:2], 0.0)


@pytest.mark.parametrize("workers, piece", [(2, 20), (3, 20), (2, 4)])  # 35 elements: ranges of 17-18, 11-12
def test_adam_fast_step_split_over_workers_gives_the_same_bits(monkeypatch, workers, piece):
    """fast_adam cuts a large parameter into one range per worker (and each range into pieces of at most
    ``piece`` elements); each element's update reads only that element, so the split step must equal the
    step in one piece bit for bit, float32, over several steps."""
    from minidl.fast import fast_adam, parallel

    monkeypatch.setattr(parallel, "WORKERS", workers)
    if not parallel.available():
        pytest.skip("NumPy's BLAS thread count cannot be set here: nothing is split")
    ranges, pieces = [], []
    each, passes = parallel.each, fast_adam._passes
    monkeypatch.setattr(parallel, "each", lambda fn, n: each(lambda lo, hi: (ranges.append((lo, hi)), fn(lo, hi)), n))
    monkeypatch.setattr(fast_adam, "_passes", lambda theta, *rest: (pieces.append(theta.size), passes(theta, *rest)))
    # the unsplit step passes over all 35 elements at once; the split one over pieces of at most `piece`
    rng = np.random.default_rng(1)
    start = rng.standard_normal((7, 5)).astype(np.float32)
    weights = {split: nn.Parameter(start.copy()) for split in (True, False)}
    opts = {split: optim.Adam([w], lr=0.05, eps=1e-3) for split, w in weights.items()}
    for _ in range(5):
        g = rng.standard_normal(start.shape).astype(np.float32)
        g[3, 1] = 0.0
        for split, w in weights.items():
            monkeypatch.setattr(fast_adam, "SPLIT_ELEMENTS", 10 if split else 10**9)
            monkeypatch.setattr(fast_adam, "PIECE_ELEMENTS", piece if split else 10**9)
            w.grad = g.copy()
            with minidl.use_kernels("fast"):
                opts[split].step()
        np.testing.assert_array_equal(weights[True].data, weights[False].data)
        for key in ("m", "v"):
            np.testing.assert_array_equal(opts[True].state[0][key], opts[False].state[0][key])
    assert len(ranges) == 5 * workers and sorted(ranges)[0][0] == 0 and max(hi for _, hi in ranges) == start.size
    assert sorted(pieces)[-5:] == [start.size] * 5 and max(sorted(pieces)[:-5]) <= piece
    assert sum(pieces) == 5 * 2 * start.size  # both optimizers' five steps, every element once
    assert not np.allclose(weights[True].data, start)


def test_adam_defaults_to_keras_eps_placement_and_the_two_differ_with_a_large_eps():
    grads = [np.array([1e-3, -2e-3])] * 3
    keras, torch = param([0.0, 0.0]), param([0.0, 0.0])
    default = param([0.0, 0.0])
    opts = [optim.Adam([keras], eps=0.1, eps_placement="keras"), optim.Adam([torch], eps=0.1, eps_placement="torch"),
            optim.Adam([default], eps=0.1)]
    for g in grads:
        for p, opt in zip((keras, torch, default), opts):
            p.grad = g
            opt.step()
    assert np.array_equal(default.data, keras.data)
    # at t = 1 Keras's ε acts as ε / √(1 - β₂) ≈ 32 ε: its steps are much smaller while √v is below ε
    assert np.all(np.abs(keras.data) < 0.2 * np.abs(torch.data))
    with pytest.raises(ValueError, match="eps_placement"):
        optim.Adam([keras], eps_placement="tf")


def test_adam_weight_decay_adds_l2_gradient():
    p, q = param([1.0]), param([1.0])
    a = optim.Adam([p], lr=0.1, weight_decay=0.5)
    b = optim.Adam([q], lr=0.1)
    p.grad, q.grad = np.array([0.2]), np.array([0.2 + 0.5 * 1.0])
    a.step()
    b.step()
    np.testing.assert_allclose(p.data, q.data)


def test_step_skips_parameters_without_gradient_and_updates_in_place():
    p, q = param([1.0]), param([2.0])
    data_before = p.data
    opt = optim.Adam([p, q])
    p.grad = np.array([1.0])
    opt.step()
    assert q.data[0] == 2.0 and p.data is data_before and p.data[0] != 1.0


def test_zero_grad_and_bad_arguments():
    p = param([1.0])
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.array([1.0])
    opt.zero_grad()
    assert p.grad is None
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([p], lr=0)


def test_training_reduces_the_loss():
    import minidl
    from minidl import Tensor
    from minidl import functional as F

    minidl.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    for opt in (optim.SGD(model.parameters(), lr=0.1, momentum=0.9), optim.Adam(model.parameters(), lr=0.01)):
        first = None
        for _ in range(50):
            loss = F.cross_entropy(model(Tensor(x)), y)
            first = first if first is not None else loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
        assert loss.item() < 0.5 * first


@pytest.mark.parametrize("make", [lambda ps: optim.Adam(ps), lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: optim.SGD(ps, lr=0.1)])
def test_steps_allocate_nothing_parameter_sized(make):
    import tracemalloc

    p = nn.Parameter(np.ones(250_000, dtype=np.float32))  # 1 MB
    opt = make([p])
    p.grad = np.full_like(p.data, 0.5)
    opt.step()  # the first step creates the state buffers
    tracemalloc.start()
    for _ in range(3):
        opt.step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < p.data.nbytes / 10, f"a step allocated {peak} bytes"


def test_exponential_lr_multiplies_the_rate_once_per_step():
    p = nn.Parameter(np.ones(3, dtype=np.float32))
    opt = optim.Adam([p], lr=0.1)
    scheduler = optim.ExponentialLR(opt, gamma=0.5)
    rates = []
    for _ in range(3):
        rates.append(opt.lr)
        scheduler.step()
    assert rates == [0.1, 0.05, 0.025] and opt.lr == 0.0125
    for gamma in (0, -0.5, 1.5):
        with pytest.raises(ValueError, match="gamma"):
            optim.ExponentialLR(opt, gamma)


def test_fit_with_lr_decay_trains_each_epoch_at_the_decayed_rate():
    """fit(lr_decay=γ) is the loop written out: Adam, the same batches, the rate halved after epoch 1."""
    import minidl
    from minidl import Tensor
    from minidl import functional as F
    from minidl.data import DataLoader
    from minidl.training import fit

    rng = np.random.default_rng(0)
    x, y = rng.random((40, 6), dtype=np.float32), rng.integers(0, 3, 40)
    models = []
    for _ in range(2):
        minidl.manual_seed(0)
        models.append(nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)))
    fit(models[0], (x, y), (x, y), epochs=2, batch_size=16, lr=0.01, lr_decay=0.5, seed=3, verbose=False)
    opt = optim.Adam(models[1].parameters(), lr=0.01)
    loader = DataLoader(x, y, batch_size=16, shuffle=True, seed=3)  # a new order each epoch, as in fit
    for lr in (0.01, 0.005):
        opt.lr = lr
        for xb, yb in loader:
            loss = F.cross_entropy(models[1](Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        np.testing.assert_array_equal(a.data, b.data)
