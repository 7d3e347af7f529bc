"""conv2d / max_pool2d / avg_pool2d: against the loop reference, finite differences and PyTorch."""
import tracemalloc

import numpy as np
import pytest

import minidl
from minidl import Tensor, gradcheck, nn, no_grad
from minidl.fast import blas
from minidl.fast import fast_conv as conv
from minidl.fast import flat_conv
from minidl.textbook import conv2d_loops
from minidl import functional as F

rng = np.random.default_rng(0)

# (x shape, weight shape, stride, padding): odd sizes, non-square kernels, strides that skip the last rows,
# padding wider than the kernel overhang, 1×1 kernels, a kernel exactly the size of the padded input
CONV_CASES = [
    ((2, 3, 7, 9), (4, 3, 3, 3), 1, 1),
    ((2, 3, 7, 9), (4, 3, 3, 2), (2, 1), (1, 0)),
    ((1, 2, 5, 5), (3, 2, 5, 5), 1, 0),
    ((3, 2, 8, 6), (5, 2, 1, 1), 2, 0),
    ((2, 3, 11, 10), (4, 3, 3, 3), 3, 2),
    ((1, 1, 4, 4), (2, 1, 6, 6), 1, 1),
    ((2, 4, 6, 7), (3, 4, 2, 4), (1, 3), (2, 1)),
    ((1, 2, 5, 4), (3, 2, 2, 2), 1, 2),
]


@pytest.fixture(params=["im2col", "shifted", "flat"])
def forward_path(request, monkeypatch):
    """Each stride-1 forward through im2col, through the shifted-view GEMMs (whatever the channels), then
    through flat_conv wherever it applies (batches of small images)."""
    if request.param != "flat":
        monkeypatch.setattr(flat_conv, "MAX_PIXELS", 0)
    if request.param == "shifted":
        if not blas.gemm_available(np.float64):
            pytest.skip("no BLAS gemm to call directly here")
        monkeypatch.setattr(conv, "SHIFTED_CHANNELS", (1, 10**9))
    else:
        monkeypatch.setattr(conv, "SHIFTED_CHANNELS", (10**9, 0))
    return request.param


@pytest.fixture
def no_flat(monkeypatch):
    """fast_conv's own paths even for batches of small images (which flat_conv takes otherwise)."""
    monkeypatch.setattr(flat_conv, "MAX_PIXELS", 0)


@pytest.fixture
def tiny_chunks(monkeypatch):
    """Force the chunked path: a budget of a few hundred bytes splits every image into bands of 1-2 rows."""
    monkeypatch.setattr(conv, "CHUNK_BYTES", 300)


def case_arrays(x_shape, w_shape, dtype=np.float64):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, w, b


# --- forward against the loop reference -------------------------------------------------------------------
@pytest.mark.parametrize("budget", [conv.CHUNK_BYTES, 300, 3000])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_matches_reference(monkeypatch, forward_path, budget, x_shape, w_shape, stride, padding):
    # 300 bytes: one or two output rows per chunk; 3000: several whole images per chunk for the small cases
    monkeypatch.setattr(conv, "CHUNK_BYTES", budget)
    x, w, b = case_arrays(x_shape, w_shape)
    y = F.conv2d(x, w, b, stride=stride, padding=padding)
    expected = conv2d_loops(x, w, b, stride=stride, padding=padding)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)


def garbage_empty(shape, dtype):
    """``memory.empty`` that hands out stale memory, as a kept array from an earlier call may be: NaN
    wherever the caller does not write."""
    dtype = np.dtype(dtype)
    return np.full(shape, np.nan if dtype.kind == "f" else 1, dtype=dtype)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding", [case for case in CONV_CASES if case[2] == 1])
def test_conv2d_writes_every_element_of_its_kept_arrays(monkeypatch, forward_path, x_shape, w_shape, stride,
                                                         padding):
    """Kept arrays (``memory.empty``) come back with whatever the last user left in them: every path must
    write each element it reads, the padding around a shifted-view copy of x included."""
    monkeypatch.setattr(conv.memory, "empty", garbage_empty)
    x, w, b = case_arrays(x_shape, w_shape)
    y = F.conv2d(x, w, b, stride=stride, padding=padding, activation="relu")
    np.testing.assert_allclose(y.data, np.maximum(conv2d_loops(x, w, b, stride=stride, padding=padding), 0),
                               rtol=1e-12, atol=1e-12)


