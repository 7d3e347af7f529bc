"""Convolution of a batch of small images (stride 1), with the images laid out flat.

``fast_conv.py`` builds its im2col copies window row by window row: for 14×14 images that is one NumPy
inner loop per 14 floats, and as many copies again to move the GEMM's (O, n, pixels) result into NCHW.
Here a few images at a time are first written into one flat, zero-separated layout, where every kernel
tap of every window is a fixed *distance*; im2col is then kh·kw contiguous slices, and no window ever needs
a border test.

The layout. For padding (ph, pw) with ph < kh and pw < kw, give each image row S = W + pw places (the pw
zeros after a row are the right padding of that row and the left padding of the next) and each image
R = H + ph rows (the ph zero rows after an image are its bottom and the next image's top padding).
Channel c of the batch becomes one row of

    flat[c, lead + (n·R + r)·S + s] = x[n, c, r, s]        (zeros everywhere else),  lead = ph·S + pw

so that tap (i, j) of the window of output pixel (n, h, w) is at flat[c, p + i·S + j], with the
"anchor" p = (n·R + h)·S + w. Anchors with h ≥ H_out or w ≥ W_out are not output pixels: they are
computed with the rest and dropped, (R·S) / (H_out·W_out) - 1 more work (15% for 14×14, 3×3, pad 1).
With T anchors p0..p0+T-1 and cols[(i, j, c), t] = flat[c, p0 + t + i·S + j] (one slice per tap),

    y_flat (O, T) = W' (O, kh·kw·C) @ cols,     W'[o, (i, j, c)] = W[o, c, i, j].

Backward (both from one set of columns, as ``fast_conv.Conv2d``'s rotated kernel): put g at the anchors,
shifted by d = (kh-1)·S + (kw-1), in a flat array g_flat of zeros. Then dL/dx at flat position q is

    dx_flat[c, q] = Σ_{i,j} Σ_o W[o, c, i, j] · g_flat[o, q - i·S - j + d]
                  = (W_rot (C, kh·kw·O) @ cols_g)[c, q]

with cols_g[(i', j', o), q] = g_flat[o, q + i'·S + j'] and W_rot[c, (i', j', o)] = W[o, c, kh-1-i', kw-1-j']:
the convolution of g with the rotated kernel. And dL/dW[o, c, i, j] = Σ_p g[o, p] · flat[c, p + i·S + j]
= Σ_q flat[c, q] · cols_g[(kh-1-i, kw-1-j, o), q], so

    dW_rot (kh·kw·O, C) = cols_g @ flat[:, q-range]ᵀ            (then un-rotated into OIHW).

When x needs no gradient (a first layer), only dL/dW = g_anchors (O, T) @ colsᵀ is computed, from the
forward's columns rebuilt from ``flat``: C·kh·kw rows instead of O·kh·kw.

Work is cut into chunks of whole images that the workers take in turn, BLAS single-threaded
(``parallel.py``). A chunk lays out its own images (the zeros between images make each image's outputs and
gradients depend on that image alone), so everything between reading x or g and writing y or dL/dx stays
in the worker's scratch buffers, a few hundred KB: in its core's L2 cache. The textbook twin of all this is
``minidl/textbook/convolution.py``; ``tests/test_flat_conv.py`` checks that the numbers agree.
"""
import numpy as np

from . import parallel
from .memory import scratch

#: Largest image (H·W pixels) that takes this path; bigger images (VGG's) take ``fast_conv``'s bands of rows.
MAX_PIXELS = 64 * 64

#: Bytes of scratch (flat images, columns, product) per chunk, over all the workers (the CNN's 32→64
#: layer: 2-3 images per chunk; docs/performance_cnn.md has the sizes tried). Tests lower it to force one
#: image per chunk.
CHUNK_BYTES = 4 * 2**20


def suits(x_shape, weight_shape, stride, padding):
    """Whether a convolution takes this path: a batch of small images, stride 1, padding below the kernel."""
    N, C, H, W = x_shape
    kh, kw = weight_shape[2:]
    return N > 1 and H * W <= MAX_PIXELS and stride == (1, 1) and padding[0] < kh and padding[1] < kw


