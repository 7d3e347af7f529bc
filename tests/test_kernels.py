"""The two kernel sets: the textbook kernels against the fast ones and against the loop definition, the
``use_kernels`` switch, and the wall between the core a student reads and ``minidl/fast``."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl
from minidl import Tensor, fast, kernels, style, textbook
from minidl import functional as F
from minidl.fast import fast_conv
from minidl.models import vgg19
from minidl.textbook import conv2d_loops
from minidl.textbook.convolution import Im2col, col2im, im2col

ROOT = Path(__file__).resolve().parent.parent
rng = np.random.default_rng(11)


def randn(*shape):
    return rng.standard_normal(shape)


def run_both(op, inputs, kwargs, grad_seed=0):
    """op's output and input gradients on the textbook kernels and on the fast ones, float64."""
    results = []
    for kernel_set in (textbook, fast):
        tensors = [None if a is None else Tensor(np.array(a, dtype=np.float64), requires_grad=True) for a in inputs]
        y = getattr(kernel_set, op)(*tensors, **kwargs)
        y.backward(np.random.default_rng(grad_seed).standard_normal(y.shape))
        results.append((y.data, [None if t is None else t.grad for t in tensors]))
    return results


def assert_agree(textbook_result, fast_result, tol=1e-10):
    (y1, grads1), (y2, grads2) = textbook_result, fast_result
    np.testing.assert_allclose(y1, y2, rtol=tol, atol=tol)
    for g1, g2 in zip(grads1, grads2):
        if g1 is not None or g2 is not None:
            np.testing.assert_allclose(g1, g2, rtol=tol, atol=tol)


# (x shape, weight shape, stride, padding, activation): batches, strides that skip the last rows, padding
# wider than the kernel overhang, non-square kernels, 1×1 kernels, a kernel the size of the padded input
CONV_CASES = [
    ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0, None),
    ((3, 2, 6, 5), (4, 2, 3, 3), 1, 1, None),
    ((2, 3, 7, 6), (2, 3, 3, 2), 2, 1, "relu"),
    ((2, 2, 8, 7), (3, 2, 3, 3), (2, 3), (0, 2), None),
    ((4, 5, 4, 4), (6, 5, 1, 1), 1, 0, "relu"),
    ((1, 2, 3, 4), (2, 2, 5, 6), 1, 1, None),
    ((2, 3, 5, 5), (3, 3, 3, 3), 1, 3, "relu"),
]


