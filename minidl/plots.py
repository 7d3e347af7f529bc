"""Figures for classifiers: learning curves, per-class accuracy, confusion matrix, predictions, sweeps.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot), so nothing here changes the
global backend or opens windows, and every file is written atomically.
"""
from pathlib import Path

import numpy as np

from .fileio import atomic_path

RIGHT, WRONG, NEUTRAL = "#1f77b4", "#d62728", "#b0b0b0"  # blue, red, grey
CLASS_FONT_SIZE = 8  # points: class names beside small bar charts, the smallest size that reads at 100%


def save_figure(fig, path, dpi=120, **savefig_options):
    """Save ``fig`` to ``path`` (format from the suffix) under a temporary name, then rename."""
    path = Path(path)
    savefig_options.setdefault("bbox_inches", "tight")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi, **savefig_options)
    return path


def _figure(width, height):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def accuracy_curve(epochs, path, title="Accuracy per epoch"):
    """Train and test accuracy (left) and loss (right) against epoch. ``epochs``: list of metric dicts.

    Train: the running means over each epoch's batches (as ``training.fit`` and Keras report them); test:
    the whole test set at the end of each epoch. The legend says which is which.
    """
    fig = _figure(10, 4)
    acc_ax, loss_ax = fig.subplots(1, 2)
    x = [e["epoch"] for e in epochs]
    for split, style, label in (("train", "o-", "train (running mean over the epoch)"),
                                ("test", "s-", "test (at the end of the epoch)")):
        acc_ax.plot(x, [100 * e[f"{split}_accuracy"] for e in epochs], style, label=label)
        loss_ax.plot(x, [e[f"{split}_loss"] for e in epochs], style, label=label)
    last = epochs[-1]
    # The final test accuracy, right of the last point: room is made there, past every line, inside the axes.
    span = max(x[-1] - x[0], 1)
    acc_ax.set_xlim(x[0] - 0.08 * span, x[-1] + 0.22 * span)
    acc_ax.annotate(f"{100 * last['test_accuracy']:.2f}%", (x[-1], 100 * last["test_accuracy"]),
                    textcoords="offset points", xytext=(7, 0), ha="left", va="center", color="C1")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title=title, xticks=x)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Cross-entropy loss per epoch", xticks=x)
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def per_class_accuracy(accuracies, class_names, path, title="Test accuracy per class", weak_margin=5):
    """Horizontal bars, one per class; classes more than ``weak_margin`` points below the mean in red.

    The legend says what red means, so the reader does not have to guess the rule.
    """
    from matplotlib.patches import Patch

    fig = _figure(7, 0.45 * len(class_names) + 1.4)
    ax = fig.subplots()
    acc = 100 * np.asarray(accuracies)
    mean = np.nanmean(acc)
    colors = [WRONG if a < mean - weak_margin else RIGHT for a in acc]
    y = np.arange(len(class_names))[::-1]
    ax.barh(y, acc, color=colors)
    for yi, a in zip(y, acc):  # a column of values right of 100%, where no bar or the mean line can reach
        ax.text(101.5, yi, f"{a:.1f}%", va="center")
    mean_line = ax.axvline(mean, color="k", ls="--", lw=1, label=f"mean of the classes {mean:.1f}%")
    ax.axvline(100, color="#888888", lw=0.6)
    ax.set(yticks=y, yticklabels=class_names, xlim=(0, 113), xticks=range(0, 101, 20), xlabel="accuracy (%)",
           title=title)
    ax.legend(handles=[Patch(color=RIGHT, label=f"above the mean, or at most {weak_margin} points below"),
                       Patch(color=WRONG, label=f"more than {weak_margin} points below the mean"), mean_line],
              loc="upper center", bbox_to_anchor=(0.5, -0.12 * 11 / (len(class_names) + 1)), ncol=2, fontsize=8)
    return save_figure(fig, path)


def confusion_matrix(matrix, class_names, path, title="Confusion matrix (test set)"):
    """Counts with true class on rows and prediction on columns; colour shows the row-normalised share."""
    matrix = np.asarray(matrix)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig = _figure(8, 7)
    ax = fig.subplots()
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    n = len(class_names)
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set(xticks=range(n), yticks=range(n), xlabel="predicted class", ylabel="true class", title=title)
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    fig.colorbar(im, ax=ax, label="share of the true class", shrink=0.8)
    return save_figure(fig, path)


