"""Every op's backward against central finite differences (float64), and the check that none is missing.

``CASES`` maps each ``Function`` subclass to one or more cases ``(fn, inputs)``; ``fn(*inputs)`` must use
that op. Inputs of max-like ops are permutations (no ties), where finite differences would be meaningless.
"""
import importlib
import pkgutil

import numpy as np
import pytest

import minidl
from minidl import Function, Tensor, gradcheck
from minidl import functional as F
from minidl import fast, indexing, losses, ops, style, textbook
from minidl.fast import fast_conv, fast_gram, fast_linear, fast_pool, fast_relu, fusion
from minidl.textbook import convolution as tb_conv
from minidl.textbook import gram as tb_gram
from minidl.textbook import pooling as tb_pool

rng = np.random.default_rng(0)


def randn(*shape):
    return rng.standard_normal(shape)


def positive(*shape):
    return rng.uniform(0.5, 2.0, shape)


def distinct(*shape):
    """Values without ties and away from each other by more than the finite-difference step."""
    return rng.permutation(np.prod(shape)).reshape(shape) / 10.0 + 0.05


def away_from_zero(*shape):
    """For ReLU: no input within the finite-difference step of the kink at 0."""
    x = randn(*shape)
    return np.where(np.abs(x) < 0.1, 0.5, x)


def away_from_bounds(*shape):
    """For clamp(-0.5, 0.5): no input within the finite-difference step of either bound."""
    x = randn(*shape)
    return np.where(np.abs(np.abs(x) - 0.5) < 0.1, 0.2, x)


labels = np.array([0, 2, 1, 2, 0])


def probabilities(*shape):
    """For binary cross-entropy: probabilities away from 0 and 1, where the loss is steep."""
    return rng.uniform(0.05, 0.95, shape)


def smooth_l1_pair(*shape):
    """Inputs whose differences stay away from smooth_l1's kinks at |d| = beta = 1 (and from 0)."""
    a = randn(*shape)
    return [a, a - rng.choice([-2.5, -0.7, -0.3, 0.4, 0.8, 1.6], size=shape)]


gather_index = np.array([[0, 0], [3, 1], [2, 2]])  # rows of a (3, 4): repeated columns get both gradients
scatter_index = np.array([[2, 0, 1, 1, 0]])  # one row of targets (no position written twice)
weights4, weights31 = positive(4), positive(3, 1)