def test_conv2d_float32_stays_float32(forward_path):
    x, w, b = (a.astype(np.float32) for a in case_arrays((2, 3, 6, 5), (4, 3, 3, 3)))
    xt, wt, bt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
    y = F.conv2d(xt, wt, bt, padding=1)
    assert y.dtype == np.float32
    y.sum().backward()
    assert xt.grad.dtype == wt.grad.dtype == bt.grad.dtype == np.float32
    np.testing.assert_allclose(y.data, conv2d_loops(x, w, b, padding=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("budget", [10**9, 1000, 50])
def test_chunks_cover_every_output_row_once(monkeypatch, budget):
    monkeypatch.setattr(conv, "CHUNK_BYTES", budget)
    seen = np.zeros((5, 7), int)
    for n0, n1, r0, r1 in conv._chunks(5, 7, bytes_per_row=100):
        assert n1 - n0 == 1 or (r0, r1) == (0, 7)  # several whole images, or rows of one image
        assert (n1 - n0) * (r1 - r0) * 100 <= max(budget, 100)  # within budget (at least one row)
        seen[n0:n1, r0:r1] += 1
    assert (seen == 1).all()


@pytest.mark.parametrize("parts", [1, 2])
@pytest.mark.parametrize("batch_budget", [1, 5000, 20000, 10**9])
def test_whole_image_chunks_are_capped_by_the_batch_budget(monkeypatch, parts, batch_budget):
    monkeypatch.setattr(conv, "BATCH_CHUNK_BYTES", batch_budget)
    seen = np.zeros(9, int)
    chunks = list(conv._chunks(9, 4, bytes_per_row=100, parts=parts, image_bytes=1000))
    for n0, n1, r0, r1 in chunks:
        assert (r0, r1) == (0, 4)  # whole images: 400 bytes of columns each, far below CHUNK_BYTES
        assert (n1 - n0) * 1000 <= max(batch_budget // parts, 1000)
        seen[n0:n1] += 1
    assert (seen == 1).all()
    assert len(chunks) >= 2 * parts or parts == 1


@pytest.mark.parametrize("batch_budget", [1, 3000, 10**9])  # one image per chunk, a few, the whole batch
def test_batch_of_small_images_in_capped_chunks_matches_reference(monkeypatch, batch_budget):
    monkeypatch.setattr(conv, "BATCH_CHUNK_BYTES", batch_budget)
    x, w, b = case_arrays((7, 3, 6, 5), (4, 3, 3, 3))
    xt, wt, bt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
    y = F.conv2d(xt, wt, bt, padding=1)
    np.testing.assert_allclose(y.data, conv2d_loops(x, w, b, padding=1), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    monkeypatch.setattr(conv, "BATCH_CHUNK_BYTES", 10**9)
    expected = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    F.conv2d(*expected, padding=1).backward(g)
    for got, want in zip((xt, wt, bt), expected):
        np.testing.assert_allclose(got.grad, want.grad, rtol=1e-12, atol=1e-12)


def test_column_buffer_is_bounded(forward_path):
    """A 3×3 conv of a 64×128×128 map would need a 38 MB column matrix; chunking keeps the extra memory small
    (the shifted-view GEMMs need a padded copy of the input instead, 4 MB here)."""
    x = np.ones((1, 64, 128, 128), np.float32)
    w = np.ones((8, 64, 3, 3), np.float32)
    full_cols = 64 * 9 * 128 * 128 * 4
    out_bytes = 8 * 128 * 128 * 4
    tracemalloc.start()
    try:
        with no_grad():
            F.conv2d(x, w, padding=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    padded_copy = 64 * 130 * 130 * 4 if forward_path == "shifted" else 0
    assert peak < out_bytes + padded_copy + conv.CHUNK_BYTES + 2**20 < full_cols


# --- gradients ---------------------------------------------------------------------------------------------
def test_conv2d_gradcheck_stride2_padding1_non_square():
    x, w, b = case_arrays((2, 3, 6, 5), (4, 3, 3, 2))
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), x, w, b)


def test_conv2d_gradcheck_chunked(tiny_chunks):
    x, w, b = case_arrays((2, 2, 7, 6), (3, 2, 3, 3))
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2)), x, w, b)


