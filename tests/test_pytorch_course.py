"""What PyTorch's beginner course ("Learn the Basics") uses beyond the basic names: ``out=``, ``mm``, ``t()``,
gather/scatter, binary cross-entropy and the L1 losses at their edges, module traversal, NumPy memory
sharing, backward on a non-scalar; PyTorch's printing (tensors, ``Size``, gradients, grad_fn names, modules);
and PyTorch's defaults (``minidl.set_defaults``). Values are compared with PyTorch where it is installed."""
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import Tensor, nn, no_grad, optim
from minidl import functional as F
from minidl.as_torch import run as run_as_torch

rng = np.random.default_rng(7)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


@pytest.fixture
def torch_names(monkeypatch):
    """Print as under ``python -m minidl.as_torch``: ``torch.Size``, ``dtype=torch.float64``."""
    monkeypatch.setattr(minidl.printing, "MODULE", "torch")


# --- out= ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["matmul", "mm", "mul", "add", "sub", "div", "pow"])
def test_out_writes_into_the_given_tensor_and_returns_it(name):
    a, b = minidl.rand(4, 4) + 0.5, minidl.rand(4, 4) + 0.5
    expected = getattr(minidl, name)(a, b)
    out = minidl.rand(4, 4)
    array, version = out.data, out._version
    assert getattr(minidl, name)(a, b, out=out) is out
    assert out.data is array and out._version == version + 1  # the same memory, changed in place
    np.testing.assert_allclose(out.data, expected.data, rtol=1e-6)


def test_out_may_be_an_input_and_the_numpy_array_behind_it_changes():
    n = np.arange(4.0)
    t = minidl.from_numpy(n)
    minidl.add(t, 1, alpha=2, out=t)
    np.testing.assert_allclose(n, [2, 3, 4, 5])


def test_out_is_refused_when_an_argument_requires_grad_as_in_pytorch(torch):
    a, out = minidl.randn(3, 3, requires_grad=True), minidl.zeros(3, 3)
    with pytest.raises(RuntimeError, match=r"^matmul\(\): functions with out=\.\.\. arguments don't support automatic "
                                           r"differentiation, but one of the arguments requires grad\.$"):
        minidl.matmul(a, a, out=out)
    with pytest.raises(RuntimeError, match="don't support automatic differentiation"):
        ta = torch.randn(3, 3, requires_grad=True)
        torch.matmul(ta, ta, out=torch.zeros(3, 3))
    assert not out.data.any()  # nothing written
    with no_grad():  # outside the graph it is allowed, as in PyTorch
        np.testing.assert_allclose(minidl.mul(a, 2, out=out).data, 2 * a.data)
    leaf = minidl.zeros(3, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        minidl.add(minidl.ones(3, 3), 1, out=leaf)


def test_out_of_another_dtype_or_shape():
    ints = minidl.zeros(2, dtype=minidl.int64)
    with pytest.raises(RuntimeError, match=r"add\(\): result type float32 can't be cast to the desired output type int64"):
        minidl.add(minidl.ones(2), 0.5, out=ints)
    floats = minidl.zeros(2, dtype=minidl.float64)
    minidl.add(minidl.tensor([1, 2]), 1, out=floats)  # int64 into float64: allowed
    assert floats.dtype == np.float64 and floats.tolist() == [2.0, 3.0]
    small = minidl.zeros(2)
    with pytest.warns(UserWarning, match=r"resized"):  # PyTorch resizes the output too, and warns
        minidl.mul(minidl.ones(3, 2), 3, out=small)
    assert small.shape == (3, 2) and small.tolist() == [[3.0, 3.0]] * 3


# --- mm, t, T -------------------------------------------------------------------------------------------------
def test_mm_takes_matrices_only_and_t_transposes_at_most_two_dimensions():
    with pytest.raises(RuntimeError, match=r"mm: self must be a matrix \(2 dimensions\), got shape \(3,\)"):
        minidl.mm(minidl.ones(3), minidl.ones(3, 2))
    with pytest.raises(RuntimeError, match="mat2 must be a matrix"):
        minidl.ones(2, 3).mm(minidl.ones(2, 3, 4))
    v = minidl.ones(3)
    assert v.t() is v and minidl.ones(2, 3).t().shape == (3, 2) and minidl.ones(2, 3, 4).T.shape == (4, 3, 2)
    with pytest.raises(RuntimeError, match="t\\(\\) expects a tensor with <= 2 dimensions, but self is 3D"):
        minidl.ones(2, 3, 4).t()


# --- gather and scatter -----------------------------------------------------------------------------------------
def test_scatter_in_place_and_scatter_add_with_repeated_indices_match_pytorch(torch):
    index = np.array([[0, 1, 2, 0], [2, 0, 0, 1]])  # no position written twice by scatter_
    src = rng.standard_normal((2, 4)).astype(np.float32)
    ours, theirs = minidl.zeros(3, 4), torch.zeros(3, 4)
    assert ours.scatter_(0, index, Tensor(src)) is ours
    theirs.scatter_(0, torch.from_numpy(index), torch.from_numpy(src))
    np.testing.assert_array_equal(ours.data, theirs.numpy())
    repeated = np.array([[1, 1, 1], [0, 2, 0]])  # scatter_add_ is defined for repeats: they add up
    ours, theirs = minidl.ones(2, 3), torch.ones(2, 3)
    ours.scatter_add_(1, repeated, Tensor(src[:, :3]))
    theirs.scatter_add_(1, torch.from_numpy(repeated), torch.from_numpy(src[:, :3]))
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)
    np.testing.assert_array_equal(minidl.zeros(2, 2).scatter_(1, np.array([[1], [0]]), value=7.0).data, [[0, 7], [7, 0]])


