# %% [markdown]
# # Fashion-MNIST: a classifier end to end
#
# The 784-128-10 network on 28×28 pictures of clothes, trained for 5 epochs with Adam; then what it gets
# right and wrong, class by class, a small comparison of architectures, and a convolutional network with
# the filters it learned.
#
# To keep the notebook under three minutes on two cores, it trains on part of the training set, and the
# CNN runs one short epoch. **Set `FULL = True` for the real settings** (all 60,000 images; the CNN's
# 5 epochs then take 3-4 minutes on their own, ~91%).

# %%
FULL = False

TRAIN_IMAGES = 60_000 if FULL else 20_000  # of the 60,000 training images
SWEEP_IMAGES, SWEEP_EPOCHS = (60_000, 5) if FULL else (10_000, 2)
CNN_IMAGES, CNN_EPOCHS = (60_000, 5) if FULL else (6_000, 1)

# %%
import tempfile
from pathlib import Path

import numpy as np
from IPython.display import Image, display

import minidl
from minidl import nn, plots
from minidl.datasets import FASHION_MNIST_CLASSES, load_fashion_mnist
from minidl.metrics import confusion_matrix, per_class_accuracy
from minidl.training import fit

# The plots write PNG files; we show them here. The folder is deleted when the kernel stops.
figures_folder = tempfile.TemporaryDirectory(prefix="minidl-notebook-")
FIGURES = Path(figures_folder.name)


def show(path):
    display(Image(filename=str(path)))


train_images, train_labels = load_fashion_mnist("train", download=False)
test_images, test_labels = load_fashion_mnist("test", download=False)
x_train = train_images[:TRAIN_IMAGES].astype(np.float32) / 255
y_train = train_labels[:TRAIN_IMAGES]
x_test = test_images.astype(np.float32) / 255
print(f"training on {len(x_train):,} images, testing on {len(x_test):,}; each {x_train.shape[1:]}, "
      f"classes: {', '.join(FASHION_MNIST_CLASSES)}")

# %% [markdown]
# ## The network: 784 → 128 → ReLU → 10
#
# `Flatten` turns each image into a row of 784 pixels; the last layer gives one score (logit) per class,
# and the cross-entropy loss turns the scores into probabilities with a softmax. `fit` is the usual loop:
# for each batch of 32, forward, loss, `zero_grad`, `backward`, `step`.

# %%
minidl.manual_seed(0)
mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
history, probs = fit(mlp, (x_train, y_train), (x_test, test_labels), epochs=5, batch_size=32, lr=1e-3)
print(f"test accuracy after 5 epochs: {100 * history[-1]['test_accuracy']:.2f}%")

# %% [markdown]
# ## What it sees: test images and its confidence in each class
#
# Blue bar: the true class. Red bar: the model's guess, when it is wrong. Five of the fifteen images are
# misclassified ones, picked on purpose; the other ten are correctly classified ones, picked at random.

# %%
predicted = probs.argmax(axis=1)
pick = np.random.default_rng(0)
wrong = pick.choice(np.flatnonzero(predicted != test_labels), size=5, replace=False)
right = pick.choice(np.flatnonzero(predicted == test_labels), size=10, replace=False)
shown = pick.permutation(np.concatenate([wrong, right]))
show(plots.prediction_grid(test_images[shown], probs[shown], test_labels[shown], FASHION_MNIST_CLASSES,
                           FIGURES / "predictions.png", title="Test images and the model's confidences",
                           note="5 misclassified images picked on purpose, 10 correctly classified ones at random"))

# %% [markdown]
# ## Accuracy per class
#
# Some classes are much harder than others: shirts, pullovers and coats look alike at 28×28.

# %%
matrix = confusion_matrix(predicted, test_labels, len(FASHION_MNIST_CLASSES))
show(plots.per_class_accuracy(per_class_accuracy(matrix), FASHION_MNIST_CLASSES, FIGURES / "per_class.png"))
show(plots.confusion_matrix(matrix, FASHION_MNIST_CLASSES, FIGURES / "confusion.png"))