@pytest.mark.parametrize("x_shape,w_shape,stride,padding,activation", CONV_CASES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_conv2d_textbook_agrees_with_fast_and_with_the_loops(x_shape, w_shape, stride, padding, activation, with_bias):
    x, w = randn(*x_shape), randn(*w_shape)
    b = randn(w_shape[0]) if with_bias else None
    kwargs = dict(stride=stride, padding=padding, activation=activation)
    both = run_both("conv2d", [x, w, b], kwargs)
    assert_agree(*both)
    loops = conv2d_loops(x, w, b, stride, padding)
    if activation == "relu":
        loops = np.maximum(loops, 0)
    np.testing.assert_allclose(both[0][0], loops, rtol=1e-12, atol=1e-12)


def test_conv2d_agrees_on_the_fast_chunked_and_rotated_paths(monkeypatch):
    """The fast kernel's other paths (bands of rows, the rotated kernel, col2im) against the textbook one."""
    x, w, b = randn(2, 3, 9, 8), randn(4, 3, 3, 3), randn(4)
    for rotated_max in (0, 10**6):
        monkeypatch.setattr(fast_conv, "CHUNK_BYTES", 600)
        monkeypatch.setattr(fast_conv, "ROTATED_MAX_CHANNELS", rotated_max)
        assert_agree(*run_both("conv2d", [x, w, b], dict(padding=1, activation="relu")))


def test_conv2d_relu_kink_at_exactly_zero():
    """Pre-activations of exactly 0 (a zero filter and zero bias on channel 1): gradient 0 there in both sets,
    as relu(x) in F.relu."""
    x, w, b = randn(2, 2, 5, 5), randn(3, 2, 3, 3), randn(3)
    w[1], b[1] = 0.0, 0.0
    both = run_both("conv2d", [x, w, b], dict(padding=1, activation="relu"))
    assert_agree(*both)
    (y, (dx, dw, db)), _ = both
    assert np.all(y[:, 1] == 0) and not dw[1].any() and db[1] == 0
    x_t, w_t, b_t = (Tensor(a, requires_grad=True) for a in (x, w, b))
    F.relu(textbook.conv2d(x_t, w_t, b_t, padding=1)).backward(np.random.default_rng(0).standard_normal(y.shape))
    np.testing.assert_allclose(dw, w_t.grad, rtol=1e-12, atol=1e-12)


def test_conv2d_skips_the_gradients_nobody_asked_for():
    x, w = Tensor(randn(1, 2, 4, 4)), Tensor(randn(3, 2, 3, 3), requires_grad=True)
    textbook.conv2d(x, w, padding=1).sum().backward()
    assert x.grad is None and w.grad.shape == (3, 2, 3, 3)
    x.requires_grad, w.requires_grad, w.grad = True, False, None
    textbook.conv2d(x, w, padding=1).sum().backward()
    assert w.grad is None and x.grad.shape == (1, 2, 4, 4)


@pytest.mark.parametrize("x_shape,kernel,stride", [
    ((2, 3, 4, 6), 2, None),
    ((1, 2, 7, 5), 3, 2),  # overlapping windows, odd sizes, a last row no window reaches
    ((2, 2, 6, 7), (2, 3), (1, 2)),
    ((1, 1, 5, 5), 5, None),
])
@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
def test_pooling_textbook_agrees_with_fast(op, x_shape, kernel, stride):
    assert_agree(*run_both(op, [randn(*x_shape)], dict(kernel_size=kernel, stride=stride)))


def test_max_pool_ties_go_to_the_first_element_in_row_major_order():
    """Windows full of ties (integers 0..2): the same winner in both sets, the first of the window."""
    x = np.random.default_rng(5).integers(0, 3, (2, 3, 6, 6)).astype(np.float64)
    x[0, 0, :2, :2] = 7.0  # a window of four equal maxima: (0, 0) wins
    for kernel, stride in [(2, None), (3, 1), ((2, 3), (2, 1))]:
        both = run_both("max_pool2d", [x], dict(kernel_size=kernel, stride=stride))
        assert_agree(*both)
    t = Tensor(x, requires_grad=True)
    textbook.max_pool2d(t, 2).sum().backward()
    np.testing.assert_array_equal(t.grad[0, 0, :2, :2], [[1, 0], [0, 0]])
    assert t.grad.sum() == 2 * 3 * 3 * 3  # one winner per window


def test_max_pool_overlapping_windows_sum_at_a_shared_winner():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # the centre is the maximum of all four 2×2 windows (stride 1)
    t = Tensor(x, requires_grad=True)
    textbook.max_pool2d(t, 2, stride=1).backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    assert t.grad[0, 0, 1, 1] == 10.0 and t.grad.sum() == 10.0


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (3, 4, 2, 7), (2, 1, 1, 1)])
def test_gram_textbook_agrees_with_fast(shape):
    assert_agree(*run_both("gram_matrix", [randn(*shape)], {}))


def test_im2col_is_the_transpose_of_col2im():
    """<im2col(x), c> = <x, col2im(c)> for all x, c: col2im is im2col's adjoint, hence its backward."""
    for kernel, stride, padding in [((3, 3), (1, 1), (1, 1)), ((2, 3), (2, 1), (0, 2)), ((3, 2), (3, 2), (2, 0))]:
        x = randn(2, 3, 7, 6)
        cols = im2col(x, kernel, stride, padding)
        c = randn(*cols.shape)
        np.testing.assert_allclose(np.sum(cols * c), np.sum(x * col2im(c, x.shape, kernel, stride, padding)), rtol=1e-12)


