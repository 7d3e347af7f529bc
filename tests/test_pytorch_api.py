"""PyTorch's names on minidl: creation, dtypes and devices, the Tensor methods, in-place ops and their
version counter, custom Functions in PyTorch's ctx style, grad_fn, loss modules, the new optimizers and
the optimizers' argument checks, and PyTorch-style programs run through ``minidl.as_torch``."""
import re
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import Function, Tensor, gradcheck, nn, no_grad, optim
from minidl import functional as F

PROGRAMS = Path(__file__).parent / "torch_programs"


# --- creation, dtypes, devices -----------------------------------------------------------------------
def test_creation_shapes_and_default_dtypes():
    assert minidl.randn(()).shape == () and minidl.randn(2, 3).shape == (2, 3) and minidl.randn((2, 3)).shape == (2, 3)
    assert minidl.zeros(4).dtype == minidl.float32 and minidl.ones(2, 2, dtype=minidl.float64).dtype == np.float64
    assert minidl.rand(3, 2).shape == (3, 2) and (0 <= minidl.rand(100).data).all() and (minidl.rand(100).data < 1).all()
    assert minidl.full((), 0.3).shape == () and minidl.full((2,), 0.3).dtype == np.float32
    assert minidl.full((2,), 7).dtype == np.int64 and minidl.arange(1, 11).dtype == np.int64
    assert minidl.arange(0, 1, 0.25).dtype == np.float32 and minidl.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert minidl.tensor([1, 2, 3]).dtype == minidl.long and minidl.tensor([1.0, 2]).dtype == minidl.float
    assert minidl.tensor(np.zeros(2)).dtype == np.float64 and minidl.tensor([1], dtype=minidl.double).dtype == np.float64
    x = minidl.linspace(-1, 1, 5, requires_grad=True)
    assert x.requires_grad and x.dtype == np.float32
    np.testing.assert_allclose(x.data, [-1, -0.5, 0, 0.5, 1])
    a = np.arange(3.0)
    assert minidl.from_numpy(a).data is a and minidl.tensor(a).data is not a  # tensor() copies, as in PyTorch


def test_creation_matches_pytorch():
    torch = pytest.importorskip("torch")
    for ours, theirs in [
        (minidl.linspace(-np.pi, np.pi, 7), torch.linspace(-np.pi, np.pi, 7)),
        (minidl.arange(2, 9, 3), torch.arange(2, 9, 3)),
        (minidl.arange(0.5, 2), torch.arange(0.5, 2)),
        (minidl.full((2, 3), -1.5), torch.full((2, 3), -1.5)),
        (minidl.eye(3, 2), torch.eye(3, 2)),
        (minidl.zeros_like(minidl.ones(2, dtype=minidl.float64)), torch.zeros_like(torch.ones(2, dtype=torch.float64))),
        (minidl.tensor([[1, 2], [3, 4]]), torch.tensor([[1, 2], [3, 4]])),
        (minidl.tensor(True), torch.tensor(True)),
    ]:
        assert ours.shape == tuple(theirs.shape) and str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)


def test_random_creation_is_seeded_by_manual_seed():
    minidl.manual_seed(4)
    a = minidl.randn(5)
    minidl.manual_seed(4)
    assert np.array_equal(a.data, minidl.randn(5).data) and not np.array_equal(a.data, minidl.randn(5).data)


def test_cpu_is_accepted_and_cuda_is_refused_in_one_line():
    assert minidl.cuda.is_available() is False and minidl.accelerator.is_available() is False
    assert minidl.device("cpu") == "cpu" and str(minidl.zeros(1, device="cpu").device) == "cpu"
    minidl.set_default_device("cpu")
    x = minidl.ones(2)
    assert x.to("cpu") is x and x.cpu() is x and x.to(minidl.device("cpu")) is x
    for attempt in (lambda: minidl.device("cuda:0"), lambda: minidl.zeros(2, device="cuda"), lambda: x.cuda(),
                    lambda: x.to("cuda"), lambda: minidl.set_default_device("mps")):
        with pytest.raises(RuntimeError, match=r"minidl runs on the CPU only") as e:
            attempt()
        assert "\n" not in str(e.value)


