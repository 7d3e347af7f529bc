"""Figures for classifiers: learning curves, per-class accuracy, confusion matrix, predictions, sweeps.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot), so nothing here changes the
global backend or opens windows, and every file is written atomically.
"""
from pathlib import Path

import numpy as np

from .fileio import atomic_path

RIGHT, WRONG, NEUTRAL = "#1f77b4", "#d62728", "#b0b0b0"  # blue, red, grey


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
    """Train and test accuracy (left) and loss (right) against epoch. ``epochs``: list of metric dicts."""
    fig = _figure(10, 4)
    acc_ax, loss_ax = fig.subplots(1, 2)
    x = [e["epoch"] for e in epochs]
    for split, style in (("train", "o-"), ("test", "s-")):
        acc_ax.plot(x, [100 * e[f"{split}_accuracy"] for e in epochs], style, label=split)
        loss_ax.plot(x, [e[f"{split}_loss"] for e in epochs], style, label=split)
    last = epochs[-1]
    acc_ax.annotate(f"{100 * last['test_accuracy']:.2f}%", (x[-1], 100 * last["test_accuracy"]),
                    textcoords="offset points", xytext=(0, -14), ha="center")
    acc_ax.set(xlabel="epoch", ylabel="accuracy (%)", title=title, xticks=x)
    loss_ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss per epoch", xticks=x)
    for ax in (acc_ax, loss_ax):
        ax.grid(alpha=0.3)
        ax.legend()
    return save_figure(fig, path)


def per_class_accuracy(accuracies, class_names, path, title="Test accuracy per class"):
    """Horizontal bars, one per class, the weakest classes standing out in red."""
    fig = _figure(7, 0.45 * len(class_names) + 1)
    ax = fig.subplots()
    acc = 100 * np.asarray(accuracies)
    mean = np.nanmean(acc)
    colors = [WRONG if a < mean - 5 else RIGHT for a in acc]
    y = np.arange(len(class_names))[::-1]
    ax.barh(y, acc, color=colors)
    for yi, a in zip(y, acc):
        ax.text(a + 0.5, yi, f"{a:.1f}%", va="center")
    ax.axvline(mean, color="k", ls="--", lw=1, label=f"mean {mean:.1f}%")
    ax.set(yticks=y, yticklabels=class_names, xlim=(0, 108), xlabel="accuracy (%)", title=title)
    ax.legend(loc="lower left")
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


def prediction_grid(images, probabilities, labels, class_names, path, rows=5, cols=3, title=None):
    """Each test image beside a bar chart of its class confidences.

    The true class's bar is blue; when the prediction is wrong, the predicted class's bar is red. The
    caption (predicted class, confidence, true class) is blue when right and red when wrong.
    """
    fig = _figure(4.2 * cols, 1.9 * rows)
    axes = fig.subplots(rows, 2 * cols, gridspec_kw={"width_ratios": [1, 1.6] * cols})
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
        bar_ax.bar(range(n), p, color=bar_colors)
        bar_ax.set(ylim=(0, 1), xticks=range(n), yticks=[0, 0.5, 1])
        bar_ax.set_xticklabels(range(n), fontsize=7)
        bar_ax.tick_params(axis="y", labelsize=7)
    if title:
        fig.suptitle(title)
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
