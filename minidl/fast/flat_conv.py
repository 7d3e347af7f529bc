"""'Same' convolution of a batch of small images (stride 1), with the images laid out flat.

``fast_conv.py`` builds its im2col copies window row by window row: for 14×14 images that is one NumPy
inner loop per 14 floats, and as many copies again to move the GEMM's (O, n, pixels) result into NCHW.
Here a few images at a time are first written into one flat, zero-separated layout, where every kernel
tap of every window is a fixed *distance*: im2col is one strided copy whose inner loops are whole images,
and the GEMMs compute exactly the output pixels, nothing more.

The layout. A 'same' convolution has an odd kh × kw kernel, padding (ph, pw) = ((kh-1)/2, (kw-1)/2) and
output size = input size H × W. Give each image R = H + ph rows of W places: its H rows, then ph zero
rows, which are its bottom padding and the next image's top padding. Channel c of the batch becomes one
row of

    flat[c, lead + (n·R + r)·W + s] = x[n, c, r, s]        (zeros everywhere else),  lead = ph·W + pw

so that tap (i, j) of the window of output pixel (n, h, w) is at flat[c, p + i·W + j], with the
"anchor" p = (n·R + h)·W + w. Vertically, a window that leaves the image reads zero rows. Horizontally, a
tap whose column w + j - pw falls outside 0..W-1 reads the end of the row above or the start of the row
below: those entries of the columns are set to zero after the copy ("wrapped taps"; for 3×3, tap column
0 at w = 0 and tap column 2 at w = W-1). With cols[(i, j, c), (n, h, w)] = flat[c, anchor + i·W + j]
(one strided copy, wrapped taps zeroed),

    y[n] (O, H·W) = W' (O, kh·kw·C) @ cols[:, n],     W'[o, (i, j, c)] = W[o, c, i, j],

one product per image of the chunk (one batched ``np.matmul`` call), each written straight into y's NCHW.

Backward (both from one set of columns, as ``fast_conv.FastConv2dFunction``'s rotated kernel): lay out g the
same way, but from position ``reach`` = (kh-1)·W + (kw-1) instead of ``lead``. Then with
cols_g[(i', j', o), (n, r, s)] = g_flat[o, lead + (n·R + r)·W + s + i'·W + j'] = g[n, o, r + i' - ph, s + j' - pw]
(zero outside the image: the zero rows, and the wrapped taps zeroed as above),

    dL/dx[n] (C, H·W)       = W_rot (C, kh·kw·O) @ cols_g[:, n],  W_rot[c, (i', j', o)] = W[o, c, kh-1-i', kw-1-j']
    dL/dW_rot (kh·kw·O, C)  = cols_g @ x_cᵀ,                     x_c (C, n·H·W) = x in channel-major order

the convolution of g with the rotated kernel, and dL/dW[o, c, i, j] = Σ g[n, o, r-i+ph, s-j+pw] x[n, c, r, s]
read off row (kh-1-i, kw-1-j, o). When x needs no gradient (a first layer), only dL/dW = Σ_n g[n] @ cols[n]ᵀ
is computed: one small product per image, g[n] (O, H·W) read as it is in NCHW, cols[n] the forward's
columns of image n rebuilt from x, with the forward's row of ones under them, against which g sums to dL/db.

Every copy in and out of the layout moves whole images (H·W floats per NumPy inner loop), and each
chunk's products cover exactly its output pixels.

Work is cut into chunks of whole images that the workers take in turn, BLAS single-threaded
(``parallel.py``). A chunk lays out its own images (the zeros between images make each image's outputs and
gradients depend on that image alone), so everything between reading x or g and writing y or dL/dx stays
in the worker's scratch buffers, a few hundred KB: in its core's L2 cache. The textbook twin of all this is
``minidl/textbook/convolution.py``; ``tests/test_flat_conv.py`` checks that the numbers agree.
"""
import numpy as np

from . import memory, parallel
from .memory import scratch

#: Largest image (H·W pixels) that takes this path; bigger images (VGG's) take ``fast_conv``'s bands of rows.
MAX_PIXELS = 64 * 64

#: Bytes of scratch (flat images and columns) per chunk, over all the workers (the CNN's 32→64
#: layer: 2-3 images per chunk; one image per chunk made a training step 27% slower, three times as many
#: the same). Tests lower it to force one image per chunk.
CHUNK_BYTES = 4 * 2**20