def test_dtype_conversions_and_clone_keep_the_gradient_flowing():
    x = minidl.tensor([1.5, 2.5], requires_grad=True)
    c = x.clone()
    assert c.data is not x.data and c.grad_fn is not None and c.tolist() == [1.5, 2.5]
    (c * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [3.0, 3.0])
    x.grad = None
    y = x.double()
    assert y.dtype == np.float64 and x.float() is x and x.long().dtype == np.int64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [3.0, 5.0])


# --- Tensor methods ------------------------------------------------------------------------------------
def test_size_is_the_shape_and_numel_counts():
    x = minidl.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.numel() == 24 and minidl.numel(x) == 24 and x.dim() == 3 and len(x) == 2


def test_shape_methods():
    x = minidl.arange(24).reshape(2, 3, 4)
    assert x.view(6, -1).shape == (6, 4) and x.view((4, 6)).shape == (4, 6)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12) and x.flatten(0, 1).shape == (6, 4)
    assert x.unsqueeze(0).shape == (1, 2, 3, 4) and x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert minidl.zeros(1, 3, 1).squeeze().shape == (3,) and minidl.zeros(1, 3, 1).squeeze(-1).shape == (1, 3)
    assert minidl.zeros(2, 3).squeeze(0).shape == (2, 3)  # not of size 1: unchanged, as in PyTorch
    assert x.permute(2, 0, 1).shape == (4, 2, 3) and x.transpose(0, 2).shape == (4, 3, 2)
    assert minidl.transpose(x, 1, 2).shape == (2, 4, 3) and minidl.permute(x, (1, 0, 2)).shape == (3, 2, 4)
    assert minidl.cat([x, x], dim=-1).shape == (2, 3, 8) and minidl.stack([x, x]).shape == (2, 2, 3, 4)


def test_max_and_min_with_dim_return_values_and_indices():
    x = minidl.tensor([[1.0, 5.0, 3.0], [7.0, 0.0, 2.0]])
    values, indices = x.max(dim=1)
    assert values.tolist() == [5.0, 7.0] and indices.tolist() == [1, 0] and indices.dtype == np.int64
    assert x.max().item() == 7.0 and x.min().item() == 0.0
    assert x.min(0).values.tolist() == [1.0, 0.0, 2.0] and x.min(0).indices.tolist() == [0, 1, 1]
    assert x.argmax().item() == 3 and x.argmax(dim=0).tolist() == [1, 0, 0] and x.argmin(1, keepdim=True).shape == (2, 1)
    assert x.sum(axis=0).tolist() == x.sum(dim=0).tolist() == [8.0, 5.0, 5.0]  # NumPy's keyword is an alias


def test_function_spellings_match_the_methods():
    x = minidl.tensor([[0.5, -1.0], [2.0, 0.25]])
    for f, m in [(minidl.sin, x.sin), (minidl.cos, x.cos), (minidl.exp, x.exp), (minidl.abs, x.abs),
                 (minidl.tanh, x.tanh), (minidl.sigmoid, x.sigmoid), (minidl.relu, x.relu)]:
        np.testing.assert_array_equal(f(x).data, m().data)
    np.testing.assert_array_equal(minidl.matmul(input=x, other=x).data, (x @ x).data)
    np.testing.assert_allclose(minidl.clamp(x, max=0.3).data, [[0.3, -1.0], [0.3, 0.25]], rtol=1e-7)
    assert minidl.sum(x, 1).tolist() == [-0.5, 2.25] and minidl.argmax(x).item() == 2
    np.testing.assert_allclose(minidl.pow(x.abs(), minidl.tensor([2, 0])).data, [[0.25, 1], [4, 1]])
    assert x.pow(minidl.tensor([1, 2])).dtype == np.float32  # an integer exponent keeps the float dtype
    assert (x > 0).tolist() == [[True, False], [True, True]] and float(x.sum()) == pytest.approx(1.75)


