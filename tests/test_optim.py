"""Optimizer steps against updates computed by hand from the published formulas."""
import numpy as np
import pytest

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


def test_adam_by_hand():
    p = param([0.5, -1.0])
    opt = optim.Adam([p], lr=0.01, betas=(0.8, 0.9), eps=1e-7)
    theta, m, v = np.array([0.5, -1.0]), np.zeros(2), np.zeros(2)
    for t, g in enumerate([np.array([0.1, -0.3]), np.array([0.2, 0.4]), np.array([-0.5, 0.1])], start=1):
        p.grad = g
        opt.step()
        m = 0.8 * m + 0.2 * g
        v = 0.9 * v + 0.1 * g * g
        m_hat, v_hat = m / (1 - 0.8**t), v / (1 - 0.9**t)
        theta = theta - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-7)
        np.testing.assert_allclose(p.data, theta, rtol=1e-10)


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
