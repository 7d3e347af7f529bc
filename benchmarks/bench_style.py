"""Style-transfer step time and memory: minidl's ``style_transfer`` loop against the same loop in PyTorch.

    python benchmarks/bench_style.py [--sizes 256 512] [--steps 3] [--rounds 2] [--json results.json]
    python benchmarks/bench_style.py --tuned     (minidl with the process-wide opt-in keep_freed_memory())

One optimisation step = forward of VGG19 up to block5_conv2 (the deepest layer used), the content loss at
block5_conv2, the style loss over the Gram matrices at block1_conv1 ... block5_conv1, the total variation,
backward to the pixels only (weights frozen), one Adam step (lr 0.02, betas (0.99, 0.999), eps 0.1) and the
clip to [0, 1]: the defaults of ``minidl.style.style_transfer``. The PyTorch loop below is written out with
the same layers, losses, preprocessing and Adam settings and runs on the *same* random weights (minidl's
``vgg19(weights=None, seed=0)``, shared with PyTorch through ``torch.from_numpy``, so they are in memory once).

Images are square, ``size`` × ``size`` (the example's long side). Each (framework, size) runs in a fresh
subprocess (2 threads: OpenBLAS's for NumPy, ``torch.set_num_threads(2)``), so its peak memory (max RSS) is
its own. Each measurement is repeated ``--rounds`` times, alternating the frameworks; the table shows the
best and the median seconds per step over all rounds (after one warm-up step each), the ratios minidl /
PyTorch of the best and of the median steps, the peak RSS and its growth over the RSS just before the first
step (the working memory of a step), and the highest load average the runs started at. minidl runs with
nothing from ``minidl.fast`` called (``--tuned``: after ``keep_freed_memory()``), and the run unsets
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` (common.py says why). A check first runs both loops on a 64×64 image and compares the loss parts and
the image after three steps. Timings are noisy on a shared machine: compare ratios within one run.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from common import clean_environment, frameworks, load_average, memory_mb, run_child

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ADAM = dict(lr=0.02, betas=(0.99, 0.999), eps=0.1)


def images(size):
    """Content and style images (1, 3, size, size) in [0, 1], made by minidl (no file needed)."""
    from minidl.image import painting, to_nchw

    return to_nchw(painting(size, seed=1)), to_nchw(painting(size, seed=2))


def minidl_model():
    from minidl.models import vgg19

    return vgg19(weights=None, seed=0)


# --- the minidl loop: the library itself ---------------------------------------------------------------------

def minidl_run(model, content, style, steps):
    """Seconds of each step, loss parts per step and the final image, from ``minidl.style.style_transfer``."""
    from minidl.style import style_transfer

    result = style_transfer(content, style, model, steps=steps, **ADAM)
    h = result.history
    return h["seconds"], {k: h[k][:steps] for k in ("loss", "content", "style", "tv")}, result.image


# --- the same loop in PyTorch ----------------------------------------------------------------------------------

def torch_run(model, content, style, steps):
    """The loop of ``style_transfer`` (Adam path) written in PyTorch, on ``model``'s weights."""
    import torch
    import torch.nn.functional as F

    from minidl.style import CONTENT_LAYERS, LOSS_WEIGHTS, STYLE_LAYERS
    from minidl.models.architecture import PREPROCESSING

    torch.set_num_threads(2)
    weights = LOSS_WEIGHTS[model.preprocessing]
    prep = PREPROCESSING[model.preprocessing]
    mean = torch.tensor(prep["mean"], dtype=torch.float32).reshape(1, 3, 1, 1)
    std = torch.tensor(prep["std"], dtype=torch.float32).reshape(1, 3, 1, 1)
    params = {name: (torch.from_numpy(getattr(model, name).weight.data), torch.from_numpy(getattr(model, name).bias.data))
              for name in model.layer_names if "_conv" in name}
    deepest = max(model.layer_names.index(n) for n in CONTENT_LAYERS + STYLE_LAYERS)

    def features(x):
        if prep["channels"] == "BGR":
            x = x.flip(1)
        x = (x * prep["scale"] - mean) / std
        out = {}
        for name in model.layer_names[: deepest + 1]:
            if "_conv" in name:
                w, b = params[name]
                x = F.relu(F.conv2d(x, w, b, padding=1))
            else:
                x = F.max_pool2d(x, 2)
            out[name] = x
        return out

    def gram(f):
        n, c, h, w = f.shape
        f = f.reshape(n, c, h * w)
        return f @ f.transpose(1, 2) / (h * w)

    with torch.no_grad():
        feats = features(torch.from_numpy(content))
        content_targets = [feats[n] for n in CONTENT_LAYERS]
        feats = features(torch.from_numpy(style))
        style_targets = [gram(feats[n]) for n in STYLE_LAYERS]
        del feats

    x = torch.from_numpy(content.copy()).requires_grad_(True)
    opt = torch.optim.Adam([x], **ADAM)
    seconds, parts = [], {k: [] for k in ("loss", "content", "style", "tv")}
    for _ in range(steps):
        start = time.perf_counter()
        feats = features(x)
        c = sum(F.mse_loss(feats[n], t) for n, t in zip(CONTENT_LAYERS, content_targets)) / len(CONTENT_LAYERS)
        s = sum(F.mse_loss(gram(feats[n]), t) for n, t in zip(STYLE_LAYERS, style_targets)) / len(STYLE_LAYERS)
        tv = (x[:, :, 1:, :] - x[:, :, :-1, :]).abs().sum() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().sum()
        c, s, tv = c * weights["content_weight"], s * weights["style_weight"], tv * weights["tv_weight"]
        loss = c + s + tv
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)
        seconds.append(time.perf_counter() - start)
        for k, v in (("loss", loss), ("content", c), ("style", s), ("tv", tv)):
            parts[k].append(float(v.detach()))
        del feats, loss, c, s, tv
    return seconds, parts, x.detach().numpy()