CASES = {
    ops.Add: [
        (lambda a, b: a + b, [randn(3, 4), randn(3, 4)]),
        (lambda a, b: a + b, [randn(3, 4), randn(4)]),  # broadcasting over rows
        (lambda a, b: a + b, [randn(2, 1, 4), randn(3, 1)]),  # both sides broadcast
        (lambda a: a + a * a, [randn(3)]),  # a reused node: contributions from two paths add up
    ],
    ops.Sub: [(lambda a, b: a - b, [randn(3, 4), randn(3, 1)]), (lambda a: 2.0 - a, [randn(3)])],
    ops.Mul: [(lambda a, b: a * b, [randn(3, 4), randn(4)]), (lambda a: a * 3.0, [randn(2, 3)])],
    ops.Div: [(lambda a, b: a / b, [randn(3, 4), positive(3, 1)]), (lambda a: 1.0 / a, [positive(4)])],
    ops.Neg: [(lambda a: -a, [randn(3, 2)])],
    ops.Pow: [
        (lambda a: a**3, [randn(3, 2)]),
        (lambda a: a**-0.5, [positive(4)]),
        (lambda a, p: a**p, [positive(3, 4), randn(4)]),  # a tensor exponent, broadcast: both gradients
        (lambda p: 2.0**p, [randn(3)]),  # a number raised to a tensor
    ],
    ops.Exp: [(lambda a: a.exp(), [randn(3, 2)])],
    ops.Log: [(lambda a: a.log(), [positive(3, 2)])],
    ops.Sqrt: [(lambda a: a.sqrt(), [positive(3, 2)])],
    ops.MatMul: [
        (lambda a, b: a @ b, [randn(3, 4), randn(4, 2)]),
        (lambda a, b: a @ b, [randn(2, 3, 4), randn(2, 4, 5)]),  # batched
        (lambda a, b: a @ b, [randn(2, 3, 4), randn(4, 5)]),  # batch broadcast on the right
        (lambda a, b: a @ b, [randn(4), randn(4, 3)]),  # 1-D left operand
        (lambda a, b: a @ b, [randn(2, 3, 4), randn(4)]),  # 1-D right operand
    ],
    ops.Sum: [
        (lambda a: a.sum(), [randn(3, 4)]),
        (lambda a: a.sum(1), [randn(3, 4)]),
        (lambda a: a.sum(dim=(0, 2), keepdim=True), [randn(2, 3, 4)]),
        (lambda a: a.sum(axis=0, keepdims=True), [randn(2, 3)]),  # NumPy's keywords, accepted as by PyTorch
    ],
    ops.Mean: [(lambda a: a.mean(), [randn(3, 4)]), (lambda a: a.mean(dim=-1, keepdim=True), [randn(3, 4)])],
    ops.Max: [
        (lambda a: a.max(), [distinct(3, 4)]),
        (lambda a: a.max(dim=0).values, [distinct(3, 4)]),
        (lambda a: a.max(1, keepdim=True)[0], [distinct(2, 3, 4)]),
        (lambda a: a.min(dim=-1).values, [distinct(3, 4)]),  # min x = -max(-x)
    ],
    ops.Reshape: [
        (lambda a: a.reshape(6, 2), [randn(3, 4)]),
        (lambda a: a.reshape((2, -1)), [randn(3, 4)]),
        (lambda a: a.view(-1, 2).unsqueeze(0).squeeze().flatten(), [randn(3, 4)]),  # PyTorch's shape names
    ],
    ops.Transpose: [
        (lambda a: a.T, [randn(3, 4)]),
        (lambda a: a.permute(2, 0, 1), [randn(2, 3, 4)]),
        (lambda a: a.transpose(0, 2), [randn(2, 3, 4)]),  # swaps two dimensions, as in PyTorch
    ],
    ops.GetItem: [
        (lambda a: a[1:, ::2], [randn(3, 4)]),
        (lambda a: a[np.array([0, 2, 0])], [randn(3, 4)]),  # a repeated row gets both gradients
    ],
    ops.Sin: [(lambda a: a.sin(), [randn(3, 4)])],
    ops.Cos: [(lambda a: minidl.cos(a), [randn(3, 4)])],
    ops.Abs: [(lambda a: a.abs(), [away_from_zero(3, 4)])],  # |x| has a kink at 0
    ops.Clamp: [
        (lambda a: a.clamp(-0.5, 0.5), [away_from_bounds(3, 4)]),
        (lambda a: a.clamp(min=0.5), [away_from_bounds(3, 4)]),
    ],
    ops.Cat: [
        (lambda a, b: minidl.cat([a, b], dim=1), [randn(3, 2), randn(3, 4)]),
        (lambda a, b: minidl.stack([a, b], dim=-1), [randn(3, 2), randn(3, 2)]),
    ],
    # float64 -> 80-bit long double -> back: exact both ways, so finite differences stay meaningful
    ops.Cast: [(lambda a: a.to(np.longdouble), [randn(3)])],
    F.ReLU: [(F.ReLU.apply, [away_from_zero(3, 4)])],
    F.Sigmoid: [(F.sigmoid, [randn(3, 4)])],
    F.Tanh: [(F.tanh, [randn(3, 4)])],
    F.Softmax: [(lambda a: F.softmax(a, dim=1), [randn(3, 4)]), (lambda a: F.softmax(a, dim=0), [randn(3, 4)])],
    F.LogSoftmax: [(lambda a: F.log_softmax(a, dim=1), [randn(3, 4)]), (lambda a: F.log_softmax(a, dim=0), [randn(3, 4)])],
    F.CrossEntropy: [
        (lambda z: F.cross_entropy(z, labels), [randn(5, 3)]),
        (lambda z: F.cross_entropy(z, labels, reduction="sum"), [randn(5, 3)]),
        (lambda z: F.cross_entropy(z, labels, reduction="none"), [randn(5, 3)]),
    ],
    F.MSELoss: [
        (F.mse_loss, [randn(3, 4), randn(3, 4)]),
        (lambda a, b: F.mse_loss(a, b, reduction="sum"), [randn(3, 4), randn(3, 4)]),
        (lambda a, b: F.mse_loss(a, b, reduction="none"), [randn(3, 4), randn(3, 4)]),
    ],
    losses.BinaryCrossEntropy: [
        (F.binary_cross_entropy, [probabilities(3, 4), probabilities(3, 4)]),  # the target's gradient too
        (lambda p, t: F.binary_cross_entropy(p, t, weight=Tensor(weights4), reduction="sum"),
         [probabilities(3, 4), probabilities(3, 4)]),
        (lambda p, t: F.binary_cross_entropy(p, t, reduction="none"), [probabilities(2, 3), probabilities(2, 3)]),
    ],
    losses.BinaryCrossEntropyWithLogits: [
        (F.binary_cross_entropy_with_logits, [randn(3, 4), probabilities(3, 4)]),
        (lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=Tensor(weights4), reduction="sum"),
         [randn(3, 4), probabilities(3, 4)]),
        (lambda x, t: F.binary_cross_entropy_with_logits(x, t, weight=Tensor(weights31), reduction="none"),
         [randn(3, 4), probabilities(3, 4)]),
    ],
    losses.SmoothL1Loss: [
        (F.smooth_l1_loss, smooth_l1_pair(3, 4)),
        (lambda a, b: F.smooth_l1_loss(a, b, reduction="sum", beta=0.5), smooth_l1_pair(3, 4)),
        (lambda a, b: F.smooth_l1_loss(a, b, reduction="none", beta=0.0), smooth_l1_pair(2, 3)),  # beta 0: L1
    ],
    indexing.Gather: [
        (lambda a: a.gather(1, gather_index), [randn(3, 4)]),
        (lambda a: minidl.gather(a, 0, np.array([[1, 0, 1, 1]])), [randn(3, 4)]),
    ],
    indexing.Scatter: [
        (lambda a, s: a.scatter(0, scatter_index, s), [randn(3, 5), randn(2, 5)]),  # src larger than index
        (lambda a: a.scatter(1, gather_index, 0.5), [randn(3, 4)]),  # a number written
        (lambda a, s: a.scatter_add(1, gather_index, s), [randn(3, 4), randn(3, 2)]),  # repeats add up
    ],
    F.Linear: [
        (F.Linear.apply, [randn(5, 4), randn(3, 4), randn(3)]),
        (F.Linear.apply, [randn(2, 5, 4), randn(3, 4), randn(3)]),  # extra leading axis
        (lambda x, w: F.Linear.apply(x, w, None), [randn(5, 4), randn(3, 4)]),  # no bias
    ],
    # F.linear and F.relu run the fast set's twins by default (minidl.kernels)
    fast_linear.FastLinear: [
        (F.linear, [randn(5, 4), randn(3, 4), randn(3)]),
        (F.linear, [randn(2, 5, 4), randn(3, 4), randn(3)]),
        (lambda x, w: fast_linear.linear(x, w), [randn(5, 4), randn(3, 4)]),
    ],
    fast_relu.FastReLU: [(F.relu, [away_from_zero(3, 4)]), (fast_relu.relu, [away_from_zero(2, 3, 4, 5)])],
}

