"""The same ops in minidl and PyTorch: values and gradients must agree (skipped when torch is absent)."""
import warnings

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl import functional as F
from tests.test_gradcheck import distinct

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(1)

labels = np.array([0, 2, 1, 2, 0, 1])
index = np.array([[0, 0], [3, 1], [2, 2]])  # columns of a (3, 4), one repeated
rows = np.array([[2, 0, 1, 1, 0]])
weight4 = rng.uniform(0.5, 2.0, 4)



def quiet(fn):
    """``fn`` without the warning PyTorch (and minidl) give for a softmax without ``dim``."""
    def call(*args):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Implicit dimension choice", UserWarning)
            return fn(*args)
    return call


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
    "max": (lambda a: a.max(dim=1).values, lambda a: a.max(dim=1).values, ["distinct(3, 4)"]),
    "reshape": (lambda a: a.reshape(4, 3), lambda a: a.reshape(4, 3), [(3, 4)]),
    "permute": (lambda a: a.permute(1, 2, 0), lambda a: a.permute(1, 2, 0), [(2, 3, 4)]),
    "getitem": (lambda a: a[1:, ::2], lambda a: a[1:, ::2], [(3, 4)]),
    "relu": (F.relu, TF.relu, [(3, 4)]),
    "sigmoid": (F.sigmoid, torch.sigmoid, [(3, 4)]),
    "tanh": (F.tanh, torch.tanh, [(3, 4)]),
    "softmax": (lambda a: F.softmax(a, dim=-1), lambda a: TF.softmax(a, dim=-1), [(3, 4)]),
    "log_softmax": (lambda a: F.log_softmax(a, -1), lambda a: TF.log_softmax(a, dim=-1), [(3, 4)]),
    # without dim: PyTorch's implicit choice (dim 0 for a 3-D input, 1 for 4-D), its warning silenced here
    "softmax_implicit_3d": (quiet(F.softmax), quiet(TF.softmax), [(2, 3, 4)]),
    "log_softmax_implicit_4d": (quiet(F.log_softmax), quiet(TF.log_softmax), [(2, 3, 2, 2)]),
    "softmax_module_implicit_1d": (quiet(minidl.nn.Softmax()), quiet(torch.nn.Softmax()), [(5,)]),
    "log_softmax_axis0": (lambda a: F.log_softmax(a, 0), lambda a: TF.log_softmax(a, dim=0), [(3, 4)]),
    "cross_entropy": (lambda z: F.cross_entropy(z, labels), lambda z: TF.cross_entropy(z, torch.from_numpy(labels)), [(6, 3)]),
    "mse_loss": (F.mse_loss, TF.mse_loss, [(3, 4), (3, 4)]),
    "linear": (F.linear, TF.linear, [(5, 4), (3, 4), (3,)]),
    # the PyTorch names: the same spelling on both sides
    "pow_tensor": (lambda a, p: a.pow(p), lambda a, p: a.pow(p), ["positive(3, 4)", (4,)]),
    "rpow": (lambda p: 2.0**p, lambda p: 2.0**p, [(3,)]),
    "sin": (minidl.sin, torch.sin, [(3, 4)]),
    "cos": (lambda a: a.cos(), lambda a: a.cos(), [(3, 4)]),
    "abs": (minidl.abs, torch.abs, [(3, 4)]),
    "clamp": (lambda a: a.clamp(-0.5, 0.5), lambda a: a.clamp(-0.5, 0.5), [(4, 5)]),
    "clamp_min": (lambda a: minidl.clamp(a, min=0.0), lambda a: torch.clamp(a, min=0.0), [(4, 5)]),
    "cat": (lambda a, b: minidl.cat([a, b], dim=1), lambda a, b: torch.cat([a, b], dim=1), [(3, 2), (3, 4)]),
    "stack": (lambda a, b: minidl.stack([a, b], 1), lambda a, b: torch.stack([a, b], 1), [(3, 2), (3, 2)]),
    "cast": (lambda a: a.float().to(a.dtype), lambda a: a.float().to(a.dtype), [(3, 4)]),
    "shape_names": (lambda a: a.unsqueeze(-1).view(3, 4).flatten().squeeze(), lambda a: a.unsqueeze(-1).view(3, 4).flatten().squeeze(), [(3, 1, 4)]),
    "flatten_range": (lambda a: a.flatten(1, 2), lambda a: a.flatten(1, 2), [(2, 3, 4, 5)]),
    "transpose_swap": (lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [(2, 3, 4)]),
    "sum_dims": (lambda a: a.sum(dim=(0, 2)), lambda a: a.sum(dim=(0, 2)), [(2, 3, 4)]),
    "mean_keepdim": (lambda a: minidl.mean(a, 1, keepdim=True), lambda a: torch.mean(a, 1, keepdim=True), [(3, 4)]),
    "min_dim": (lambda a: a.min(dim=0).values, lambda a: a.min(dim=0).values, ["distinct(3, 4)"]),
    "mse_loss_sum": (lambda a, b: F.mse_loss(a, b, reduction="sum"), lambda a, b: TF.mse_loss(a, b, reduction="sum"), [(3, 4), (3, 4)]),
    "mse_loss_none": (lambda a, b: F.mse_loss(a, b, reduction="none"), lambda a, b: TF.mse_loss(a, b, reduction="none"), [(3, 4), (3, 4)]),
    "cross_entropy_sum": (lambda z: F.cross_entropy(z, labels, reduction="sum"), lambda z: TF.cross_entropy(z, torch.from_numpy(labels), reduction="sum"), [(6, 3)]),
    "cross_entropy_none": (lambda z: F.cross_entropy(z, labels, reduction="none"), lambda z: TF.cross_entropy(z, torch.from_numpy(labels), reduction="none"), [(6, 3)]),
    # tensor functions and ops PyTorch's beginner course uses
    "gather": (lambda a: a.gather(1, index), lambda a: a.gather(1, torch.from_numpy(index)), [(3, 4)]),
    "gather_dim0": (lambda a: minidl.gather(a, 0, rows[:, :4] % 3), lambda a: torch.gather(a, 0, torch.from_numpy(rows[:, :4] % 3)), [(3, 4)]),
    "scatter": (lambda a, s: a.scatter(0, rows, s), lambda a, s: a.scatter(0, torch.from_numpy(rows), s), [(3, 5), (1, 5)]),
    "scatter_value": (lambda a: a.scatter(1, index[:, :1], 2.5), lambda a: a.scatter(1, torch.from_numpy(index[:, :1]), 2.5), [(3, 4)]),
    "scatter_add": (lambda a, s: a.scatter_add(1, index, s), lambda a, s: a.scatter_add(1, torch.from_numpy(index), s), [(3, 4), (3, 2)]),
    "mm": (minidl.mm, torch.mm, [(3, 4), (4, 2)]),
    "t": (lambda a: a.t() * 1, lambda a: a.t() * 1, [(3, 4)]),
    "add_alpha": (lambda a, b: minidl.add(a, b, alpha=2), lambda a, b: torch.add(a, b, alpha=2), [(3, 4), (4,)]),
    "bce": (F.binary_cross_entropy, TF.binary_cross_entropy, ["prob(3, 4)", "prob(3, 4)"]),
    "bce_weight_sum": (lambda p, t: F.binary_cross_entropy(p, t, Tensor(weight4), reduction="sum"),
                       lambda p, t: TF.binary_cross_entropy(p, t, torch.from_numpy(weight4).to(p.dtype), reduction="sum"), ["prob(3, 4)", "prob(3, 4)"]),
    "bce_none": (lambda p, t: F.binary_cross_entropy(p, t, reduction="none"), lambda p, t: TF.binary_cross_entropy(p, t, reduction="none"), ["prob(3, 4)", "prob(3, 4)"]),
    "bce_logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits, [(3, 4), "prob(3, 4)"]),
    "bce_logits_pos_weight": (lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=Tensor(weight4)),
                              lambda x, t: TF.binary_cross_entropy_with_logits(x, t, pos_weight=torch.from_numpy(weight4).to(x.dtype)), [(3, 4), "prob(3, 4)"]),
    "bce_logits_weight_none": (lambda x, t: F.binary_cross_entropy_with_logits(x, t, Tensor(weight4), reduction="none"),
                               lambda x, t: TF.binary_cross_entropy_with_logits(x, t, torch.from_numpy(weight4).to(x.dtype), reduction="none"), [(3, 4), "prob(3, 4)"]),
    "bce_logits_sum": (lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction="sum"), lambda x, t: TF.binary_cross_entropy_with_logits(x, t, reduction="sum"), [(3, 4), "prob(3, 4)"]),
    "smooth_l1": (F.smooth_l1_loss, TF.smooth_l1_loss, [(3, 4), (3, 4)]),
    "smooth_l1_beta_sum": (lambda a, b: F.smooth_l1_loss(a, b, reduction="sum", beta=0.3), lambda a, b: TF.smooth_l1_loss(a, b, reduction="sum", beta=0.3), [(3, 4), (3, 4)]),
    "smooth_l1_beta0_none": (lambda a, b: F.smooth_l1_loss(a, b, reduction="none", beta=0.0), lambda a, b: TF.smooth_l1_loss(a, b, reduction="none", beta=0.0), [(3, 4), (3, 4)]),
    "l1": (F.l1_loss, TF.l1_loss, [(3, 4), (3, 4)]),
    "l1_sum": (lambda a, b: F.l1_loss(a, b, reduction="sum"), lambda a, b: TF.l1_loss(a, b, reduction="sum"), [(3, 4), (3, 4)]),
    "l1_none": (lambda a, b: F.l1_loss(a, b, reduction="none"), lambda a, b: TF.l1_loss(a, b, reduction="none"), [(3, 4), (3, 4)]),
    "softmax_module": (lambda a: minidl.nn.Softmax(dim=0)(a), lambda a: torch.nn.Softmax(dim=0)(a), [(3, 4)]),
    "log_softmax_module": (lambda a: minidl.nn.LogSoftmax(1)(a), lambda a: torch.nn.LogSoftmax(1)(a), [(3, 4)]),
    "bce_module": (lambda p, t: minidl.nn.BCELoss()(p, t), lambda p, t: torch.nn.BCELoss()(p, t), ["prob(3, 4)", "prob(3, 4)"]),
    "bce_logits_module": (lambda x, t: minidl.nn.BCEWithLogitsLoss(reduction="sum")(x, t), lambda x, t: torch.nn.BCEWithLogitsLoss(reduction="sum")(x, t), [(3, 4), "prob(3, 4)"]),
    "l1_module": (lambda a, b: minidl.nn.L1Loss()(a, b), lambda a, b: torch.nn.L1Loss()(a, b), [(3, 4), (3, 4)]),
    "smooth_l1_module": (lambda a, b: minidl.nn.SmoothL1Loss(beta=0.5)(a, b), lambda a, b: torch.nn.SmoothL1Loss(beta=0.5)(a, b), [(3, 4), (3, 4)]),
    "adaptive_avg_pool_10to7": (lambda a: F.adaptive_avg_pool2d(a, 7), lambda a: TF.adaptive_avg_pool2d(a, 7), [(2, 3, 10, 10)]),
    "adaptive_avg_pool_upsample": (lambda a: F.adaptive_avg_pool2d(a, (7, 5)), lambda a: TF.adaptive_avg_pool2d(a, (7, 5)), [(1, 2, 1, 3)]),
    "adaptive_avg_pool_3d_none": (lambda a: F.adaptive_avg_pool2d(a, (None, 4)), lambda a: TF.adaptive_avg_pool2d(a, (None, 4)), [(3, 9, 13)]),
    "adaptive_avg_pool_module": (lambda a: minidl.nn.AdaptiveAvgPool2d((7, 7))(a), lambda a: torch.nn.AdaptiveAvgPool2d((7, 7))(a), [(2, 2, 14, 9)]),
}


