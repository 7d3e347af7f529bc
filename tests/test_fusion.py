"""minidl/fast/fusion.py: a Sequential's Conv2d + ReLU (+ MaxPool2d) and Linear + ReLU run as one op, with the
same numbers as layer by layer."""
import numpy as np
import pytest

import minidl
from minidl import Tensor, nn
from minidl.fast import fusion

rng = np.random.default_rng(11)


def grads(model, x, run):
    """Output, dL/dx and every parameter's gradient for L = Σ y·c, the model run by ``run``."""
    xt = Tensor(x, requires_grad=True)
    y = run(model, xt)
    y.backward(np.cos(np.arange(y.data.size)).reshape(y.shape).astype(y.data.dtype))
    out = [y.data.copy(), xt.grad.copy()] + [p.grad.copy() for p in model.parameters()]
    for p in model.parameters():
        p.grad = None
    return out


def as_sequential(model, x):
    return model(x)


def layer_by_layer(model, x):  # what Sequential.forward would do without fusing
    for layer in model:
        x = layer(x)
    return x


def counting(monkeypatch, pooled=None):
    """The layers that run fused with their ReLU, in order (a convolution with its pool: the pool also
    recorded in ``pooled``, if given)."""
    calls = []
    conv_relu, conv_relu_pool, linear_relu = fusion._conv_relu, fusion._conv_relu_pool, fusion._linear_relu
    monkeypatch.setattr(fusion, "_conv_relu", lambda conv, x: calls.append(conv) or conv_relu(conv, x))
    monkeypatch.setattr(fusion, "_linear_relu", lambda linear, x: calls.append(linear) or linear_relu(linear, x))

    def with_pool(conv, pool, x):
        calls.append(conv)
        if pooled is not None:
            pooled.append(pool)
        return conv_relu_pool(conv, pool, x)

    monkeypatch.setattr(fusion, "_conv_relu_pool", with_pool)
    return calls


def cnn(dtype):
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 3, 3, padding=1),
                          nn.ReLU(), nn.Flatten(), nn.Linear(3 * 3 * 3, 5), nn.ReLU(), nn.Linear(5, 2))
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(dtype)
    # one filter of the first layer all zeros: its pre-activation is exactly 0 everywhere, ReLU's kink
    model[0].weight.data[1], model[0].bias.data[1] = 0, 0
    return model


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_sequential_gives_the_same_numbers_as_layer_by_layer(monkeypatch, dtype):
    model = cnn(dtype)
    x = rng.standard_normal((5, 2, 6, 6)).astype(dtype)
    calls = counting(monkeypatch)
    fused = grads(model, x, as_sequential)
    assert calls == [model[0], model[3], model[6]]  # both Conv2d + ReLU pairs and the Linear + ReLU ran fused
    plain = grads(model, x, layer_by_layer)
    assert len(calls) == 3  # iterating runs each layer's own forward
    for a, b in zip(fused, plain):
        np.testing.assert_array_equal(a, b)
    with minidl.use_kernels("textbook"):  # and the plain kernels agree
        textbook = grads(model, x, as_sequential)
    assert len(calls) == 3  # the textbook kernels fuse nothing
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for a, b in zip(fused, textbook):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert (fused[0] != 0).any() and (fused[2] != 0).any()


@pytest.mark.parametrize("layers, x_shape", [
    (lambda: [nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)], (3, 2, 6, 6)),
    (lambda: [nn.Conv2d(2, 4, 3, padding=1, activation="relu"), nn.MaxPool2d(2)], (3, 2, 6, 6)),  # Keras's way
    (lambda: [nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2)], (3, 2, 7, 7)),  # overlapping windows
    (lambda: [nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2)], (1, 2, 9, 8)),  # rows left over, one image
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv_relu_and_the_max_pool_after_run_as_one_op_with_the_same_numbers(monkeypatch, layers, x_shape, dtype):
    """The ReLU's mask applied to the pool's gradient instead of the convolution's: the same bits, also at
    ReLU's kink (a filter whose pre-activation is 0 everywhere: its windows' maxima are 0) and where
    overlapping windows share a winner."""
    model = nn.Sequential(*layers())
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(dtype)
    model[0].weight.data[1], model[0].bias.data[1] = 0, 0
    x = rng.standard_normal(x_shape).astype(dtype)
    pooled = []
    calls = counting(monkeypatch, pooled)
    fused = grads(model, x, as_sequential)
    assert calls == [model[0]] and pooled == [model[-1]]
    for a, b in zip(fused, grads(model, x, layer_by_layer)):
        np.testing.assert_array_equal(a, b)
    assert not fused[2][1].any() and fused[2][0].any()  # no gradient through the filter at the kink
    with minidl.no_grad():  # no graph: nothing kept for a backward
        np.testing.assert_array_equal(model(Tensor(x)).data, fused[0])


