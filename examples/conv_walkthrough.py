"""Convolution and max-pooling backward, by hand: the counterpart of backprop_walkthrough.py for CNNs.

One 2-channel 5×5 image, two 3×3 filters, padding 1. The program does by hand, with plain NumPy and the
helpers of ``minidl/textbook/convolution.py``, what ``minidl.textbook.conv2d`` does, and prints each step:

1. im2col: every 3×3 patch of the padded image becomes a column of ``cols`` (2·3·3 = 18 rows, 5·5 = 25
   columns), so that
2. the convolution is one matrix product, y = W (2, 18) @ cols (18, 25) + b, reshaped to (2, 5, 5);
3. the backward, for the loss L = Σ r ⊙ y with a fixed random r (so g = dL/dy = r):
       dL/dW = g @ colsᵀ,   dL/dcols = Wᵀ @ g,   dL/dx = col2im(dL/dcols);
4. a 2×2 max pool of y, whose backward sends each gradient to its window's maximum.

Every result is checked: the forward against the loop definition (``conv2d_loops``), the backward against
minidl's ``Conv2d`` and ``MaxPool2d`` and against finite differences (nudge one number by ±ε, recompute L
with the loops: dL/dt ≈ (L(t + ε) − L(t − ε)) / 2ε). It draws how patches become columns in
``--out``/im2col.png (default runs/conv_walkthrough/). Offline, seeded, a second or two.

    python examples/conv_walkthrough.py [--seed 0] [--out runs/conv_walkthrough]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

from minidl import Tensor, textbook
from minidl.gradcheck import numerical_gradient
from minidl.textbook import conv2d_loops
from minidl.textbook.convolution import Im2col, col2im, im2col

C, H, W, O, K, PAD = 2, 5, 5, 2, 3, 1  # channels, height, width, filters, kernel size, padding
EPS, TOL = 1e-6, 1e-7  # finite-difference step; allowed |backward − finite difference|
np.set_printoptions(precision=3, suppress=True, linewidth=150)


class Checks:
    """Counts the checks, prints each, remembers failures."""

    def __init__(self):
        self.passed = self.total = 0

    def __call__(self, what, got, expected, tol=TOL):
        error = float(np.max(np.abs(np.asarray(got) - np.asarray(expected))))
        ok = error <= tol
        self.total += 1
        self.passed += ok
        print(f"  check: {what:<58} max |difference| {error:.1e}  {'ok' if ok else 'MISMATCH'}")


def row_label(r):
    c, i, j = np.unravel_index(r, (C, K, K))
    return f"(c={c}, i={i}, j={j})"


def convolution(x, w, b, r, check):
    print("\n1. im2col: each patch of the padded image becomes a column")
    print("-----------------------------------------------------------")
    cols = im2col(x, (K, K), (1, 1), (PAD, PAD))
    print(f"x: 1 image, {C} channels, {H}×{W}; padded by {PAD} it is {H + 2 * PAD}×{W + 2 * PAD}. The 3×3 window at output\n"
          f"pixel (h, w) covers padded rows h..h+2 and columns w..w+2 of both channels: {C}·3·3 = {C * K * K} numbers,\n"
          f"column h·{W} + w of cols. Row (c, i, j) of cols holds x_padded[c, h + i, w + j] for every (h, w).\n"
          f"cols has shape {cols.shape}. Its first 6 columns (output pixels (0,0) … (1,0)), rows of channel 0:")
    for row in range(K * K):
        print(f"  {row_label(row)}  {cols[row, :6]}")
    patch = np.pad(x, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))[0, :, 2:5, 3:6]
    check("column 2·5 + 3 is the patch under output pixel (2, 3)", cols[:, 2 * W + 3], patch.ravel(), 0)

    print("\n2. The convolution is one matrix product")
    print("-----------------------------------------")
    w_mat = w.reshape(O, -1)
    y_mat = w_mat @ cols + b[:, None]  # (O, 25): row o is filter o's output, pixel by pixel
    y = y_mat.reshape(1, O, H, W)
    print(f"W {w.shape} read as a ({O}, {C * K * K}) matrix, one row per filter; y = W @ cols + b is "
          f"{y_mat.shape}, reshaped to {y.shape}:")
    print(y[0])
    check("y against the loop definition conv2d_loops", y, conv2d_loops(x, w, b, padding=PAD), 1e-12)

    print("\n3. The backward: dW = g·colsᵀ, dcols = Wᵀ·g, dx = col2im(dcols)")
    print("------------------------------------------------------------------")
    g = r.reshape(O, -1)  # L = Σ r ⊙ y, so g = dL/dy = r, laid out like y_mat
    dw = (g @ cols.T).reshape(w.shape)
    dcols = w_mat.T @ g
    dx = col2im(dcols, x.shape, (K, K), (1, 1), (PAD, PAD))
    db = g.sum(axis=1)
    print(f"g = dL/dy, as a ({O}, {H * W}) matrix like y. dL/dW = g @ colsᵀ {dw.shape}: each weight meets every\n"
          f"pixel it multiplied. Filter 0:\n{dw[0]}")
    print(f"dL/dcols = Wᵀ @ g {dcols.shape}: the gradient of every copy im2col made. col2im adds each copy's\n"
          f"gradient back where it was copied from (a pixel inside the image was copied into 9 columns).\n"
          f"dL/dx, channel 0:\n{dx[0, 0]}")
    xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
    textbook.conv2d(xt, wt, bt, padding=PAD).backward(r)
    check("dL/dW against minidl's Conv2dFunction.backward", dw, wt.grad, 1e-12)
    check("dL/dx against minidl's Conv2dFunction.backward", dx, xt.grad, 1e-12)
    check("dL/db against minidl's Conv2dFunction.backward", db, bt.grad, 1e-12)
    xi = Tensor(x, requires_grad=True)  # the same convolution from the differentiable Im2col and a matmul
    y_auto = Tensor(w_mat) @ Im2col.apply(xi, kernel_size=(K, K), stride=(1, 1), padding=(PAD, PAD))
    y_auto.backward(g)
    check("dL/dx of Im2col + matmul, autograd doing the backward", xi.grad, dx, 1e-12)

    def loss():
        return float(np.sum(conv2d_loops(x, w, b, padding=PAD) * r))

    check(f"dL/dW against finite differences of the loops ({w.size} entries)", dw, numerical_gradient(loss, w, EPS))
    check(f"dL/dx against finite differences of the loops ({x.size} entries)", dx, numerical_gradient(loss, x, EPS))
    return y, cols


def max_pool(y, r_pool, check):
    print("\n4. Max-pool backward: the gradient goes to each window's maximum")
    print("----------------------------------------------------------------")
    Ho, Wo = H // 2, W // 2  # 2×2 windows, stride 2: the 5th row and column fit no window
    pooled = np.zeros((1, O, Ho, Wo))
    dy = np.zeros_like(y)
    for o in range(O):
        for h in range(Ho):
            for w in range(Wo):
                window = y[0, o, 2 * h : 2 * h + 2, 2 * w : 2 * w + 2]
                i, j = np.unravel_index(np.argmax(window), window.shape)  # the first maximum, row-major
                pooled[0, o, h, w] = window[i, j]
                dy[0, o, 2 * h + i, 2 * w + j] += r_pool[0, o, h, w]  # only the maximum moved the output
    print(f"y, channel 0:\n{y[0, 0]}\nmax_pool2d(y, 2), channel 0:\n{pooled[0, 0]}")
    print(f"g = dL/dpooled, channel 0:\n{r_pool[0, 0]}\ndL/dy: each g at its window's maximum, 0 elsewhere "
          f"(the last row and column belong to no window):\n{dy[0, 0]}")
    yt = Tensor(y, requires_grad=True)
    out = textbook.max_pool2d(yt, 2)
    out.backward(r_pool)
    check("max pool against minidl's MaxPool2d", out.data, pooled, 0)
    check("dL/dy against minidl's MaxPool2dFunction.backward", yt.grad, dy, 0)

    def loss():
        return float(np.sum(textbook.max_pool2d(Tensor(y), 2).data * r_pool))

    check(f"dL/dy against finite differences ({y.size} entries)", dy, numerical_gradient(loss, y, EPS))


def draw(x, cols, path):
    """The picture: the two padded channels with three windows outlined, and cols with the same three
    columns outlined in the same colours."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from minidl.plots import save_figure

    xp = np.pad(x[0], ((0, 0), (PAD, PAD), (PAD, PAD)))
    shown = [((0, 0), "tab:red"), ((2, 3), "tab:blue"), ((4, 1), "tab:green")]  # output pixels (h, w)
    shade = dict(cmap="Greys", vmin=0, vmax=30)  # light shading: the numbers stay readable
    fig = plt.figure(figsize=(13, 6.6))
    grid = fig.add_gridspec(2, 2, width_ratios=[1, 3.3], hspace=0.3, wspace=0.22, left=0.02, right=0.99,
                            top=0.86, bottom=0.13)
    channels = [fig.add_subplot(grid[c, 0]) for c in range(C)]
    matrix = fig.add_subplot(grid[:, 1])
    for c, ax in enumerate(channels):
        ax.imshow(xp[c], **shade)
        for (r, q), value in np.ndenumerate(xp[c]):
            inside = PAD <= r < H + PAD and PAD <= q < W + PAD
            ax.text(q, r, f"{value:.0f}", ha="center", va="center", fontsize=9, color="black" if inside else "0.65")
        for (h, w), colour in shown:
            ax.add_patch(Rectangle((w - 0.45, h - 0.45), K - 0.1, K - 0.1, fill=False, lw=2.5, color=colour))
        ax.set_title(f"x, channel {c}, padded with zeros (grey)", fontsize=10)
        ax.set_xticks([]), ax.set_yticks([])
    matrix.imshow(cols, aspect="auto", **shade)
    for (r, q), value in np.ndenumerate(cols):
        matrix.text(q, r, f"{value:.0f}", ha="center", va="center", fontsize=7)
    matrix.axhline(K * K - 0.5, color="0.2", lw=1.5)
    for (h, w), colour in shown:
        column = h * W + w
        matrix.add_patch(Rectangle((column - 0.5, -0.5), 1, C * K * K, fill=False, lw=2.5, color=colour))
        matrix.text(column, -1.0, f"window\nat ({h},{w})", ha="center", va="bottom", fontsize=8, color=colour,
                    fontweight="bold")
    matrix.set_yticks(range(C * K * K), [row_label(r) for r in range(C * K * K)], fontsize=7)
    matrix.set_xticks(range(H * W), [f"{h},{w}" for h in range(H) for w in range(W)], fontsize=7, rotation=90)
    matrix.set_xlabel("column of cols = output pixel (h, w)", fontsize=9)
    matrix.set_ylabel("row = (channel c, kernel offset i, j)", fontsize=9)
    fig.suptitle("im2col: the 3×3 window of output pixel (h, w), both channels, becomes column (h, w) of cols "
                 "(18 × 25)", fontsize=12)
    fig.text(0.5, 0.015, "cols[(c, i, j), (h, w)] = x_padded[c, h + i, w + j].   Then the whole convolution is "
             "one matrix product: y (2 × 25) = W (2 filters × 18) @ cols, reshaped to 2 × 5 × 5.",
             ha="center", fontsize=10)
    save_figure(fig, path, dpi=85)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=int, default=0, help="seeds the image, the filters and the loss weights")
    p.add_argument("--out", type=Path, default=Path("runs/conv_walkthrough"), help="folder for im2col.png")
    args = p.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a console that cannot show ᵀ or × gets escapes, not a crash
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        rng = np.random.default_rng(args.seed)
        x = rng.integers(0, 10, (1, C, H, W)).astype(np.float64)  # small integers: easy to follow in print
        w = rng.standard_normal((O, C, K, K))
        b = rng.standard_normal(O)
        r = rng.standard_normal((1, O, H, W))
        print("minidl convolution walkthrough\n==============================")
        print(f"x {x.shape} (integers, to follow them into the columns), W {w.shape}, b {b.shape}, padding {PAD}; "
              f"loss L = Σ r ⊙ y for a fixed random r.")
        check = Checks()
        y, cols = convolution(x, w, b, r, check)
        max_pool(y, rng.standard_normal((1, O, H // 2, W // 2)), check)
        png = args.out / "im2col.png"
        draw(x, cols, png)
        print(f"\nWrote {png}: the windows of three output pixels, and the columns of cols they become.")
        print(f"\nChecks: {check.passed} of {check.total} passed.")
        if check.passed != check.total:
            print(f"error: {check.total - check.passed} checks failed", file=sys.stderr)
            return 1
        print("Next: read minidl/textbook/convolution.py (Conv2dFunction) and minidl/textbook/pooling.py "
              "(MaxPool2dFunction).")
        return 0
    except Exception as e:  # a learner's first run: one clear line, not a traceback
        print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