# %% [markdown]
# ## Accuracy per epoch
#
# The train numbers are running means over each epoch's batches (as Keras reports them), the test
# numbers are the whole test set after each epoch.

# %%
show(plots.accuracy_curve(history, FIGURES / "accuracy_curve.png"))

# %% [markdown]
# ## A small architecture comparison
#
# Wider and deeper networks, each trained the same way on fewer images and epochs (`SWEEP_IMAGES`,
# `SWEEP_EPOCHS`). More parameters help, up to a point, and cost time. (The times are those of the machine
# that ran the notebook; on a busy one, the larger matrix products, which BLAS splits over threads, slow
# down far more than the small ones.)

# %%
def mlp_of(widths):
    layers, size = [nn.Flatten()], 784
    for width in widths:
        layers += [nn.Linear(size, width), nn.ReLU()]
        size = width
    return nn.Sequential(*layers, nn.Linear(size, 10))


results = []
for widths in [(32,), (128,), (512,), (32, 32), (128, 128)]:
    minidl.manual_seed(0)
    model = mlp_of(widths)
    run, _ = fit(model, (x_train[:SWEEP_IMAGES], y_train[:SWEEP_IMAGES]), (x_test, test_labels),
                 epochs=SWEEP_EPOCHS, batch_size=32, lr=1e-3, verbose=False)
    results.append(dict(depth=len(widths), width=widths[0], parameters=sum(p.numel() for p in model.parameters()),
                        test_accuracy=run[-1]["test_accuracy"], seconds=sum(e["seconds"] for e in run)))
    print(f"hidden {' × '.join(map(str, widths)):>9}: {results[-1]['parameters']:>7,} parameters, "
          f"test accuracy {100 * results[-1]['test_accuracy']:.2f}%, {results[-1]['seconds']:.1f}s")
show(plots.sweep(results, FIGURES / "sweep.png", title="MLPs"))

# %% [markdown]
# ## A convolutional network
#
# Two blocks of 3×3 convolutions (with their ReLU) and 2×2 max pooling, then 128 → 10. A convolution looks
# at each small window of the image with the same few filters, so it learns local patterns (edges,
# stripes) wherever they are. The short run here (`CNN_IMAGES`, `CNN_EPOCHS`) only shows the machinery;
# with `FULL` it trains for 5 epochs on all 60,000 images and reaches about 91%, against the MLP's 86-88%.

# %%
x_train_cnn = train_images[:CNN_IMAGES, None].astype(np.float32) / 255  # (N, 1, 28, 28): one channel
minidl.manual_seed(0)
cnn = nn.Sequential(
    nn.Conv2d(1, 32, 3, padding=1, activation="relu"), nn.MaxPool2d(2),
    nn.Conv2d(32, 64, 3, padding=1, activation="relu"), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
)
cnn_history, cnn_probs = fit(cnn, (x_train_cnn, train_labels[:CNN_IMAGES]), (x_test[:, None], test_labels),
                             epochs=CNN_EPOCHS, batch_size=64, lr=1e-3, lr_decay=0.6)
print(f"CNN test accuracy after {CNN_EPOCHS} epoch(s) on {CNN_IMAGES:,} images: "
      f"{100 * cnn_history[-1]['test_accuracy']:.2f}%")

# %% [markdown]
# The first layer's 32 filters (red: positive weights, blue: negative), and one test image through both
# convolutions (the first 16 channels of each): each map is where one filter responded.

# %%
show(plots.filters(cnn[0].weight.data, FIGURES / "filters.png", title="conv1's learned filters"))

boot = int(np.flatnonzero(test_labels == FASHION_MNIST_CLASSES.index("Ankle boot"))[0])
stages, x = [], minidl.Tensor(x_test[boot][None, None])
with minidl.no_grad():
    for layer in cnn:
        x = layer(x)
        if isinstance(layer, nn.Conv2d):
            stages.append((f"conv{len(stages) + 1} + ReLU", x.data[0]))
show(plots.feature_maps(test_images[boot], stages, FIGURES / "feature_maps.png", max_maps=16,
                        title=f"Test image {boot} (Ankle boot) through the convolutions"))
