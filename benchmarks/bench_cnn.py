"""Fashion-MNIST CNN training speed: minidl against PyTorch CPU, as a ratio measured in the same run.

    python benchmarks/bench_cnn.py [--steps 150] [--rounds 3]
    python benchmarks/bench_cnn.py --separate-relu      (minidl with nn.ReLU layers, as PyTorch's network)
    python benchmarks/bench_cnn.py --threads 1 --cpu-time       (on a busy machine: the work, not the waiting)
    python benchmarks/bench_cnn.py --profile [--threads 1 --cpu-time]   (where minidl's time goes)

The network of examples/fashion_cnn.py, written as layers in both frameworks:
Conv2d(1, 32, 3, padding=1) → ReLU → MaxPool2d(2) → Conv2d(32, 64, 3, padding=1) → ReLU → MaxPool2d(2) →
Flatten → Linear(3136, 128) → ReLU → Linear(128, 10), cross-entropy, Adam lr 1e-3 (eps 1e-7 in both), batch
64 (``--batch-size``), on Fashion-MNIST images as float32 in [0, 1]. Both start from the same weights (drawn
here with NumPy) and see the same batches (a fixed random permutation of the training set). minidl runs as
the example does: ``keep_freed_memory()`` and ``parallel.single_threaded_blas()`` (its kernels split their
own work; see parallel.py), and as the example, each convolution's ReLU fused into it
(``Conv2d(..., activation="relu")``, Keras's ``Conv2D(activation="relu")``: the same numbers). PyTorch has no
such layer argument and runs ``nn.ReLU`` layers; ``--separate-relu`` gives minidl those too.

Each round runs one fresh subprocess per framework, alternating minidl and PyTorch (``--threads`` 2 by
default: minidl's worker threads, ``torch.set_num_threads(2)``), so that both see the same machine load and
each one's peak memory (VmHWM) is its own. A subprocess takes a few warm-up steps, then times ``--steps``
training steps (batch indexing, forward, backward, optimizer step). Reported: best and median seconds over the
rounds, the ratios minidl / PyTorch of the best and of the median times (below 1: minidl is faster), the
estimated seconds per epoch (938 steps of 64), the loss after the timed steps, and peak RSS.

On a machine shared with other work, wall-clock times measure the waiting as much as the work, and the two
frameworks wait differently (PyTorch's OpenMP threads spin when a core is taken away). ``--threads 1
--cpu-time`` times each framework on one thread by its process's CPU time, which the load hardly changes.

``--profile`` runs minidl alone, with every op's forward and backward timed (wrappers around the
``Function`` classes, so the numbers include their Python overhead but not the engine's bookkeeping,
which shows up as "autograd, other"), and prints milliseconds per step per layer and pass; the
convolution backward is split into its input gradient and weight gradient.
"""
import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from common import alternate, best_and_median, memory_mb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # minidl from this checkout, installed or not

WARMUP = 5
STEPS_PER_EPOCH = 938  # 60,000 images in batches of 64


def initial_weights(channels=(32, 64), seed=0):
    """Glorot-uniform weights and zero biases (Keras's defaults, as minidl's layers), identical for both."""
    rng = np.random.default_rng(seed)
    c1, c2 = channels
    shapes = [(c1, 1, 3, 3), (c2, c1, 3, 3), (128, c2 * 7 * 7), (10, 128)]
    weights = []
    for shape in shapes:
        fan_in, fan_out = int(np.prod(shape[1:])), shape[0] * int(np.prod(shape[2:]))
        limit = np.sqrt(6 / (fan_in + fan_out))
        weights.append((rng.uniform(-limit, limit, shape).astype(np.float32), np.zeros(shape[0], np.float32)))
    return weights


def load_batches(batch_size, steps):
    """The images (N, 1, 28, 28) float32 in [0, 1] and labels, and the index arrays of the batches to use."""
    from minidl.datasets import load_fashion_mnist

    x, y = load_fashion_mnist("train")
    x = (x.reshape(len(x), 1, 28, 28).astype(np.float32) / 255)
    order = np.random.default_rng(0).permutation(len(x))
    batches = [order[(k * batch_size) % (len(x) - batch_size):][:batch_size] for k in range(WARMUP + steps)]
    return x, y.astype(np.int64), batches