# --- in place ----------------------------------------------------------------------------------------
def test_in_place_ops_change_the_data_itself():
    x = minidl.ones(3)
    data = x.data
    x -= 0.5
    x += minidl.tensor([1.0, 2.0, 3.0])
    x *= 2
    x /= 4
    x.add_(1, alpha=2).sub_(minidl.ones(3)).mul_(3).div_(3)
    assert x.data is data
    np.testing.assert_allclose(data, [1.75, 2.25, 2.75])
    x.clamp_(max=2.0)
    x[0] = -1
    np.testing.assert_allclose(data, [-1.0, 2.0, 2.0])
    assert x.zero_().tolist() == [0.0, 0.0, 0.0] and x.fill_(2).tolist() == [2.0] * 3 and x._version == 12


def test_in_place_on_a_leaf_that_requires_grad_needs_no_grad():
    w = minidl.ones(2, requires_grad=True)
    for change in (lambda: w.__isub__(1), lambda: w.zero_(), lambda: w.clamp_(0, 1), lambda: w.__setitem__(0, 3)):
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad.*no_grad"):
            change()
    assert w.tolist() == [1.0, 1.0]
    with no_grad():
        w -= 0.25
    assert w.tolist() == [0.75, 0.75] and w.requires_grad and w.is_leaf


def test_in_place_on_a_recorded_tensor_is_refused():
    w = minidl.ones(2, requires_grad=True)
    y = w * 2
    with pytest.raises(RuntimeError, match="part of the graph"):
        y += 1
    c = minidl.zeros(2)
    with pytest.raises(RuntimeError, match="part of the graph"):
        c += w  # the result would need a gradient minidl cannot record


def test_backward_refuses_a_saved_input_changed_in_place():
    w = minidl.tensor([1.0, 2.0], requires_grad=True)
    x = minidl.tensor([3.0, 4.0])
    y = (w * x).sum()  # Mul keeps x for dL/dw = x
    x += 1  # allowed (x needs no grad), but the graph above saved the old x
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation: input 1 of MulBackward"):
        y.backward()


def test_an_optimizer_step_counts_as_an_in_place_change():
    w = nn.Parameter(np.ones(2, dtype=np.float32))
    opt = optim.SGD([w], lr=0.1)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="in-place"):
        loss.backward()


def test_hand_written_sgd_inside_no_grad_changes_the_models_parameters():
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0, 1))
    x, y = minidl.randn(20, 3), minidl.randn(20)
    before = [p.data.copy() for p in model.parameters()]
    arrays = [p.data for p in model.parameters()]
    losses = []
    for _ in range(5):
        loss = nn.MSELoss(reduction="sum")(model(x), y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with no_grad():
            for param in model.parameters():
                param -= 0.01 * param.grad
    for p, a, b in zip(model.parameters(), arrays, before):
        assert p.data is a and not np.allclose(a, b)  # the same arrays, with new values
    assert losses[-1] < losses[0]


# --- custom Functions in PyTorch's style -----------------------------------------------------------------
def cube_on(base):
    """y = scale·x³ written as PyTorch's tutorials write Functions (static methods, a ctx, tensors in and
    out), on ``base``: minidl's Function here, torch.autograd.Function to run the very same code in PyTorch."""

    class Cube(base):
        @staticmethod
        def forward(ctx, x, scale=1.0):
            ctx.save_for_backward(x)
            ctx.scale = scale
            return scale * x**3

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return grad_output * 3 * ctx.scale * x**2, None

    return Cube


Cube = cube_on(Function)


def test_ctx_style_function_gradcheck_and_graph():
    assert Cube.ctx_style and not minidl.ops.Mul.ctx_style
    assert gradcheck(lambda x: Cube.apply(x, 0.5), np.random.default_rng(0).standard_normal((3, 4)))
    x = minidl.tensor([1.0, -2.0], requires_grad=True)
    y = Cube.apply(x * 2)
    assert repr(y.grad_fn) == "<CubeBackward>" and y.grad_fn.needs_input_grad == (True,)
    assert y.grad_fn.next_functions[0][0].name() == "MulBackward"
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [24.0, 96.0])  # d(2x)³/dx = 24x²
    with no_grad():
        assert not Cube.apply(x).requires_grad


