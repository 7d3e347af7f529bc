"""minidl/fast/flat_conv.py: the batch-of-small-images convolution, against the textbook kernel and a loop."""
import numpy as np
import pytest

from minidl import Tensor, fast, textbook
from minidl.fast import flat_conv, parallel

rng = np.random.default_rng(7)

# (x shape, weight shape, padding), every one 'same': 3×3 (the CNN's), 1×1, 5×5, non-square kernels,
# a kernel wider than the image (taps that wrap past a whole row), 1×1 images, one channel in, more filters than
# channels and fewer
CASES = [
    ((3, 2, 6, 7), (4, 2, 3, 3), (1, 1)),
    ((4, 3, 5, 4), (2, 3, 1, 1), (0, 0)),
    ((2, 1, 9, 8), (5, 1, 5, 5), (2, 2)),
    ((3, 2, 6, 5), (3, 2, 3, 5), (1, 2)),
    ((2, 3, 5, 6), (2, 3, 3, 1), (1, 0)),
    ((3, 2, 3, 2), (3, 2, 5, 5), (2, 2)),
    ((3, 2, 1, 1), (2, 2, 3, 3), (1, 1)),
    ((11, 1, 7, 7), (6, 1, 3, 3), (1, 1)),
]


def arrays(x_shape, w_shape, dtype=np.float64):
    return (rng.standard_normal(x_shape).astype(dtype), rng.standard_normal(w_shape).astype(dtype),
            rng.standard_normal(w_shape[0]).astype(dtype))


def test_flatten_places_every_pixel_and_zeros_elsewhere():
    x = rng.standard_normal((3, 2, 4, 5))
    layout = flat_conv.Layout(x.shape, (3, 5), x.dtype)
    flat = layout.flatten(x, layout.lead, np.full(1000, np.nan))  # scratch of garbage: every place is written
    assert (layout.R, layout.lead, layout.reach) == (4 + 1, 1 * 5 + 2, 2 * 5 + 4)
    expected = np.zeros_like(flat)
    for n in range(3):
        for r in range(4):
            for s in range(5):
                expected[:, layout.lead + (n * layout.R + r) * 5 + s] = x[n, :, r, s]
    np.testing.assert_array_equal(flat, expected)


@pytest.mark.parametrize("kernel, shape", [((3, 3), (2, 2, 4, 3)), ((3, 5), (2, 1, 4, 3)), ((5, 5), (3, 2, 3, 2)),
                                           ((1, 3), (2, 1, 2, 4))])
def test_columns_hold_every_window_of_the_padded_images(kernel, shape):
    # the layout's promise: column (n, h, w) holds window (h, w) of image n, padded, taps in (i, j, c) order;
    # taps that wrapped into a neighbouring row are zero, even when the kernel is wider than the image
    x = rng.standard_normal(shape)
    (kh, kw), (N, C, H, W) = kernel, shape
    layout = flat_conv.Layout(x.shape, kernel, x.dtype)
    flat = layout.flatten(x, layout.lead, np.full(1000, np.nan))
    cols = layout.columns(flat, 0, N, np.full(2000, np.nan))
    padded = np.pad(x, ((0, 0), (0, 0), (layout.ph, layout.ph), (layout.pw, layout.pw)))
    assert cols.shape == (kh * kw * C, N * H * W)
    for n in range(N):
        for h in range(H):
            for w in range(W):
                window = padded[n, :, h : h + kh, w : w + kw].transpose(1, 2, 0).ravel()
                np.testing.assert_array_equal(cols[:, (n * H + h) * W + w], window)


def run(kernels, x, w, b, padding, need_x=True, need_w=True, activation=None, seed=3):
    xt, wt, bt = Tensor(x, requires_grad=need_x), Tensor(w, requires_grad=need_w), Tensor(b, requires_grad=True)
    y = kernels.conv2d(xt, wt, bt, padding=padding, activation=activation)
    y.backward(np.random.default_rng(seed).standard_normal(y.shape).astype(x.dtype))
    return y.data, xt.grad, wt.grad, bt.grad


