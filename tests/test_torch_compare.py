"""The same ops in minidl and PyTorch: values and gradients must agree (skipped when torch is absent)."""
import numpy as np
import pytest

from minidl import Tensor
from minidl import functional as F
from tests.test_gradcheck import distinct

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(1)

labels = np.array([0, 2, 1, 2, 0, 1])

# name: (minidl fn, torch fn, input arrays)
PAIRS = {
    "add_broadcast": (lambda a, b: a + b, lambda a, b: a + b, [(3, 4), (4,)]),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [(3, 4), (3, 1)]),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [(2, 3, 4), (3, 1)]),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [(3, 4), "positive(3, 4)"]),
    "neg": (lambda a: -a, lambda a: -a, [(3,)]),
    "pow": (lambda a: a**3, lambda a: a**3, [(3, 4)]),
    "exp": (lambda a: a.exp(), torch.exp, [(3, 4)]),
    "log": (lambda a: a.log(), torch.log, ["positive(3, 4)"]),
    "sqrt": (lambda a: a.sqrt(), torch.sqrt, ["positive(3, 4)"]),
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, [(3, 4), (4, 5)]),
    "matmul_batched": (lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    "matmul_vector": (lambda a, b: a @ b, lambda a, b: a @ b, [(2, 3, 4), (4,)]),
    "sum_axis": (lambda a: a.sum(axis=1, keepdims=True), lambda a: a.sum(dim=1, keepdim=True), [(3, 4)]),
    "mean": (lambda a: a.mean(axis=0), lambda a: a.mean(dim=0), [(3, 4)]),
    "max": (lambda a: a.max(axis=1), lambda a: a.max(dim=1).values, ["distinct(3, 4)"]),
    "reshape": (lambda a: a.reshape(4, 3), lambda a: a.reshape(4, 3), [(3, 4)]),
    "transpose": (lambda a: a.transpose(1, 2, 0), lambda a: a.permute(1, 2, 0), [(2, 3, 4)]),
    "getitem": (lambda a: a[1:, ::2], lambda a: a[1:, ::2], [(3, 4)]),
    "relu": (F.relu, TF.relu, [(3, 4)]),
    "sigmoid": (F.sigmoid, torch.sigmoid, [(3, 4)]),
    "tanh": (F.tanh, torch.tanh, [(3, 4)]),
    "softmax": (F.softmax, lambda a: TF.softmax(a, dim=-1), [(3, 4)]),
    "log_softmax": (F.log_softmax, lambda a: TF.log_softmax(a, dim=-1), [(3, 4)]),
    "log_softmax_axis0": (lambda a: F.log_softmax(a, 0), lambda a: TF.log_softmax(a, dim=0), [(3, 4)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, labels), lambda z: TF.cross_entropy(z, torch.from_numpy(labels)), [(6, 3)]),
    "mse_loss": (F.mse_loss, TF.mse_loss, [(3, 4), (3, 4)]),
    "linear": (F.linear, TF.linear, [(5, 4), (3, 4), (3,)]),
}


def make(spec):
    if isinstance(spec, tuple):
        return rng.standard_normal(spec)
    kind, shape = spec.split("(", 1)
    shape = tuple(int(s) for s in shape.rstrip(")").split(","))
    return rng.uniform(0.5, 2.0, shape) if kind == "positive" else distinct(*shape)


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_pytorch(name, dtype):
    ours, theirs, specs = PAIRS[name]
    arrays = [make(s).astype(dtype) for s in specs]
    xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours(*xs), theirs(*ts)
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(g)
    ty.backward(torch.from_numpy(g))
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    assert y.dtype == dtype
    np.testing.assert_allclose(y.data, ty.detach().numpy(), **tol)
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad, t.grad.numpy(), **tol)


def test_log_softmax_is_stable_for_logits_in_the_hundreds():
    z = np.array([[800.0, 0.0, -800.0], [1000.0, 1000.0, 999.0]], dtype=np.float32)
    x, t = Tensor(z, requires_grad=True), torch.tensor(z, requires_grad=True)
    F.cross_entropy(x, np.array([0, 2])).backward()
    TF.cross_entropy(t, torch.tensor([0, 2])).backward()
    np.testing.assert_allclose(F.log_softmax(Tensor(z)).data, TF.log_softmax(torch.tensor(z), -1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad, t.grad.numpy(), atol=1e-7)
    assert np.isfinite(x.grad).all()


def test_every_op_of_ops_and_functional_is_compared(monkeypatch):
    from minidl import Function, ops
    from tests.test_gradcheck import all_functions

    used = set()
    original = Function.apply.__func__

    def spy(cls, *args, **kwargs):
        used.add(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Function, "apply", classmethod(spy))
    for ours, _, specs in PAIRS.values():
        ours(*[Tensor(make(s), requires_grad=True) for s in specs])
    # Dropout draws its mask from minidl's generator, so it cannot match torch's; its test compares the mask.
    expected = {c for c in all_functions() if c.__module__ in (ops.__name__, F.__name__)} - {F.Dropout}
    assert not expected - used, f"ops without a PyTorch comparison: {sorted(c.__name__ for c in expected - used)}"


def test_dropout_matches_pytorch_given_the_same_mask():
    import minidl

    x = rng.standard_normal((50, 40))
    minidl.manual_seed(5)
    t = Tensor(x, requires_grad=True)
    y = F.dropout(t, 0.3)
    mask = y.data != 0
    ty = torch.tensor(x) * torch.from_numpy(mask) / 0.7  # torch's definition, with our mask
    np.testing.assert_allclose(y.data, ty.numpy())
    y.sum().backward()
    np.testing.assert_allclose(t.grad, mask / 0.7)
    assert abs(mask.mean() - 0.7) < 0.05