def test_ctx_style_errors():
    class TwoGrads(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g, g  # one input, two gradients

    with pytest.raises(RuntimeError, match="returned 2 gradients for 1 inputs"):
        TwoGrads.apply(minidl.ones(2, requires_grad=True)).sum().backward()
    x = minidl.ones(2)
    w = minidl.ones(2, requires_grad=True)
    y = Cube.apply(x) * w + Cube.apply(w)
    with no_grad():
        w += 1
    with pytest.raises(RuntimeError, match="saved tensor of CubeBackward"):
        y.sum().backward()


def test_ctx_style_matches_the_same_op_in_pytorch():
    torch = pytest.importorskip("torch")
    TorchCube = cube_on(torch.autograd.Function)

    a = np.random.default_rng(3).standard_normal(5).astype(np.float32)
    x, t = minidl.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    Cube.apply(x.sin(), 2.0).sum().backward()
    TorchCube.apply(t.sin(), 2.0).sum().backward()
    np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-5)


# --- the graph as PyTorch shows it -------------------------------------------------------------------------
def test_grad_fn_and_next_functions():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    x = minidl.randn(5, 4)
    loss = nn.MSELoss()(model(x), minidl.zeros(5, 2))
    assert x.grad_fn is None and model[0].weight.grad_fn is None
    assert loss.grad_fn.name() == "MSELossBackward" and "grad_fn=<MSELossBackward>" in repr(loss)
    linear, target = loss.grad_fn.next_functions
    assert linear[0].name() == "LinearBackward" and target == (None, 0)
    relu, weight, bias = linear[0].next_functions
    assert relu[0].name() == "ReLUBackward" and type(weight[0]).__name__ == "AccumulateGrad"
    assert weight[0].variable is model[2].weight and bias[0].variable is model[2].bias
    loss.backward()
    with pytest.raises(RuntimeError, match="freed"):
        loss.grad_fn.next_functions


# --- nn ------------------------------------------------------------------------------------------------------
def test_flatten_start_and_end_dim():
    x = minidl.zeros(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60) and nn.Flatten(0, 1)(minidl.zeros(7, 1)).shape == (7,)
    assert nn.Flatten(1, 2)(x).shape == (2, 12, 5) and nn.Flatten(start_dim=-2)(x).shape == (2, 3, 20)
    assert repr(nn.Flatten(0, 1)) == "Flatten(start_dim=0, end_dim=1)"


def test_flatten_arguments_survive_a_model_file(tmp_path):
    model = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0, 1))
    model.save(tmp_path / "m.h5")
    loaded = nn.load_model(tmp_path / "m.h5")
    assert (loaded[1].start_dim, loaded[1].end_dim) == (0, 1) and loaded(minidl.ones(5, 3)).shape == (5,)
    assert nn.Flatten().get_config() == {} and nn.Flatten(end_dim=2).get_config() == {"end_dim": 2}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules_match_pytorch(reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 3)).astype(np.float32)
    labels = np.array([2, 0, 1, 1])
    for ours, theirs, args in [
        (nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction), (a, b)),
        (nn.CrossEntropyLoss(reduction=reduction), torch.nn.CrossEntropyLoss(reduction=reduction), (a, labels)),
    ]:
        x, t = minidl.tensor(args[0], requires_grad=True), torch.tensor(args[0], requires_grad=True)
        y, ty = ours(x, minidl.tensor(args[1])), theirs(t, torch.tensor(args[1]))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-5)
        y.sum().backward()
        ty.sum().backward()
        np.testing.assert_allclose(x.grad, t.grad.numpy(), rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="reduction must be"):
        nn.MSELoss(reduction="avg")


def test_mse_loss_takes_an_integer_target_as_pytorch_does():
    out = minidl.tensor([[1.0, 2.5]], requires_grad=True)
    loss = nn.MSELoss()(out, minidl.arange(1, 3).view(1, -1))
    assert loss.dtype == np.float32 and loss.item() == pytest.approx(0.125)