def prediction_grid(images, probabilities, labels, class_names, path, rows=5, cols=3, title=None, note=None):
    """Each test image beside a bar chart of its class confidences, one bar per class, named beside it.

    The true class's bar is blue; when the prediction is wrong, the predicted class's bar is red. The
    caption (predicted class, confidence, true class) is blue when right and red when wrong. ``note`` is
    printed under the title: say there how the images were chosen (e.g. misclassified ones on purpose).
    """
    fig = _figure(5.4 * cols, 2.6 * rows)
    axes = fig.subplots(rows, 2 * cols, gridspec_kw={"width_ratios": [1, 1.5] * cols})
    n = len(class_names)
    for k in range(rows * cols):
        img_ax, bar_ax = axes[k // cols, 2 * (k % cols)], axes[k // cols, 2 * (k % cols) + 1]
        if k >= len(images):
            img_ax.axis("off")
            bar_ax.axis("off")
            continue
        p, true = probabilities[k], int(labels[k])
        guess = int(np.argmax(p))
        color = RIGHT if guess == true else WRONG
        img_ax.imshow(images[k], cmap="binary")
        img_ax.set_xticks([])
        img_ax.set_yticks([])
        img_ax.set_xlabel(f"{class_names[guess]} {100 * p[guess]:.0f}%\n(true: {class_names[true]})",
                          color=color, fontsize=8)
        bar_colors = [NEUTRAL] * n
        bar_colors[guess] = WRONG
        bar_colors[true] = RIGHT  # when right, guess == true and the bar ends up blue
        # horizontal bars, so the class names are written level, at a size that can be read
        bar_ax.barh(range(n), p, color=bar_colors)
        bar_ax.set(xlim=(0, 1), xticks=[0, 0.5, 1], yticks=range(n), ylim=(n - 0.5, -0.5))
        bar_ax.set_yticklabels(class_names, fontsize=CLASS_FONT_SIZE)
        bar_ax.tick_params(axis="x", labelsize=7)
    if title or note:
        fig.suptitle("\n".join(filter(None, [title, note])))
    return save_figure(fig, path)


def sweep(results, path, title="Architecture sweep"):
    """Test accuracy (left) and training time (right) against parameter count, one line per depth."""
    fig = _figure(11, 4.5)
    acc_ax, time_ax = fig.subplots(1, 2)
    for depth in sorted({r["depth"] for r in results}):
        rows = sorted((r for r in results if r["depth"] == depth), key=lambda r: r["parameters"])
        params = [r["parameters"] for r in rows]
        label = f"{depth} hidden layer{'s' if depth > 1 else ''}"
        acc_ax.plot(params, [100 * r["test_accuracy"] for r in rows], "o-", label=label)
        time_ax.plot(params, [r["seconds"] for r in rows], "o-", label=label)
        for r in rows:
            acc_ax.annotate(str(r["width"]), (r["parameters"], 100 * r["test_accuracy"]),
                            textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    acc_ax.set(xscale="log", xlabel="parameters", ylabel="test accuracy (%)", title=f"{title}: accuracy (labels: width)")
    time_ax.set(xscale="log", yscale="log", xlabel="parameters", ylabel="training time (s)", title=f"{title}: time")
    for ax in (acc_ax, time_ax):
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    return save_figure(fig, path)


def filters(weights, path, title="First-layer filters"):
    """The filters of a convolution taking a one-channel image, ``weights`` (out, 1, kh, kw), one tile each.

    All tiles share one colour scale centred on zero (red positive, blue negative), so a filter's
    contrast can be compared with its neighbours': each is a small pattern the layer responds to.
    """
    w = np.asarray(weights)[:, 0]
    cols = min(8, len(w))
    rows = -(-len(w) // cols)
    fig = _figure(1.2 * cols + 1, 1.2 * rows + 0.8)
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    limit = np.abs(w).max() or 1.0
    for k, ax in enumerate(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= len(w):
            ax.axis("off")
            continue
        im = ax.imshow(w[k], cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(str(k), fontsize=7)
    fig.colorbar(im, ax=list(axes), label="weight", shrink=0.8)
    fig.suptitle(f"{title}: {len(w)} filters of {w.shape[1]}×{w.shape[2]} pixels")
    return save_figure(fig, path)


def feature_maps(image, stages, path, title="One test image through the convolutions", max_maps=32):
    """The input ``image`` (H, W), then for each ``(name, maps)`` in ``stages`` (maps: (C, h, w)) its
    first ``max_maps`` channels, each on its own colour scale (bright = strong response)."""
    cols = 8
    rows_per = [-(-min(len(m), max_maps) // cols) for _, m in stages]
    fig = _figure(1.3 * cols, 1.3 * (sum(rows_per) + 1) + 0.5 * len(stages) + 0.8)
    subfigs = fig.subfigures(len(stages) + 1, 1, height_ratios=[1.2] + rows_per)
    ax = subfigs[0].subplots()
    ax.imshow(image, cmap="binary")
    ax.set(xticks=[], yticks=[], title="input")
    for sub, (name, maps), rows in zip(subfigs[1:], stages, rows_per):
        shown = maps[:max_maps]
        axes = np.atleast_1d(sub.subplots(rows, cols)).ravel()
        for k, a in enumerate(axes):
            a.set_xticks([])
            a.set_yticks([])
            if k < len(shown):
                a.imshow(shown[k], cmap="viridis")
            else:
                a.axis("off")
        more = f", first {len(shown)} of {len(maps)} channels" if len(maps) > len(shown) else f", {len(maps)} channels"
        sub.suptitle(f"{name} ({maps.shape[1]}×{maps.shape[2]}{more})", fontsize=10)
    fig.suptitle(f"{title}\neach map on its own colour scale: dark = no response, bright = the strongest")
    return save_figure(fig, path)