@pytest.mark.parametrize("x_shape, w_shape, padding", CASES)
@pytest.mark.parametrize("need_x, need_w", [(True, True), (False, True), (True, False), (False, False)])
@pytest.mark.parametrize("activation", [None, "relu"])
def test_agrees_with_the_textbook_kernel(monkeypatch, x_shape, w_shape, padding, need_x, need_w, activation):
    calls = []
    original = flat_conv.forward
    monkeypatch.setattr(flat_conv, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    x, w, b = arrays(x_shape, w_shape)
    want = run(textbook, x, w, b, padding, need_x, need_w, activation)
    got = run(fast, x, w, b, padding, need_x, need_w, activation)
    assert calls  # the flat path really ran
    for ours, theirs in zip(got, want):
        assert (ours is None) == (theirs is None)
        if theirs is not None:
            np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("budget, workers", [(1, 1), (1, 2), (4000, 2), (10**9, 2), (10**9, 3)])
def test_chunks_of_whole_images_cover_the_batch_once(monkeypatch, budget, workers):
    monkeypatch.setattr(flat_conv, "CHUNK_BYTES", budget)
    monkeypatch.setattr(parallel, "WORKERS", workers)
    for batch in (2, 5, 11, 64):
        layout = flat_conv.Layout((batch, 2, 6, 6), (3, 3), np.float32)
        seen = []
        layout.for_images(lambda n0, n1, buffers, worker: seen.append((n0, n1)), 20, 4)
        seen.sort()
        assert seen[0][0] == 0 and seen[-1][1] == batch
        assert all(n1 > n0 for n0, n1 in seen) and all(a[1] == b[0] for a, b in zip(seen, seen[1:]))
        if budget == 1:
            assert len(seen) == batch  # one image per chunk when not even one fits the budget


@pytest.mark.parametrize("budget", [1, 3000, 10**9])  # one image per chunk, a few, half the batch
def test_float32_cnn_layer_against_textbook_in_any_chunking(monkeypatch, budget):
    monkeypatch.setattr(flat_conv, "CHUNK_BYTES", budget)
    x, w, b = arrays((9, 3, 14, 14), (8, 3, 3, 3), np.float32)
    for ours, theirs in zip(run(fast, x, w, b, 1), run(textbook, x, w, b, 1)):
        np.testing.assert_allclose(ours, theirs, rtol=2e-5, atol=2e-5 * np.abs(theirs).max())
        assert ours.dtype == np.float32


def test_weight_gradient_is_the_same_to_the_last_bit_on_every_run():
    x, w, b = arrays((16, 4, 10, 10), (6, 4, 3, 3), np.float32)
    first = run(fast, x, w, b, 1)
    for _ in range(3):
        for ours, again in zip(first, run(fast, x, w, b, 1)):
            np.testing.assert_array_equal(ours, again)


def test_fused_relu_at_exactly_zero_sends_no_gradient():
    # zero weights and bias: every pre-activation is exactly 0, the kink; ReLU'(0) = 0 as in the textbook
    x = rng.standard_normal((4, 2, 5, 5))
    w, b = np.zeros((3, 2, 3, 3)), np.zeros(3)
    y, dx, dw, db = run(fast, x, w, b, 1, activation="relu")
    assert not y.any() and not dx.any() and not dw.any() and not db.any()
    y, dx, dw, db = run(fast, x, w, b, 1)  # without the ReLU the same gradient flows
    assert dw.any() and db.any()


@pytest.mark.parametrize("x_shape, stride, padding, takes", [
    ((2, 3, 14, 14), (1, 1), (1, 1), True),
    ((1, 3, 14, 14), (1, 1), (1, 1), False),  # one image (VGG's case): bands of rows in fast_conv
    ((2, 3, 14, 14), (2, 2), (1, 1), False),  # strided
    ((2, 3, 14, 14), (1, 1), (0, 0), False),  # not 'same': the output is smaller than the image
    ((2, 3, 14, 14), (1, 1), (2, 1), False),  # nor here: larger
    ((2, 3, 65, 64), (1, 1), (1, 1), False),  # not a small image
])
def test_which_convolutions_take_the_flat_path(x_shape, stride, padding, takes):
    assert flat_conv.suits(x_shape, (4, 3, 3, 3), stride, padding) == takes


@pytest.mark.parametrize("kernel, padding, takes", [
    ((1, 1), (0, 0), True),
    ((5, 3), (2, 1), True),
    ((2, 2), (0, 0), False),  # an even kernel has no centre: no 'same' padding
    ((2, 2), (1, 1), False),
    ((3, 3), (1, 0), False),  # 'same' in height only
])
def test_only_same_convolutions_take_the_flat_path(kernel, padding, takes):
    assert flat_conv.suits((2, 3, 14, 14), (4, 3, *kernel), (1, 1), padding) == takes