class OwnMaxPool(nn.MaxPool2d):
    def forward(self, x):
        return super().forward(x) * 2


@pytest.mark.parametrize("pool", [lambda: OwnMaxPool(2), lambda: nn.AvgPool2d(2)])
def test_only_minidl_max_pool_joins_the_fused_convolution(monkeypatch, pool):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), pool())
    x = rng.standard_normal((2, 2, 4, 4))
    pooled = []
    calls = counting(monkeypatch, pooled)
    fused = grads(model, x, as_sequential)
    assert calls == [model[0]] and pooled == []  # the convolution and its ReLU still fused, the pool apart
    for a, b in zip(fused, grads(model, x, layer_by_layer)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("layer, x_shape", [(lambda: nn.Conv2d(3, 3, 3, padding=1), (2, 3, 5, 5)),
                                            (lambda: nn.Linear(4, 4), (3, 4))])
def test_a_layer_used_twice_is_fused_at_both_places_and_its_gradients_sum(monkeypatch, layer, x_shape):
    shared = layer()
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.ReLU())
    x = rng.standard_normal(x_shape)
    calls = counting(monkeypatch)
    fused = grads(model, x, as_sequential)
    assert calls == [shared, shared]
    for a, b in zip(fused, grads(model, x, layer_by_layer)):
        np.testing.assert_array_equal(a, b)


class OwnConv(nn.Conv2d):
    def forward(self, x):
        return super().forward(x) * 2


class OwnReLU(nn.ReLU):
    def forward(self, x):
        return super().forward(x) + 1


@pytest.mark.parametrize("layers", [
    lambda: [nn.Conv2d(2, 2, 3, padding=1, activation="relu"), nn.ReLU()],  # already fused: the ReLU runs on
    lambda: [OwnConv(2, 2, 3, padding=1), nn.ReLU()],  # a subclass may compute something else
    lambda: [nn.Conv2d(2, 2, 3, padding=1), OwnReLU()],
    lambda: [nn.ReLU(), nn.Conv2d(2, 2, 3, padding=1)],  # the ReLU before, not after
    lambda: [nn.Conv2d(2, 2, 3, padding=1), nn.Sigmoid(), nn.ReLU()],
])
def test_only_minidl_conv2d_then_relu_is_fused(monkeypatch, layers):
    model = nn.Sequential(*layers())
    x = rng.standard_normal((2, 2, 4, 4))
    calls = counting(monkeypatch)
    fused = grads(model, x, as_sequential)
    assert calls == []
    for a, b in zip(fused, grads(model, x, layer_by_layer)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("x_shape", [(6, 4), (2, 3, 4)])  # a batch of rows; leading axes (Linear takes any)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_linear_then_relu_runs_as_one_op_with_the_same_numbers(monkeypatch, x_shape, dtype):
    """Also at ReLU's kink: one unit's weights and bias all 0, so its pre-activation is exactly 0 (+0.0 and,
    from a negative bias's sum, -0.0 both count as not > 0): it passes no gradient to its weights or to x."""
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3), nn.ReLU())
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(dtype)
    model[0].weight.data[1], model[0].bias.data[1] = 0, 0
    model[0].weight.data[2], model[0].bias.data[2] = 0, -0.0
    model[0].bias.data[0] = model[2].bias.data[0] = 10  # and one path that is active for every row
    x = rng.standard_normal(x_shape).astype(dtype)
    calls = counting(monkeypatch)
    fused = grads(model, x, as_sequential)
    assert calls == [model[0], model[2]]
    for a, b in zip(fused, grads(model, x, layer_by_layer)):
        np.testing.assert_array_equal(a, b)
    w0_grad = fused[2]
    assert not w0_grad[1:3].any() and w0_grad[0].any()
    with minidl.no_grad():
        np.testing.assert_array_equal(model(Tensor(x)).data, fused[0])
    assert model(Tensor(x, requires_grad=True)).grad_fn.name() == "ReluBackward0"  # PyTorch's name for y's op
    with minidl.no_grad():  # no mask kept without a graph
        assert model(Tensor(x)).grad_fn is None


class OwnLinear(nn.Linear):
    def forward(self, x):
        return super().forward(x) * 2


@pytest.mark.parametrize("layers", [
    lambda: [OwnLinear(3, 2), nn.ReLU()],
    lambda: [nn.Linear(3, 2), OwnReLU()],
    lambda: [nn.ReLU(), nn.Linear(3, 2)],
    lambda: [nn.Linear(3, 2), nn.Sigmoid(), nn.ReLU()],
])
def test_only_minidl_linear_then_relu_is_fused(monkeypatch, layers):
    model = nn.Sequential(*layers())
    x = rng.standard_normal((4, 3))
    calls = counting(monkeypatch)
    fused = grads(model, x, as_sequential)
    assert calls == []
    for a, b in zip(fused, grads(model, x, layer_by_layer)):
        np.testing.assert_array_equal(a, b)