def test_conv2d_gradcheck_batch_chunks(monkeypatch):
    monkeypatch.setattr(conv, "CHUNK_BYTES", 2000)  # two whole images per chunk: the (O, n·pixels) path
    x, w, _ = case_arrays((5, 2, 4, 5), (3, 2, 2, 3))
    gradcheck(lambda x, w: F.conv2d(x, w, padding=1), x, w)


def test_conv2d_gradcheck_no_bias_large_stride():
    x, w, _ = case_arrays((1, 2, 9, 8), (2, 2, 2, 3))
    gradcheck(lambda x, w: F.conv2d(x, w, stride=(3, 4), padding=(0, 1)), x, w)


# stride-1 cases with O <= C, where dL/dx may come from the rotated-kernel convolution instead of col2im:
# padding 0, 1 and kernel-1 ("full"), non-square kernels and paddings, a chunked batch
ROTATED_CASES = [
    ((2, 4, 7, 9), (4, 4, 3, 3), (1, 1)),
    ((1, 5, 6, 5), (3, 5, 3, 2), (0, 1)),
    ((2, 3, 5, 6), (2, 3, 2, 4), (1, 3)),
    ((3, 2, 4, 4), (2, 2, 1, 1), (0, 0)),
]


@pytest.mark.parametrize("x_shape, w_shape, padding", ROTATED_CASES)
@pytest.mark.usefixtures("no_flat")
def test_rotated_kernel_input_gradient_equals_col2im(monkeypatch, x_shape, w_shape, padding):
    x, w, _ = case_arrays(x_shape, w_shape)
    g = rng.standard_normal(F.conv2d(x, w, padding=padding).shape)
    grads = {}
    for limit in (0, 10**9):  # 0: col2im for every layer; 10**9: the rotated kernel wherever O <= C
        monkeypatch.setattr(conv, "ROTATED_MAX_CHANNELS", limit)
        monkeypatch.setattr(conv, "CHUNK_BYTES", 300)  # chunked, too
        calls = spy(monkeypatch, conv, "col2im")
        xt = Tensor(x, requires_grad=True)
        F.conv2d(xt, Tensor(w), padding=padding).backward(g)
        assert bool(calls) == (limit == 0)
        grads[limit] = xt.grad
    np.testing.assert_allclose(grads[10**9], grads[0], rtol=1e-12, atol=1e-12)


# the same, plus O > C (which takes the rotated kernel only when dL/dW is wanted too)
@pytest.mark.parametrize("x_shape, w_shape, padding", ROTATED_CASES + [((2, 2, 6, 5), (5, 2, 3, 3), (1, 1))])
@pytest.mark.usefixtures("no_flat")
def test_weight_gradient_from_the_columns_of_g_equals_im2col(monkeypatch, x_shape, w_shape, padding):
    x, w, _ = case_arrays(x_shape, w_shape)
    g = rng.standard_normal(F.conv2d(x, w, padding=padding).shape)
    grads = {}
    for limit in (0, 10**9):  # 0: col2im and an im2col of x; 10**9: the columns of g for both
        monkeypatch.setattr(conv, "ROTATED_MAX_CHANNELS", limit)
        monkeypatch.setattr(conv, "CHUNK_BYTES", 300)  # several chunks, each adding to dL/dW
        calls = spy(monkeypatch, conv.FastConv2dFunction, "_weight_grad")
        xt, wt = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
        F.conv2d(xt, wt, padding=padding).backward(g)
        assert bool(calls) == (limit == 0)
        grads[limit] = xt.grad, wt.grad
    for got, expected in zip(grads[10**9], grads[0]):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert grads[10**9][1].flags.c_contiguous  # a parameter's .grad, in OIHW like the weight


