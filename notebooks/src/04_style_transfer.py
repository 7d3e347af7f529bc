# %% [markdown]
# # Neural style transfer
#
# Gatys, Ecker and Bethge's idea: a network trained to recognise objects (VGG19) describes an image at
# every layer by feature maps. We optimise the **pixels** of a new image, with the network frozen, so that
# its deep features match a photo's (the content) and the correlations between its feature maps match a
# painting's (the style).
#
# The real thing needs VGG19's ImageNet weights: `python -m minidl.weights fetch vgg19` (80 MB, once), or
# `python -m minidl.weights convert` for a Keras or torchvision file you have. This notebook uses them when
# they are there, and otherwise runs on **random weights**, which shows the machinery but not the art (see
# the end). `FULL = True` gives the settings of TensorFlow's tutorial: 512 pixels, 1000 steps (about an hour
# on two cores); the default is a short preview.

# %%
FULL = False

# %%
from IPython.display import display
import matplotlib.cbook
import matplotlib.pyplot as plt
import numpy as np

import minidl
from minidl import image, style
from minidl.models import vgg19
from minidl.weights import find_weights, imagenet_filename

try:
    find_weights([imagenet_filename("vgg19"), imagenet_filename("vgg19", include_top=True)])
    PRETRAINED = True
except FileNotFoundError:
    PRETRAINED = False

if FULL:
    SIZE, STEPS, SNAPSHOT_EVERY = 512, 1000, 100
elif PRETRAINED:
    SIZE, STEPS, SNAPSHOT_EVERY = 256, 200, 50
else:
    SIZE, STEPS, SNAPSHOT_EVERY = 128, 200, 50

model = vgg19(weights="imagenet" if PRETRAINED else None)
print(("ImageNet weights from " + str(model.weights_file)) if PRETRAINED else
      "No ImageNet weights found: random (Glorot-uniform) weights. Get the real ones with "
      "`python -m minidl.weights fetch vgg19`, then run this notebook again.")
print(f"{SIZE} pixels, {STEPS} steps, a snapshot every {SNAPSHOT_EVERY}")

# %% [markdown]
# ## VGG19's layers
#
# Sixteen 3×3 convolutions (each with its ReLU) in five blocks, each block ending in a 2×2 max pool that
# halves the image. The layers are named as in Keras: `block1_conv1` … `block5_conv4`.

# %%
x = minidl.Tensor(np.zeros((1, 3, SIZE, SIZE), dtype=np.float32))
with minidl.no_grad():
    features = model.extract(model.preprocess(x), list(model.layer_names))
for name in model.layer_names:
    marks = [what for what, layers in (("content", style.CONTENT_LAYERS), ("style", style.STYLE_LAYERS))
             if name in layers]
    print(f"{name:14} {str(features[name].shape[1:]):18} {'← ' + ' and '.join(marks) if marks else ''}")

# %% [markdown]
# ## The two losses, and why each is what it is
#
# For one layer, the feature maps F have C channels over M = H·W positions: a (C, M) matrix.
#
# - **Content loss** `style.content_loss(F, P) = mean((F − P)²)`, at `block5_conv2`: the generated image's
#   deep features must equal the photo's **at the same positions**. Deep layers respond to objects and
#   their parts rather than exact pixels, so matching them keeps what is where, while leaving the colours
#   and strokes free.
# - **Style loss** `style.style_loss`: the mean squared difference of **Gram matrices**, G = F Fᵀ / M, at
#   `block1_conv1` … `block5_conv1`. G's entry (i, j) says how strongly channels i and j fire together,
#   averaged over all positions: the *where* is summed away, and what stays is which textures and colours
#   go together. Several layers catch the style at several scales, from brush strokes to larger motifs.
# - A small **total variation** term keeps neighbouring pixels from flickering.
#
# The Gram matrix's backward, dL/dF = (g + gᵀ) F / M, is in `minidl/textbook/gram.py`. Below, the photo
# mirrored has the same style as the photo (a small style loss: the same things, only elsewhere) but other
# content at each position (a large content loss); the painting differs from the photo in style.

# %%
with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
    content = image.load_image(f.name, long_side=SIZE)
painting = image.painting(SIZE, seed=0)  # a picture minidl draws itself, so the notebook needs no files
content_x, style_x = image.to_nchw(content), image.to_nchw(painting)

