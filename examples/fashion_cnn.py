"""Train a small convolutional network on Fashion-MNIST and write its metrics and figures.

    python examples/fashion_cnn.py                        # 2 conv blocks (32, 64 channels), Adam, batch 64, 5 epochs
    python examples/fashion_cnn.py --channels 16 32       # narrower convolutions (faster)
    python examples/fashion_cnn.py --limit-train 2000 --epochs 1     # a quick try
    MINIDL_KERNELS=textbook python examples/fashion_cnn.py           # the same run on the plain kernels

The network: Conv2d(1, 32, 3, padding=1) → ReLU → MaxPool2d(2) → Conv2d(32, 64, 3, padding=1) → ReLU →
MaxPool2d(2) → Flatten → Linear(3136, 128) → ReLU → Linear(128, 10), the classic small net of the Keras and
PyTorch tutorials, trained with Adam at lr 1e-3, multiplied by 0.6 after each epoch (``--lr-decay``): the
smaller late steps let the weights settle (docs/fashion.md has the runs with and without). Each
convolution's ReLU is fused into it, as Keras writes it (``Conv2D(32, 3, activation="relu")``, here
``nn.Conv2d(1, 32, 3, padding=1, activation="relu")``): the same numbers as a separate ``nn.ReLU()`` layer,
without a pass over the feature maps each way.

Outputs go to --out (default runs/fashion_cnn/): the same files as fashion_mlp.py (metrics.json,
accuracy_curve.png, per_class_accuracy.png, confusion_matrix.png, predictions.png, model.h5) plus
filters.png (the first layer's learned 3×3 filters) and feature_maps.png (one test image through the
convolutions). The per-class table at the end sits beside the MLP's, read from --compare.
Ctrl-C (or SIGTERM) after the first epoch writes them for the epochs done ("interrupted": true in
metrics.json, model.h5 of the last finished epoch) and exits with status 130.
docs/fashion.md describes every output.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import minidl
from minidl import Tensor, kernels, nn, no_grad, plots
from minidl.datasets import FASHION_MNIST_CLASSES, DatasetError
from minidl.fileio import DownloadError
from minidl.interrupt import Interrupted, sigterm_as_ctrl_c
from minidl.training import fit

import fashion_common as common

EXPECTED_TIME = "about 2 minutes on a quiet 2-core machine (fast kernels), far longer when other programs share the cores"


def build_model(channels=(32, 64), dropout=0.0, image_size=28, classes=10):
    """One block Conv2d(3×3, padding 1) with its ReLU → MaxPool2d(2) per entry of ``channels`` (each halves
    the image side), then Flatten → Linear(…, 128) → ReLU → Linear(128, classes); with ``dropout`` > 0, a
    Dropout in front of Linear(…, 128), the layer that holds 95% of the parameters."""
    layers, width, side = [], 1, image_size
    for c in channels:
        layers += [nn.Conv2d(width, c, 3, padding=1, activation="relu"), nn.MaxPool2d(2)]
        width, side = c, side // 2
    layers.append(nn.Flatten())
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(width * side * side, 128), nn.ReLU(), nn.Linear(128, classes))


def conv_outputs(model, image):
    """``[(name, maps)]``: the output (after its ReLU) of each Conv2d of ``model`` for one image (1, 28, 28)."""
    stages, x = [], Tensor(image[None])
    with no_grad():
        for layer in model:
            x = layer(x)
            if isinstance(layer, nn.Conv2d):
                stages.append((f"conv{len(stages) + 1} + ReLU", x.data[0]))
    return stages


def mlp_column(path):
    """The MLP's per-class accuracy from its metrics.json, or None (with a note) when there is none."""
    try:
        metrics = json.loads(Path(path).read_text())
        return {name: float(acc) for name, acc in metrics["per_class_accuracy"].items()}
    except (OSError, ValueError, KeyError, TypeError) as e:
        reason = "not found" if isinstance(e, FileNotFoundError) else f"unreadable ({e})"
        print(f"(no MLP column: {path} {reason}; run examples/fashion_mlp.py first, or pass --compare)")
        return None


