# %% [markdown]
# # Convolution: im2col, its backward, and max pooling
#
# A convolution slides each filter over the image and takes a dot product with every window. Written
# as loops that is slow; **im2col** copies every window into a column of a matrix, and then the whole
# convolution is one matrix product, which NumPy (BLAS) does fast. Its backward is then the backward of
# a matrix product, plus `col2im`, which sends each window's gradient back to the pixels it came from.
#
# One image of 2 channels, 5×5 pixels; two 3×3 filters; padding 1 (so the output is 5×5 too). float64
# throughout, so every check agrees to ~1e-12.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

import minidl
from minidl import Tensor, textbook
from minidl import functional as F
from minidl.gradcheck import numerical_gradient
from minidl.textbook.convolution import col2im, im2col

np.set_printoptions(precision=3, suppress=True, linewidth=120)
rng = np.random.default_rng(0)
C, H, W, O, K, PAD = 2, 5, 5, 2, 3, 1  # channels, height, width, filters, kernel size, padding
x = rng.standard_normal((1, C, H, W))
w = rng.standard_normal((O, C, K, K))
b = rng.standard_normal(O)

# %% [markdown]
# ## im2col by hand
#
# Pad the image with a border of zeros; the window of output pixel (h, w) is rows h..h+2 and columns
# w..w+2 of every channel: C·3·3 = 18 numbers, which become column h·W + w.

# %%
padded = np.pad(x[0], ((0, 0), (PAD, PAD), (PAD, PAD)))
cols_by_hand = np.zeros((C * K * K, H * W))
for h in range(H):
    for w_ in range(W):
        cols_by_hand[:, h * W + w_] = padded[:, h:h + K, w_:w_ + K].ravel()

cols = im2col(x, (K, K), (1, 1), (PAD, PAD))  # minidl's: one strided copy per kernel offset, no pixel loop
print(f"cols: {cols.shape}; same as by hand: {np.array_equal(cols, cols_by_hand)}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.2), gridspec_kw={"width_ratios": [1, 3]})
axes[0].imshow(padded[0], cmap="viridis")
axes[0].add_patch(plt.Rectangle((3 - 0.5, 2 - 0.5), K, K, fill=False, edgecolor="red", linewidth=2))
axes[0].set_title("channel 0, padded\nred: the window of pixel (2, 3)")
axes[1].imshow(cols, cmap="viridis", aspect="auto")
axes[1].axvline(2 * W + 3, color="red", linewidth=2)
axes[1].set(title="cols: one column per output pixel (red: pixel (2, 3))", xlabel="output pixel h·5 + w",
            ylabel="row (channel, i, j)", yticks=range(0, C * K * K, 3))
plt.show()

# %% [markdown]
# ## The convolution is one matrix product
#
# Read the filters as a matrix with one row per filter, (O, C·3·3); then y = W @ cols + b, reshaped to
# (1, O, H, W). It matches the definition written as loops, `textbook.conv2d_loops`.

# %%
y = (w.reshape(O, -1) @ cols + b[:, None]).reshape(1, O, H, W)
print("max |im2col conv − loops| =", np.abs(y - textbook.conv2d_loops(x, w, b, padding=PAD)).max())

# %% [markdown]
# ## Its backward
#
# Take the loss L = Σ r ⊙ y for a fixed random r, so that g = dL/dy = r. Then
#
# - dL/dW = g @ colsᵀ: each weight met every pixel it multiplied;
# - dL/dcols = Wᵀ @ g: the gradient of every copy im2col made;
# - dL/dx = col2im(dL/dcols): each copy's gradient added back where it came from (a pixel inside the
#   image was copied into 9 columns, so it gets 9 contributions);
# - dL/db = Σ g over the pixels.

# %%
r = rng.standard_normal(y.shape)
g = r.reshape(O, -1)
dW = (g @ cols.T).reshape(w.shape)
dx = col2im(w.reshape(O, -1).T @ g, x.shape, (K, K), (1, 1), (PAD, PAD))
db = g.sum(axis=1)

xt, wt, bt = (Tensor(a, requires_grad=True) for a in (x, w, b))
F.conv2d(xt, wt, bt, padding=PAD).backward(r)


def loss():
    return float(np.sum(textbook.conv2d_loops(x, w, b, padding=PAD) * r))


print("max |by hand − library|:          dW", np.abs(dW - wt.grad).max(), " dx", np.abs(dx - xt.grad).max(),
      " db", np.abs(db - bt.grad).max())
print("max |by hand − finite difference|: dW", np.abs(dW - numerical_gradient(loss, w)).max(),
      " dx", np.abs(dx - numerical_gradient(loss, x)).max())

# %% [markdown]
# ## Max pooling and its backward
#
# A 2×2 max pool keeps the largest value of each window. Only that value moved the output, so the whole
# gradient of the window goes to it, and every other pixel gets 0. (The fifth row and column belong to
# no window here: 5 // 2 = 2 windows a side.)

# %%
r_pool = rng.standard_normal((1, O, H // 2, W // 2))
dy = np.zeros_like(y)
for o in range(O):
    for h in range(H // 2):
        for w_ in range(W // 2):
            window = y[0, o, 2 * h:2 * h + 2, 2 * w_:2 * w_ + 2]
            i, j = np.unravel_index(np.argmax(window), window.shape)
            dy[0, o, 2 * h + i, 2 * w_ + j] += r_pool[0, o, h, w_]

yt = Tensor(y, requires_grad=True)
F.max_pool2d(yt, 2).backward(r_pool)
print("y, channel 0:\n", y[0, 0], "\ndL/dy by hand, channel 0 (nonzero only at each window's maximum):\n", dy[0, 0])
print("max |by hand − library| =", np.abs(dy - yt.grad).max())

# %% [markdown]
# ## Textbook and fast kernels: the same numbers
#
# minidl has two implementations of convolution and pooling: the textbook ones you just read
# (`minidl/textbook/`), and engineered ones (chunked, threaded, direct BLAS calls) that make VGG19 usable
# on a CPU. `minidl.use_kernels` picks one; the fast ones are the default. On one input, a VGG-like
# layer, forward and backward, both give the same numbers.

# %%
x_big = rng.standard_normal((4, 64, 56, 56))
w_big = rng.standard_normal((64, 64, 3, 3)) * 0.05
r_big = rng.standard_normal((4, 64, 28, 28))
results = {}
for kernels in ("textbook", "fast"):
    with minidl.use_kernels(kernels):
        xt, wt = Tensor(x_big, requires_grad=True), Tensor(w_big, requires_grad=True)
        start = time.perf_counter()
        out = F.max_pool2d(F.conv2d(xt, wt, padding=1, activation="relu"), 2)
        out.backward(r_big)
        results[kernels] = (out.data, xt.grad, wt.grad, time.perf_counter() - start)
        print(f"{kernels:>8}: conv + ReLU + max pool, forward and backward, {results[kernels][3]:.2f} s")
for what, a, b_ in zip(("output", "dL/dx", "dL/dW"), results["textbook"], results["fast"]):
    print(f"{what:>7}: max |textbook − fast| = {np.abs(a - b_).max():.1e} (largest value {np.abs(a).max():.1f})")

# %% [markdown]
# To step through the very code you read with a debugger, select the textbook kernels for a block
# (`with minidl.use_kernels("textbook"):`), for the rest of the program (`minidl.use_kernels("textbook")`),
# or for a whole script from outside: `MINIDL_KERNELS=textbook python my_script.py`.