def test_a_convolution_built_from_im2col_and_matmul():
    """The differentiable Im2col lets a convolution be written with autograd doing the backward:
    y = W (O, C·kh·kw) @ Im2col(x), in the (O, N·H_out·W_out) layout of Conv2d's product."""
    x, w = randn(2, 3, 5, 4), randn(4, 3, 3, 3)
    xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    y = wt.reshape(4, 27) @ Im2col.apply(xt, kernel_size=3, padding=1)  # (4, 2·5·4)
    r = randn(4, 2 * 5 * 4)
    y.backward(r)
    ref_x, ref_w = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    yr = textbook.conv2d(ref_x, ref_w, padding=1)  # (2, 4, 5, 4): images first
    yr.backward(r.reshape(4, 2, 5, 4).transpose(1, 0, 2, 3))
    np.testing.assert_allclose(y.data, yr.data.transpose(1, 0, 2, 3).reshape(4, -1), rtol=1e-12)
    np.testing.assert_allclose(xt.grad, ref_x.grad, rtol=1e-12)
    np.testing.assert_allclose(wt.grad, ref_w.grad, rtol=1e-12)


# --- whole networks under both switches --------------------------------------------------------------------

def test_vgg19_features_and_input_gradients_agree_under_both_switches():
    model = vgg19(seed=0)
    for p in model.parameters():
        p.data = p.data.astype(np.float64)
    model.requires_grad_(False)
    image = np.random.default_rng(2).random((2, 3, 32, 32))
    layers = ["block1_conv1", "block2_pool", "block4_conv1", "block5_pool"]
    results = {}
    for name in ("textbook", "fast"):
        with minidl.use_kernels(name):
            x = Tensor(model.preprocess(image), requires_grad=True)
            feats = model.extract(x, layers)
            loss = sum((style.gram_matrix(f) ** 2).sum() for f in feats.values())
            loss.backward()
            results[name] = ({k: v.data for k, v in feats.items()}, x.grad)
    (feats_t, grad_t), (feats_f, grad_f) = results["textbook"], results["fast"]
    for k in layers:
        assert np.abs(feats_t[k]).max() > 0
        np.testing.assert_allclose(feats_t[k], feats_f[k], rtol=1e-10, atol=1e-10 * np.abs(feats_f[k]).max())
    assert np.abs(grad_f).max() > 0
    np.testing.assert_allclose(grad_t, grad_f, rtol=1e-10, atol=1e-10 * np.abs(grad_f).max())


# --- the switch ----------------------------------------------------------------------------------------------

def test_use_kernels_as_a_call_and_as_a_context_manager():
    assert kernels.selected() == "fast" and kernels.active() is fast
    try:
        minidl.use_kernels("textbook")
        assert kernels.active() is textbook
        with minidl.use_kernels("fast"):
            assert kernels.active() is fast
        assert kernels.selected() == "textbook"
    finally:
        minidl.use_kernels("fast")
    with minidl.use_kernels("textbook") as chosen:
        assert kernels.selected() == "textbook" and chosen is not None
    assert kernels.selected() == "fast"


def test_use_kernels_restores_after_an_error_and_rejects_unknown_names():
    with pytest.raises(RuntimeError):
        with minidl.use_kernels("textbook"):
            raise RuntimeError("inside")
    assert kernels.selected() == "fast"
    with pytest.raises(ValueError, match="unknown kernel set 'quick'"):
        minidl.use_kernels("quick")
    assert kernels.selected() == "fast"


@pytest.mark.parametrize("name", ["textbook", "fast"])
def test_the_public_ops_run_on_the_selected_kernels(name):
    """F.conv2d, F.max_pool2d, F.avg_pool2d and style.gram_matrix record the selected set's Function."""
    x = Tensor(randn(1, 2, 4, 4), requires_grad=True)
    w = Tensor(randn(3, 2, 3, 3))
    expected = {"textbook": "minidl.textbook.", "fast": "minidl.fast."}[name]
    with minidl.use_kernels(name):
        outputs = [F.conv2d(x, w, padding=1), F.max_pool2d(x, 2), F.avg_pool2d(x, 2), style.gram_matrix(x),
                   minidl.nn.Conv2d(2, 3, 3)(x)]
    for y in outputs:
        assert type(y._ctx).__module__.startswith(expected), type(y._ctx)


