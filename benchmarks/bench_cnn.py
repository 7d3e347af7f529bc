"""Fashion-MNIST CNN training speed: minidl against PyTorch CPU, as a ratio measured in the same run.

    python benchmarks/bench_cnn.py [--steps 150] [--rounds 3]
    python benchmarks/bench_cnn.py --fused-relu       (minidl with Conv2d(..., activation="relu"))
    python benchmarks/bench_cnn.py --tuned            (minidl with the process-wide opt-ins of minidl.fast)
    python benchmarks/bench_cnn.py --threads 1 --cpu-time       (on a busy machine: the work, not the waiting)
    python benchmarks/bench_cnn.py --profile [--threads 1 --cpu-time]   (where minidl's time goes)
    python benchmarks/bench_cnn.py --profile-torch                      (where PyTorch's goes)

The network of examples/fashion_cnn.py, written as a PyTorch user writes it, in both frameworks:
Conv2d(1, 32, 3, padding=1) → ReLU → MaxPool2d(2) → Conv2d(32, 64, 3, padding=1) → ReLU → MaxPool2d(2) →
Flatten → Linear(3136, 128) → ReLU → Linear(128, 10), each ReLU an ``nn.ReLU()`` layer, cross-entropy, Adam
lr 1e-3 (eps 1e-7 in both), batch 64 (``--batch-size``), on Fashion-MNIST images as float32 in [0, 1]. Both
start from the same weights (drawn here with NumPy) and see the same batches (a fixed random permutation of
the training set). minidl runs with nothing from ``minidl.fast`` called: what a user's program gets.
``--fused-relu`` writes each ReLU inside its convolution instead (Keras's way; the same numbers), and
``--tuned`` adds the two process-wide opt-ins ``minidl.fast.memory.keep_freed_memory()`` and
``minidl.fast.parallel.single_threaded_blas()``, to show what they would add.

The run unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (common.py says why): a user has neither.

Each round runs one fresh subprocess per framework, alternating minidl and PyTorch (``--threads`` 2 by
default: minidl's worker threads, ``torch.set_num_threads(2)``), so that both see the same machine load and
each one's peak memory (VmHWM) is its own. A subprocess takes a few warm-up steps, then times ``--steps``
training steps (batch indexing, forward, backward, optimizer step). Reported: best and median seconds over the
rounds, the ratios minidl / PyTorch of the best and of the median times (below 1: minidl is faster), the
seconds per epoch at the median speed (938 steps of 64), the loss after the timed steps, peak RSS, and the
load average the runs started at.

On a machine shared with other work, wall-clock times measure the waiting as much as the work, and the two
frameworks wait differently (PyTorch's OpenMP threads spin when a core is taken away). ``--threads 1
--cpu-time`` runs each framework on one core and times it by its process's CPU time, which the load hardly
changes.

``--profile`` runs minidl alone, with every op's forward and backward timed (wrappers around
``Function.apply`` and ``Function.input_grads``, so the numbers include the ops' Python overhead but not
the engine's bookkeeping, which shows up as "autograd, other"), and prints milliseconds per step per op
and pass. ``--profile-torch`` runs PyTorch alone under ``torch.profiler`` and prints each op's own CPU
time per step (ops told apart by their input shapes), the largest first.
"""
import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from common import alternate, best_and_median, clean_environment, load_line, memory_mb, ratio_line

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


def build_minidl(fused_relu=False):
    """The network as a PyTorch user writes it, in minidl: ``nn.Conv2d`` then ``nn.ReLU()``. With
    ``fused_relu``, each ReLU inside its convolution (``Conv2d(..., activation="relu")``, as Keras's
    ``Conv2D(activation="relu")``): the same numbers."""
    from minidl import nn

    def conv(c_in, c_out):
        if fused_relu:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, activation="relu")]
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]

    return nn.Sequential(*conv(1, 32), nn.MaxPool2d(2), *conv(32, 64), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))


def tune():
    """The two process-wide opt-ins (``--tuned``): malloc keeps freed memory, BLAS runs on one thread."""
    from minidl.fast import parallel
    from minidl.fast.memory import keep_freed_memory

    keep_freed_memory()
    parallel.single_threaded_blas()


