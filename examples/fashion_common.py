"""What examples/fashion_mlp.py and examples/fashion_cnn.py share: their options and the checks on them,
loading the data, writing the metrics, figures and model of a run, and stopping cleanly on Ctrl-C.

The training loop and the evaluation are in the library (``minidl.training``), the figures in
``minidl.plots``; this module only connects them to a command line.
"""
import argparse
import contextlib
import math
import os
import sys
from pathlib import Path

import numpy as np

from minidl import plots
from minidl.datasets import FASHION_MNIST_CLASSES, fashion_mnist, load_fashion_mnist
from minidl.fileio import write_json
from minidl.interrupt import EXIT_STATUS
from minidl.metrics import confusion_matrix, per_class_accuracy

SHOWN, SHOWN_WRONG = 15, 5  # predictions.png: 15 test images, 5 of them misclassified on purpose


class Parser(argparse.ArgumentParser):
    """argparse, with every error on one line (argparse prints the usage first, which hides the message)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def whole_number(text, minimum):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def positive_int(text):
    return whole_number(text, 1)


def seed_number(text):
    return whole_number(text, 0)  # NumPy's generators take no negative seeds


def real_number(text, accepted, wanted):
    """float(text) if ``accepted(value)``; otherwise the refusal says it ``must be <wanted>``."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not accepted(value):
        raise argparse.ArgumentTypeError(f"must be {wanted}, got {text}")
    return value


def positive_float(text):
    return real_number(text, lambda v: v > 0 and math.isfinite(v), "a positive finite number")


def decay_factor(text):  # 1: a constant learning rate
    return real_number(text, lambda v: 0 < v <= 1, "above 0 and at most 1")


def probability(text):  # a dropout probability: 1 would drop everything
    return real_number(text, lambda v: 0 <= v < 1, "at least 0 and below 1")


def add_common_arguments(p, *, out, batch_size, lr_decay):
    p.add_argument("--epochs", type=positive_int, default=5)
    p.add_argument("--batch-size", type=positive_int, default=batch_size)
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate")
    p.add_argument("--lr-decay", type=decay_factor, default=lr_decay, metavar="GAMMA",
                   help=f"multiply the learning rate by GAMMA after each epoch (default {lr_decay}; 1: constant)")
    p.add_argument("--seed", type=seed_number, default=0, help="seeds the initial weights and the batch order")
    p.add_argument("--out", type=Path, default=Path(out), help=f"output folder (default {out})")
    p.add_argument("--data", type=Path, default=None,
                   help="folder holding the four Fashion-MNIST files (default: searched, see minidl.datasets)")
    p.add_argument("--limit-train", type=positive_int, default=None, metavar="N",
                   help="train on the first N of the 60,000 training images only (quick runs)")


def check_paths(p, args):
    """Refuse, before any work, a ``--data`` folder without the dataset and an ``--out`` that cannot be written."""
    if args.data is not None:
        problem = data_folder_problem(args.data)
        if problem:
            p.error(f"argument --data: {problem}")
    problem = out_folder_problem(args.out)
    if problem:
        p.error(f"argument --out: {problem}")