def run_python(code, **env):
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    if "MINIDL_KERNELS" not in env:
        environment.pop("MINIDL_KERNELS", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_minidl_kernels_environment_variable():
    code = ("import minidl, numpy as np; from minidl import functional as F\n"
            "y = F.conv2d(minidl.Tensor(np.ones((1, 1, 3, 3)), requires_grad=True), np.ones((1, 1, 2, 2)))\n"
            "print(type(y._ctx).__module__)")
    assert run_python(code, MINIDL_KERNELS="textbook") == "minidl.textbook.convolution"
    assert run_python(code, MINIDL_KERNELS="fast") == "minidl.fast.fast_conv"
    assert run_python(code) == "minidl.fast.fast_conv"
    bad = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT), "MINIDL_KERNELS": "turbo"})
    assert bad.returncode != 0 and "MINIDL_KERNELS='turbo'" in bad.stderr


def test_importing_minidl_does_not_load_the_fast_kernels():
    """One fresh process, importing more and more of minidl: minidl.fast never appears in sys.modules, not
    even after a convolution on the textbook kernels."""
    code = ("import sys\n"
            "def fast(): return sorted(m for m in sys.modules if m.startswith('minidl.fast'))\n"
            "import minidl.autograd; print('autograd', fast())\n"
            "import minidl; print('minidl', fast())\n"
            "import minidl.textbook, minidl.nn, minidl.optim, minidl.style, minidl.models; print('more', fast())\n"
            "import numpy as np; minidl.use_kernels('textbook')\n"
            "minidl.functional.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))); print('conv', fast())\n"
            "minidl.use_kernels('fast')\n"
            "minidl.functional.conv2d(np.ones((1, 1, 3, 3)), np.ones((1, 1, 2, 2))); print('fast', fast() != [])\n")
    assert run_python(code).splitlines() == ["autograd []", "minidl []", "more []", "conv []", "fast True"]


STUDENT_FILES = ["autograd.py", "ops.py", "functional.py", "optim.py", "nn", "textbook"]


def test_the_files_a_student_reads_import_nothing_from_fast():
    files = []
    for name in STUDENT_FILES:
        path = ROOT / "minidl" / name
        files += sorted(path.glob("*.py")) if path.is_dir() else [path]
    assert len(files) >= 10
    pattern = re.compile(r"^\s*(from\s+(\.+|minidl\.)fast\b|import\s+minidl\.fast\b|from\s+\.+\s+import\s+.*\bfast\b)", re.M)
    offenders = [str(f.relative_to(ROOT)) for f in files if pattern.search(f.read_text())]
    assert not offenders, f"these files import minidl.fast: {offenders}"
    assert pattern.search("from ..fast import parallel\n")  # the pattern does catch an import


def test_the_textbook_package_exports_exactly_the_five_ops():
    assert sorted(textbook.__all__) == sorted(["conv2d", "max_pool2d", "avg_pool2d", "gram_matrix", "conv2d_loops"])
    assert all(callable(getattr(textbook, name)) for name in textbook.__all__)
    for name in ("conv2d", "max_pool2d", "avg_pool2d", "gram_matrix"):  # one signature for both sets
        import inspect
        assert inspect.signature(getattr(textbook, name)) == inspect.signature(getattr(fast, name)), name


def test_no_two_modules_share_a_file_name():
    names = [p.name for p in (ROOT / "minidl").rglob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_the_learners_files_stay_short():
    for name in ("autograd.py", "ops.py", "functional.py", "losses.py", "indexing.py", *[f"textbook/{p.name}" for p in (ROOT / "minidl/textbook").glob("*.py")]):
        lines = len((ROOT / "minidl" / name).read_text().splitlines())
        assert lines <= 360, f"minidl/{name} has {lines} lines"
