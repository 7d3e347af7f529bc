"""2-D convolution through im2col, engineered: chunks, threads, shifted GEMMs and the rotated kernel.

The textbook twin is ``minidl/textbook/convolution.py`` (read it first); this module computes the same
numbers (``tests/test_kernels.py``), and ``docs/performance.md`` gives the measurements behind each choice.
Shapes follow PyTorch (NCHW images, OIHW weights); H_out = (H + 2·pad_h - kh) // stride_h + 1.

The lowering is the textbook's: with cols[(c, i, j), (h, w)] = x_padded[n, c, h·stride_h + i, w·stride_w + j],

    y[n] (O, H_out·W_out) = W (O, C·kh·kw) @ cols (C·kh·kw, H_out·W_out)   (+ b[o] on every row o)

and, with g = dL/dy reshaped like y,

    dL/dW = g @ colsᵀ,    dL/dcols = Wᵀ @ g,    dL/dx = col2im(dL/dcols),    dL/db = Σ g over n, h, w.

What differs, each for one reason:
- chunks: ``cols`` is kh·kw times the input (450 MB for VGG's first layer at 384×512), so it is built for a
  chunk of images or output rows at a time, in one reused buffer that fits ``CHUNK_BYTES`` (cache-sized);
- no padded copy: windows over the border copy their valid part and write zeros (``_valid_range``);
- NCHW throughout: with the filters as the left operand each GEMM writes straight into the output;
- threads: each core takes whole chunks, copies and GEMM alike, BLAS single-threaded (``_for_chunks``,
  ``parallel.py``), because BLAS's own threads leave the copies on one core;
- the thin layers (``SHIFTED_CHANNELS``) run kh·kw GEMMs on shifted views instead of im2col
  (``_conv_forward_shifted``): fewer copies where the products are cheap;
- stride-1 layers up to ``ROTATED_MAX_CHANNELS`` get dL/dx as a convolution with the rotated kernel and
  dL/dW from the same columns (``FastConv2dFunction``): no col2im and no second im2col of x;
- a stride-1 'same' convolution of a batch of small images goes to ``flat_conv.py`` instead (``FastConv2dFunction``):
  there im2col is one strided copy of a flat layout, whole images per inner loop, not window rows of 14
  or 28 floats.
"""
import numpy as np

from ..autograd import Function
from ..conv_geometry import check_conv2d, output_size, pair
from . import blas, flat_conv, memory, parallel
from .memory import scratch

#: Upper bound, in bytes, for the im2col buffer of one chunk (and for the matching buffer of the backward).
#: Tests lower it to force the chunked path on tiny images.
CHUNK_BYTES = 16 * 2**20

#: Upper bound, in bytes, for all the buffers of a chunk of several whole images (its columns, and the
#: product that is then moved into the NCHW output): L2-sized, much smaller than ``CHUNK_BYTES``, because a
#: few 14×14 or 28×28 images already make GEMMs of thousands of columns (docs/performance.md).
BATCH_CHUNK_BYTES = 2 * 2**20

#: The backward of a stride-1 convolution goes through the rotated kernel (dL/dx as a convolution of dL/dy,
#: dL/dW from the same columns) when its channels are at most this many, otherwise through col2im (see
#: ``FastConv2dFunction``). Tests set it to 0 or a large number to force either path.
ROTATED_MAX_CHANNELS = 256

#: A stride-1 convolution with at least ``SHIFTED_CHANNELS[0]`` input channels and at most
#: ``SHIFTED_CHANNELS[1]`` filters (the thin layers: VGG's blocks 1-2) runs as kh·kw GEMMs on shifted views
#: of its input instead of through im2col (see ``_conv_forward_shifted``). Tests change it
#: to force either path.
SHIFTED_CHANNELS = (64, 128)