def run_minidl(x, y, batches, clock, profile=False, fused_relu=False, tuned=False):
    from minidl import Tensor, nn, optim
    from minidl import functional as F

    if tuned:
        tune()
    model = build_minidl(fused_relu)
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


def run_torch(x, y, batches, threads, clock, profile=False):
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
    profiler = torch.profiler.profile(record_shapes=True) if profile else None
    for k, index in enumerate(batches):
        if k == WARMUP:
            start = clock()
            if profiler:
                profiler.start()
        index = torch.from_numpy(index)
        loss = nn.functional.cross_entropy(model(x[index]), y[index])
        opt.zero_grad()
        loss.backward()
        opt.step()
    times.append(clock() - start)
    if profiler:
        profiler.stop()
        report_torch_profile(profiler, len(batches) - WARMUP, times[0])
    return times, float(loss.item())


def report_torch_profile(profiler, steps, seconds, rows=16):
    """The ops' own CPU time (without what they call) per step, the largest first, by op and input shapes."""
    print(f"PyTorch, {steps} steps: {seconds:.2f} s, {seconds * 1000 / steps:.1f} ms/step (under the profiler); "
          "per step:")
    print(f"  {'op':<40} {'input shapes':<56} {'ms':>6}")
    events = sorted(profiler.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    for e in events[:rows]:
        shapes = ", ".join("×".join(map(str, s)) for s in e.input_shapes if s)
        ms_per_step = e.self_cpu_time_total / 1000 / steps  # the profiler counts microseconds, over all steps
        print(f"  {e.key[:40]:<40} {shapes[:56]:<56} {ms_per_step:>6.2f}")


class Profiler:
    """Times every op's forward and backward by wrapping ``Function.apply`` and ``Function.input_grads``.

    Each op is labelled at its forward by its class and shapes (e.g. "Conv2d 32→64 14×14"), so that two
    layers of the same kind are told apart and their backward is booked under the same label. Whatever
    kernel set or class runs an op, it is timed (the numbers include the ops' Python overhead, not the
    engine's bookkeeping, which shows up as "autograd, other")."""

    def __init__(self, clock=time.perf_counter):
        self.totals = defaultdict(float)
        self.clock = clock

    @staticmethod
    def label(cls, inputs):
        shapes = [getattr(x, "shape", None) for x in inputs]
        x, w = (shapes + [None, None])[:2]
        name = cls.__name__
        if x is not None and w is not None and len(x) == 4 and len(w) == 4:
            return f"{name} {w[1]}→{w[0]} {x[2]}×{x[3]}"
        if x is not None and w is not None and len(w) == 2:
            return f"{name} {w[1]}→{w[0]}"
        return f"{name} {'×'.join(map(str, x[1:])) if x else ''}"

    def start(self):
        from minidl import autograd, optim

        Function, totals, clock, label = autograd.Function, self.totals, self.clock, self.label
        apply, input_grads = Function.apply.__func__, Function.input_grads

        def timed_apply(cls, *inputs, **options):
            start = clock()
            out = apply(cls, *inputs, **options)
            key = label(cls, inputs)
            if out._ctx is not None:
                out._ctx._profile_label = key
            totals[(key, "forward")] += clock() - start
            return out

        def timed_input_grads(fn, g):
            key = getattr(fn, "_profile_label", type(fn).__name__)
            start = clock()
            out = input_grads(fn, g)
            totals[(key, "backward")] += clock() - start
            return out

        Function.apply, Function.input_grads = classmethod(timed_apply), timed_input_grads
        for name in ("step", "zero_grad"):
            method = getattr(optim.Adam, name)

            def timed(opt, *args, method=method, key=f"Adam {name}", **options):
                start = clock()
                out = method(opt, *args, **options)
                totals[(key, "")] += clock() - start
                return out

            setattr(optim.Adam, name, timed)

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
            accounted += f + b + extra
            if extra:
                print(f"  {label:<58} {extra * ms:>22.2f}")
            else:
                print(f"  {label:<58} {f * ms:>10.2f} {b * ms:>11.2f}")
        print(f"  {'autograd, batch indexing, other':<58} {(seconds - accounted) * ms:>22.2f}")


def child(framework, steps, batch_size, threads, cpu_time, profile=False, fused_relu=False, tuned=False):
    """One framework's run in this process; ``profile``: with the per-op timing of that framework."""
    if threads == 1 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core: minidl then splits nothing
    x, y, batches = load_batches(batch_size, steps)
    clock = time.process_time if cpu_time else time.perf_counter
    if framework == "minidl":
        times, loss = run_minidl(x, y, batches, clock, profile, fused_relu, tuned)
    else:
        times, loss = run_torch(x, y, batches, threads, clock, profile)
    print(json.dumps(dict(times=times, loss=loss, peak_mb=memory_mb("VmHWM"))))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=150, help="timed training steps per subprocess (default 150)")
    p.add_argument("--rounds", type=int, default=3, help="subprocesses per framework, alternating (default 3)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, choices=[1, 2], default=2,
                   help="cores per framework (default 2; with 1, each child process runs on one core)")
    p.add_argument("--cpu-time", action="store_true",
                   help="time with the process's CPU time instead of the wall clock: with --threads 1, a "
                        "measure of the work done that a busy machine hardly disturbs")
    p.add_argument("--profile", action="store_true", help="minidl alone: time per layer and pass")
    p.add_argument("--profile-torch", action="store_true", help="PyTorch alone, under torch.profiler: its ops' time")
    p.add_argument("--fused-relu", action="store_true",
                   help='minidl with each ReLU inside its convolution, Conv2d(..., activation="relu") (as '
                        'Keras\'s Conv2D(activation="relu")), instead of nn.ReLU layers (as PyTorch)')
    p.add_argument("--tuned", action="store_true",
                   help="minidl with the two process-wide opt-ins of minidl.fast: keep_freed_memory() and "
                        "single_threaded_blas()")
    p.add_argument("--child", choices=["minidl", "torch"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.steps < 1 or args.rounds < 1 or args.batch_size < 1:
        p.error("--steps, --rounds and --batch-size must be positive")
    clean_environment()
    if args.child or args.profile or args.profile_torch:
        framework = args.child or ("torch" if args.profile_torch else "minidl")
        return child(framework, args.steps, args.batch_size, args.threads, args.cpu_time,
                     args.profile or args.profile_torch, args.fused_relu, args.tuned)
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"} if args.threads == 1 else None
    options = ["--steps", args.steps, "--batch-size", args.batch_size, "--threads", args.threads]
    flags = [flag for flag, on in (("--cpu-time", args.cpu_time), ("--fused-relu", args.fused_relu),
                                   ("--tuned", args.tuned)) if on]
    results = alternate(__file__, args.rounds, *options, *flags, env=env)
    per_epoch = STEPS_PER_EPOCH * 64 / args.batch_size / args.steps
    written = "fused ReLU" if args.fused_relu else "nn.ReLU layers (as in PyTorch)"
    print(f"{args.steps} steps, batch {args.batch_size}, {args.rounds} rounds, {args.threads} thread(s), "
          f"{'CPU time' if args.cpu_time else 'wall clock'}; minidl: {written}, "
          f"{'tuned (keep_freed_memory, single_threaded_blas)' if args.tuned else 'nothing called'}")
    print(f"{'framework':<10} {'s (best)':>9} {'s (median)':>11} {'s/epoch':>8} {'loss':>7} {'peak RSS MB':>12}")
    best, median = {}, {}
    for f, runs in results.items():
        best[f], median[f] = best_and_median(runs)
        print(f"{f:<10} {best[f]:>9.2f} {median[f]:>11.2f} {median[f] * per_epoch:>8.1f} "
              f"{runs[-1]['loss']:>7.3f} {max(r['peak_mb'] for r in runs):>12.0f}")
    if "torch" in best:
        print(ratio_line(best, median) + "  (target <= 1.0, goal <= 0.8)")
    print(load_line(results))


if __name__ == "__main__":
    main()