@pytest.mark.usefixtures("no_flat")
def test_shifted_view_gradcheck(monkeypatch, tiny_chunks):
    monkeypatch.setattr(conv, "SHIFTED_CHANNELS", (1, 10**9))
    monkeypatch.setattr(conv, "ROTATED_MAX_CHANNELS", 10**9)
    calls = spy(monkeypatch, blas, "gemm")
    x, w, b = case_arrays((2, 3, 5, 6), (3, 3, 3, 2))
    # weights fixed: forward and dL/dx (the rotated kernel's convolution) both as shifted-view GEMMs
    gradcheck(lambda x: F.conv2d(x, Tensor(w), Tensor(b), padding=(1, 0)), x)
    assert calls
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=(2, 1), activation="relu"), x, w, b)


def test_rotated_kernel_gradcheck(monkeypatch):
    monkeypatch.setattr(conv, "ROTATED_MAX_CHANNELS", 10**9)
    x, w, b = case_arrays((2, 3, 5, 6), (3, 3, 3, 2))
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=(1, 0)), x, w, b)
    x, w, b = case_arrays((1, 2, 5, 4), (4, 2, 2, 3))  # O > C, dL/dW from the columns of g
    gradcheck(lambda x, w, b: F.conv2d(x, w, b, padding=(1, 2)), x, w, b)


@pytest.mark.parametrize("w_shape, stride, weight_grad, rotated", [
    ((4, 4, 3, 3), 1, False, True),  # O = C: the rotated kernel
    ((8, 4, 3, 3), 1, False, False),  # more filters than input channels: col2im
    ((8, 4, 3, 3), 1, True, True),  # ... unless dL/dW is wanted too: one im2col of g serves both
    ((4, 4, 3, 3), 2, True, False),  # strided: col2im
])
def test_input_gradient_path_choice(monkeypatch, w_shape, stride, weight_grad, rotated):
    x, w, _ = case_arrays((1, 4, 6, 6), w_shape)
    xt = Tensor(x, requires_grad=True)
    y = F.conv2d(xt, Tensor(w, requires_grad=weight_grad), stride=stride, padding=1)
    calls = spy(monkeypatch, conv, "col2im")
    y.sum().backward()
    assert bool(calls) != rotated


@pytest.mark.parametrize("C, O, stride, shifted", [
    (64, 64, 1, True),  # a thin layer (VGG's block 1-2): shifted-view GEMMs
    (64, 128, 1, True),
    (3, 64, 1, False),  # the first layer: im2col
    (64, 256, 1, False),
    (64, 64, 2, False),  # strided: im2col
])
def test_forward_path_choice(monkeypatch, C, O, stride, shifted):
    if not blas.gemm_available(np.float32):
        pytest.skip("no BLAS gemm to call directly here")
    x = rng.standard_normal((1, C, 6, 5)).astype(np.float32)
    w = rng.standard_normal((O, C, 3, 3)).astype(np.float32)
    calls = spy(monkeypatch, blas, "gemm")
    with no_grad():
        y = F.conv2d(x, w, padding=1, stride=stride)
    assert len(calls) == (9 if shifted else 0)  # one product per tap, one chunk
    np.testing.assert_allclose(y.data, conv2d_loops(x, w, padding=1, stride=stride), rtol=1e-4, atol=1e-4)