def test_gather_sums_the_gradient_of_an_element_picked_twice():
    x = minidl.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    y = x.gather(1, np.array([[2, 2, 0]]))
    assert y.tolist() == [[3.0, 3.0, 1.0]]
    y.backward(np.array([[1.0, 10.0, 100.0]]))
    np.testing.assert_array_equal(x.grad, [[100.0, 0.0, 11.0]])


def test_gather_and_scatter_refuse_bad_indices_in_one_line():
    x = minidl.zeros(3, 4)
    cases = [
        (lambda: x.gather(1, np.array([[4]])), IndexError, r"gather: index values from 4 to 4 are out of range for dimension 1 of size 4"),
        (lambda: x.gather(0, np.array([0, 1])), ValueError, r"gather: index has 1 dimensions, the tensor 2"),
        (lambda: x.gather(0, np.array([[0.5]])), ValueError, r"gather: index must be an integer tensor, got dtype float64"),
        (lambda: x.gather(1, np.zeros((4, 1), int)), ValueError, r"gather: index \(4, 1\) is larger than the tensor \(3, 4\) in dimension 0"),
        (lambda: x.scatter(1, np.zeros((1, 3), int), minidl.ones(1, 2)), ValueError, r"scatter: src \(1, 2\) is smaller than index \(1, 3\)"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message) as e:
            call()
        assert "\n" not in str(e.value)
    w = minidl.zeros(2, 2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"leaf Variable that requires grad .*\(scatter_\)"):
        w.scatter_(0, np.array([[0, 1]]), value=1.0)


# --- binary cross-entropy at its edges ----------------------------------------------------------------------
def test_binary_cross_entropy_at_probabilities_0_and_1_clamps_the_log_as_pytorch(torch):
    p = np.array([0.0, 1.0, 0.0, 1.0, 0.5], dtype=np.float32)
    t = np.array([0.0, 1.0, 1.0, 0.0, 1.0], dtype=np.float32)
    x, tx = Tensor(p.copy(), requires_grad=True), torch.tensor(p, requires_grad=True)
    y = F.binary_cross_entropy(x, t, reduction="none")
    ty = torch.nn.functional.binary_cross_entropy(tx, torch.from_numpy(t), reduction="none")
    np.testing.assert_allclose(y.data, [0, 0, 100, 100, math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-6)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad, [0, 0, -1e12, 1e12, -2], rtol=1e-6)  # (p - t) / max(p(1 - p), 1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"input must be probabilities in \[0, 1\], got values from -0.5 to 2"):
        F.binary_cross_entropy(minidl.tensor([-0.5, 2.0]), minidl.tensor([0.0, 1.0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_with_logits_of_1000_is_exact_and_matches_pytorch(torch, dtype):
    z = np.array([1000.0, -1000.0, 1000.0, -1000.0, 0.0], dtype=dtype)
    t = np.array([1.0, 0.0, 0.0, 1.0, 0.5], dtype=dtype)
    pos_weight = np.array([2.0], dtype=dtype)
    x, tx = Tensor(z.copy(), requires_grad=True), torch.tensor(z, requires_grad=True)
    y = F.binary_cross_entropy_with_logits(x, t, reduction="none", pos_weight=Tensor(pos_weight))
    ty = torch.nn.functional.binary_cross_entropy_with_logits(tx, torch.from_numpy(t), reduction="none",
                                                              pos_weight=torch.from_numpy(pos_weight))
    np.testing.assert_allclose(y.data, [0, 0, 1000, 2000, 1.5 * math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-6)
    y.sum().backward()
    ty.sum().backward()
    assert np.isfinite(x.grad).all()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(x.grad, [0, 0, 1, -2, -0.25], atol=1e-7)


def test_losses_refuse_mismatched_shapes_naming_both():
    for call, name in [(F.binary_cross_entropy, "binary_cross_entropy"), (F.smooth_l1_loss, "smooth_l1_loss"),
                       (F.binary_cross_entropy_with_logits, "binary_cross_entropy_with_logits")]:
        with pytest.raises(ValueError, match=rf"{name}: .*\(3,\) and .*\(2,\)"):
            call(minidl.full((3,), 0.5), minidl.full((2,), 0.5))


# --- modules: traversal, Softmax ----------------------------------------------------------------------------
def _course_network(m):
    """The course's model, built with ``m`` = minidl or torch."""
    class NeuralNetwork(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.flatten = m.nn.Flatten()
            self.linear_relu_stack = m.nn.Sequential(m.nn.Linear(28 * 28, 512), m.nn.ReLU(), m.nn.Linear(512, 512),
                                                     m.nn.ReLU(), m.nn.Linear(512, 10))

        def forward(self, x):
            return self.linear_relu_stack(self.flatten(x))

    return NeuralNetwork()


def test_named_parameters_modules_and_children_are_named_as_in_pytorch(torch):
    ours, theirs = _course_network(minidl), _course_network(torch)
    for method in ("named_parameters", "named_modules", "named_children"):
        assert [n for n, _ in getattr(ours, method)()] == [n for n, _ in getattr(theirs, method)()]
    assert [n for n, _ in ours.named_parameters()][:2] == ["linear_relu_stack.0.weight", "linear_relu_stack.0.bias"]
    assert [type(c).__name__ for c in ours.children()] == ["Flatten", "Sequential"]
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]


def test_a_shared_layer_is_listed_once_as_in_pytorch(torch):
    def shared(m):
        layer = m.nn.Linear(2, 2)
        return m.nn.Sequential(layer, m.nn.ReLU(), layer)

    ours, theirs = shared(minidl), shared(torch)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()] == ["", "0", "1"]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()] == ["0.weight", "0.bias"]
    assert len(ours.parameters()) == 2 and len(ours) == 3  # the layer still runs twice


IMPLICIT = {  # PyTorch's calls without dim, spelled alike in both: (module) -> a function of the input
    "F.softmax": lambda m: m.nn.functional.softmax,
    "F.log_softmax": lambda m: m.nn.functional.log_softmax,
    "nn.Softmax": lambda m: m.nn.Softmax(),
    "nn.LogSoftmax": lambda m: m.nn.LogSoftmax(),
}


def _record(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        y = call()  # the call in this file: the warning must point here, at the user's line
    return y, [(str(w.message), w.category, Path(w.filename).name) for w in caught]


@pytest.mark.parametrize("name", IMPLICIT)
@pytest.mark.parametrize("shape", [(), (5,), (2, 3), (2, 3, 4), (2, 3, 2, 2)])
def test_softmax_without_dim_takes_pytorchs_implicit_dim_and_warns_as_it_does(torch, name, shape):
    x = rng.standard_normal(shape)
    ours, our_warnings = _record(lambda: IMPLICIT[name](minidl)(Tensor(x)))
    theirs, their_warnings = _record(lambda: IMPLICIT[name](torch)(torch.from_numpy(x)))
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-12, atol=1e-15)
    assert [w[:2] for w in our_warnings] == [w[:2] for w in their_warnings] and len(our_warnings) == 1
    # at the caller's line (PyTorch's modules point theirs at torch's own module.py, a frame too deep)
    assert our_warnings[0][2] == Path(__file__).name


def test_softmax_with_dim_does_not_warn(torch):
    x = Tensor(rng.standard_normal((2, 3, 4)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = [F.softmax(x, 2), F.log_softmax(x, dim=0), nn.Softmax(dim=-1)(x), nn.LogSoftmax(1)(x), x.softmax(1)]
    t = torch.from_numpy(x.data)
    expected = [torch.softmax(t, 2), torch.log_softmax(t, 0), torch.softmax(t, -1), torch.log_softmax(t, 1), t.softmax(1)]
    for a, b in zip(y, expected):
        np.testing.assert_allclose(a.data, b.numpy(), rtol=1e-12)


# --- NumPy bridge, backward on a non-scalar ---------------------------------------------------------------------
def test_numpy_and_from_numpy_share_memory_both_ways():
    t = minidl.ones(5)
    n = t.numpy()
    t.add_(1)
    assert n.tolist() == [2.0] * 5
    n[0] = 7
    assert t.tolist()[0] == 7.0
    n = np.ones(5)
    t = minidl.from_numpy(n)
    np.add(n, 1, out=n)
    assert t.tolist() == [2.0] * 5 and t.dtype == np.float64
    w = minidl.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad. Use tensor.detach\(\).numpy\(\)"):
        w.numpy()
    assert w.detach().numpy() is w.data


def test_backward_with_a_gradient_on_a_non_scalar_accumulates_until_zeroed(torch):
    def grads(m):
        inp = m.eye(4, 5, requires_grad=True)
        out = (inp + 1).pow(2).t()
        seen = []
        for zero_first in (False, False, True):
            if zero_first:
                inp.grad.zero_()
            out.backward(m.ones_like(out), retain_graph=True)
            seen.append(np.array(inp.grad.tolist()))
        return seen

    ours, theirs = grads(minidl), grads(torch)
    expected = 2 * (np.eye(4, 5) + 1)  # d/dx Σ (x + 1)² = 2(x + 1)
    for got, want, ref in zip(ours, [expected, 2 * expected, expected], theirs):
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, ref)
    out = (minidl.ones(2, requires_grad=True) * 2)
    out.backward(gradient=minidl.tensor([1.0, 3.0]))
    with pytest.raises(ValueError, match=r"gradient has shape \(3,\), but the tensor has shape \(2,\)"):
        (minidl.ones(2, requires_grad=True) * 2).backward(np.ones(3))


# --- printing ---------------------------------------------------------------------------------------------------
def _values():
    r = np.random.default_rng(3)
    return {
        "floats": np.array([1.0, 2.5], np.float32),
        "matrix": np.array([[1.0, 0.0], [0.0, 1.0]], np.float32),
        "ints": np.array([[1, -20], [300, 4]]),
        "bools": np.array([True, False]),
        "float scalar": np.array(3.5, np.float32),
        "int scalar": np.array(2),
        "tiny": np.array([1e-5, 1.0], np.float32),
        "huge": np.array([1e9, 1.0], np.float32),
        "integers far apart": np.array([1001.0, 1.0], np.float32),
        "integers near": np.array([1000.0, 1.0], np.float32),
        "nan inf": np.array([np.nan, 1.0, -np.inf], np.float32),
        "negative zero": np.array([-0.0, 1.0], np.float32),
        "zeros": np.zeros((2, 3), np.float32),
        "empty": np.zeros(0, np.float32),
        "empty 2-d": np.zeros((0, 3), np.float32),
        "float64": np.array([1.0, 2.0]),
        "int32": np.array([1, 2], np.int32),
        "uint8": np.array([[255, 0]], np.uint8),
        "float16": np.array([1.5, 2.25], np.float16),
        "wide rows": r.standard_normal((3, 20)).astype(np.float32),
        "3-d": r.standard_normal((2, 2, 3)).astype(np.float32),
        "summarized": np.arange(2000, dtype=np.float32) / 7,
        "summarized rows": r.standard_normal((2, 784)).astype(np.float32) / 30,
        "summarized 3-d": r.standard_normal((11, 11, 11)).astype(np.float32),
        "summarized ints": np.arange(1200).reshape(40, 30),
    }


@pytest.mark.parametrize("name", list(_values()))
def test_tensors_print_as_in_pytorch(torch, torch_names, name):
    array = _values()[name]
    assert repr(minidl.tensor(array)) == repr(torch.tensor(array)) == str(minidl.tensor(array))
    if array.dtype.kind == "f":
        assert repr(minidl.tensor(array, requires_grad=True)) == repr(torch.tensor(array, requires_grad=True))


def test_without_as_torch_the_dtype_and_size_are_minidls():
    assert repr(minidl.tensor([1.0], dtype=minidl.float64)) == "tensor([1.], dtype=minidl.float64)"
    assert repr(minidl.zeros(64, 1, 28, 28).shape) == "minidl.Size([64, 1, 28, 28])"


OPS = {  # the grad_fn each op leaves, PyTorch's name: ours (m = minidl or torch, x a (3, 4) leaf, F functional)
    "add": lambda m, x: x + 1,
    "matmul": lambda m, x: x @ x.T,
    "vector matmul": lambda m, x: m.matmul(m.ones(3), x),
    "linear": lambda m, x: m.nn.functional.linear(x, m.ones(2, 4), m.ones(2)),
    "linear without bias": lambda m, x: m.nn.functional.linear(x, m.ones(2, 4)),
    "relu": lambda m, x: m.relu(x),
    "slice": lambda m, x: x[:2],
    "select": lambda m, x: x[0],
    "index": lambda m, x: x[[0, 2]],
    "sum": lambda m, x: x.sum(),
    "sum dim": lambda m, x: x.sum(1),
    "mean dim": lambda m, x: x.mean(0),
    "max": lambda m, x: x.max(),
    "view": lambda m, x: x.view(12),
    "pow": lambda m, x: x ** 2,
    "rpow": lambda m, x: 2 ** x,
    "softmax": lambda m, x: m.softmax(x, 1),
    "cross entropy": lambda m, x: m.nn.functional.cross_entropy(x, m.tensor([0, 1, 3])),
    "mse": lambda m, x: m.nn.functional.mse_loss(x, m.zeros(3, 4)),
    "bce with logits": lambda m, x: m.nn.functional.binary_cross_entropy_with_logits(x, m.zeros(3, 4)),
    "bce": lambda m, x: m.nn.functional.binary_cross_entropy(x.sigmoid(), m.zeros(3, 4)),
    "smooth l1": lambda m, x: m.nn.functional.smooth_l1_loss(x, m.zeros(3, 4)),
    "l1": lambda m, x: m.nn.functional.l1_loss(x, m.zeros(3, 4)),
    "gather": lambda m, x: x.gather(1, m.tensor([[0], [1], [2]])),
    "scatter": lambda m, x: x.scatter(1, m.tensor([[0], [1], [2]]), x[:, :1] * 1),
    "scatter value": lambda m, x: x.scatter(1, m.tensor([[0], [1], [2]]), 5.0),
    "cat": lambda m, x: m.cat([x, x]),
    "clamp": lambda m, x: x.clamp(0, 1),
    "conv": lambda m, x: m.nn.functional.conv2d(x.reshape(1, 1, 3, 4), m.ones(1, 1, 2, 2)),
    "max pool": lambda m, x: m.nn.functional.max_pool2d(x.reshape(1, 1, 3, 4), 2),
}


@pytest.mark.parametrize("name", list(OPS))
def test_grad_fn_names_are_pytorchs(torch, name):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    ours = OPS[name](minidl, minidl.tensor(x, requires_grad=True)).grad_fn
    theirs = OPS[name](torch, torch.tensor(x, requires_grad=True)).grad_fn
    assert ours.name() == type(theirs).__name__
    assert re.fullmatch(rf"<{ours.name()} object at 0x[0-9a-f]+>", repr(ours))


def test_results_with_grad_fn_gradients_and_parameters_print_as_in_pytorch(torch, torch_names):
    x = rng.standard_normal((3, 20)).astype(np.float32) / 3
    w = rng.standard_normal((20, 784)).astype(np.float32) / 30
    ours = [minidl.tensor(x, requires_grad=True), nn.Parameter(w)]
    theirs = [torch.tensor(x, requires_grad=True), torch.nn.Parameter(torch.from_numpy(w))]
    printed = {}
    for (a, p), m in ((ours, minidl), (theirs, torch)):
        y = m.relu(a @ a.T) * 1
        z = m.nn.functional.linear(a, m.ones(5, 20), m.ones(5))
        (y.sum() + z.sum()).backward()
        printed[m] = [repr(y), repr(z), repr(p[:2]), repr(p), repr(a.grad), str(a.grad), f"{y.sum():>9.3f}"]
    assert printed[minidl] == printed[torch]
    assert "grad_fn=<SliceBackward0>" in printed[minidl][2] and "\n       grad_fn" in printed[minidl][2]  # wrapped


def test_size_is_a_tuple_that_prints_as_pytorchs(torch, torch_names):
    x = minidl.zeros(64, 1, 28, 28)
    size = x.shape
    assert isinstance(size, tuple) and size == (64, 1, 28, 28) and x.size() == size and x.size(1) == 1
    assert type(size[1:]) is type(size) and size[1:] == (1, 28, 28) and size[0] == 64
    assert type(size + (3,)) is type(size) and (3,) + size == (3, 64, 1, 28, 28) and size.numel() == 50176
    assert repr(size) == str(size) == repr(torch.zeros(64, 1, 28, 28).shape) == "torch.Size([64, 1, 28, 28])"
    assert repr(minidl.ones(()).shape) == repr(torch.ones(()).shape) == "torch.Size([])"
    assert np.zeros(size).shape == size  # NumPy takes it as the tuple it is


def test_dtype_prints_as_pytorchs_and_works_as_numpys(torch, torch_names):
    x, y = minidl.rand(3, 4), minidl.tensor([1, 2])
    assert str(x.dtype) == str(torch.rand(3).dtype) == "torch.float32" and f"{y.dtype}" == str(torch.tensor([1]).dtype)
    for d in (x.dtype, y.dtype, minidl.zeros(1, dtype=minidl.float64).dtype, minidl.tensor([True]).dtype):
        numpy = np.dtype(d)
        assert d == numpy and numpy == d and d == numpy.type and numpy.type == d and hash(d) == hash(numpy)
        assert np.zeros(2, dtype=d).dtype == numpy and np.ones(1).astype(d).dtype == numpy
        assert (d.kind, d.itemsize, d.name) == (numpy.kind, numpy.itemsize, numpy.name)
        assert d.is_floating_point == (numpy.kind == "f") and d != None and d != "no such dtype"  # noqa: E711
    assert x.dtype == minidl.float32 and x.dtype != minidl.float64 and {np.dtype(np.float32): 1}[x.dtype] == 1


NAMES = ["float32", "float", "float64", "double", "float16", "half", "int64", "long", "int32", "int", "int16",
         "short", "int8", "uint8", "bool"]


@pytest.mark.parametrize("name", NAMES)
def test_dtype_names_print_as_pytorchs_and_work_as_numpys(torch, name, capsys):
    d, theirs = getattr(minidl, name), getattr(torch, name)
    assert repr(d) == str(d) == repr(theirs).replace("torch.", "minidl.")
    numpy = np.dtype(d)
    assert numpy == np.dtype(str(theirs).split(".")[1]) and d == numpy and numpy == d and d == numpy.type
    assert minidl.zeros(3, dtype=d).dtype == d and minidl.ones(2).to(d).dtype == numpy
    assert np.zeros(2, dtype=d).dtype == numpy and np.ones(2).astype(d).dtype == numpy
    assert np.asarray([1, 0], d).dtype == numpy and np.dtype(d) is np.dtype(numpy)
    assert type(d(1)) is numpy.type  # calling it makes a NumPy scalar, as np.float32(1) does
    assert (minidl.tensor([1, 0]).to(d).dtype == d) and minidl.tensor([1, 0]).type(d).dtype == numpy
    assert d is minidl.tensor([1], dtype=d).dtype  # one object per dtype: the tensor's dtype is the name


def _every_layer(m):
    class Net(m.nn.Module):
        def __init__(self):
            super().__init__()
            self.features = m.nn.Sequential(m.nn.Conv2d(1, 6, 5), m.nn.ReLU(), m.nn.MaxPool2d(2),
                                            m.nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=False), m.nn.AvgPool2d(2),
                                            m.nn.AdaptiveAvgPool2d((7, 7)), m.nn.AdaptiveAvgPool2d(1))
            self.head = m.nn.Sequential(m.nn.Flatten(), m.nn.Dropout(0.25), m.nn.Linear(8, 10), m.nn.Sigmoid(),
                                        m.nn.Tanh(), m.nn.Sequential(m.nn.Softmax(dim=1), m.nn.LogSoftmax(1)))
            self.losses = m.nn.Sequential(m.nn.CrossEntropyLoss(), m.nn.MSELoss(reduction="sum"), m.nn.L1Loss(),
                                          m.nn.SmoothL1Loss(), m.nn.BCELoss(), m.nn.BCEWithLogitsLoss())
            self.out = m.nn.Linear(10, 2, bias=False)

    return Net()


def test_models_print_as_in_pytorch(torch):
    assert repr(_every_layer(minidl)) == repr(_every_layer(torch))
    assert str(_course_network(minidl)) == str(_course_network(torch))
    assert str(_course_network(minidl)).splitlines()[3] == "    (0): Linear(in_features=784, out_features=512, bias=True)"


def test_as_torch_prints_torch_names_and_restores_minidls(tmp_path, capsys):
    program = tmp_path / "shapes.py"
    program.write_text("import torch\nx = torch.zeros(2, 3, dtype=torch.float64)\nprint(x.shape, x[:1])\n"
                       "print(torch.float32, torch.float, torch.long, torch.bool, [torch.float64], x.dtype == torch.double)\n")
    run_as_torch(program)
    assert capsys.readouterr().out == ("torch.Size([2, 3]) tensor([[0., 0., 0.]], dtype=torch.float64)\n"
                                       "torch.float32 torch.float32 torch.int64 torch.bool [torch.float64] True\n")
    assert repr(minidl.zeros(1).shape) == "minidl.Size([1])" and repr(minidl.float32) == "minidl.float32"


# --- the defaults: Keras's or PyTorch's -----------------------------------------------------------------------
def test_set_defaults_switches_and_restores():
    assert minidl.get_defaults() == "keras"
    with minidl.set_defaults("torch"):
        assert minidl.get_defaults() == "torch"
        with minidl.set_defaults("keras"):
            assert minidl.get_defaults() == "keras"
        assert minidl.get_defaults() == "torch"
    assert minidl.get_defaults() == "keras"
    with pytest.raises(ValueError, match=r"set_defaults: unknown convention 'tf'; choose one of keras, torch"):
        minidl.set_defaults("tf")
    minidl.set_defaults("torch")
    try:
        assert minidl.get_defaults() == "torch"
    finally:
        minidl.set_defaults("keras")


def _spread(values):
    """(largest |value|, standard deviation): a uniform U(±b) has b and b/√3."""
    values = np.asarray(values, dtype=np.float64).ravel()
    return np.abs(values).max(), values.std()


@pytest.mark.parametrize("make", [lambda m: m.nn.Linear(784, 512), lambda m: m.nn.Conv2d(3, 64, 5)],
                         ids=["Linear", "Conv2d"])
def test_torch_defaults_start_layers_as_pytorch_does(torch, make):
    fan_in = 784 if isinstance(make(minidl), nn.Linear) else 75
    bound = 1 / math.sqrt(fan_in)
    with minidl.set_defaults("torch"):
        ours = make(minidl)
    theirs = make(torch)
    for a, b in ((ours.weight.data, theirs.weight.detach().numpy()), (ours.bias.data, theirs.bias.detach().numpy())):
        (top, std), (their_top, their_std) = _spread(a), _spread(b)
        limit = bound * (1 + 1e-6)  # the bound, rounded to float32
        assert top <= limit and their_top <= limit and top > 0.8 * bound  # the same range, U(±1/√fan_in)
        tolerance = 4 / math.sqrt(a.size)  # a few standard errors of a sample standard deviation
        assert abs(std / (bound / math.sqrt(3)) - 1) < tolerance and abs(std / their_std - 1) < 2 * tolerance
    keras = make(minidl)  # the default convention is Keras's: Glorot uniform, zero bias
    fan_out = keras.weight.shape[0] * (fan_in // keras.weight.shape[1])
    assert _spread(keras.weight.data)[0] > 0.99 * math.sqrt(6 / (fan_in + fan_out)) and not keras.bias.data.any()


def test_torch_defaults_give_adam_pytorchs_eps(torch):
    w = minidl.ones(3, requires_grad=True)
    assert (optim.Adam([w]).eps, optim.Adam([w]).eps_placement) == (1e-7, "keras")
    with minidl.set_defaults("torch"):
        adam = optim.Adam([w], lr=0.1)
        assert (adam.eps, adam.eps_placement) == (1e-8, "torch") and optim.Adam([w], eps=0.5).eps == 0.5
    tw = torch.ones(3, requires_grad=True)
    their = torch.optim.Adam([tw], lr=0.1)
    for g in ([1e-7, 2e-7, -1e-6], [3e-7, 0.0, 1e-7]):  # tiny gradients: where ε's placement shows
        w.grad, tw.grad = np.array(g, np.float32), torch.tensor(g)
        adam.step()
        their.step()
    np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-6)


def test_as_torch_runs_the_program_with_pytorchs_defaults(tmp_path, capsys):
    program = tmp_path / "defaults.py"
    program.write_text("import torch\nlayer = torch.nn.Linear(100, 3)\n"
                       "print(torch.get_defaults(), float(layer.bias.abs().max()) > 0, float(layer.weight.abs().max()) <= 0.1)\n")
    run_as_torch(program)
    assert capsys.readouterr().out == "torch True True\n"
    assert minidl.get_defaults() == "keras"


@pytest.mark.slow
def test_the_course_network_trains_with_sgd_as_in_pytorch(torch):
    """Flatten → 784-512-512-10, SGD lr 1e-3, batch 64: under PyTorch's defaults minidl's test loss follows
    PyTorch's; Keras's larger start learns much faster at this small learning rate (the reason for the switch)."""
    from minidl.datasets import load_fashion_mnist

    images, labels = load_fashion_mnist("train")
    steps, batch = 120, 64
    x = (images[:steps * batch] / 255.0).astype(np.float32)[:, None]
    y = labels[:steps * batch]
    test_x, test_y = (images[-2000:] / 255.0).astype(np.float32)[:, None], labels[-2000:]

    def test_loss(m, convention="keras", seed=0):
        m.manual_seed(seed)
        with minidl.set_defaults(convention):
            model = _course_network(m)
            opt = m.optim.SGD(model.parameters(), lr=1e-3)
        loss_fn = m.nn.CrossEntropyLoss()
        for i in range(steps):
            loss = loss_fn(model(m.tensor(x[i * batch:(i + 1) * batch])), m.tensor(y[i * batch:(i + 1) * batch]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with m.no_grad():
            return float(loss_fn(model(m.tensor(test_x)), m.tensor(test_y)))

    ours = np.mean([test_loss(minidl, "torch", seed) for seed in range(2)])
    theirs = np.mean([test_loss(torch, seed=seed) for seed in range(2)])
    keras = test_loss(minidl, "keras")
    assert abs(ours - theirs) < 0.02, (ours, theirs)
    assert keras < theirs - 0.1, (keras, theirs)