# The photo, the photo mirrored (the same things, at other places) and the painting, through the network:
layers = list(style.CONTENT_LAYERS + style.STYLE_LAYERS)
with minidl.no_grad():
    feats = {name: model.extract(model.preprocess(minidl.Tensor(picture)), layers)
             for name, picture in (("photo", content_x), ("mirrored photo", content_x[..., ::-1].copy()),
                                   ("painting", style_x))}
    photo_grams = [style.gram_matrix(feats["photo"][name]).data for name in style.STYLE_LAYERS]
    for name in ("photo", "mirrored photo", "painting"):
        c = (style.content_loss(feats[name]["block5_conv2"], feats["photo"]["block5_conv2"].data).item()
             if name != "painting" else float("nan"))  # the painting is square: no position-wise comparison
        s = style.style_loss([feats[name][n] for n in style.STYLE_LAYERS], photo_grams).item()
        print(f"{name:>15} against the photo: content loss {c:9.4g}   style loss {s:9.4g}")

fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
for ax, picture, title in zip(axes, (content, painting), ("content: Grace Hopper", "style: a generated painting")):
    ax.imshow(picture)
    ax.set(title=title, xticks=[], yticks=[])
plt.show()

# %% [markdown]
# ## The run
#
# Adam on the pixels, starting from the photo. The grid below is redrawn at every snapshot while the run
# goes, and the progress bar shows the three weighted parts of the loss.

# %%
snapshots = []
grid = display(plt.figure(), display_id=True)  # replaced at each snapshot
plt.close("all")


def draw_snapshots():
    cols = min(len(snapshots), 5)
    rows = -(-len(snapshots) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (step, picture) in zip(axes.ravel(), snapshots):
        ax.imshow(picture)
        ax.set_title(f"step {step}", fontsize=9)
    fig.tight_layout()
    grid.update(fig)
    plt.close(fig)


bar = minidl.progress.ProgressBar(total=STEPS, desc="style transfer", unit="step")


def on_step(step, x, losses):
    if step > 0:
        bar.update(1)
        bar.set_postfix(**{k: float(v) for k, v in losses.items() if k != "loss"})
    if step % SNAPSHOT_EVERY == 0 or step == STEPS:
        snapshots.append((step, image.to_hwc(x)))
        draw_snapshots()


result = style.style_transfer(content_x, style_x, model, steps=STEPS, snapshot_every=SNAPSHOT_EVERY,
                              callback=on_step)
bar.close()

# %% [markdown]
# How the three weighted parts of the loss fell:

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for part in ("loss", "content", "style", "tv"):
    ax.plot(result.history["step"], result.history[part], label=part)
ax.set(yscale="log", xlabel="step", ylabel="weighted loss", title="The loss (its total and its three parts)")
ax.legend()
plt.show()

# %% [markdown]
# ## What this run can and cannot show

# %%
if PRETRAINED:
    print("These are VGG19's ImageNet weights: the features mean something (edges, textures, object parts), "
          "so the picture should take on the painting's colours and strokes while Grace Hopper stays recognisable. "
          "Set FULL = True for the full-size run.")
else:
    h = result.history
    print("With random weights the network has learnt nothing: its features are random filters of the pixels.\n"
          "What it CAN show: the whole pipeline runs (VGG19's forward, the content, style and total-variation "
          "losses, their gradients back to the pixels, Adam on the image), and the optimiser lowers the total "
          f"loss, here from {h['loss'][0]:.3g} to {h['loss'][-1]:.3g}.\n"
          "What it CANNOT show: style. The loss weights are tuned for the trained network; with random features "
          f"the total-variation term dominates (weighted, {h['tv'][0]:.3g} at the start against "
          f"{h['style'][0]:.3g} for the style), so the optimiser mostly smooths the picture, and the content "
          f"and style terms even grow ({h['content'][0]:.3g} → {h['content'][-1]:.3g} and "
          f"{h['style'][0]:.3g} → {h['style'][-1]:.3g}): the image only blurs and tints, and no brush strokes "
          "appear. For the real thing, fetch the ImageNet weights (python -m minidl.weights fetch vgg19) and run "
          "this notebook again.")
