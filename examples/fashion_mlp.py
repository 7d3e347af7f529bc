"""Train a dense network on Fashion-MNIST and write its metrics and figures.

    python examples/fashion_mlp.py                      # 784-128-10, Adam, batch 32, 5 epochs (~86-88%)
    python examples/fashion_mlp.py --hidden 256 128     # two hidden layers
    python examples/fashion_mlp.py --sweep              # a grid of widths and depths

Outputs go to --out (default runs/fashion_mlp/): metrics.json, accuracy_curve.png, per_class_accuracy.png,
confusion_matrix.png, predictions.png and model.h5 (reload with ``build_model().load(path)``).
Ctrl-C (or SIGTERM) after the first epoch writes them for the epochs done ("interrupted": true in
metrics.json, model.h5 of the last finished epoch) and exits with status 130; --sweep writes the models done.
The default run takes about 15-25 s on a quiet 2-core machine (far longer when the cores are shared).
The training loop is ``minidl.training.fit``; docs/fashion.md describes every output.
"""
import argparse
import sys
import time

import minidl
from minidl import nn
from minidl.datasets import DatasetError
from minidl.fileio import DownloadError, write_json
from minidl.interrupt import Interrupted, sigterm_as_ctrl_c
from minidl.plots import sweep as sweep_figure
from minidl.training import OPTIMIZERS, fit

import fashion_common as common

EXPECTED_TIME = "about 15-25 s on a quiet 2-core machine, far longer when other programs share the cores"


def build_model(hidden=(128,), inputs=784, classes=10):
    """Flatten, then Linear+ReLU for each hidden width, then a Linear layer giving the class logits."""
    layers, width = [nn.Flatten()], inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


def run_single(args, train_data, test_data, test_images):
    minidl.manual_seed(args.seed)
    model = build_model(args.hidden)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: 784 -> {' -> '.join(map(str, args.hidden))} -> 10 ({n_params:,} parameters), "
          f"{args.optimizer} lr={args.lr}, batch {args.batch_size}, {args.epochs} epochs, seed {args.seed}")
    common.announce(EXPECTED_TIME, args.epochs, len(train_data[1]))
    start = time.perf_counter()
    try:
        history, probs = fit(model, train_data, test_data, epochs=args.epochs, batch_size=args.batch_size,
                             lr=args.lr, optimizer=args.optimizer, lr_decay=args.lr_decay, seed=args.seed)
        interrupted = None
    except Interrupted as e:  # after at least one epoch: save those
        (history, probs), interrupted = e.result, e
    wall = time.perf_counter() - start
    settings = dict(hidden=list(args.hidden), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    lr_decay=args.lr_decay, optimizer=args.optimizer, seed=args.seed, parameters=int(n_params),
                    train_examples=len(train_data[1]), limit_train=args.limit_train)
    with common.writing(args.out):
        per_class = common.write_outputs(model, history, probs, test_data, test_images, args.out, settings,
                                         wall, args.seed, interrupted=interrupted is not None)
    if interrupted:
        return common.stopped("fashion_mlp.py", common.interrupted_message(
            interrupted, history, args.out, "the four figures and model.h5"))
    common.print_per_class(history[-1]["test_accuracy"], per_class)
    print(f"\ntraining and evaluation took {wall:.1f}s\nwrote metrics.json, accuracy_curve.png, per_class_accuracy.png, "
          f"confusion_matrix.png, predictions.png and model.h5 to {args.out}/")
    return 0


def run_sweep(args, train_data, test_data):
    """Train every (depth, width) combination with the same settings and seed."""
    results, interrupted = [], False
    try:
        for depth in args.sweep_depths:
            for width in args.sweep_widths:
                minidl.manual_seed(args.seed)
                model = build_model((width,) * depth)
                start = time.perf_counter()
                history, _ = fit(model, train_data, test_data, epochs=args.epochs, batch_size=args.batch_size,
                                 lr=args.lr, optimizer=args.optimizer, lr_decay=args.lr_decay, seed=args.seed,
                                 verbose=False)
                results.append(dict(depth=depth, width=width,
                                    parameters=int(sum(p.numel() for p in model.parameters())),
                                    test_accuracy=history[-1]["test_accuracy"],
                                    train_accuracy=history[-1]["train_accuracy"], seconds=time.perf_counter() - start))
                r = results[-1]
                print(f"depth {depth}  width {width:>4}  parameters {r['parameters']:>9,}  test accuracy "
                      f"{r['test_accuracy']:.4f}  train accuracy {r['train_accuracy']:.4f}  {r['seconds']:.1f}s",
                      flush=True)
    except KeyboardInterrupt:  # the model in training is left out: the table holds whole runs only
        if not results:
            raise KeyboardInterrupt("interrupted before the first model finished: nothing saved") from None
        interrupted = True
    n = len(train_data[1])
    with common.writing(args.out):
        write_json(dict(results=results, interrupted=interrupted, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, lr_decay=args.lr_decay, optimizer=args.optimizer, seed=args.seed,
                        limit_train=args.limit_train, train_examples=n),
                   args.out / "sweep.json")
        epochs = f"{args.epochs} epoch{'s' if args.epochs > 1 else ''}"
        sweep_figure(results, args.out / "sweep.png", title=f"{epochs} on {n:,} training images")
    if interrupted:
        return common.stopped("fashion_mlp.py", f"interrupted after {len(results)} of "
                              f"{len(args.sweep_depths) * len(args.sweep_widths)} models: wrote sweep.json "
                              f"(\"interrupted\": true) and sweep.png of those to {args.out}/")
    print(f"\nwrote sweep.json and sweep.png to {args.out}/")
    return 0


def parse_args(argv=None):
    p = common.Parser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_arguments(p, out="runs/fashion_mlp", batch_size=32, lr_decay=1.0)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="adam", help="sgd uses momentum 0.9")
    p.add_argument("--hidden", type=common.positive_int, nargs="+", default=[128],
                   help="hidden layer widths, e.g. 256 128")
    p.add_argument("--sweep", action="store_true", help="train a grid of architectures instead of one model")
    p.add_argument("--sweep-widths", type=common.positive_int, nargs="+", default=[32, 64, 128, 256, 512])
    p.add_argument("--sweep-depths", type=common.positive_int, nargs="+", default=[1, 2, 3])
    args = p.parse_args(argv)
    common.check_paths(p, args)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        with sigterm_as_ctrl_c():  # `kill`, a batch system's time limit: handled like Ctrl-C
            try:
                train_data, test_data, test_images = common.load_data(args.data, args.limit_train)
            except (DatasetError, DownloadError, FileNotFoundError, ValueError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 1
            # --out is created by its first file: an interrupted run leaves no empty folder behind
            if args.sweep:
                return run_sweep(args, train_data, test_data)
            return run_single(args, train_data, test_data, test_images)
    except KeyboardInterrupt as e:
        return common.stopped("fashion_mlp.py", str(e) or "interrupted before the first epoch finished: nothing saved")


if __name__ == "__main__":
    sys.exit(main())