class Layout:
    """The geometry of the flat layout (module docstring) for x of ``x_shape`` and a kh×kw kernel."""

    def __init__(self, x_shape, kernel, padding, dtype):
        self.N, self.C, self.H, self.W = x_shape
        self.dtype = np.dtype(dtype)
        (self.kh, self.kw), (ph, pw) = kernel, padding
        self.S, self.R = self.W + pw, self.H + ph
        self.Ho, self.Wo = self.H + 2 * ph - self.kh + 1, self.W + 2 * pw - self.kw + 1
        self.lead = ph * self.S + pw  # x's first pixel: after image 0's top and left padding
        self.reach = (self.kh - 1) * self.S + self.kw - 1  # from an anchor to its window's last tap

    def flatten(self, a, lead, out, mask=None):
        """a (n, channels, rows, cols) -> its flat layout in ``out`` (channels, lead + n·R·S + reach):
        a[m, c, r, s] at lead + (m·R + r)·S + s, zeros elsewhere. With ``mask`` (a fused ReLU's output,
        shaped like a), a·[mask > 0] instead (multiplied in NCHW, where both are contiguous: inside the
        transposing copy it measured 2-3× slower). Returns the flat array, a view of ``out``."""
        n, channels, rows, cols = a.shape
        R, S = self.R, self.S
        flat = out.reshape(-1)[: channels * (lead + n * R * S + self.reach)].reshape(channels, -1)
        flat[:, :lead], flat[:, lead + n * R * S :] = 0, 0
        grid = flat[:, lead : lead + n * R * S].reshape(channels, n, R, S)
        grid[:, :, rows:], grid[:, :, :rows, cols:] = 0, 0
        source = a if mask is None else a * (mask > 0)
        grid[:, :, :rows, :cols] = source.transpose(1, 0, 2, 3)
        return flat

    def columns(self, flat, start, count, out):
        """cols[(i, j, c), t] = flat[c, start + t + i·S + j] for t < count, written into the first rows of
        ``out``: every tap's slice at once, as one strided view copied by one NumPy call (each call's
        hand-over of the GIL costs more than the copy of a few hundred KB)."""
        channels = flat.shape[0]
        step, row = flat.strides[1], flat.strides[0]
        taps = np.lib.stride_tricks.as_strided(flat[:, start:], shape=(self.kh, self.kw, channels, count),
                                               strides=(self.S * step, step, row, step), writeable=False)
        cols = out.reshape(-1)[: self.kh * self.kw * channels * count].reshape(self.kh, self.kw, channels, count)
        np.copyto(cols, taps)
        return cols.reshape(-1, count)

    def unflatten(self, flat_chunk, n, rows, cols):
        """The (channels, n·R·S) flat values of n images, as an (n, channels, rows, cols) view."""
        return flat_chunk.reshape(-1, n, self.R, self.S)[:, :, :rows, :cols].transpose(1, 0, 2, 3)

    def for_images(self, work, *rows):
        """Call ``work(n0, n1, buffers, worker)`` for chunks of whole images n0..n1-1, over the workers.

        ``rows`` gives the scratch arrays a chunk needs, each as its count of rows (channels) of a flat
        layout, ``lead + n·R·S + reach`` long; ``buffers`` are views of that many elements of one
        scratch array per worker (``memory.scratch``), reused from chunk to chunk and call to call. Chunks take as many images as fit
        ``CHUNK_BYTES`` over all the workers."""
        parts = parallel.WORKERS if parallel.available() and self.N >= 2 * parallel.WORKERS else 1
        image_bytes = sum(rows) * self.R * self.S * self.dtype.itemsize
        per_chunk = max(1, min(self.N // (2 * parts), CHUNK_BYTES // parts // image_bytes))
        chunks = parallel.even_ranges(self.N, parallel.balanced_count(-(-self.N // per_chunk), parts, self.N))
        length = max(n1 - n0 for n0, n1 in chunks) * self.R * self.S + self.lead + 2 * self.reach
        ends = np.cumsum([0, *rows]) * length
        buffers = [scratch(k, ends[-1], self.dtype) for k in range(parts)]
        views = [[buffer[a:b] for a, b in zip(ends, ends[1:])] for buffer in buffers]
        parallel.run_chunks(lambda chunk, worker: work(*chunk, views[worker], worker), chunks, parts)


def forward(x, weight, bias, padding, relu):
    """y = conv2d(x, W) + b (then max(·, 0) if ``relu``).

    The bias rides in the GEMM, as a last column of W' against a row of ones under the columns, and the
    ReLU in the copy out of the flat layout: one pass over y instead of three."""
    O, C, kh, kw = weight.shape
    dtype = np.result_type(x.dtype, weight.dtype)
    layout = Layout(x.shape, (kh, kw), padding, dtype)
    wmat = weight.transpose(0, 2, 3, 1).reshape(O, -1)  # (o, (i, j, c))
    if bias is not None:
        wmat = np.concatenate([wmat, bias.reshape(O, 1)], axis=1)
    wmat = np.ascontiguousarray(wmat, dtype=dtype)
    K = wmat.shape[1]
    y = np.empty((layout.N, O, layout.Ho, layout.Wo), dtype=dtype)
    step = layout.R * layout.S

    def work(n0, n1, buffers, worker):
        x_buffer, cols_buffer, product_buffer = buffers
        count = (n1 - n0) * step
        flat = layout.flatten(x[n0:n1], layout.lead, x_buffer)
        cols = cols_buffer[: K * count].reshape(K, count)
        layout.columns(flat, 0, count, cols)
        if bias is not None:
            cols[-1] = 1
        product = product_buffer[: O * count].reshape(O, count)
        np.matmul(wmat, cols, out=product)
        out = layout.unflatten(product, n1 - n0, layout.Ho, layout.Wo)
        if relu:
            np.maximum(out, 0, out=y[n0:n1])
        else:
            y[n0:n1] = out

    layout.for_images(work, C, K, O)
    return y


def backward(g, x, x_shape, weight, padding, need_x, need_w, relu_output=None):
    """(dL/dx or None, dL/dW or None, dL/db) from g = dL/dy and the forward's input x, of ``x_shape`` (x is
    None if W needs no gradient). ``relu_output``: the output of a fused ReLU, whose mask [y > 0] multiplies g first.

    dL/dW and dL/db are summed per chunk, then over the chunks in image order: the same bits whichever
    worker took which chunk (a worker takes the next chunk as soon as it is free)."""
    O, C, kh, kw = weight.shape
    dtype = np.result_type(g.dtype, weight.dtype)
    layout = Layout(x_shape, (kh, kw), padding, dtype)
    step, taps = layout.R * layout.S, kh * kw
    weight_parts, bias_parts = {}, {}  # first image of a chunk -> that chunk's share

    def mask(n0, n1):
        return None if relu_output is None else relu_output[n0:n1]

    def bias_part(n0, n1, g_flat):
        bias_parts[n0] = g_flat.sum(axis=1)  # the flat rows hold g and zeros

    if not need_x:  # dL/dW = g_anchors @ colsᵀ, the forward's columns rebuilt from x

        def weight_only(n0, n1, buffers, worker):
            g_buffer, *x_and_cols = buffers
            count = (n1 - n0) * step
            g_flat = layout.flatten(g[n0:n1], 0, g_buffer, mask(n0, n1))
            bias_part(n0, n1, g_flat)
            if need_w:
                x_buffer, cols_buffer = x_and_cols
                cols = layout.columns(layout.flatten(x[n0:n1], layout.lead, x_buffer), 0, count, cols_buffer)
                weight_parts[n0] = g_flat[:, :count] @ cols.T

        layout.for_images(weight_only, O, *((C, C * taps) if need_w else ()))
        if not need_w:
            return None, None, parallel.ordered_sum(bias_parts)
        dw = parallel.ordered_sum(weight_parts).reshape(O, kh, kw, C).transpose(0, 3, 1, 2)
        return None, np.ascontiguousarray(dw), parallel.ordered_sum(bias_parts)

    rotated = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 2, 3, 0), dtype=dtype).reshape(C, -1)
    dx = np.empty(x_shape, dtype=dtype)

    def work(n0, n1, buffers, worker):
        g_buffer, x_buffer, cols_buffer, product_buffer = buffers
        count = (n1 - n0) * step
        # g placed at its anchors shifted by reach: column t of cols_g is then flat position lead + t of x
        g_flat = layout.flatten(g[n0:n1], layout.reach, g_buffer, mask(n0, n1))
        bias_part(n0, n1, g_flat)
        cols = layout.columns(g_flat, layout.lead, count, cols_buffer)
        product = product_buffer[: C * count].reshape(C, count)
        np.matmul(rotated, cols, out=product)
        dx[n0:n1] = layout.unflatten(product, n1 - n0, layout.H, layout.W)
        if need_w:
            x_flat = layout.flatten(x[n0:n1], layout.lead, x_buffer)
            weight_parts[n0] = cols @ x_flat[:, layout.lead : layout.lead + count].T

    layout.for_images(work, O, C if need_w else 0, O * taps, C)
    if not need_w:
        return dx, None, parallel.ordered_sum(bias_parts)
    # row (i', j', o) of the sum is dL/dW[o, :, kh-1-i', kw-1-j']
    dw = parallel.ordered_sum(weight_parts).reshape(kh, kw, O, C)[::-1, ::-1].transpose(2, 3, 0, 1)
    return dx, np.ascontiguousarray(dw), parallel.ordered_sum(bias_parts)