def _valid_range(out_lo, out_hi, offset, pad, stride, size):
    """Output positions in [out_lo, out_hi) whose input position o·stride + offset - pad is inside the image.

    Returns (first, stop, first_input): output positions first..stop-1 read input positions first_input,
    first_input + stride, ... The others read the zero padding. Solving 0 <= o·stride + offset - pad <= size - 1
    for o gives o >= ceil((pad - offset) / stride) and o <= floor((size - 1 + pad - offset) / stride).
    """
    first = max(out_lo, -((offset - pad) // stride))  # ceil(a / b) == -((-a) // b)
    stop = min(out_hi, (size - 1 + pad - offset) // stride + 1)
    return first, max(first, stop), first * stride + offset - pad


def _chunks(batch, out_rows, bytes_per_row, parts=1, image_bytes=None):
    """Split the (image, output row) plane into chunks whose im2col buffer fits the budget.

    Yields (n0, n1, r0, r1): images n0..n1-1, output rows r0..r1-1. A chunk is either several whole images
    (small images: a batch of 28×28 digits goes in a few GEMMs) or a band of rows of one image (large
    images: a 384×512 VGG layer goes in ~30 bands of ~14 rows).

    With ``parts`` > 1 worker threads, each worker has a buffer of its own, so the budget per chunk is
    ``CHUNK_BYTES / parts``. The count of chunks is then rounded up to a multiple of
    ``parts``, with at least two per worker, and the rows are spread evenly over them, so that the workers
    finish together. ``image_bytes``, the bytes one image takes in all the buffers of a whole-image chunk,
    caps whole-image chunks at ``BATCH_CHUNK_BYTES / parts`` (see there).
    """
    budget = CHUNK_BYTES // parts
    per_image = bytes_per_row * out_rows
    if per_image <= budget and batch >= 2 * parts:
        images = budget // per_image
        if image_bytes:
            images = min(images, BATCH_CHUNK_BYTES // parts // image_bytes)
        count = parallel.balanced_count(-(-batch // max(1, images)), parts, batch)
        for n0, n1 in parallel.even_ranges(batch, count):  # sizes differ by one at most
            yield n0, n1, 0, out_rows
    else:
        count = parallel.balanced_count(-(-out_rows // max(1, budget // bytes_per_row)), parts, out_rows)
        rows = -(-out_rows // count)
        for n in range(batch):
            for r0 in range(0, out_rows, rows):
                yield n, n + 1, r0, min(out_rows, r0 + rows)


def _for_chunks(work, batch, out_rows, out_cols, K, O, dtype, overlap=None, fixed_shares=False):
    """Call ``work(n0, n1, r0, r1, buffer, worker)`` for every chunk of a (batch, O, out_rows, out_cols)
    output whose GEMMs have the (O, K) weight matrix as one operand.

    ``buffer`` is a scratch array of ``dtype`` large enough for the chunk's K × (its columns) matrix, reused
    by every chunk of the same worker; ``worker`` numbers the threads from 0. With several cores
    (``parallel.available()``), the work is split over them in one of two ways, BLAS single-threaded
    always (see ``parallel.py``):
    - by chunks, when a chunk's columns outnumber the weight's rows (big images, few filters: VGG's blocks
      1-3 at 224×224): each worker takes the next chunk as soon as it is free, im2col and GEMM alike;
    - inside each chunk, when the weight matrix is the larger operand (blocks 4-5): the chunks are done
      here one after another, and ``work`` splits its GEMM by rows (``parallel.matmul``) and its copies by
      channels (``parallel.each``); each worker then packs only its half of the weights.
    Without several cores: chunk after chunk, each GEMM on BLAS's own threads.

    ``overlap=m`` says that neighbouring chunks add into overlapping places (col2im: a window reaches into
    the rows of the next band), but not beyond their neighbours when they have at least m rows. Split by
    chunks, they then run in two waves, the even-numbered ones and then the odd ones, so that two chunks
    running at once are never neighbours.

    ``fixed_shares=True`` says that ``work`` adds into a sum per worker (the weight gradient), whose rounding
    depends on which chunks the worker took. Each worker then takes every parts-th chunk instead of the
    next free one, so that the gradient comes out the same, to the last bit, on every run.
    """
    itemsize = np.dtype(dtype).itemsize
    parts = parallel.WORKERS if parallel.available() else 1
    image_bytes = (K + O) * out_rows * out_cols * itemsize
    chunks = list(_chunks(batch, out_rows, K * out_cols * itemsize, parts, image_bytes=image_bytes))
    columns = min((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in chunks) * out_cols
    # two chunks that run at once (k and k+2) are kept apart by chunk k+1: never the first or the last
    too_thin = overlap and any(r1 - r0 < overlap for _, _, r0, r1 in chunks[1:-1])
    if len(chunks) < 2 * parts or too_thin or columns < O:
        parts, chunks = 1, list(_chunks(batch, out_rows, K * out_cols * itemsize, image_bytes=image_bytes))
    size = max((n1 - n0) * (r1 - r0) for n0, n1, r0, r1 in chunks) * K * out_cols
    buffers = [scratch(k, size, dtype) for k in range(parts)]
    parallel.run_chunks(lambda chunk, worker: work(*chunk, buffers[worker], worker), chunks, parts,
               waves=2 if overlap else 1, fixed_shares=fixed_shares)


def _view(array, shape):
    """Reshape that must not copy: the GEMMs below write into views of the output and must land there.

    (``np.reshape(..., copy=False)`` says this in one call, but only from NumPy 2.1 on; a reshape that had to
    copy gives fresh memory, which the check catches on every NumPy.)
    """
    view = array.reshape(shape)
    if view.size and not np.may_share_memory(view, array):
        raise ValueError(f"cannot reshape an array of shape {array.shape} and strides {array.strides} "
                         f"to {shape} without a copy")
    return view


# --- im2col / col2im -------------------------------------------------------------------------------------
def im2col(x, cols, kernel, stride, padding, n0, n1, r0, r1):
    """Fill ``cols`` (C, kh, kw, n1-n0, r1-r0, W_out) with the patches of images n0..n1-1, output rows r0..r1-1.

    ``cols[c, i, j, n, h, w] = x_padded[n0 + n, c, (r0 + h)·sh + i, w·sw + j]``; reshaped to
    (C·kh·kw, n·rows·W_out) it is the right operand of the forward GEMM. One strided copy per kernel offset;
    positions whose window hangs over the border get zeros instead of a padded copy of x.
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    H, W = x.shape[2:]
    Wo = cols.shape[-1]
    for i in range(kh):
        h0, h1, hin = _valid_range(r0, r1, i, ph, sh, H)
        for j in range(kw):
            w0, w1, win = _valid_range(0, Wo, j, pw, sw, W)
            dst = cols[:, i, j]  # (C, n, rows, W_out)
            # zero the parts of the window that lie in the padding (only border rows/columns, cheap)
            dst[:, :, : h0 - r0] = 0
            dst[:, :, h1 - r0 :] = 0
            dst[..., :w0] = 0
            dst[..., w1:] = 0
            if h1 > h0 and w1 > w0:
                src = x[n0:n1, :, hin : hin + (h1 - h0 - 1) * sh + 1 : sh, win : win + (w1 - w0 - 1) * sw + 1 : sw]
                dst[:, :, h0 - r0 : h1 - r0, w0:w1] = src.transpose(1, 0, 2, 3)


def col2im(dcols, dx, kernel, stride, padding, n0, n1, r0, r1):
    """Add the patches ``dcols`` (C, kh, kw, n, rows, W_out) back into ``dx`` at the places im2col read them.

    The exact transpose of ``im2col``: same index arithmetic, ``+=`` instead of ``=``, and what im2col read
    from the padding is simply dropped (the padding is not a parameter; nothing to send a gradient to).
    """
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    H, W = dx.shape[2:]
    Wo = dcols.shape[-1]
    for i in range(kh):
        h0, h1, hin = _valid_range(r0, r1, i, ph, sh, H)
        for j in range(kw):
            w0, w1, win = _valid_range(0, Wo, j, pw, sw, W)
            if h1 > h0 and w1 > w0:
                dst = dx[n0:n1, :, hin : hin + (h1 - h0 - 1) * sh + 1 : sh, win : win + (w1 - w0 - 1) * sw + 1 : sw]
                dst += dcols[:, i, j, :, h0 - r0 : h1 - r0, w0:w1].transpose(1, 0, 2, 3)


# --- convolution -----------------------------------------------------------------------------------------
def _conv_forward(x, weight, stride, padding, bias=None, relu=False, with_columns=None):
    """The forward: y[n, o] = Σ_c x_padded[n, c] ⋆ weight[o, c] (+ bias[o]) as one GEMM per chunk, then
    max(y, 0) if ``relu``.

    ``with_columns(n0, n1, r0, r1, cols, worker)``, if given, is called with each chunk's im2col matrix
    after its GEMM, while it is still in the cache (the backward reuses the columns of g for dL/dW). It adds
    into a sum per worker, so the chunks are then shared out in fixed shares (see ``_for_chunks``)."""
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    Ho, Wo = output_size(H, kh, sh, ph), output_size(W, kw, sw, pw)
    dtype = np.result_type(x.dtype, weight.dtype)
    if (with_columns is None and stride == (1, 1) and C >= SHIFTED_CHANNELS[0] and O <= SHIFTED_CHANNELS[1]
            and blas.gemm_available(dtype)):
        return _conv_forward_shifted(x, weight, padding, bias, relu)
    K = C * kh * kw
    wmat = np.ascontiguousarray(weight, dtype=dtype).reshape(O, K)  # OIHW is already (O, C·kh·kw) in memory

    out = memory.empty((N, O, Ho, Wo), dtype)

    def work(n0, n1, r0, r1, buffer, worker):
        n, rows = n1 - n0, r1 - r0
        cols = _view(buffer[: K * n * rows * Wo], (C, kh, kw, n, rows, Wo))
        parallel.each(lambda c0, c1: im2col(x[:, c0:c1], cols[c0:c1], (kh, kw), stride, padding, n0, n1, r0, r1), C)
        cols = _view(cols, (K, n * rows * Wo))
        if n == 1:
            # one image's band of rows: out[n0, :, r0:r1] is an (O, rows·W_out) matrix (row stride Ho·Wo)
            # that BLAS can write directly, no temporary
            parallel.matmul(wmat, cols, out=_view(out[n0, :, r0:r1], (O, rows * Wo)))
        else:
            # several whole images: the GEMM gives (O, n, pixels); move n first into the NCHW output
            out[n0:n1] = parallel.matmul(wmat, cols).reshape(O, n, Ho, Wo).transpose(1, 0, 2, 3)
        _add_bias_relu(out[n0:n1, :, r0:r1], bias, relu)
        if with_columns is not None:
            with_columns(n0, n1, r0, r1, cols, worker)

    _for_chunks(work, N, Ho, Wo, K, O, dtype, fixed_shares=with_columns is not None)
    return out


def _add_bias_relu(chunk, bias, relu):
    """chunk (n, O, rows, W_out) += bias[o], then max(chunk, 0) if ``relu``, in place: done on each chunk of
    output right after its GEMM, while it is still in the cache."""
    if bias is not None:
        chunk += bias.reshape(-1, 1, 1)
    if relu:
        np.maximum(chunk, 0, out=chunk)


def _conv_forward_shifted(x, weight, padding, bias=None, relu=False):
    """The forward of a stride-1 convolution as kh·kw GEMMs on shifted views of x, with no im2col.

    Pad x and lay each image's channels out flat, rows of Wp = W + 2·pad_w one after another. Tap (i, j) of
    output pixel (h, w) reads flat position (h + i)·Wp + (w + j) = p + (i·Wp + j), where p = h·Wp + w. So,
    computing the output on a grid of Wp columns per row (the last kw - 1 of them are not output pixels and
    are dropped at the end), the convolution is

        y_wide (O, H_out·Wp) = Σ_{i,j} W[:, :, i, j] (O, C) @ x_flat[:, i·Wp + j : i·Wp + j + H_out·Wp] (C, H_out·Wp)

    and each right operand is a window of x_flat: a view, the channels a fixed distance apart, that BLAS
    reads as it is. ``blas.gemm(..., accumulate=True)`` adds each product into y_wide inside the GEMM
    (β = 1, which ``np.matmul`` cannot do), chunk by chunk of output rows so that the chunk stays in the
    cache across its kh·kw products.

    Against im2col, this saves writing kh·kw copies of the input, at the price of products with an inner
    dimension of C instead of C·kh·kw: it pays for the thin layers only (``SHIFTED_CHANNELS``).
    """
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    ph, pw = padding
    Hp, Wp = H + 2 * ph, W + 2 * pw
    Ho, Wo = Hp - kh + 1, Wp - kw + 1
    dtype = np.result_type(x.dtype, weight.dtype)
    # kw - 1 elements past the last row: the last window of the last tap ends there (in unused columns)
    flat = memory.empty((N, C, Hp * Wp + kw - 1), dtype)
    padded = flat[:, :, : Hp * Wp].reshape(N, C, Hp, Wp)

    def copy_in(c0, c1):  # x into the middle, zeros around it (only there: x overwrites the rest)
        block = padded[:, c0:c1]
        block[:, :, :ph], block[:, :, ph + H :] = 0, 0
        block[:, :, ph : ph + H, :pw], block[:, :, ph : ph + H, pw + W :] = 0, 0
        block[:, :, ph : ph + H, pw : pw + W] = x[:, c0:c1]
        flat[:, c0:c1, Hp * Wp :] = 0  # read only into the dropped columns, but no garbage (NaN) in a product

    parallel.each(copy_in, C)
    taps = np.ascontiguousarray(weight.transpose(2, 3, 0, 1), dtype=dtype)  # (kh, kw, O, C): each tap (O, C)
    out = memory.empty((N, O, Ho, Wo), dtype)

    def work(n0, n1, r0, r1, buffer, worker):
        columns = (r1 - r0) * Wp
        wide = _view(buffer[: O * columns], (O, columns))  # output rows r0..r1-1, Wp columns each
        for n in range(n0, n1):
            for i in range(kh):
                for j in range(kw):
                    start = (r0 + i) * Wp + j
                    blas.gemm(taps[i, j], flat[n, :, start : start + columns], wide, accumulate=i + j > 0)
            out[n, :, r0:r1] = wide.reshape(O, r1 - r0, Wp)[:, :, :Wo]
            _add_bias_relu(out[n, :, r0:r1], bias, relu)

    # the buffer holds O rows of columns; sized as if for 4·O, so that a chunk's output (about 2 MB for a VGG
    # layer) stays in a core's cache across its kh·kw products
    _for_chunks(work, N, Ho, Wp, 4 * O, O, dtype)
    return out


class FastConv2dFunction(Function):
    """y = conv2d(x, W) + b through im2col (see the module docstring for the lowering and its backward).

    For one chunk of output (images n0..n1, rows r0..r1), with cols its im2col matrix and g its gradient
    arranged as (O, columns):

        forward    y_chunk = W (O, C·kh·kw) @ cols
        dL/dW     += g @ colsᵀ             (cols rebuilt from x in the backward rather than kept: kh·kw copies
                                            of every input would stay alive until backward)
        dL/dx     += col2im(Wᵀ @ g)
        dL/db      = Σ g over images and pixels

    For stride 1 there is a second way to get dL/dx: it is the "full" convolution of g with the kernel
    rotated by 180° and its channel axes swapped, padded by kh-1-pad (each input pixel collects g from every
    output whose window covered it, weighted by the tap that covered it). That is an ordinary forward
    convolution, with no col2im and no zero-filled dL/dx to add into. Its columns of g also give dL/dW. For
    stride 1, writing q = h + i - pad for the input position that tap i of output pixel h reads (one spatial
    axis shown):

        dL/dW[o, c, i] = Σ_h g[o, h] · x[c, h + i - pad] = Σ_q x[c, q] · g[o, q - i + pad]
                       = Σ_q x[c, q] · cols_g[(o, kh-1-i), q]

    because the rotated-kernel convolution pads g by kh-1-pad, so its column q holds, in row (o, i'),
    g[o, q + i' - (kh-1-pad)]. So per chunk, dW_rot (O·kh·kw, C) += cols_g @ x_chunkᵀ, where x_chunk is the
    input at the chunk's own pixels (a view of x), and one flip and transpose at the end gives OIHW.
    ``_rotated_kernel_pays`` takes this way where it measured faster: stride 1 and, for dL/dx alone,
    O ≤ C ≤ ``ROTATED_MAX_CHANNELS``; for dL/dx and dL/dW together, O, C ≤ ``ROTATED_MAX_CHANNELS``.

    ``activation="relu"`` fuses a ReLU into the convolution, as Keras's ``Conv2D(activation="relu")``:
    y = max(conv2d(x, W) + b, 0) on each chunk while it is in the cache, and in the backward g is first
    multiplied by [y > 0]; no pre-ReLU output is kept in the graph.

    The backward saves only what it needs: x only when W needs a gradient, W only when x needs one.
    """
    torch_name = "ConvolutionBackward0"

    def forward(self, x, weight, bias=None, stride=(1, 1), padding=(0, 0), activation=None):
        check_conv2d(x, weight, bias, stride, padding, activation)
        memory.owned_by(weight)  # the arrays kept for the next step live as long as the model
        kh, kw = weight.shape[2:]
        self.x_shape, self.kernel, self.stride, self.padding = x.shape, (kh, kw), stride, padding
        self.flat = flat_conv.suits(x.shape, weight.shape, stride, padding)  # 'same', a batch of small images
        # Save only what backward will read (see the class docstring; the flat path reads W's shape always).
        self.x = x if self.needs_input_grad[1] else None
        self.weight = weight if self.needs_input_grad[0] or (self.flat and any(self.needs_input_grad)) else None
        if self.flat:
            y = flat_conv.forward(x, weight, bias, relu=activation == "relu")
        else:
            y = _conv_forward(x, weight, stride, padding, bias, relu=activation == "relu")
        self.y = y if activation == "relu" and any(self.needs_input_grad) else None  # the ReLU's mask, for backward
        return y

    def backward(self, g):
        need_x, need_w, need_b = self.needs_input_grad
        if self.flat:
            return flat_conv.backward(g, self.x, self.x_shape, self.weight, need_x, need_w,
                                      relu_output=self.y)
        if self.y is not None:  # the fused ReLU: dL/d(pre-activation) = g ⊙ [y > 0]
            masked = memory.empty(g.shape, g.dtype)
            parallel.each(lambda c0, c1: np.multiply(g[:, c0:c1], self.y[:, c0:c1] > 0, out=masked[:, c0:c1]),
                          g.shape[1])
            g = masked
        if need_x and self._rotated_kernel_pays(need_w):
            dx, dw = self._grads_from_rotated_kernel(g, need_w)
        else:
            dx = self._input_grad(g) if need_x else None
            dw = self._weight_grad(g) if need_w else None
        return dx, dw, _bias_grad(g) if need_b else None

    def _rotated_kernel_pays(self, need_w):
        """Whether dL/dx (and dL/dW) should come from the rotated-kernel convolution: the measured rule of
        the class docstring. It needs stride 1, and a padding below the kernel size (pad = kh - 1 - ph ≥ 0)."""
        O, C, kh, kw = self.weight.shape
        (ph, pw) = self.padding
        if self.stride != (1, 1) or ph >= kh or pw >= kw:
            return False
        return max(O, C) <= ROTATED_MAX_CHANNELS if need_w else O <= C <= ROTATED_MAX_CHANNELS

    def _grads_from_rotated_kernel(self, g, need_w):
        """dL/dx as the convolution of g with the rotated kernel and, if ``need_w``, dL/dW from the same
        columns of g: per chunk, dW_rot += cols_g @ x_chunkᵀ (see the class docstring)."""
        N, C, H, W = self.x_shape
        O, _, kh, kw = self.weight.shape
        (ph, pw) = self.padding
        rotated = np.ascontiguousarray(self.weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1], dtype=g.dtype)
        partial = {}  # worker -> its sum of cols_g @ x_chunkᵀ, (O·kh·kw, C)

        def weight_grad(n0, n1, r0, r1, cols, worker):
            _add_product(partial, worker, cols, _columns_of(self.x, n0, n1, r0, r1).T)

        dx = _conv_forward(g, rotated, (1, 1), (kh - 1 - ph, kw - 1 - pw), with_columns=weight_grad if need_w else None)
        if not need_w:
            return dx, None
        # row (o, i, j) of the sum is dL/dW[o, :, kh-1-i, kw-1-j]: un-rotate, and bring C to the second axis
        dw = parallel.ordered_sum(partial).reshape(O, kh, kw, C)[:, ::-1, ::-1].transpose(0, 3, 1, 2)
        return dx, np.ascontiguousarray(dw)

    def _input_grad(self, g):
        """dL/dx = col2im(Wᵀ @ g), chunk by chunk."""
        N, C, H, W = self.x_shape
        O, _, kh, kw = self.weight.shape
        Ho, Wo, K = g.shape[2], g.shape[3], C * kh * kw
        wmat_t = np.ascontiguousarray(self.weight, dtype=g.dtype).reshape(O, K).T  # (K, O): BLAS transposes
        dx = parallel.zeros(self.x_shape, g.dtype)

        def work(n0, n1, r0, r1, buffer, worker):
            n, rows = n1 - n0, r1 - r0
            dcols = _view(buffer[: K * n * rows * Wo], (C, kh, kw, n, rows, Wo))
            parallel.matmul(wmat_t, _columns_of(g, n0, n1, r0, r1), out=_view(dcols, (K, n * rows * Wo)))
            parallel.each(lambda c0, c1: col2im(dcols[c0:c1], dx[:, c0:c1], (kh, kw), self.stride, self.padding,
                                                n0, n1, r0, r1), C)

        # a band's windows reach kh - stride rows into the next band's input rows, no further if it has
        # at least kh / stride rows
        _for_chunks(work, N, Ho, Wo, K, O, g.dtype, overlap=-(-kh // self.stride[0]))
        return dx

    def _weight_grad(self, g):
        """dL/dW = Σ over chunks of g @ colsᵀ, with cols rebuilt from x chunk by chunk."""
        N, C, H, W = self.x_shape
        O, (Ho, Wo) = g.shape[1], g.shape[2:]
        kh, kw = self.kernel
        K = C * kh * kw
        dtype = np.result_type(g.dtype, self.x.dtype)
        partial = {}  # worker -> its sum of g @ colsᵀ over its chunks, (O, C·kh·kw)

        def work(n0, n1, r0, r1, buffer, worker):
            n, rows = n1 - n0, r1 - r0
            cols = _view(buffer[: K * n * rows * Wo], (C, kh, kw, n, rows, Wo))
            parallel.each(lambda c0, c1: im2col(self.x[:, c0:c1], cols[c0:c1], (kh, kw), self.stride, self.padding,
                                                n0, n1, r0, r1), C)
            _add_product(partial, worker, _columns_of(g, n0, n1, r0, r1), _view(cols, (K, n * rows * Wo)).T,
                         split_columns=True)

        _for_chunks(work, N, Ho, Wo, K, O, dtype, fixed_shares=True)
        return parallel.ordered_sum(partial).reshape(O, C, kh, kw)  # an array of its own: kept as .grad without a copy


def _bias_grad(g):
    """dL/db = Σ g over images and pixels, the channels split over the workers (the sums are per channel,
    so the split does not change them)."""
    db = np.empty(g.shape[1], dtype=g.dtype)
    parallel.each(lambda c0, c1: np.sum(g[:, c0:c1], axis=(0, 2, 3), out=db[c0:c1]), g.shape[1])
    return db


def _columns_of(a, n0, n1, r0, r1):
    """Images n0..n1-1, rows r0..r1-1 of a (N, channels, rows, W) array as a (channels, n·rows·W) matrix, its
    columns in the order of im2col's (so g, or x, lines up with the columns of a chunk)."""
    if n1 - n0 == 1:
        return a[n0, :, r0:r1].reshape(a.shape[1], -1)  # a view when a is contiguous
    return a[n0:n1].transpose(1, 0, 2, 3).reshape(a.shape[1], -1)  # several images: (C, n, pixels), a copy


def _add_product(partial, worker, a, b, split_columns=False):
    """partial[worker] += a @ b, where the worker's first chunk writes its product (no zero-filled sum to
    fault in and add to) and the next ones add.

    When not already on a worker, the product is split over the workers by rows of a, or by columns of b
    with ``split_columns`` (whichever measured faster for the product at hand)."""
    first = worker not in partial
    if first:
        partial[worker] = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    total = partial[worker]

    def part(lo, hi):
        rows, columns = (slice(None), slice(lo, hi)) if split_columns else (slice(lo, hi), slice(None))
        if first:
            np.matmul(a[rows], b[:, columns], out=total[rows, columns])
        else:
            total[rows, columns] += a[rows] @ b[:, columns]

    parallel.each(part, b.shape[1] if split_columns else a.shape[0])


def conv2d(x, weight, bias=None, stride=1, padding=0, activation=None):
    """2-D convolution (cross-correlation, as in every DL framework) of x (N, C, H, W) with weight (O, C, kh, kw).

    ``stride`` and ``padding`` are an int or a (height, width) pair; padding adds zeros on both sides.
    Returns (N, O, H_out, W_out) with H_out = (H + 2·pad - kh) // stride + 1. ``activation="relu"`` returns
    relu(conv2d(...)) computed in one op (see ``FastConv2dFunction``).
    """
    return FastConv2dFunction.apply(x, weight, bias, stride=pair(stride, "stride"), padding=pair(padding, "padding"),
                                activation=activation)