# Convolution, pooling and the style-transfer losses, in both kernel sets (more variants beside their own
# tests; the two sets are also checked against each other in test_kernels.py).
CONV_CASES = [
    ([randn(2, 3, 5, 4), randn(4, 3, 3, 3), randn(4)], {}),
    ([randn(1, 2, 6, 5), randn(3, 2, 3, 2), None], dict(stride=2, padding=1)),
    ([randn(2, 3, 5, 4), randn(3, 3, 3, 3), randn(3)], dict(padding=1, activation="relu")),
    ([randn(1, 2, 7, 6), randn(2, 2, 2, 3), randn(2)], dict(stride=(2, 1), padding=(0, 2), activation="relu")),
]
POOL_CASES = [
    ([distinct(2, 3, 4, 6)], dict(kernel_size=2)),
    ([distinct(1, 2, 7, 5)], dict(kernel_size=3, stride=2)),  # overlapping windows, odd size
]


def conv_case(conv2d, inputs, options):
    """A gradcheck case for ``conv2d``; a None bias is left out of the checked inputs."""
    if inputs[2] is None:
        return (lambda x, w: conv2d(x, w, **options), inputs[:2])
    return (lambda x, w, b: conv2d(x, w, b, **options), inputs)


def pool_case(pool, inputs, options):
    return (lambda x: pool(x, **options), inputs)