def run_minidl(x, y, batches, threads, clock, profile=False, separate_relu=False):
    from minidl import Tensor, nn, optim
    from minidl import functional as F
    from minidl.fast import parallel
    from minidl.fast.memory import keep_freed_memory

    keep_freed_memory()  # as examples/fashion_cnn.py does
    parallel.single_threaded_blas()  # likewise: minidl's kernels split their own work (parallel.py)
    parallel.WORKERS = threads
    head = [nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10)]
    if separate_relu:  # PyTorch's way of writing it
        model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), *head)
    else:  # the example's: the ReLU inside the convolution, as Keras's Conv2D(activation="relu")
        model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, activation="relu"), nn.MaxPool2d(2),
                              nn.Conv2d(32, 64, 3, padding=1, activation="relu"), nn.MaxPool2d(2), *head)
    layers = [layer for layer in model if isinstance(layer, (nn.Conv2d, nn.Linear))]
    for layer, (w, b) in zip(layers, initial_weights()):
        layer.weight.data[...], layer.bias.data[...] = w.reshape(layer.weight.shape), b
    opt = optim.Adam(model.parameters(), lr=1e-3)
    profiler = Profiler(clock) if profile else None
    times, loss = [], None
    for k, index in enumerate(batches):
        if k == WARMUP:
            start = clock()
            if profiler:
                profiler.start()
        loss = F.cross_entropy(model(Tensor(x[index])), y[index])
        opt.zero_grad()
        loss.backward()
        opt.step()
    times.append(clock() - start)
    if profiler:
        profiler.report(len(batches) - WARMUP, times[0])
    return times, float(loss.item())