# --- subprocess per measurement --------------------------------------------------------------------------------

def child(framework, size, steps, tuned=False):
    if tuned and framework == "minidl":
        from minidl.fast.memory import keep_freed_memory

        keep_freed_memory()
    if framework == "torch":
        import torch  # noqa: F401  (imported before measuring the baseline: its libraries are not working memory)
    model = minidl_model()
    content, style = images(size)
    before = memory_mb("VmRSS")
    run = minidl_run if framework == "minidl" else torch_run
    seconds, _, _ = run(model, content, style, steps + 1)
    print(json.dumps(dict(seconds=seconds[1:], peak_mb=memory_mb("VmHWM"), before_mb=before)))


def check(size=64, steps=3):
    """Both loops on the same small image: loss parts at each step and the final image must agree."""
    model = minidl_model()
    content, style = images(size)
    _, ours, our_image = minidl_run(model, content, style, steps)
    _, theirs, their_image = torch_run(model, content, style, steps)
    rel = {k: max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(ours[k], theirs[k])) for k in ours}
    return (f"check {size}×{size}, {steps} steps vs PyTorch: loss parts max rel diff "
            + ", ".join(f"{k} {v:.1e}" for k, v in rel.items())
            + f"; image max abs diff {np.abs(our_image - their_image).max():.1e}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512], help="image sizes (square, pixels)")
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    p.add_argument("--rounds", type=int, default=2, help="measurements per framework and size, alternating")
    p.add_argument("--no-check", action="store_true", help="skip the minidl-vs-PyTorch agreement check")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--tuned", action="store_true",
                   help="minidl after the process-wide opt-in minidl.fast.memory.keep_freed_memory()")
    p.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    clean_environment()
    if args.child:
        return child(args.child[0], int(args.child[1]), args.steps, args.tuned)

    names = frameworks()
    if not args.no_check and "torch" in names:
        print(check(), flush=True)

    header = (f"{'size':>5} {'framework':<9} {'best s/step':>11} {'median':>7} {'ratio':>11} {'peak RSS MB':>11} "
              f"{'+MB':>6} {'load':>5}")
    print(header + "\n" + "-" * len(header) + "\n(ratio: minidl / PyTorch of the best steps / of the medians)")
    results = []
    tuned = ["--tuned"] if args.tuned else []
    for size in args.sizes:
        runs, loads = {f: [] for f in names}, []
        for _ in range(args.rounds):  # alternate the frameworks, so a busy spell of the machine hits both
            for f in names:
                loads.append(load_average() or 0.0)
                runs[f].append(run_child(__file__, f, size, "--steps", args.steps, *tuned))
        best, median = {}, {}
        for f in names:
            steps = sorted(t for r in runs[f] for t in r["seconds"])
            best[f], median[f] = steps[0], float(np.median(steps))
            peak = max(r["peak_mb"] for r in runs[f])
            grown = max(r["peak_mb"] - r["before_mb"] for r in runs[f])
            ratio = (best["minidl"] / best["torch"], median["minidl"] / median["torch"]) if f == "torch" else None
            shown = "" if ratio is None else f"{ratio[0]:.2f} / {ratio[1]:.2f}"
            print(f"{size:>5} {f:<9} {best[f]:>11.2f} {median[f]:>7.2f} {shown:>11} {peak:>11.0f} {grown:>6.0f} "
                  f"{max(loads):>5.1f}", flush=True)
            results.append(dict(size=size, framework=f, seconds=[r["seconds"] for r in runs[f]], best=best[f],
                                median=median[f], peak_rss_mb=peak, load=max(loads),
                                ratio_to_torch=None if ratio is None else dict(best=ratio[0], median=ratio[1])))
    if args.json:
        from minidl.fileio import write_json

        write_json(results, args.json)


if __name__ == "__main__":
    main()