def run(args, train_data, test_data, test_images):
    minidl.manual_seed(args.seed)
    model = build_model(args.channels, args.dropout)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: conv {' -> '.join(map(str, args.channels))} channels, dropout {args.dropout}, then 128 -> 10 "
          f"({n_params:,} parameters), adam lr={args.lr} × {args.lr_decay} per epoch, batch {args.batch_size}, "
          f"{args.epochs} epochs, seed {args.seed}, {kernels.selected()} kernels")
    common.announce(EXPECTED_TIME, args.epochs, len(train_data[1]))
    start = time.perf_counter()
    try:
        history, probs = fit(model, train_data, test_data, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, optimizer="adam", lr_decay=args.lr_decay, seed=args.seed)
        interrupted = None
    except Interrupted as e:  # after at least one epoch: save those
        (history, probs), interrupted = e.result, e
    wall = time.perf_counter() - start
    settings = dict(channels=list(args.channels), dropout=args.dropout, epochs=args.epochs,
                    batch_size=args.batch_size, lr=args.lr, lr_decay=args.lr_decay, optimizer="adam", seed=args.seed,
                    parameters=int(n_params), train_examples=len(train_data[1]), limit_train=args.limit_train,
                    kernels=kernels.selected())
    with common.writing(args.out):
        per_class = common.write_outputs(model, history, probs, test_data, test_images, args.out, settings,
                                         wall, args.seed, interrupted=interrupted is not None)
        plots.filters(model[0].weight.data, args.out / "filters.png", title="conv1's learned filters")
        labels = test_data[1]
        shown = int(np.flatnonzero(labels == FASHION_MNIST_CLASSES.index("Ankle boot"))[0])
        title = f"Test image {shown} ({FASHION_MNIST_CLASSES[labels[shown]]}) through the convolutions"
        plots.feature_maps(test_images[shown], conv_outputs(model, test_data[0][shown]),
                           args.out / "feature_maps.png", title=title)
    if interrupted:
        return common.stopped("fashion_cnn.py", common.interrupted_message(
            interrupted, history, args.out, "the six figures and model.h5"))
    mlp = mlp_column(args.compare)
    common.print_per_class(history[-1]["test_accuracy"], per_class, [("MLP", mlp)] if mlp else [])
    print(f"\ntraining and evaluation took {wall:.1f}s\nwrote metrics.json, accuracy_curve.png, per_class_accuracy.png, "
          f"confusion_matrix.png, predictions.png, model.h5, filters.png and feature_maps.png to {args.out}/")
    return 0


def parse_args(argv=None):
    p = common.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(p, out="runs/fashion_cnn", batch_size=64, lr_decay=0.6)
    p.add_argument("--channels", type=common.positive_int, nargs="+", default=[32, 64],
                   help="output channels of each conv block, e.g. 32 64 (each block halves the image side)")
    p.add_argument("--dropout", type=common.probability, default=0.0,
                   help="dropout on the flattened features, before Linear(…, 128) (default 0: none)")
    p.add_argument("--compare", type=Path, default=Path("runs/fashion_mlp/metrics.json"),
                   help="metrics.json of an MLP run, shown beside this run's per-class accuracy")
    args = p.parse_args(argv)
    if len(args.channels) > 4:
        p.error(f"argument --channels: at most 4 blocks (each halves the 28-pixel side), got {len(args.channels)}")
    try:
        kernels.selected()  # a wrong MINIDL_KERNELS: refused now, not at the first convolution
    except ValueError as e:
        p.error(str(e))
    common.check_paths(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        with sigterm_as_ctrl_c():  # `kill`, a batch system's time limit: handled like Ctrl-C
            try:
                train_data, test_data, test_images = common.load_data(args.data, args.limit_train,
                                                                      channels_first=True)
            except (DatasetError, DownloadError, FileNotFoundError, ValueError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            # --out is created by its first file: an interrupted run leaves no empty folder behind
            return run(args, train_data, test_data, test_images)
    except KeyboardInterrupt as e:
        return common.stopped("fashion_cnn.py", str(e) or "interrupted before the first epoch finished: nothing saved")


if __name__ == "__main__":
    sys.exit(main())
