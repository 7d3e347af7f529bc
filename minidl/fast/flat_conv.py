"""Convolution of a batch of small images (stride 1), with the whole batch laid out flat.

``fast_conv.py`` builds its im2col copies window row by window row: for 14×14 images that is one NumPy
inner loop per 14 floats, and as many copies again to move the GEMM's (O, n, pixels) result into NCHW.
Here the batch is first written once into one flat, zero-separated layout, where every kernel tap of
every window is a fixed *distance*; im2col is then kh·kw contiguous slices, and no window ever needs a
border test.

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

Work is cut into chunks of whole images (one GEMM each, a few hundred KB: in a core's L2 cache) that the
workers take in turn, BLAS single-threaded (``parallel.py``). The textbook twin of all this is
``minidl/textbook/convolution.py``; ``tests/test_kernels.py`` checks that the numbers agree.
"""
import numpy as np

from . import fast_conv, parallel  # fast_conv imports this module too: its names are looked up when used

#: Largest image (H·W pixels) that takes this path; bigger images (VGG's) take ``fast_conv``'s bands of rows.
MAX_PIXELS = 64 * 64

#: Bytes of columns and product per chunk, over all the workers (the CNN's 32→64 layer: 2 images per
#: worker forward, 3 backward). Tests lower it to force one image per chunk.
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

    def flatten(self, a, rows, cols, lead, mask=None, sums=None):
        """a (N, channels, rows, cols) -> (channels, lead + N·R·S + reach): a[n, c, r, s] at
        lead + (n·R + r)·S + s, zeros elsewhere. Channels split over the workers, each of which also
        multiplies its channels by [mask > 0] first if ``mask`` is given (a fused ReLU's output: in NCHW,
        where both are contiguous, it measured 2-3× faster than inside the transposing copy), and writes
        their sums into ``sums`` if given (the bias gradient: the flat rows hold nothing else)."""
        N, channels, R, S = a.shape[0], a.shape[1], self.R, self.S
        flat = np.empty((channels, lead + N * R * S + self.reach), dtype=a.dtype)

        def part(c0, c1):
            f = flat[c0:c1]
            f[:, :lead], f[:, lead + N * R * S :] = 0, 0
            grid = f[:, lead : lead + N * R * S].reshape(c1 - c0, N, R, S)
            grid[:, :, rows:], grid[:, :, :rows, cols:] = 0, 0
            source = a[:, c0:c1] if mask is None else a[:, c0:c1] * (mask[:, c0:c1] > 0)
            grid[:, :, :rows, :cols] = source.transpose(1, 0, 2, 3)
            if sums is not None:
                np.sum(f, axis=1, out=sums[c0:c1])

        parallel.each(part, channels)
        return flat

    def columns(self, flat, start, count, buffer):
        """cols[(i, j, c), t] = flat[c, start + t + i·S + j] for t < count, written into the first rows of
        ``buffer``: every tap's slice at once, as one strided view copied by one NumPy call (each call's
        hand-over of the GIL costs more than the copy of a few hundred KB)."""
        channels = flat.shape[0]
        step, row = flat.strides[1], flat.strides[0]
        taps = np.lib.stride_tricks.as_strided(flat[:, start:], shape=(self.kh, self.kw, channels, count),
                                               strides=(self.S * step, step, row, step), writeable=False)
        cols = buffer.reshape(-1)[: self.kh * self.kw * channels * count].reshape(self.kh, self.kw, channels, count)
        np.copyto(cols, taps)
        return cols.reshape(-1, count)

    def unflatten(self, flat_chunk, n, rows, cols):
        """The (channels, n·R·S) flat values of n images, as an (n, channels, rows, cols) view."""
        return flat_chunk.reshape(-1, n, self.R, self.S)[:, :, :rows, :cols].transpose(1, 0, 2, 3)

    def for_images(self, work, rows_per_image):
        """Call ``work(n0, n1, buffer, worker)`` for chunks of whole images, over the workers.

        ``rows_per_image`` is the count of float rows of R·S columns that one image needs in the buffers
        (columns and product); chunks take as many images as fit ``CHUNK_BYTES`` over all workers."""
        parts = parallel.WORKERS if parallel.available() and self.N >= 2 * parallel.WORKERS else 1
        image_bytes = rows_per_image * self.R * self.S * self.dtype.itemsize
        per_chunk = max(1, min(self.N // (2 * parts), CHUNK_BYTES // parts // image_bytes))
        count = -(-self.N // per_chunk)
        if parts > 1:  # a multiple of the workers, so that they finish together
            count = min(self.N, -(-count // parts) * parts)
        chunks = [(self.N * k // count, self.N * (k + 1) // count) for k in range(count)]
        size = rows_per_image * self.R * self.S * max(n1 - n0 for n0, n1 in chunks)
        buffers = [np.empty(size, dtype=self.dtype) for _ in range(parts)]
        fast_conv.run_chunks(lambda chunk, worker: work(*chunk, buffers[worker], worker), chunks, parts)


def forward(x, weight, bias, padding, relu):
    """y = conv2d(x, W) + b (then max(·, 0) if ``relu``). Returns y and x's flat layout, which the backward
    reads for dL/dW.

    The bias rides in the GEMM, as a last column of W' against a row of ones under the columns, and the
    ReLU in the copy out of the flat layout: one pass over y instead of three."""
    O, C, kh, kw = weight.shape
    dtype = np.result_type(x.dtype, weight.dtype)
    layout = Layout(x.shape, (kh, kw), padding, dtype)
    flat = layout.flatten(x.astype(dtype, copy=False), layout.H, layout.W, layout.lead)
    wmat = weight.transpose(0, 2, 3, 1).reshape(O, -1)  # (o, (i, j, c))
    if bias is not None:
        wmat = np.concatenate([wmat, bias.reshape(O, 1)], axis=1)
    wmat = np.ascontiguousarray(wmat, dtype=dtype)
    K = wmat.shape[1]
    y = np.empty((layout.N, O, layout.Ho, layout.Wo), dtype=dtype)
    step = layout.R * layout.S

    def work(n0, n1, buffer, worker):
        count = (n1 - n0) * step
        cols = buffer[: K * count].reshape(K, count)
        layout.columns(flat, n0 * step, count, cols)
        if bias is not None:
            cols[-1] = 1
        product = buffer[cols.size : cols.size + O * count].reshape(O, count)
        np.matmul(wmat, cols, out=product)
        out = layout.unflatten(product, n1 - n0, layout.Ho, layout.Wo)
        if relu:
            np.maximum(out, 0, out=y[n0:n1])
        else:
            y[n0:n1] = out

    layout.for_images(work, rows_per_image=K + O)
    return y, flat


def backward(g, flat, weight, padding, x_shape, need_x, need_w, relu_output=None):
    """(dL/dx or None, dL/dW or None, dL/db) from g = dL/dy and the forward's ``flat`` x.

    ``relu_output``: the output of a fused ReLU, whose mask [y > 0] multiplies g first. dL/db = Σ g over
    images and pixels comes from the same pass (``Layout.flatten``)."""
    O, C, kh, kw = weight.shape
    dtype = np.result_type(g.dtype, weight.dtype)
    layout = Layout(x_shape, (kh, kw), padding, dtype)
    step, taps = layout.R * layout.S, kh * kw
    # first image of a chunk -> that chunk's share of dL/dW, summed in image order at the end: the same bits
    # whichever worker took which chunk (a worker takes the next chunk when it is free)
    partial = {}
    db = np.empty(O, dtype=dtype)

    if not need_x:  # dL/dW = g_anchors @ colsᵀ, the columns rebuilt from x
        g_flat = layout.flatten(g, layout.Ho, layout.Wo, 0, mask=relu_output, sums=db)

        def weight_only(n0, n1, buffer, worker):
            count = (n1 - n0) * step
            cols = layout.columns(flat, n0 * step, count, buffer)
            partial[n0] = g_flat[:, n0 * step : n1 * step] @ cols.T

        layout.for_images(weight_only, rows_per_image=C * taps)
        dw = parallel.ordered_sum(partial).reshape(O, kh, kw, C).transpose(0, 3, 1, 2)
        return None, np.ascontiguousarray(dw), db

    g_flat = layout.flatten(g, layout.Ho, layout.Wo, layout.reach, mask=relu_output, sums=db)
    rotated = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 2, 3, 0), dtype=dtype).reshape(C, -1)
    dx = np.empty(x_shape, dtype=dtype)

    def work(n0, n1, buffer, worker):
        count, start = (n1 - n0) * step, layout.lead + n0 * step
        cols = layout.columns(g_flat, start, count, buffer)
        product = buffer[cols.size : cols.size + C * count].reshape(C, count)
        np.matmul(rotated, cols, out=product)
        dx[n0:n1] = layout.unflatten(product, n1 - n0, layout.H, layout.W)
        if need_w:
            partial[n0] = cols @ flat[:, start : start + count].T

    layout.for_images(work, rows_per_image=O * taps + C)
    if not need_w:
        return dx, None, db
    # row (i', j', o) of the sum is dL/dW[o, :, kh-1-i', kw-1-j']
    dw = parallel.ordered_sum(partial).reshape(kh, kw, O, C)[::-1, ::-1].transpose(2, 3, 0, 1)
    return dx, np.ascontiguousarray(dw), db