def data_folder_problem(folder):
    """Why ``folder`` cannot be the dataset (None if it can). A folder the user names is used or refused,
    never silently replaced by another copy of the dataset found elsewhere."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        return f"{folder} is not a folder" if folder.exists() else f"no such folder: {folder}"
    missing = []
    for split, names in fashion_mnist.FILES.items():
        missing += [name for name, path in zip(names, fashion_mnist.files_in(folder, split)) if path is None]
    if missing:
        return f"{folder} does not hold the Fashion-MNIST file(s) {', '.join(missing)} (plain or .gz)"
    return None


def out_folder_problem(out):
    """Why the output folder ``out`` cannot be created or written (None if it can)."""
    out = Path(out)
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create {out}: {existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"cannot write to {out}: no permission to write in {existing}"
    return None


def load_data(root=None, limit_train=None, channels_first=False):
    """Train and test images scaled to [0, 1] float32 once, up front (converting every batch again would
    cost each step); ``channels_first`` adds the channel axis a convolution wants: (N, 1, 28, 28).

    Returns ``(x_train, y_train), (x_test, y_test), test_images`` (the uint8 images, for figures).
    """
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist("train", root), load_fashion_mnist("test", root)
    folders = dict.fromkeys(str(fashion_mnist.find_files(split, root)[0].parent) for split in ("train", "test"))
    print(f"data: Fashion-MNIST from {' and '.join(folders)}", flush=True)
    if limit_train is not None:
        if limit_train > len(x_train):
            raise ValueError(f"--limit-train {limit_train}: the training set has only {len(x_train)} images")
        x_train, y_train = x_train[:limit_train], y_train[:limit_train]
    scale = np.float32(1 / 255)
    x_train, x_test_scaled = x_train * scale, x_test * scale
    if channels_first:
        x_train, x_test_scaled = x_train[:, None], x_test_scaled[:, None]
    return (x_train, y_train), (x_test_scaled, y_test), x_test


def announce(expected, epochs, train_examples):
    """Say, before training, how long the run should take and what the progress output means."""
    print(f"expected time for the default 5 epochs on 60,000 images: {expected} (this run: {epochs} epoch(s) "
          f"on {train_examples:,}); each epoch's bar shows the time elapsed and left.\n"
          "bar and 'train': running means over the epoch's batches so far, weights still changing (as Keras "
          "reports them); 'test': the whole test set at the end of the epoch.", flush=True)


def pick_examples(probs, labels, count=SHOWN, wrong=SHOWN_WRONG, seed=0):
    """Indices of test images to show: ``wrong`` misclassified ones on purpose, the rest at random."""
    rng = np.random.default_rng(seed)
    predicted = probs.argmax(axis=1)
    misses = np.flatnonzero(predicted != labels)
    chosen = list(rng.choice(misses, size=min(wrong, len(misses)), replace=False))
    others = np.setdiff1d(np.arange(len(labels)), chosen)
    chosen += list(rng.choice(others, size=count - len(chosen), replace=False))
    rng.shuffle(chosen)
    return np.array(chosen)


def write_outputs(model, history, probs, test_data, test_images, out, settings, wall, seed, interrupted=False):
    """Write metrics.json, the four classifier figures and model.h5 into ``out`` (created by the first file);
    return per-class accuracy. ``interrupted``: the run stopped before its last epoch (``history`` holds the
    epochs done, ``model`` the weights of the last of them)."""
    labels = test_data[1]
    predicted = probs.argmax(axis=1)
    cm = confusion_matrix(predicted, labels, len(FASHION_MNIST_CLASSES))
    per_class = per_class_accuracy(cm)
    write_json(dict(
        test_accuracy=history[-1]["test_accuracy"],
        interrupted=interrupted,
        epochs=history,
        per_class_accuracy=dict(zip(FASHION_MNIST_CLASSES, map(float, per_class))),
        confusion_matrix=cm.tolist(),
        settings=settings,
        wall_time_seconds=wall,
    ), out / "metrics.json")
    plots.accuracy_curve(history, out / "accuracy_curve.png")
    plots.per_class_accuracy(per_class, FASHION_MNIST_CLASSES, out / "per_class_accuracy.png")
    plots.confusion_matrix(cm, FASHION_MNIST_CLASSES, out / "confusion_matrix.png")
    shown = pick_examples(probs, labels, seed=seed)
    wrong = int(np.sum(predicted[shown] != labels[shown]))
    on_purpose = min(SHOWN_WRONG, int(np.sum(predicted != labels)))
    note = (f"{len(shown)} test images: {on_purpose} misclassified ones picked on purpose, the rest at random, so "
            f"{wrong} of {len(shown)} shown are wrong (the whole test set: "
            f"{100 * (1 - history[-1]['test_accuracy']):.1f}% wrong).\n"
            "Bars: the confidence in each class; blue = the true class, red = the wrong guess.")
    plots.prediction_grid(test_images[shown], probs[shown], labels[shown], FASHION_MNIST_CLASSES,
                          out / "predictions.png", title="Test images and the model's confidence in each class",
                          note=note)
    model.save(out / "model.h5")
    return per_class


def print_per_class(test_accuracy, per_class, columns=()):
    """The test accuracy, then one row per class: this run's accuracy and any ``(name, {class: acc})`` columns."""
    print(f"\ntest accuracy {test_accuracy:.4f}\n")
    print(f"{'class':<12} {'accuracy':>8}" + "".join(f" {name:>8}" for name, _ in columns))
    for name, acc in zip(FASHION_MNIST_CLASSES, per_class):
        print(f"{name:<12} {acc:>8.3f}" + "".join(f" {col.get(name, float('nan')):>8.3f}" for _, col in columns))


@contextlib.contextmanager
def writing(out):
    """Ctrl-C while the outputs are written: stop with a message saying what ``out`` then holds."""
    try:
        yield
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"interrupted while writing the outputs to {out}/: each file there is whole "
                                "(written under a temporary name, then renamed), the later ones are missing") from None


def stopped(script, message):
    """Say on one line why the run stopped early (Ctrl-C or SIGTERM); the exit status for that."""
    print(f"{script}: {message}", file=sys.stderr)
    return EXIT_STATUS


def interrupted_message(error, history, out, files):
    return (f"{error}: wrote metrics.json (\"interrupted\": true, {len(history)} epoch(s) done), {files} of "
            f"epoch {len(history)}, the last finished, to {out}/")
