"""Regenerate the pictures of the README and docs/ from the examples that draw them:

    python docs/make_figures.py

- docs/predictions.png  from examples/fashion_mlp.py (784-128-10, 1 epoch, seed 0; needs Fashion-MNIST,
                        see the README's set-up command)
- docs/graph.png        from examples/backprop_walkthrough.py --synthetic (the computation graph)
- docs/im2col.png       from examples/conv_walkthrough.py (how patches become columns)

Each example runs as a learner would run it, into a temporary folder; its picture is copied here, reduced
to a palette of colours so that each file stays under 150 KB.
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
MAX_BYTES = 150_000

FIGURES = [  # (picture in docs/, example and its arguments, the file it writes into --out)
    ("predictions.png", ["fashion_mlp.py", "--epochs", "1", "--seed", "0"], "predictions.png"),
    ("graph.png", ["backprop_walkthrough.py", "--synthetic", "--seed", "0"], "graph.png"),
    ("im2col.png", ["conv_walkthrough.py", "--seed", "0"], "im2col.png"),
]


def shrink(source, target):
    """Copy a PNG as a palette image (256 colours): the examples' flat-coloured plots lose nothing visible."""
    from PIL import Image  # comes with matplotlib

    with Image.open(source) as image:
        image.convert("RGB").quantize(colors=256).save(target, optimize=True)
    if target.stat().st_size > MAX_BYTES:
        raise SystemExit(f"error: {target} is {target.stat().st_size // 1000} KB, more than {MAX_BYTES // 1000} KB")


def main():
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (script, *args), produced in FIGURES:
            out = Path(tmp) / name
            done = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args, "--out", str(out)],
                                  cwd=ROOT, env={**env, **_passthrough()}, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"error: examples/{script} failed: {done.stderr.strip().splitlines()[-1:]}")
            shrink(out / produced, DOCS / name)
            print(f"wrote docs/{name} ({(DOCS / name).stat().st_size // 1000} KB) from examples/{script}")


def _passthrough():
    """The environment variables the examples may need (home, data folders), nothing else."""
    keep = ("HOME", "MINIDL_DATA", "MINIDL_KERNELS", "LANG", "LC_ALL")
    return {k: os.environ[k] for k in keep if k in os.environ}


if __name__ == "__main__":
    main()