def distinct(shape):
    """Values without ties (a shuffled range, scaled), so the max is unique and finite differences are valid."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1).astype(np.float64)


POOL_CASES = [(2, None), (3, 2), (2, 1), ((3, 2), (1, 2)), (3, None), ((2, 3), (2, 3))]


@pytest.mark.parametrize("kernel, stride", POOL_CASES)
def test_max_pool2d_gradcheck(kernel, stride):
    gradcheck(lambda x: F.max_pool2d(x, kernel, stride), distinct((2, 3, 7, 8)))


@pytest.mark.parametrize("kernel, stride", POOL_CASES)
def test_avg_pool2d_gradcheck(kernel, stride):
    gradcheck(lambda x: F.avg_pool2d(x, kernel, stride), rng.standard_normal((2, 3, 7, 8)))


def test_max_pool2d_ties_pick_the_first_in_row_major_order():
    # every window of this 4×4 map holds its maximum twice; the first occurrence (row by row) gets the gradient
    x = np.array([[0, 5, 1, 1], [5, 0, 1, 1], [2, 0, 3, 3], [0, 2, 3, 3]], dtype=np.float64)[None, None]
    xt = Tensor(x, requires_grad=True)
    y = F.max_pool2d(xt, 2)
    np.testing.assert_array_equal(y.data[0, 0], [[5, 1], [2, 3]])
    y.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))
    expected = np.array([[0, 10, 20, 0], [0, 0, 0, 0], [30, 0, 40, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(xt.grad[0, 0], expected)


@pytest.mark.parametrize("kernel, stride", [(2, None), ((2, 3), (2, 3)), (3, None), (2, 3)])
def test_max_pool2d_backward_zeroes_what_no_window_covers(monkeypatch, kernel, stride):
    # windows that tile the map write dL/dx without a zero-filled start: only the rows and columns left
    # over at the bottom and right (7 = 2·3 + 1, 8 = 3·2 + 2) must be zeroed. Fresh memory is made NaN here,
    # so that anything left unwritten shows.
    full = np.full
    monkeypatch.setattr(np, "empty", lambda shape, dtype=float: full(shape, np.nan if np.dtype(dtype).kind == "f" else 7,
                                                                      dtype))
    x = distinct((2, 3, 7, 8))
    xt = Tensor(x, requires_grad=True)
    y = F.max_pool2d(xt, kernel, stride)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    (kh, kw), (sh, sw) = conv.pair(kernel, "k"), conv.pair(stride or kernel, "s")
    expected = np.zeros_like(x)
    for n, c, h, w in np.ndindex(*y.shape):
        window = x[n, c, h * sh : h * sh + kh, w * sw : w * sw + kw]
        i, j = np.unravel_index(window.argmax(), window.shape)
        expected[n, c, h * sh + i, w * sw + j] += g[n, c, h, w]
    np.testing.assert_array_equal(xt.grad, expected)


def test_max_pool2d_values_match_a_loop():
    x = rng.standard_normal((2, 3, 9, 7))
    for (kh, kw), (sh, sw) in [((2, 2), (2, 2)), ((3, 2), (1, 3)), ((3, 3), (2, 2))]:
        y = F.max_pool2d(x, (kh, kw), (sh, sw)).data
        Ho, Wo = (9 - kh) // sh + 1, (7 - kw) // sw + 1
        expected = np.array([[[[x[n, c, h * sh : h * sh + kh, w * sw : w * sw + kw].max() for w in range(Wo)]
                               for h in range(Ho)] for c in range(3)] for n in range(2)])
        np.testing.assert_array_equal(y, expected)
        y = F.avg_pool2d(x, (kh, kw), (sh, sw)).data
        expected = np.array([[[[x[n, c, h * sh : h * sh + kh, w * sw : w * sw + kw].mean() for w in range(Wo)]
                               for h in range(Ho)] for c in range(3)] for n in range(2)])
        np.testing.assert_allclose(y, expected, rtol=1e-12)


# --- skipping work nobody asked for ------------------------------------------------------------------------
def spy(monkeypatch, owner, name):
    """Replace owner.name by a wrapper that records each call, and return the list of calls."""
    calls = []
    original = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs))
    return calls


@pytest.mark.parametrize("stride", [1, 2])
def test_frozen_weight_skips_the_weight_gradient(monkeypatch, stride):
    x, w, b = case_arrays((2, 3, 6, 6), (4, 3, 3, 3))
    xt, wt, bt = Tensor(x, requires_grad=True), Tensor(w), Tensor(b)  # weight and bias frozen
    y = F.conv2d(xt, wt, bt, stride=stride, padding=1)
    assert getattr(y._ctx, "x", None) is None  # x is not kept alive for a weight gradient nobody wants
    weight_grads = spy(monkeypatch, conv.FastConv2dFunction, "_weight_grad")
    im2col_calls = spy(monkeypatch, conv, "im2col")
    y.sum().backward()
    assert weight_grads == []
    assert im2col_calls == []  # the columns of x are rebuilt only for dL/dW = g @ colsᵀ
    assert wt.grad is None and bt.grad is None
    unfrozen = Tensor(x, requires_grad=True)  # the same input gradient as with a trainable weight
    F.conv2d(unfrozen, Tensor(w, requires_grad=True), stride=stride, padding=1).sum().backward()
    np.testing.assert_allclose(xt.grad, unfrozen.grad, rtol=1e-12)


@pytest.mark.usefixtures("no_flat")
def test_input_without_grad_skips_the_input_gradient(monkeypatch):
    x, w, b = case_arrays((2, 3, 6, 6), (4, 3, 3, 3))
    wt = Tensor(w, requires_grad=True)
    y = F.conv2d(x, wt, padding=1)  # an image: no gradient wanted
    assert getattr(y._ctx, "weight", None) is None
    input_grads = spy(monkeypatch, conv.FastConv2dFunction, "_input_grad")
    col2im_calls = spy(monkeypatch, conv, "col2im")
    y.sum().backward()
    assert input_grads == [] and col2im_calls == []
    assert wt.grad.shape == w.shape


def test_max_pool2d_under_no_grad_keeps_no_index():
    xt = Tensor(distinct((1, 2, 4, 4)), requires_grad=True)
    with no_grad():
        y = F.max_pool2d(xt, 2)
    assert y._ctx is None and not y.requires_grad


# --- the fused ReLU ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("budget", [conv.CHUNK_BYTES, 300])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", [CONV_CASES[i] for i in (0, 1, 3, 4)])
def test_fused_relu_equals_relu_after_conv(monkeypatch, budget, x_shape, w_shape, stride, padding):
    monkeypatch.setattr(conv, "CHUNK_BYTES", budget)
    x, w, b = case_arrays(x_shape, w_shape)
    results = []
    for fused in (True, False):
        xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
        if fused:
            y = F.conv2d(xt, wt, bt, stride=stride, padding=padding, activation="relu")
        else:
            y = F.relu(F.conv2d(xt, wt, bt, stride=stride, padding=padding))
        assert (y.data == 0).any() and (y.data > 0).any()  # the mask matters
        y.backward(np.sin(np.arange(y.data.size)).reshape(y.shape))
        results.append((y.data, xt.grad, wt.grad, bt.grad))
    for fused, unfused in zip(*results):
        np.testing.assert_allclose(fused, unfused, rtol=1e-12, atol=1e-12)


def test_fused_relu_keeps_no_pre_activation():
    x, w, b = case_arrays((1, 3, 6, 6), (4, 3, 3, 3))
    y = nn.Conv2d(3, 4, 3, padding=1, activation="relu")(Tensor(x, requires_grad=True))
    assert y._ctx.inputs[0].data is not None and y._ctx.y is y.data  # the output is the only map kept
    assert "activation='relu'" in repr(nn.Conv2d(3, 4, 3, activation="relu"))
    with pytest.raises(ValueError, match=r"activation must be one of \(None, 'relu'\), got 'tanh'"):
        nn.Conv2d(3, 4, 3, activation="tanh")
    with pytest.raises(ValueError, match=r"activation must be one of"):
        F.conv2d(x, w, activation="sigmoid")


# --- error messages ----------------------------------------------------------------------------------------
def test_conv2d_channel_mismatch_names_the_shapes():
    with pytest.raises(ValueError, match=r"\(1, 4, 5, 5\) has 4 channels but weight \(8, 3, 3, 3\) expects 3"):
        F.conv2d(np.zeros((1, 4, 5, 5)), np.zeros((8, 3, 3, 3)))


def test_conv2d_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel 5×5 .* larger than the padded input 4×4"):
        F.conv2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 5, 5)), padding=1)


def test_conv2d_bad_arguments():
    with pytest.raises(ValueError, match=r"expects x of shape \(N, C, H, W\).*got x \(3, 5, 5\)"):
        F.conv2d(np.zeros((3, 5, 5)), np.zeros((1, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"bias \(2,\) must have shape \(1,\)"):
        F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((1, 3, 3, 3)), np.zeros(2))
    with pytest.raises(ValueError, match="stride must be an int or a pair of ints"):
        F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((1, 3, 3, 3)), stride=(1, 2, 3))
    with pytest.raises(ValueError, match="stride must be >= 1"):
        F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((1, 3, 3, 3)), stride=0)


def test_pool_errors():
    with pytest.raises(ValueError, match=r"pooling kernel 3×3 is larger than the input 2×5"):
        F.max_pool2d(np.zeros((1, 1, 2, 5)), 3)
    with pytest.raises(ValueError, match=r"avg_pool2d expects x of shape \(N, C, H, W\), got \(4, 4\)"):
        F.avg_pool2d(np.zeros((4, 4)), 2)


# --- layers ------------------------------------------------------------------------------------------------
def test_layers_register_parameters_and_run():
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 4, (3, 1), bias=False), nn.AvgPool2d(2, 1))
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "3.weight"]
    assert model[0].weight.shape == (8, 3, 3, 3) and model[0].weight.dtype == np.float32
    y = model(Tensor(rng.standard_normal((2, 3, 10, 10)).astype(np.float32)))
    assert y.shape == (2, 4, 2, 4)
    y.sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    assert "kernel_size=(3, 3)" in repr(model[0]) and "stride=2" in repr(model[2])


# --- PyTorch -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("x_shape, w_shape, stride, padding", CONV_CASES)
def test_conv2d_matches_torch(dtype, tol, x_shape, w_shape, stride, padding):
    torch = pytest.importorskip("torch")
    x, w, b = case_arrays(x_shape, w_shape, dtype)
    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(xt, wt, bt, stride=stride, padding=padding)
    g = rng.standard_normal(y.shape).astype(dtype)
    y.backward(g)
    X, W, B = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    Y = torch.nn.functional.conv2d(X, W, B, stride=stride, padding=padding)
    Y.backward(torch.from_numpy(g))
    for ours, theirs in [(y.data, Y), (xt.grad, X.grad), (wt.grad, W.grad), (bt.grad, B.grad)]:
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("kernel, stride", POOL_CASES)
def test_pools_match_torch_including_ties(kernel, stride):
    torch = pytest.importorskip("torch")
    # small integers after a ReLU-like clamp: many tied windows, where PyTorch routes to the first maximum
    x = np.maximum(rng.integers(-2, 3, (2, 3, 9, 8)), 0).astype(np.float32)
    for ours_fn, torch_fn in [(F.max_pool2d, torch.nn.functional.max_pool2d),
                              (F.avg_pool2d, torch.nn.functional.avg_pool2d)]:
        xt = Tensor(x, requires_grad=True)
        y = ours_fn(xt, kernel, stride)
        g = rng.standard_normal(y.shape).astype(np.float32)
        y.backward(g)
        X = torch.tensor(x, requires_grad=True)
        Y = torch_fn(X, kernel, stride)
        Y.backward(torch.from_numpy(g))
        np.testing.assert_allclose(y.data, Y.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(xt.grad, X.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_conv_layer_matches_torch_layer():
    torch = pytest.importorskip("torch")
    ours = nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0))
    theirs = torch.nn.Conv2d(3, 5, (3, 2), stride=(2, 1), padding=(1, 0))
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(ours.weight.data))
        theirs.bias.copy_(torch.from_numpy(rng.standard_normal(5).astype(np.float32)))
    ours.bias.data[...] = theirs.bias.detach().numpy()
    x = rng.standard_normal((2, 3, 9, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-4, atol=1e-5)


def test_non_contiguous_inputs():
    x, w, b = case_arrays((2, 3, 12, 9), (4, 3, 3, 3))
    x_view, w_view = x[:, :, ::2], np.swapaxes(np.swapaxes(w, 2, 3).copy(), 2, 3)  # strided x, F-ordered kernel
    xt = Tensor(x_view, requires_grad=True)
    y = F.conv2d(xt, w_view, b, padding=1)
    np.testing.assert_allclose(y.data, conv2d_loops(x_view, w, b, padding=1), rtol=1e-12)
    y.sum().backward()  # g arrives as a broadcast (stride 0) array
    assert xt.grad.shape == x_view.shape


def test_the_no_copy_reshape_writes_through_or_refuses():
    """The GEMMs write their products into _view's result: it must be the caller's memory, on every NumPy."""
    out = np.zeros((2, 3, 4, 5))
    rows = conv._view(out[1, :, 1:3], (3, 10))  # a slice of whole rows: a view exists
    rows[...] = 1.0
    assert out[1, :, 1:3].sum() == 30 and out.sum() == 30
    with pytest.raises(ValueError, match=r"\(3, 4, 2\).*without a copy"):
        conv._view(out[1, :, :, 1:3], (3, 8))  # part of each row: only a copy could be reshaped
    assert conv._view(out[:0], (0, 60)).shape == (0, 60)  # empty: nothing to write, no memory to compare


# --- training a small CNN: batches of small images ----------------------------------------------------------
@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0), (1, 0)])
@pytest.mark.parametrize("batch", [1, 6])
def test_batch_weight_gradient_gradcheck(monkeypatch, stride, padding, batch):
    # several odd-sized images per chunk (and one image alone): the weight gradient sums g @ colsᵀ over chunks
    monkeypatch.setattr(conv, "BATCH_CHUNK_BYTES", 3000)
    x, w, b = case_arrays((batch, 2, 5, 7), (3, 2, 3, 3))
    gradcheck(lambda w, b: F.conv2d(Tensor(x), w, b, stride=stride, padding=padding), w, b)


@pytest.mark.parametrize("C, O, H", [(1, 32, 28), (32, 64, 14)])  # the two layers of examples/fashion_cnn.py
def test_cnn_layers_match_torch_in_batch_mode(C, O, H):
    torch = pytest.importorskip("torch")
    x = rng.random((64, C, H, H), dtype=np.float32)
    w = (rng.standard_normal((O, C, 3, 3)) * 0.2).astype(np.float32)
    b = rng.standard_normal(O).astype(np.float32)
    xt, wt, bt = Tensor(x, requires_grad=C > 1), Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
    y = F.max_pool2d(F.relu(F.conv2d(xt, wt, bt, padding=1)), 2)
    g = rng.standard_normal(y.shape).astype(np.float32)
    y.backward(g)
    X, W, B = torch.tensor(x, requires_grad=C > 1), torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    Y = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(X, W, B, padding=1)), 2)
    Y.backward(torch.from_numpy(g))
    pairs = [(y.data, Y), (wt.grad, W.grad), (bt.grad, B.grad)] + ([(xt.grad, X.grad)] if C > 1 else [])
    for ours, theirs in pairs:
        theirs = theirs.detach().numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())
    assert xt.grad is None or C > 1  # the input image needs no gradient: none is computed


@pytest.mark.parametrize("C, O, H, stride, padding", [(1, 4, 9, 1, 1), (3, 5, 7, 1, 1), (3, 5, 7, 2, 0), (2, 3, 6, 1, 0)])
@pytest.mark.parametrize("batch", [1, 2, 11])
@pytest.mark.parametrize("budget", [2500, 40000])  # one image per chunk; 1-5 images per chunk
def test_batch_paths_agree_with_the_textbook_kernels(monkeypatch, C, O, H, stride, padding, batch, budget):
    # capped whole-image chunks (a few images each), the rotated-kernel or col2im backward, then the
    # 2×2 max pool that follows in the CNN: the fast kernels against the textbook ones, every gradient
    from minidl import fast, textbook

    monkeypatch.setattr(conv, "BATCH_CHUNK_BYTES", budget)
    x, w, b = case_arrays((batch, C, H, H + 1), (O, C, 3, 3))
    results = []
    for kernels in (textbook, fast):
        xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
        y = kernels.max_pool2d(F.relu(kernels.conv2d(xt, wt, bt, stride=stride, padding=padding)), 2)
        y.backward(np.random.default_rng(5).standard_normal(y.shape))
        results.append([y.data, xt.grad, wt.grad, bt.grad])
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
