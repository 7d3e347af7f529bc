"""Style-transfer step time and memory: minidl's ``style_transfer`` loop against the same loop in PyTorch.

    python benchmarks/bench_style.py [--sizes 256 512] [--steps 3] [--json results.json]

One optimisation step = forward of VGG19 up to block5_conv2 (the deepest layer used), the content loss at
block5_conv2, the style loss over the Gram matrices at block1_conv1 ... block5_conv1, the total variation,
backward to the pixels only (weights frozen), one Adam step (lr 0.02, betas (0.99, 0.999), eps 0.1) and the
clip to [0, 1]: the defaults of ``minidl.style.style_transfer``. The PyTorch loop below is written out with
the same layers, losses, preprocessing and Adam settings and runs on the *same* random weights (minidl's
``vgg19(weights=None, seed=0)``, shared with PyTorch through ``torch.from_numpy``, so they are in memory once).

Images are square, ``size`` × ``size`` (the example's long side). Each (framework, size) runs in a fresh
subprocess (2 threads: OpenBLAS's for NumPy, ``torch.set_num_threads(2)``), so its peak memory (max RSS) is
its own. Each measurement is repeated ``--rounds`` times, alternating the frameworks; the table shows the
median seconds per step (after one warm-up step) of the quietest round, the best single step, the ratio
minidl / PyTorch of the medians, the peak RSS and its growth over the RSS just before the first step (the
working memory of a step). A check first runs both loops on a 64×64 image and compares the loss parts and
the image after three steps. Timings are noisy on a shared machine: compare ratios within one run.
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from common import memory_mb, run_child

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

def child(framework, size, steps):
    from minidl.fast.memory import keep_freed_memory

    keep_freed_memory()  # both loops, as before this became an explicit call: the weights are shared
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
    p.add_argument("--rounds", type=int, default=2, help="measurements per framework and size (the quietest counts)")
    p.add_argument("--no-check", action="store_true", help="skip the minidl-vs-PyTorch agreement check")
    p.add_argument("--json", type=Path, help="also write the results to this file")
    p.add_argument("--child", nargs=2, metavar=("FRAMEWORK", "SIZE"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child[0], int(args.child[1]), args.steps)

    try:
        import torch  # noqa: F401

        frameworks = ["minidl", "torch"]
    except ImportError:
        frameworks = ["minidl"]
        print("PyTorch is not installed: timing minidl alone (pip install torch for the ratios)")
    if not args.no_check and "torch" in frameworks:
        print(check(), flush=True)

    header = f"{'size':>5} {'framework':<9} {'median s/step':>13} {'best':>7} {'ratio':>6} {'peak RSS MB':>11} {'+MB':>6}"
    print(header)
    print("-" * len(header))
    results = []
    for size in args.sizes:
        runs = {f: [] for f in frameworks}
        for _ in range(args.rounds):  # alternate the frameworks, so a busy spell of the machine hits both
            for f in frameworks:
                runs[f].append(run_child(__file__, f, size, "--steps", args.steps))
        medians = {}
        for f in frameworks:
            # the quietest round: the median step of each round, then the smallest of those
            r = min(runs[f], key=lambda r: np.median(r["seconds"]))
            medians[f] = float(np.median(r["seconds"]))
            best = min(min(r["seconds"]) for r in runs[f])
            peak = max(r["peak_mb"] for r in runs[f])
            ratio = medians["minidl"] / medians["torch"] if f == "torch" else None
            print(f"{size:>5} {f:<9} {medians[f]:>13.2f} {best:>7.2f} {'' if ratio is None else f'{ratio:.2f}':>6} "
                  f"{peak:>11.0f} {peak - r['before_mb']:>6.0f}", flush=True)
            results.append(dict(size=size, framework=f, seconds=[r["seconds"] for r in runs[f]], median=medians[f],
                                peak_rss_mb=peak, rss_before_mb=r["before_mb"], ratio_to_torch=ratio))
    if args.json:
        from minidl.fileio import write_json

        write_json(results, args.json)


if __name__ == "__main__":
    main()