CASES.update({
    fast_conv.FastConv2dFunction: [conv_case(fast.conv2d, *case) for case in CONV_CASES],
    tb_conv.Conv2dFunction: [conv_case(textbook.conv2d, *case) for case in CONV_CASES],
    tb_conv.Im2col: [
        (lambda x: tb_conv.Im2col.apply(x, kernel_size=(3, 2), stride=(1, 1), padding=(1, 1)), [randn(2, 2, 4, 3)]),
        (lambda x: tb_conv.Im2col.apply(x, kernel_size=(3, 3), stride=(2, 2), padding=(0, 0)), [randn(1, 2, 7, 6)]),
    ],
    fusion.ConvReLUMaxPool: [  # a Sequential's Conv2d, ReLU and MaxPool2d as one op
        (lambda x, w, b: fusion.ConvReLUMaxPool.apply(x, w, b, padding=1, kernel_size=2),
         [randn(2, 3, 4, 6), randn(4, 3, 3, 3), randn(4)]),
        (lambda x, w, b: fusion.ConvReLUMaxPool.apply(x, w, b, stride=1, padding=0, kernel_size=3, pool_stride=2),
         [randn(1, 2, 9, 8), randn(3, 2, 3, 3), randn(3)]),
    ],
    fusion.LinearReLU: [  # a Sequential's Linear and ReLU as one op; leading axes as Linear allows them
        (lambda x, w, b: fusion.LinearReLU.apply(x, w, b), [randn(4, 3), randn(5, 3), randn(5)]),
        (lambda x, w: fusion.LinearReLU.apply(x, w, None), [randn(2, 3, 4), randn(2, 4)]),  # Linear(bias=False)
    ],
    fast_pool.FastMaxPool2dFunction: [pool_case(fast.max_pool2d, *case) for case in POOL_CASES],
    tb_pool.MaxPool2dFunction: [pool_case(textbook.max_pool2d, *case) for case in POOL_CASES],
    fast_pool.FastAvgPool2dFunction: [pool_case(fast.avg_pool2d, *case) for case in POOL_CASES],
    tb_pool.AvgPool2dFunction: [pool_case(textbook.avg_pool2d, *case) for case in POOL_CASES],
    fast_gram.FastGram: [(fast.gram_matrix, [randn(2, 3, 4, 5)])],
    tb_gram.Gram: [(textbook.gram_matrix, [randn(2, 3, 4, 5)]), (textbook.gram_matrix, [randn(1, 4, 1, 3)])],
    style.TotalVariation: [(style.total_variation_loss, [distinct(1, 2, 4, 3)])],  # no ties: |d| has a kink at 0
})


def _dropout_case():
    def fn(x):  # reseeding makes every evaluation draw the same mask
        minidl.manual_seed(3)
        return F.dropout(x, 0.4, training=True)
    return fn


CASES[F.Dropout] = [(_dropout_case(), [randn(4, 5)])]
CASES[F.AdaptiveAvgPool2d] = [  # windows that overlap (10 -> 7), repeat (1 -> 7), divide evenly, or are all
    (lambda x: F.adaptive_avg_pool2d(x, 7), [randn(2, 3, 10, 10)]),
    (lambda x: F.adaptive_avg_pool2d(x, (7, 3)), [randn(1, 2, 1, 6)]),
    (lambda x: F.adaptive_avg_pool2d(x, (2, None)), [randn(3, 4, 5)]),
    (lambda x: F.adaptive_avg_pool2d(x, 1), [randn(2, 2, 3, 4)]),
]


def all_functions():
    """Every Function subclass defined anywhere in the minidl package."""
    for info in pkgutil.walk_packages(minidl.__path__, "minidl."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    found, stack = set(), [Function]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub.__module__.startswith("minidl.") and sub not in found:
                found.add(sub)
                stack.append(sub)
    return found


@pytest.mark.parametrize(
    "fn,inputs",
    [case for cases in CASES.values() for case in cases],
    ids=[f"{cls.__name__}-{i}" for cls, cases in CASES.items() for i in range(len(cases))],
)
def test_gradcheck(fn, inputs):
    assert gradcheck(fn, *inputs)


def test_every_op_has_a_gradcheck_case():
    missing = sorted(f"{c.__module__}.{c.__name__}" for c in all_functions() - set(CASES))
    assert not missing, f"ops without a gradcheck case: {missing}"


def test_gradcheck_detects_a_wrong_backward():
    class BadSquare(Function):
        def forward(self, x):
            self.x = x
            return x * x

        def backward(self, g):
            return (g * self.x,)  # should be 2x

    with pytest.raises(AssertionError, match=r"input 0 .*index"):
        gradcheck(lambda x: BadSquare.apply(x), randn(3))


def test_gradcheck_uses_float64_and_leaves_constants_alone():
    seen = []

    def fn(x, c):
        seen.append((x.dtype, c.requires_grad))
        return x * c

    assert gradcheck(fn, randn(3).astype(np.float32), Tensor(randn(3)))
    assert seen[0] == (np.float64, False)


def test_softmax_of_large_logits_is_finite_and_exact():
    """e^1000 overflows: softmax must subtract the row's max first (it cancels in the ratio)."""
    z = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, 999.0], [-1000.0, -1000.0, -1000.0]], dtype=np.float32)
    x = Tensor(z, requires_grad=True)
    y = F.softmax(x, dim=1)
    e1 = np.exp(-1.0)
    expected = np.array([[1, 0, 0], [1 / (2 + e1), 1 / (2 + e1), e1 / (2 + e1)], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(y.data, expected, rtol=1e-6, atol=0)
    w = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    (y * Tensor(w)).sum().backward()  # dL/dz = y ⊙ (w - Σ w y)
    np.testing.assert_allclose(x.grad, expected * (w - (expected * w).sum(axis=1, keepdims=True)), rtol=1e-5,
                               atol=1e-7)
    assert np.isfinite(x.grad).all()
