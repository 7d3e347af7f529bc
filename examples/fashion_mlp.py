"""Train a dense network on Fashion-MNIST and write its metrics and figures.

    python examples/fashion_mlp.py                      # 784-128-10, Adam, batch 32, 5 epochs (~86-88%)
    python examples/fashion_mlp.py --hidden 256 128     # two hidden layers
    python examples/fashion_mlp.py --sweep              # a grid of widths and depths

Outputs go to --out (default runs/fashion_mlp/): metrics.json, accuracy_curve.png, per_class_accuracy.png,
confusion_matrix.png, predictions.png and model.h5 (reload with ``model.load(path)``).
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np

import minidl
from minidl import Tensor, nn, no_grad, optim, plots
from minidl import functional as F
from minidl.data import DataLoader
from minidl.datasets import FASHION_MNIST_CLASSES, DatasetError, load_fashion_mnist
from minidl.fileio import DownloadError, write_json
from minidl.metrics import accuracy, confusion_matrix, per_class_accuracy
from minidl.progress import ProgressBar


def build_model(hidden=(128,), inputs=784, classes=10):
    """Flatten, then Linear+ReLU for each hidden width, then a Linear layer giving the class logits."""
    layers, width = [nn.Flatten()], inputs
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, classes))


def load_data(root=None, limit_train=None):
    """Images scaled to [0, 1] float32 once, up front: converting every batch again would cost each step."""
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist("train", root), load_fashion_mnist("test", root)
    if limit_train:
        x_train, y_train = x_train[:limit_train], y_train[:limit_train]
    scale = np.float32(1 / 255)
    return (x_train * scale, y_train), (x_test * scale, y_test), x_test


def evaluate(model, x, y, batch_size=1000):
    """Mean loss, accuracy and class probabilities over a whole split (no graph is recorded)."""
    model.eval()
    losses, probs = [], []
    with no_grad():
        for xb, yb in DataLoader(x, y, batch_size=batch_size):
            logits = model(Tensor(xb))
            losses.append(F.cross_entropy(logits, yb).item() * len(yb))
            probs.append(F.softmax(logits).data)
    probs = np.concatenate(probs)
    return sum(losses) / len(y), accuracy(probs.argmax(axis=1), y), probs


def train(model, train_data, test_data, *, epochs, batch_size, lr, optimizer, seed, verbose=True):
    """The training loop; returns the per-epoch metrics and the last test probabilities."""
    opt = optim.Adam(model.parameters(), lr=lr) if optimizer == "adam" else optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = DataLoader(*train_data, batch_size=batch_size, shuffle=True, seed=seed)
    history = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        model.train()
        bar = ProgressBar(loader, desc=f"epoch {epoch}/{epochs}", unit="batch", disable=not verbose)
        for i, (xb, yb) in enumerate(bar):
            loss = F.cross_entropy(model(Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if i % 50 == 0:
                bar.set_postfix(loss=loss.item())
        seconds = time.perf_counter() - start
        train_loss, train_acc, _ = evaluate(model, *train_data)
        test_loss, test_acc, test_probs = evaluate(model, *test_data)
        history.append(dict(epoch=epoch, train_loss=train_loss, train_accuracy=train_acc, test_loss=test_loss,
                            test_accuracy=test_acc, seconds=seconds))
        if verbose:
            print(f"epoch {epoch}: loss {train_loss:.4f}  train accuracy {train_acc:.4f}  "
                  f"test loss {test_loss:.4f}  test accuracy {test_acc:.4f}  ({seconds:.1f}s)")
    return history, test_probs


def pick_examples(probs, labels, count=15, wrong=5, seed=0):
    """Indices of test images to show: mostly random ones, plus ``wrong`` misclassified ones."""
    rng = np.random.default_rng(seed)
    predicted = probs.argmax(axis=1)
    misses = np.flatnonzero(predicted != labels)
    chosen = list(rng.choice(misses, size=min(wrong, len(misses)), replace=False))
    others = np.setdiff1d(np.arange(len(labels)), chosen)
    chosen += list(rng.choice(others, size=count - len(chosen), replace=False))
    rng.shuffle(chosen)
    return np.array(chosen)


def run_single(args, train_data, test_data, test_images):
    minidl.manual_seed(args.seed)
    model = build_model(args.hidden)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: 784 -> {' -> '.join(map(str, args.hidden))} -> 10 ({n_params:,} parameters), "
          f"{args.optimizer} lr={args.lr}, batch {args.batch_size}, {args.epochs} epochs, seed {args.seed}")
    start = time.perf_counter()
    history, probs = train(model, train_data, test_data, epochs=args.epochs, batch_size=args.batch_size,
                           lr=args.lr, optimizer=args.optimizer, seed=args.seed)
    wall = time.perf_counter() - start
    labels = test_data[1]
    cm = confusion_matrix(probs.argmax(axis=1), labels, len(FASHION_MNIST_CLASSES))
    per_class = per_class_accuracy(cm)

    print(f"\ntest accuracy {history[-1]['test_accuracy']:.4f}\n\n{'class':<12} accuracy")
    for name, acc in zip(FASHION_MNIST_CLASSES, per_class):
        print(f"{name:<12} {acc:.3f}")

    out = args.out
    metrics = dict(
        test_accuracy=history[-1]["test_accuracy"],
        epochs=history,
        per_class_accuracy=dict(zip(FASHION_MNIST_CLASSES, map(float, per_class))),
        confusion_matrix=cm.tolist(),
        settings=dict(hidden=list(args.hidden), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      optimizer=args.optimizer, seed=args.seed, parameters=int(n_params),
                      train_examples=len(train_data[1])),
        wall_time_seconds=wall,
    )
    write_json(metrics, out / "metrics.json")
    plots.accuracy_curve(history, out / "accuracy_curve.png")
    plots.per_class_accuracy(per_class, FASHION_MNIST_CLASSES, out / "per_class_accuracy.png")
    plots.confusion_matrix(cm, FASHION_MNIST_CLASSES, out / "confusion_matrix.png")
    shown = pick_examples(probs, labels, seed=args.seed)
    plots.prediction_grid(test_images[shown], probs[shown], labels[shown], FASHION_MNIST_CLASSES,
                          out / "predictions.png", title="Test images and the model's confidences")
    model.save(out / "model.h5")
    print(f"\nwrote metrics.json, accuracy_curve.png, per_class_accuracy.png, confusion_matrix.png, "
          f"predictions.png and model.h5 to {out}/")


def run_sweep(args, train_data, test_data):
    """Train every (depth, width) combination with the same settings and seed."""
    results = []
    for depth in args.sweep_depths:
        for width in args.sweep_widths:
            minidl.manual_seed(args.seed)
            model = build_model((width,) * depth)
            start = time.perf_counter()
            history, _ = train(model, train_data, test_data, epochs=args.epochs, batch_size=args.batch_size,
                               lr=args.lr, optimizer=args.optimizer, seed=args.seed, verbose=False)
            results.append(dict(depth=depth, width=width, parameters=int(sum(p.numel() for p in model.parameters())),
                                test_accuracy=history[-1]["test_accuracy"], train_accuracy=history[-1]["train_accuracy"],
                                seconds=time.perf_counter() - start))
            r = results[-1]
            print(f"depth {depth}  width {width:>4}  parameters {r['parameters']:>9,}  "
                  f"test accuracy {r['test_accuracy']:.4f}  train accuracy {r['train_accuracy']:.4f}  {r['seconds']:.1f}s",
                  flush=True)
    write_json(dict(results=results, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    optimizer=args.optimizer, seed=args.seed), args.out / "sweep.json")
    plots.sweep(results, args.out / "sweep.png", title=f"{args.epochs} epochs")
    print(f"\nwrote sweep.json and sweep.png to {args.out}/")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", choices=["adam", "sgd"], default="adam", help="sgd uses momentum 0.9")
    p.add_argument("--hidden", type=int, nargs="+", default=[128], help="hidden layer widths, e.g. 256 128")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/fashion_mlp"))
    p.add_argument("--data", type=Path, default=None, help="folder with the four Fashion-MNIST files")
    p.add_argument("--limit-train", type=int, default=None, help="train on the first N images only (quick runs)")
    p.add_argument("--sweep", action="store_true", help="train a grid of architectures instead of one model")
    p.add_argument("--sweep-widths", type=int, nargs="+", default=[32, 64, 128, 256, 512])
    p.add_argument("--sweep-depths", type=int, nargs="+", default=[1, 2, 3])
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.lr <= 0 or min(args.hidden) < 1:
        p.error("--epochs, --batch-size, --hidden and --lr must be positive")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        train_data, test_data, test_images = load_data(args.data, args.limit_train)
    except (DatasetError, DownloadError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    if args.sweep:
        run_sweep(args, train_data, test_data)
    else:
        run_single(args, train_data, test_data, test_images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