def run_torch(x, y, batches, threads, clock):
    import torch

    torch.set_num_threads(threads)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    layers = [layer for layer in model if isinstance(layer, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        for layer, (w, b) in zip(layers, initial_weights()):
            layer.weight.copy_(torch.from_numpy(w)), layer.bias.copy_(torch.from_numpy(b))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)  # minidl's default eps (Keras's)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    times, loss = [], None
    for k, index in enumerate(batches):
        if k == WARMUP:
            start = clock()
        index = torch.from_numpy(index)
        loss = nn.functional.cross_entropy(model(x[index]), y[index])
        opt.zero_grad()
        loss.backward()
        opt.step()
    times.append(clock() - start)
    return times, float(loss.item())


class Profiler:
    """Times every op's forward and backward (and the parts of the conv backward) by wrapping the classes.

    Each op is labelled at its forward by its kind and shapes (e.g. "conv 32→64 14×14"), so that two layers
    of the same kind are told apart and their backward is booked under the same label."""

    def __init__(self, clock=time.perf_counter):
        self.totals = defaultdict(float)
        self.clock = clock
        self.active = False

    def start(self):
        from minidl import functional as F
        from minidl import ops, optim
        from minidl.fast import fast_conv, fast_pool

        def label_conv(x, w, *rest, **options):
            return f"conv {w.shape[1]}→{w.shape[0]} {x.shape[2]}×{x.shape[3]}"

        def label_shape(kind):
            return lambda x, *rest, **options: f"{kind} {'×'.join(map(str, x.shape[1:]))}"

        def label_linear(x, w, *rest, **options):
            return f"linear {w.shape[1]}→{w.shape[0]}"

        for cls, label in ((fast_conv.Conv2d, label_conv), (fast_pool.MaxPool2d, label_shape("maxpool")),
                           (F.ReLU, label_shape("relu")), (F.Linear, label_linear),
                           (F.CrossEntropy, label_shape("cross-entropy")), (ops.Reshape, label_shape("flatten"))):
            self.wrap_op(cls, label)
        self.wrap(fast_conv.Conv2d, "_input_grad", "  input gradient (col2im)")
        self.wrap(fast_conv.Conv2d, "_weight_grad", "  weight gradient")
        self.wrap(fast_conv.Conv2d, "_grads_from_rotated_kernel", "  input (+weight) gradient, rotated kernel")
        self.wrap(optim.Adam, "step", "Adam step")
        self.wrap(optim.Adam, "zero_grad", "zero_grad")
        self.active = True

    def wrap_op(self, cls, label):
        forward, backward, totals, clock = cls.forward, cls.backward, self.totals, self.clock

        def timed_forward(fn, *args, **options):
            fn._profile_label = label(*args, **options)
            start = clock()
            out = forward(fn, *args, **options)
            totals[(fn._profile_label, "forward")] += clock() - start
            return out

        def timed_backward(fn, g):
            start = clock()
            out = backward(fn, g)
            totals[(fn._profile_label, "backward")] += clock() - start
            return out

        cls.forward, cls.backward = timed_forward, timed_backward

    def wrap(self, cls, name, label):
        method, totals, clock = getattr(cls, name), self.totals, self.clock

        def timed(obj, *args, **options):
            start = clock()
            out = method(obj, *args, **options)
            key = (f"{obj._profile_label}{label}", "backward") if hasattr(obj, "_profile_label") else (label, "")
            totals[key] += clock() - start
            return out

        setattr(cls, name, timed)

    def report(self, steps, seconds):
        ms = 1000 / steps
        print(f"minidl, {steps} steps: {seconds:.2f} s, {seconds * ms:.1f} ms/step "
              f"(the wrappers add a little); per step:")
        print(f"  {'op':<58} {'forward ms':>10} {'backward ms':>11}")
        labels = list(dict.fromkeys(k for k, _ in self.totals))
        accounted = 0.0
        for label in labels:
            f, b = self.totals.get((label, "forward"), 0.0), self.totals.get((label, "backward"), 0.0)
            extra = self.totals.get((label, ""), 0.0)
            nested = label.startswith("conv") and "gradient" in label
            if not nested:
                accounted += f + b + extra
            if extra:
                print(f"  {label:<58} {extra * ms:>22.2f}")
            else:
                print(f"  {label:<58} {f * ms:>10.2f} {b * ms:>11.2f}")
        print(f"  {'autograd, batch indexing, other':<58} {(seconds - accounted) * ms:>22.2f}")


def child(framework, steps, batch_size, threads, cpu_time, profile=False, separate_relu=False):
    x, y, batches = load_batches(batch_size, steps)
    clock = time.process_time if cpu_time else time.perf_counter
    if framework == "minidl":
        times, loss = run_minidl(x, y, batches, threads, clock, profile, separate_relu)
    else:
        times, loss = run_torch(x, y, batches, threads, clock)
    print(json.dumps(dict(times=times, loss=loss, peak_mb=memory_mb("VmHWM"))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=150, help="timed training steps per subprocess (default 150)")
    p.add_argument("--rounds", type=int, default=3, help="subprocesses per framework, alternating (default 3)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, choices=[1, 2], default=2,
                   help="threads per framework (default 2; with 1, minidl splits nothing and BLAS runs on one)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process's CPU time instead of the wall clock: with --threads 1, a "
                        "measure of the work done that a busy machine hardly disturbs")
    p.add_argument("--profile", action="store_true", help="minidl alone: time per layer and pass")
    p.add_argument("--separate-relu", action="store_true",
                   help='minidl with nn.ReLU layers after the convolutions (as PyTorch) instead of '
                        'Conv2d(..., activation="relu") (as the example and Keras)')
    p.add_argument("--child", choices=["minidl", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.steps < 1 or args.rounds < 1 or args.batch_size < 1:
        p.error("--steps, --rounds and --batch-size must be positive")
    if args.child or args.profile:
        return child(args.child or "minidl", args.steps, args.batch_size, args.threads, args.cpu_time, args.profile,
                     args.separate_relu)
    options = ["--steps", args.steps, "--batch-size", args.batch_size, "--threads", args.threads]
    flags = [flag for flag, on in (("--cpu-time", args.cpu_time), ("--separate-relu", args.separate_relu)) if on]
    results = alternate(__file__, args.rounds, *options, *flags)
    per_epoch = STEPS_PER_EPOCH * 64 / args.batch_size / args.steps
    print(f"{args.steps} steps, batch {args.batch_size}, {args.rounds} rounds, {args.threads} thread(s), "
          f"{'CPU time' if args.cpu_time else 'wall clock'}, minidl with {'separate' if args.separate_relu else 'fused'} ReLU")
    print(f"{'framework':<10} {'s (best)':>9} {'s (median)':>11} {'s/epoch':>8} {'loss':>7} {'peak RSS MB':>12}")
    best, median = {}, {}
    for f, runs in results.items():
        best[f], median[f] = best_and_median(runs)
        print(f"{f:<10} {best[f]:>9.2f} {median[f]:>11.2f} {best[f] * per_epoch:>8.1f} "
              f"{runs[-1]['loss']:>7.3f} {max(r['peak_mb'] for r in runs):>12.0f}")
    if "torch" in best:
        print(f"ratio minidl / PyTorch: {best['minidl'] / best['torch']:.2f} of the best times, "
              f"{median['minidl'] / median['torch']:.2f} of the medians  (target <= 1.0, goal <= 0.8)")


if __name__ == "__main__":
    main()