def suits(x_shape, weight_shape, stride, padding):
    """Whether a convolution takes this path: a batch of small images, stride 1, 'same' padding (an odd
    kernel, padding (k-1)/2: the output is as large as the input)."""
    N, C, H, W = x_shape
    kh, kw = weight_shape[2:]
    same = kh % 2 == 1 and kw % 2 == 1 and tuple(padding) == ((kh - 1) // 2, (kw - 1) // 2)
    return N > 1 and H * W <= MAX_PIXELS and stride == (1, 1) and same


class Layout:
    """The geometry of the flat layout (module docstring) for x of ``x_shape`` and a kh×kw kernel."""

    def __init__(self, x_shape, kernel, dtype):
        self.N, self.C, self.H, self.W = x_shape
        self.dtype = np.dtype(dtype)
        self.kh, self.kw = kernel
        self.ph, self.pw = (self.kh - 1) // 2, (self.kw - 1) // 2
        self.R = self.H + self.ph
        self.lead = self.ph * self.W + self.pw  # x's first pixel: after image 0's top and left padding
        self.reach = (self.kh - 1) * self.W + self.kw - 1  # from an anchor to its window's last tap

    def flatten(self, a, start, out, mask=None):
        """a (n, channels, H, W) -> its flat layout in ``out`` (channels, start + n·R·W + reach), image
        pixel (m, r, s) at start + (m·R + r)·W + s, zeros elsewhere. Returns the flat array, a view of ``out``."""
        n, channels = a.shape[:2]
        size = self.R * self.W
        flat = out[: channels * (start + n * size + self.reach)].reshape(channels, -1)
        flat[:, :start], flat[:, start + n * size :] = 0, 0
        grid = flat[:, start : start + n * size].reshape(channels, n, size)
        grid[:, :, self.H * self.W :] = 0
        self.channel_major(a, grid[:, :, : self.H * self.W], mask)
        return flat

    def channel_major(self, a, out, mask=None):
        """a (n, channels, H, W) written into ``out`` (channels, n, H·W) (or a buffer to shape so), as
        a[m, c] into out[c, m]; with ``mask`` (a fused ReLU's output, shaped like a), a·[mask > 0] instead
        (multiplied in NCHW, where both are contiguous). Returns out as (channels, n·H·W) if it can."""
        n, channels = a.shape[:2]
        if out.ndim == 1:
            out = out[: a.size].reshape(channels, n, -1)
        source = a if mask is None else a * (mask > 0)
        out[...] = source.reshape(n, channels, -1).transpose(1, 0, 2)
        return out.reshape(channels, -1) if out.flags.c_contiguous else out

    def columns(self, flat, start, n, out):
        """cols[(i, j, c), (m, h, w)] = flat[c, start + (m·R + h)·W + w + i·W + j] for n images, written into
        the first rows of ``out`` as one strided copy (each NumPy call's hand-over of the GIL costs more than
        the copy of a few hundred KB); then the wrapped taps (module docstring) are zeroed."""
        channels = flat.shape[0]
        kh, kw, H, W = self.kh, self.kw, self.H, self.W
        step, row = flat.strides[1], flat.strides[0]
        # a strided view of flat (np.lib.stride_tricks.as_strided, built directly: 1 µs instead of 10)
        taps = np.ndarray((kh, kw, channels, n, H * W), flat.dtype, flat, start * step,
                          (W * step, step, row, self.R * W * step, step))
        cols = out[: kh * kw * channels * n * H * W].reshape(kh, kw, channels, n, H * W)
        np.copyto(cols, taps)
        by_column = cols.reshape(kh, kw, channels, n, H, W)
        for j in range(kw):  # tap column j reads image column w + j - pw: outside 0..W-1 it wrapped
            if j < self.pw:
                by_column[:, j, ..., : self.pw - j] = 0
            elif j > self.pw:
                by_column[:, j, ..., W + self.pw - j :] = 0
        return cols.reshape(kh * kw * channels, n * H * W)

    def for_images(self, work, *rows):
        """Call ``work(n0, n1, buffers, worker)`` for chunks of whole images n0..n1-1, over the workers.

        ``rows`` gives the scratch arrays a chunk needs, each as its count of rows (channels) of a flat
        layout, ``reach + n·R·W + reach`` long; ``buffers`` are views of that many elements of one scratch
        array per worker (``memory.scratch``), reused from chunk to chunk and call to call. Chunks take as
        many images as fit ``CHUNK_BYTES`` over all the workers."""
        parts = parallel.WORKERS if parallel.available() and self.N >= 2 * parallel.WORKERS else 1
        image_bytes = sum(rows) * self.R * self.W * self.dtype.itemsize
        per_chunk = max(1, min(self.N // (2 * parts), CHUNK_BYTES // parts // image_bytes))
        chunks = parallel.even_ranges(self.N, parallel.balanced_count(-(-self.N // per_chunk), parts, self.N))
        length = max(n1 - n0 for n0, n1 in chunks) * self.R * self.W + 2 * self.reach
        ends = np.cumsum([0, *rows]) * length
        buffers = [scratch(k, ends[-1], self.dtype) for k in range(parts)]
        views = [[buffer[a:b] for a, b in zip(ends, ends[1:])] for buffer in buffers]
        parallel.run_chunks(lambda chunk, worker: work(*chunk, views[worker], worker), chunks, parts)


def forward(x, weight, bias, relu):
    """y = conv2d(x, W, padding 'same') + b (then max(·, 0) if ``relu``).

    The bias rides in the GEMM, as a last column of W' against a row of ones under the columns, and the
    ReLU follows on the chunk of y just written, while it is in the cache."""
    O, C, kh, kw = weight.shape
    dtype = np.result_type(x.dtype, weight.dtype)
    layout = Layout(x.shape, (kh, kw), dtype)
    wmat = weight.transpose(0, 2, 3, 1).reshape(O, -1)  # (o, (i, j, c))
    if bias is not None:
        wmat = np.concatenate([wmat, bias.reshape(O, 1)], axis=1)
    wmat = np.ascontiguousarray(wmat, dtype=dtype)
    K = wmat.shape[1]
    y = memory.empty((layout.N, O, layout.H, layout.W), dtype)

    def work(n0, n1, buffers, worker):
        x_buffer, cols_buffer = buffers
        n = n1 - n0
        count = n * layout.H * layout.W
        flat = layout.flatten(x[n0:n1], layout.lead, x_buffer)
        cols = cols_buffer[: K * count].reshape(K, count)  # columns() fills its first kh·kw·C rows
        layout.columns(flat, 0, n, cols_buffer)
        if bias is not None:
            cols[-1] = 1  # the bias's row of ones
        out = y[n0:n1].reshape(n, O, -1)
        np.matmul(wmat, cols.reshape(K, n, -1).transpose(1, 0, 2), out=out)  # image by image, into y
        if relu:
            np.maximum(out, 0, out=out)

    layout.for_images(work, C, K)
    return y


def backward(g, x, x_shape, weight, need_x, need_w, relu_output=None):
    """(dL/dx or None, dL/dW or None, dL/db) from g = dL/dy and the forward's input x, of ``x_shape`` (x is
    None if W needs no gradient). ``relu_output``: the output of a fused ReLU, whose mask [y > 0] multiplies g first.

    dL/dW and dL/db are summed per chunk, then over the chunks in image order: the same bits whichever
    worker took which chunk (a worker takes the next chunk as soon as it is free)."""
    O, C, kh, kw = weight.shape
    dtype = np.result_type(g.dtype, weight.dtype)
    layout = Layout(x_shape, (kh, kw), dtype)
    taps = kh * kw
    weight_parts, bias_parts = {}, {}  # first image of a chunk -> that chunk's share

    if not need_x:  # per image, dL/dW += g[n] (O, H·W) @ cols[n]ᵀ: the forward's columns, rebuilt from x

        def weight_only(n0, n1, buffers, worker):
            g_buffer, *x_and_cols = buffers
            n = n1 - n0
            g_n = g[n0:n1]
            if relu_output is not None:
                g_n = np.multiply(g_n, relu_output[n0:n1] > 0, out=g_buffer[: g_n.size].reshape(g_n.shape))
            if not need_w:
                bias_parts[n0] = g_n.sum(axis=(0, 2, 3))
                return
            x_buffer, cols_buffer = x_and_cols
            count = n * layout.H * layout.W
            cols = cols_buffer[: (C * taps + 1) * count].reshape(-1, count)  # columns() fills all but the last row
            layout.columns(layout.flatten(x[n0:n1], layout.lead, x_buffer), 0, n, cols_buffer)
            cols[-1] = 1  # as in the forward: against the row of ones, g sums to dL/db
            per_image = cols.reshape(-1, n, layout.H * layout.W).transpose(1, 2, 0)  # (n, H·W, taps·C + 1)
            w_and_b = np.matmul(g_n.reshape(n, O, -1), per_image).sum(axis=0)
            weight_parts[n0], bias_parts[n0] = w_and_b[:, :-1], w_and_b[:, -1]

        layout.for_images(weight_only, O, *((C, C * taps + 1) if need_w else ()))
        if not need_w:
            return None, None, parallel.ordered_sum(bias_parts)
        dw = parallel.ordered_sum(weight_parts).reshape(O, kh, kw, C).transpose(0, 3, 1, 2)
        return None, np.ascontiguousarray(dw), parallel.ordered_sum(bias_parts)

    rotated = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 2, 3, 0), dtype=dtype).reshape(C, -1)
    dx = memory.empty(x_shape, dtype)
    ones = np.ones(layout.N * layout.R * layout.W + 2 * layout.reach, dtype=dtype)

    def work(n0, n1, buffers, worker):
        g_buffer, x_buffer, cols_buffer = buffers
        n = n1 - n0
        mask = None if relu_output is None else relu_output[n0:n1]
        g_flat = layout.flatten(g[n0:n1], layout.reach, g_buffer, mask)
        bias_parts[n0] = g_flat @ ones[: g_flat.shape[1]]  # row sums (the rows hold g and zeros), in one BLAS call
        cols = layout.columns(g_flat, layout.lead, n, cols_buffer)
        np.matmul(rotated, cols.reshape(len(cols), n, -1).transpose(1, 0, 2), out=dx[n0:n1].reshape(n, C, -1))
        if need_w:
            weight_parts[n0] = cols @ layout.channel_major(x[n0:n1], x_buffer).T

    layout.for_images(work, O, C if need_w else 0, O * taps)
    if not need_w:
        return dx, None, parallel.ordered_sum(bias_parts)
    # row (i', j', o) of the sum is dL/dW[o, :, kh-1-i', kw-1-j']
    dw = parallel.ordered_sum(weight_parts).reshape(kh, kw, O, C)[::-1, ::-1].transpose(2, 3, 0, 1)
    return dx, np.ascontiguousarray(dw), parallel.ordered_sum(bias_parts)
