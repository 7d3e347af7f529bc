"""Fashion-MNIST MLP training speed: minidl against PyTorch CPU, as a ratio measured in the same run.

    python benchmarks/bench_mlp.py [--epochs 5] [--repeats 2]

Both frameworks train the default configuration of examples/fashion_mlp.py (784-128-10, ReLU, Adam lr 1e-3
eps 1e-7, batch 32, shuffled) on the same float32 data. Each run happens in a fresh subprocess, alternating
minidl and PyTorch, so that both see the same machine state and their peak memory (max RSS) is their own.
Reported: seconds per epoch (best of the repeats), the ratio minidl / PyTorch (below 1 means minidl is
faster), final test accuracy and peak RSS.
"""
import argparse
import json
import sys
import time
from pathlib import Path

from common import alternate, best_and_median, memory_mb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # minidl from this checkout, installed or not


def run_minidl(epochs, x, y, xt, yt):
    import numpy as np

    import minidl
    from minidl import Tensor, nn, no_grad, optim
    from minidl import functional as F
    from minidl.data import DataLoader
    from minidl.fast.memory import keep_freed_memory

    keep_freed_memory()  # as the examples do
    minidl.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loader = DataLoader(x, y, batch_size=32, shuffle=True, seed=0)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for xb, yb in loader:
            loss = F.cross_entropy(model(Tensor(xb)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    with no_grad():
        acc = float(np.mean(model(Tensor(xt)).data.argmax(1) == yt))
    return times, acc


def run_torch(epochs, x, y, xt, yt):
    import torch

    torch.manual_seed(0)
    x, y, xt, yt = map(torch.from_numpy, (x, y, xt, yt))
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 32):
            idx = perm[i:i + 32]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        acc = float((model(xt).argmax(1) == yt).float().mean())
    return times, acc


def child(framework, epochs):
    from minidl.datasets import load_fashion_mnist

    (x, y), (xt, yt) = load_fashion_mnist("train"), load_fashion_mnist("test")
    x, xt = (a.reshape(len(a), -1).astype("float32") / 255 for a in (x, xt))
    if framework == "torch":
        import torch

        torch.set_num_threads(2)
    times, acc = (run_minidl if framework == "minidl" else run_torch)(epochs, x, y, xt, yt)
    print(json.dumps(dict(times=times, accuracy=acc, peak_mb=memory_mb("VmHWM"))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--child", choices=["minidl", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child, args.epochs)
    results = alternate(__file__, args.repeats, "--epochs", args.epochs)
    print(f"{'framework':<10} {'s/epoch (best)':>15} {'s/epoch (median)':>17} {'test acc':>9} {'peak RSS MB':>12}")
    best = {}
    for f, runs in results.items():
        best[f], median = best_and_median(runs)  # seconds per epoch
        print(f"{f:<10} {best[f]:>15.3f} {median:>17.3f} {runs[-1]['accuracy']:>9.4f} "
              f"{max(r['peak_mb'] for r in runs):>12.0f}")
    if "torch" in best:
        print(f"ratio minidl / PyTorch (best epoch): {best['minidl'] / best['torch']:.2f}  (target <= 1.0, goal <= 0.8)")


if __name__ == "__main__":
    main()