def make(spec):
    if isinstance(spec, tuple):
        return rng.standard_normal(spec)
    kind, shape = spec.split("(", 1)
    shape = tuple(int(s) for s in shape.rstrip(")").split(","))
    if kind == "prob":
        return rng.uniform(0.05, 0.95, shape)
    return rng.uniform(0.5, 2.0, shape) if kind == "positive" else distinct(*shape)


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel_set", ["fast", "textbook"])
def test_matches_pytorch(name, dtype, kernel_set):
    import minidl

    ours, theirs, specs = PAIRS[name]
    arrays = [make(s).astype(dtype) for s in specs]
    xs = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    with minidl.use_kernels(kernel_set):
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
    np.testing.assert_allclose(F.log_softmax(Tensor(z), -1).data, TF.log_softmax(torch.tensor(z), -1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(x.grad, t.grad.numpy(), atol=1e-7)
    assert np.isfinite(x.grad).all()


def test_every_op_of_ops_and_functional_is_compared(monkeypatch):
    from minidl import Function, indexing, losses, ops
    from tests.test_gradcheck import all_functions

    used = set()
    original = Function.apply.__func__

    def spy(cls, *args, **kwargs):
        used.add(cls)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Function, "apply", classmethod(spy))
    import minidl

    for kernel_set in ("fast", "textbook"):  # F.relu and F.linear run functional's own ops on the textbook set
        with minidl.use_kernels(kernel_set):
            for ours, _, specs in PAIRS.values():
                ours(*[Tensor(make(s), requires_grad=True) for s in specs])
    # Dropout draws its mask from minidl's generator, so it cannot match torch's; its test compares the mask.
    expected = {c for c in all_functions() if c.__module__ in (ops.__name__, F.__name__, losses.__name__, indexing.__name__)} - {F.Dropout}
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