# --- optimizers ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,options", [
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.8, centered=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-8)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1)),
])
def test_new_optimizers_follow_pytorch_step_by_step(name, options):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    w0, grads = rng.standard_normal(6), rng.standard_normal((8, 6))
    ours, theirs = minidl.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    opt, topt = getattr(optim, name)([ours], **options), getattr(torch.optim, name)([theirs], **options)
    for g in grads:
        ours.grad, theirs.grad = g.copy(), torch.tensor(g)
        opt.step()
        topt.step()
        np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-10, atol=1e-12)
    assert not np.allclose(ours.data, w0)


def test_optimizers_refuse_what_would_train_nothing():
    """Each way of handing an optimizer nothing to train gets one line saying what to pass."""
    model = nn.Sequential(nn.Linear(3, 2))
    params = (p for p in model.parameters())
    list(params)  # a generator read once is empty afterwards
    frozen = [minidl.ones(2), minidl.zeros(3)]
    for cls in (optim.SGD, optim.Adam, optim.RMSprop, optim.Adagrad):
        for wrong, kind, match in [
            (model, TypeError, r"got the model \(Sequential\) itself: pass model.parameters\(\)"),
            (model[0].weight, TypeError, "got a single tensor: pass model.parameters()"),
            (model.parameters, TypeError,
             r"got the method Sequential.parameters itself, not called: pass model.parameters\(\)$"),
            ([model[0]], TypeError, "parameter 0 is a Linear: pass model.parameters()"),
            ([], ValueError, "empty parameter list"),
            (params, ValueError, "empty parameter list .*read.*call it again"),
            (frozen, ValueError, "none of the 2 tensors requires grad"),
            ([model[0].weight * 2], ValueError, "non-leaf tensor"),
        ]:
            with pytest.raises(kind, match=match) as e:
                cls(wrong, lr=0.1)
            assert cls.__name__ in str(e.value) and "\n" not in str(e.value)
    partly_frozen = [model[0].weight, minidl.ones(2)]  # frozen layers among trainable ones: fine, as in PyTorch
    assert len(optim.SGD(partly_frozen, lr=0.1).params) == 2


# --- PyTorch-style programs, run through minidl.as_torch ----------------------------------------------------
def _losses(output):
    return [float(v) for v in re.findall(r"^(?:first|final) loss (\S+)$", output, re.M)]


@pytest.mark.parametrize("program,argv", [
    ("cosine_by_hand.py", []), ("custom_square.py", []), ("tiny_convnet.py", []),
    ("tanh_net_optim.py", ["SGD"]), ("tanh_net_optim.py", ["RMSprop"]), ("tanh_net_optim.py", ["Adagrad"]),
])
def test_pytorch_programs_run_on_minidl_with_only_the_import_changed(program, argv, capsys):
    from minidl import as_torch

    as_torch.run(PROGRAMS / program, argv)
    first, final = _losses(capsys.readouterr().out)
    assert final < 0.1 * first
    import sys

    assert "torch" not in sys.modules or sys.modules["torch"] is not minidl  # the import table is restored
    torch = pytest.importorskip("torch")
    import runpy
    from unittest import mock

    with mock.patch.object(sys, "argv", [program, *argv]):
        runpy.run_path(str(PROGRAMS / program), run_name="__main__")
    # fixed starting weights, no randomness: PyTorch's run takes the same path, up to float32 rounding
    assert _losses(capsys.readouterr().out) == pytest.approx([first, final], rel=1e-4)
    assert torch.__name__ == "torch"


def test_as_torch_from_the_command_line():
    import subprocess
    import sys

    root = Path(__file__).parent.parent
    run = subprocess.run([sys.executable, "-m", "minidl.as_torch", str(PROGRAMS / "cosine_by_hand.py")],
                         capture_output=True, text=True, cwd=root, env={"PYTHONPATH": str(root), "PATH": ""})
    assert run.returncode == 0, run.stderr
    first, final = _losses(run.stdout)
    assert final < 0.1 * first
    usage = subprocess.run([sys.executable, "-m", "minidl.as_torch"], capture_output=True, text=True, cwd=root,
                           env={"PYTHONPATH": str(root), "PATH": ""})
    assert usage.returncode == 1 and "usage: python -m minidl.as_torch program.py" in usage.stderr
