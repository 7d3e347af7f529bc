"""Regenerate every picture in docs/ (the README shows them) from the examples that draw them:

    python docs/make_figures.py              # all of them, into docs/, and docs/figures.json
    python docs/make_figures.py --check      # only say which pictures are older than the code that draws them

- docs/predictions.png  from examples/fashion_mlp.py (784-128-10, 1 epoch, seed 0; needs Fashion-MNIST,
                        see the README's set-up)
- docs/graph.png        from examples/backprop_walkthrough.py --synthetic (the computation graph)
- docs/im2col.png       from examples/conv_walkthrough.py (how patches become columns)

Each example runs as a learner would run it, into a temporary folder; its picture is copied here, reduced
to a palette of colours so that each file stays under 150 KB. docs/figures.json records, for each picture,
a SHA-256 of the files that draw it (the example, the minidl module with the drawing code, and this script)
and its size in pixels: tests/test_docs.py fails when one of those files has changed since the picture was
made, or when the picture on disk is not the one recorded.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
MAX_BYTES = 150_000
STAMPS = DOCS / "figures.json"

FIGURES = [  # (picture in docs/, example and its arguments, the file it writes into --out, files that draw it)
    ("predictions.png", ["fashion_mlp.py", "--epochs", "1", "--seed", "0"], "predictions.png",
     ["examples/fashion_mlp.py", "examples/fashion_common.py", "minidl/plots.py"]),
    ("graph.png", ["backprop_walkthrough.py", "--synthetic", "--seed", "0"], "graph.png",
     ["examples/backprop_walkthrough.py", "minidl/viz.py"]),
    ("im2col.png", ["conv_walkthrough.py", "--seed", "0"], "im2col.png",
     ["examples/conv_walkthrough.py", "minidl/plots.py"]),
]


def sources_digest(sources):
    """SHA-256 of this script and the files that draw a picture, each preceded by its path."""
    digest = hashlib.sha256()
    for rel in ["docs/make_figures.py", *sources]:
        digest.update(rel.encode() + b"\0" + (ROOT / rel).read_bytes() + b"\0")
    return digest.hexdigest()


def pixel_size(path):
    from PIL import Image  # comes with matplotlib

    with Image.open(path) as image:
        return list(image.size)


def stale(folder=DOCS):
    """One line per picture in ``folder`` that is missing, unrecorded, or older than the code that draws it."""
    recorded = json.loads(STAMPS.read_text()) if STAMPS.exists() else {}
    problems = []
    for name, _, _, sources in FIGURES:
        picture, stamp = folder / name, recorded.get(name)
        if not picture.exists():
            problems.append(f"docs/{name} is missing")
        elif stamp is None:
            problems.append(f"docs/{name} is not recorded in docs/figures.json")
        elif stamp["sha256"] != sources_digest(sources):
            problems.append(f"docs/{name} is older than the code that draws it ({', '.join(sources)})")
        elif pixel_size(picture) != stamp["size"]:
            problems.append(f"docs/{name} is {pixel_size(picture)} pixels, not the {stamp['size']} recorded")
    return problems


def shrink(source, target):
    """Copy a PNG as a palette image (256 colours): the examples' flat-coloured plots lose nothing visible."""
    from PIL import Image

    from minidl.fileio import atomic_path

    with Image.open(source) as image, atomic_path(target) as tmp:
        image.convert("RGB").quantize(colors=256).save(tmp, format="png", optimize=True)
    if target.stat().st_size > MAX_BYTES:
        raise SystemExit(f"error: {target} is {target.stat().st_size // 1000} KB, more than {MAX_BYTES // 1000} KB")


def draw(out):
    """Run the examples, write their pictures into ``out``; return the stamps."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin:/usr/local/bin", **_passthrough()}
    stamps = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (script, *args), produced, sources in FIGURES:
            run_dir = Path(tmp) / name
            done = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args, "--out", str(run_dir)],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"error: examples/{script} failed: {done.stderr.strip().splitlines()[-1:]}")
            shrink(run_dir / produced, out / name)
            stamps[name] = {"sha256": sources_digest(sources), "size": pixel_size(out / name)}
            print(f"wrote {out / name} ({(out / name).stat().st_size // 1000} KB) from examples/{script}")
    return stamps


def _passthrough():
    """The environment variables the examples may need (home, data folders), nothing else."""
    keep = ("HOME", "MINIDL_DATA", "MINIDL_KERNELS", "LANG", "LC_ALL")
    return {k: os.environ[k] for k in keep if k in os.environ}


def main(argv=None):
    p = argparse.ArgumentParser(description="Regenerate the pictures of docs/ from the examples.")
    p.add_argument("--check", action="store_true", help="draw nothing; list the pictures that are out of date")
    p.add_argument("--out", type=Path, default=DOCS, help="folder for the pictures (default docs/; "
                   "docs/figures.json is updated only when it is docs/)")
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # minidl.fileio, from this checkout
    if args.check:
        problems = stale()
        print("\n".join(problems) or "every picture in docs/ is up to date")
        return 1 if problems else 0
    args.out.mkdir(parents=True, exist_ok=True)
    stamps = draw(args.out)
    if args.out.resolve() == DOCS:
        from minidl.fileio import write_json

        write_json(stamps, STAMPS)
        print(f"wrote {STAMPS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
