"""VGG19 convolution speed: minidl's im2col conv2d against PyTorch CPU, as ratios measured in the same run.

    python benchmarks/bench_conv.py [--sizes 224x224 384x512] [--modes forward input_grad full] [--rounds 3]
    python benchmarks/bench_conv.py --per-layer [--sizes 224x224]     (each conv layer alone)
    python benchmarks/bench_conv.py --tuned      (minidl with the process-wide opt-in keep_freed_memory())

The VGG19 feature stack (16 convolutions 3×3 pad 1, widths 64,64 | 128,128 | 256×4 | 512×4 | 512×4, ReLU,
2×2 max pool after each block) with identical random weights in both frameworks (minidl.models.vgg19 and the
same stack written with torch.nn.functional), on a 1×3×H×W image:
- forward:     the whole feature stack, without autograd (no_grad in both);
- input_grad:  forward up to block5_conv2 (after its ReLU) and the gradient of the sum of that map with
               respect to the image, weights frozen (style transfer / feature visualisation): no weight GEMMs;
- full:        forward of the whole stack and backward of the sum of the features to every weight and bias.
Each (framework, size, mode) runs in fresh subprocesses (2 threads each: OpenBLAS for NumPy,
torch.set_num_threads(2)), ``--rounds`` of them alternating between the frameworks, each timing ``--repeats``
runs after one warm-up, so that both see the same machine load and each one's peak memory is its own. The
table shows the best and median of all timed runs, the ratios minidl / PyTorch of the best and of the median
times, the convolution
GFLOPS achieved (2·multiply-adds of the conv GEMMs the mode needs, divided by the whole time), the same as a
fraction of this machine's NumPy float32 matmul speed (measured first), and the memory: peak RSS and its
growth over the RSS just before the first run (the working memory of the pass). A correctness check
compares both frameworks' outputs and gradients first. Timings are noisy: compare ratios within one run;
the last column is the highest load average the runs started at.

minidl runs with nothing from ``minidl.fast`` called (``--tuned``: after ``keep_freed_memory()``), and the
run unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (common.py says why).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

from common import best_and_median, clean_environment, frameworks, load_average, memory_mb, run_child

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

WIDTHS = [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]]
LAST_CONV_FOR_INPUT_GRAD = (4, 1)  # block5_conv2: block index 4, conv index 1 (0-based)


def layer_shapes(H, W):
    """(name, C, O, h, w) of every VGG19 conv layer on an H×W image."""
    shapes, c, h, w = [], 3, H, W
    for b, block in enumerate(WIDTHS):
        for i, o in enumerate(block):
            shapes.append((f"block{b + 1}_conv{i + 1}", c, o, h, w))
            c = o
        h, w = h // 2, w // 2
    return shapes


def vgg19_weights(seed=0):
    """He-initialised float32 weights and small biases, [(W, b)] per conv, identical for both frameworks."""
    rng = np.random.default_rng(seed)
    weights = []
    for _, c, o, _, _ in layer_shapes(0, 0):
        w = (rng.standard_normal((o, c, 3, 3)) * np.sqrt(2.0 / (9 * c))).astype(np.float32)
        weights.append((w, (rng.standard_normal(o) * 0.01).astype(np.float32)))
    return weights


def conv_layers(mode):
    """(block, conv) indices of the convs the mode runs."""
    layers = [(b, i) for b, block in enumerate(WIDTHS) for i in range(len(block))]
    if mode == "input_grad":
        layers = layers[: layers.index(LAST_CONV_FOR_INPUT_GRAD) + 1]
    return layers


def conv_flops(mode, H, W):
    """2 × multiply-adds of the conv GEMMs: forward, + dL/dx (input_grad, full), + dL/dW (full)."""
    total = 0
    for k, (_, c, o, h, w) in enumerate(layer_shapes(H, W)[: len(conv_layers(mode))]):
        f = 2 * o * c * 9 * h * w
        if mode == "forward":
            total += f
        elif mode == "input_grad":
            total += 2 * f  # dL/dx, including the image's
        else:
            total += 2 * f + (f if k else 0)  # dL/dW everywhere, dL/dx except for the image
    return total


def features(F, x, params, mode, pool):
    """The VGG19 feature stack for PyTorch, written with torch.nn.functional."""
    k = 0
    layers = conv_layers(mode)
    for b, block in enumerate(WIDTHS):
        for i in range(len(block)):
            w, bias = params[k]
            x = F.relu(F.conv2d(x, w, bias, padding=1))
            k += 1
            if (b, i) == layers[-1] and mode == "input_grad":
                return x
        x = pool(x, 2)
    return x


def make_minidl(mode, weights, x_np, tuned=False):
    """minidl's own ``models.vgg19`` (Keras layer names), with the benchmark's weights loaded into it; with
    ``tuned``, after the process-wide opt-in ``minidl.fast.memory.keep_freed_memory()``."""
    import minidl
    from minidl import Tensor
    from minidl.models import vgg19

    if tuned:
        from minidl.fast.memory import keep_freed_memory

        keep_freed_memory()

    model = vgg19(weights=None, seed=None)
    names = [f"block{b + 1}_conv{i + 1}" for b, block in enumerate(WIDTHS) for i in range(len(block))]
    state = {}
    for name, (w, bias) in zip(names, weights):
        state[f"{name}.weight"], state[f"{name}.bias"] = w, bias
    model.load_state_dict(state)
    model.requires_grad_(mode == "full")  # frozen weights for the input gradient: no weight GEMMs
    last = "block5_conv2" if mode == "input_grad" else "block5_pool"

    def run():
        x = Tensor(x_np, requires_grad=mode == "input_grad")
        if mode == "forward":
            with minidl.no_grad():
                return model.extract(x, last)[last].data, None
        y = model.extract(x, last)[last]
        y.sum().backward()
        grads = x.grad if mode == "input_grad" else [p.grad for p in model.parameters()]
        model.zero_grad()
        return y.data, grads

    return run


def make_torch(mode, weights, x_np):
    import torch

    torch.set_num_threads(2)
    F = torch.nn.functional
    params = [(torch.tensor(w, requires_grad=mode == "full"), torch.tensor(b, requires_grad=mode == "full"))
              for w, b in weights]

    def run():
        x = torch.tensor(x_np, requires_grad=mode == "input_grad")
        if mode == "forward":
            with torch.no_grad():
                return features(F, x, params, mode, F.max_pool2d).numpy(), None
        y = features(F, x, params, mode, F.max_pool2d)
        y.sum().backward()
        grads = x.grad.numpy() if mode == "input_grad" else [p.grad.numpy() for pair in params for p in pair]
        for pair in params:
            for p in pair:
                p.grad = None
        return y.detach().numpy(), grads

    return run


def child(framework, mode, H, W, repeats, tuned=False):
    x = np.random.default_rng(1).standard_normal((1, 3, H, W)).astype(np.float32)
    weights = vgg19_weights()
    run = make_minidl(mode, weights, x, tuned) if framework == "minidl" else make_torch(mode, weights, x)
    before = memory_mb("VmRSS")
    run()  # warm-up
    times = [timed(run) for _ in range(repeats)]
    print(json.dumps(dict(times=times, peak_mb=memory_mb("VmHWM"), before_mb=before)))


def layers_child(framework, H, W, repeats):
    """Per conv layer: best time of the forward and of the input gradient (weights frozen); for minidl also
    the bare im2col GEMM, W (O, 9C) @ cols (9C, h·w), on ready-made operands: the floor of the lowering."""
    rng = np.random.default_rng(0)

    def best(f):
        return min(timed(f) for _ in range(repeats + 1))  # the first run warms up

    rows = []
    if framework == "torch":
        import torch

        torch.set_num_threads(2)
        F = torch.nn.functional
    else:
        from minidl import Tensor, no_grad
        from minidl import functional as F
    for name, c, o, h, w in layer_shapes(H, W):
        x = rng.standard_normal((1, c, h, w)).astype(np.float32)
        wt = (rng.standard_normal((o, c, 3, 3)) * np.sqrt(2 / (9 * c))).astype(np.float32)
        g = rng.standard_normal((1, o, h, w)).astype(np.float32)
        row = dict(name=name)
        if framework == "torch":
            xt, wtt, gt = torch.from_numpy(x), torch.from_numpy(wt), torch.from_numpy(g)
            with torch.no_grad():
                row["forward"] = best(lambda: F.conv2d(xt, wtt, padding=1))

            def input_grad():
                xg = xt.clone().requires_grad_(True)
                F.conv2d(xg, wtt, padding=1).backward(gt)
        else:
            with no_grad():
                row["forward"] = best(lambda: F.conv2d(x, wt, padding=1))

            def input_grad():
                xg = Tensor(x, requires_grad=True)
                F.conv2d(xg, Tensor(wt), padding=1).backward(g)

            wm, cols = wt.reshape(o, 9 * c), rng.standard_normal((9 * c, h * w)).astype(np.float32)
            row["gemm"] = best(lambda: wm @ cols)
        row["input_grad"] = best(input_grad)
        rows.append(row)
    print(json.dumps(dict(rows=rows)))


def per_layer_table(H, W, frameworks, repeats):
    """Print the per-layer comparison (each framework in its own child process)."""
    runs = {f: run_child(__file__, f, "layers", H, W, "--repeats", repeats)["rows"] for f in frameworks}
    print(f"per layer, {H}×{W}: milliseconds (GFLOPS). GEMM: minidl's bare im2col matrix product of the forward."
          "\nfwd+dx: forward, then the input gradient with frozen weights (as in style transfer)")
    header = (f"{'layer':<13} {'GFLOP':>5}  {'fwd minidl':>14} {'fwd torch':>14} {'GEMM':>14}  {'fwd+dx minidl':>14} "
              f"{'fwd+dx torch':>14}")
    print(header)
    print("-" * len(header))
    total = {}
    for k, (name, c, o, h, w) in enumerate(layer_shapes(H, W)):
        flop = 2 * o * c * 9 * h * w
        cells = [("minidl", "forward"), ("torch", "forward"), ("minidl", "gemm"), ("minidl", "input_grad"),
                 ("torch", "input_grad")]
        line = f"{name:<13} {flop / 1e9:>5.2f} "
        for i, (f, key) in enumerate(cells):
            if f not in runs:
                line += f" {'':>14}"
                continue
            t = runs[f][k][key]
            total[f, key] = total.get((f, key), 0) + t
            work = 2 * flop if key == "input_grad" else flop  # the forward, then the input gradient
            line += (" " if i == 3 else "") + f" {t * 1e3:>6.1f} ({work / t / 1e9:>4.0f})"
        print(line)
    print("total ms      " + " ".join(f"{f} {key} {t * 1e3:.0f}" for (f, key), t in total.items()))


def check(H, W):
    """Both frameworks on the same image: outputs and gradients must agree (float32 tolerances)."""
    x = np.random.default_rng(1).standard_normal((1, 3, H, W)).astype(np.float32)
    weights = vgg19_weights()
    lines = []
    for mode in ["forward", "input_grad", "full"]:
        (ours, our_grads), (theirs, their_grads) = make_minidl(mode, weights, x)(), make_torch(mode, weights, x)()
        err = np.abs(ours - theirs).max() / np.abs(theirs).max()
        line = f"{mode}: output max rel err {err:.1e}"
        if mode == "input_grad":
            line += f", dL/dx {np.abs(our_grads - their_grads).max() / np.abs(their_grads).max():.1e}"
        elif mode == "full":
            worst = max(np.abs(a - b).max() / np.abs(b).max() for a, b in zip(our_grads, their_grads))
            line += f", worst dL/dW or dL/db {worst:.1e}"
        lines.append(line)
    return lines


def matmul_gflops():
    """NumPy float32 matmul speed on this machine: a square 4096 product and a VGG-like (512, 4608) @ (4608, 4096)."""
    out = {}
    for name, (m, k, n) in {"4096³": (4096, 4096, 4096), "512×4608×4096": (512, 4608, 4096)}.items():
        a, b = np.ones((m, k), np.float32), np.ones((k, n), np.float32)
        a @ b
        best = min(timed(lambda: a @ b) for _ in range(5))
        out[name] = 2 * m * k * n / best / 1e9
    return out


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", nargs="+", default=["224x224", "384x512"])
    p.add_argument("--modes", nargs="+", default=["forward", "input_grad", "full"])
    p.add_argument("--rounds", type=int, default=3, help="subprocesses per framework, alternating")
    p.add_argument("--repeats", type=int, default=2, help="timed runs per subprocess, after one warm-up")
    p.add_argument("--no-check", action="store_true", help="skip the minidl-vs-PyTorch correctness check")
    p.add_argument("--per-layer", action="store_true",
                   help="instead: every conv layer alone (forward, input gradient, bare GEMM) at the first size")
    p.add_argument("--tuned", action="store_true",
                   help="minidl after the process-wide opt-in minidl.fast.memory.keep_freed_memory()")
    p.add_argument("--child", nargs=4, metavar=("FRAMEWORK", "MODE", "H", "W"), help=argparse.SUPPRESS)
    args = p.parse_args()
    clean_environment()
    if args.child:
        framework, mode, H, W = args.child
        if mode == "layers":
            return layers_child(framework, int(H), int(W), args.repeats)
        return child(framework, mode, int(H), int(W), args.repeats, args.tuned)

    names = frameworks()
    openblas = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
    peak = matmul_gflops()
    print("NumPy float32 matmul: " + ", ".join(f"{k} {v:.0f} GFLOPS" for k, v in peak.items())
          + (f"   (environment: {openblas})" if openblas else ""))
    peak_gflops = max(peak.values())
    if args.per_layer:
        H, W = (int(v) for v in args.sizes[0].split("x"))
        return per_layer_table(H, W, names, max(args.repeats, 3))
    if not args.no_check and "torch" in names:
        for line in check(64, 96):
            print("check 1×3×64×96 vs PyTorch, " + line)

    header = (f"{'size':<9} {'mode':<11} {'framework':<7} {'best s':>7} {'median s':>8} {'ratio':>11} {'GFLOPS':>7} "
              f"{'% matmul':>8} {'peak RSS MB':>11} {'+MB':>6} {'load':>5}")
    print(header + "\n" + "-" * len(header) + "\n(ratio: minidl / PyTorch of the best times / of the medians)")
    tuned = ["--tuned"] if args.tuned else []
    for size in args.sizes:
        H, W = (int(v) for v in size.split("x"))
        for mode in args.modes:
            flops = conv_flops(mode, H, W)
            runs, loads = {f: [] for f in names}, []
            for _ in range(args.rounds):  # alternate the frameworks, so both see the same machine load
                for f in names:
                    loads.append(load_average() or 0.0)
                    runs[f].append(run_child(__file__, f, mode, H, W, "--repeats", args.repeats, *tuned))
            best, median = {}, {}
            for f, rs in runs.items():
                best[f], median[f] = best_and_median(rs)
                gflops = flops / best[f] / 1e9
                ratio = (f"{best['minidl'] / best['torch']:.2f} / {median['minidl'] / median['torch']:.2f}"
                         if f == "torch" else "")
                peak, grown = max(r["peak_mb"] for r in rs), max(r["peak_mb"] - r["before_mb"] for r in rs)
                print(f"{size:<9} {mode:<11} {f:<7} {best[f]:>7.3f} {median[f]:>8.3f} {ratio:>11} "
                      f"{gflops:>7.0f} {gflops / peak_gflops:>8.0%} {peak:>11.0f} {grown:>6.0f} "
                      f"{max(loads):>5.1f}", flush=True)


if __name__ == "__main__":
    main()
