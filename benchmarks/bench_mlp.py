"""Fashion-MNIST MLP training speed: minidl against PyTorch CPU, as a ratio measured in the same run.

    python benchmarks/bench_mlp.py [--epochs 5] [--repeats 2] [--tuned]

Both frameworks train the default configuration of examples/fashion_mlp.py (784-128-10, ReLU, Adam lr 1e-3
eps 1e-7, batch 32, shuffled) on the same float32 data. Each run happens in a fresh subprocess, alternating
minidl and PyTorch, so that both see the same machine state and their peak memory (max RSS) is their own.
Reported: seconds per epoch (best and median of the repeats), the ratios minidl / PyTorch of the best and
of the median epochs (below 1 means minidl is faster), final test accuracy, peak RSS and the load average
the runs started at. minidl runs with nothing from ``minidl.fast`` called (``--tuned``: with the
process-wide opt-ins ``keep_freed_memory()`` and ``single_threaded_blas()``), and the run unsets
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (common.py says why).
"""
import argparse
import json
import sys
import time
from pathlib import Path

from common import alternate, best_and_median, clean_environment, load_line, memory_mb, ratio_line

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # minidl from this checkout, installed or not


def run_minidl(epochs, x, y, xt, yt, tuned=False):
    import numpy as np

    import minidl
    from minidl import Tensor, nn, no_grad, optim
    from minidl import functional as F
    from minidl.data import DataLoader

    if tuned:
        from minidl.fast import parallel
        from minidl.fast.memory import keep_freed_memory

        keep_freed_memory()
        parallel.single_threaded_blas()
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


def child(framework, epochs, tuned=False):
    from minidl.datasets import load_fashion_mnist

    (x, y), (xt, yt) = load_fashion_mnist("train"), load_fashion_mnist("test")
    x, xt = (a.reshape(len(a), -1).astype("float32") / 255 for a in (x, xt))
    if framework == "torch":
        import torch

        torch.set_num_threads(2)
    if framework == "minidl":
        times, acc = run_minidl(epochs, x, y, xt, yt, tuned)
    else:
        times, acc = run_torch(epochs, x, y, xt, yt)
    print(json.dumps(dict(times=times, accuracy=acc, peak_mb=memory_mb("VmHWM"))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--tuned", action="store_true",
                   help="minidl with the process-wide opt-ins keep_freed_memory() and single_threaded_blas()")
    p.add_argument("--child", choices=["minidl", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args()
    clean_environment()
    if args.child:
        return child(args.child, args.epochs, args.tuned)
    results = alternate(__file__, args.repeats, "--epochs", args.epochs, *(["--tuned"] if args.tuned else []))
    print(f"{'framework':<10} {'s/epoch (best)':>15} {'s/epoch (median)':>17} {'test acc':>9} {'peak RSS MB':>12}")
    best, median = {}, {}
    for f, runs in results.items():
        best[f], median[f] = best_and_median(runs)  # seconds per epoch
        print(f"{f:<10} {best[f]:>15.3f} {median[f]:>17.3f} {runs[-1]['accuracy']:>9.4f} "
              f"{max(r['peak_mb'] for r in runs):>12.0f}")
    if "torch" in best:
        print(ratio_line(best, median) + "  (target <= 0.8)")
    print(load_line(results))


if __name__ == "__main__":
    main()
