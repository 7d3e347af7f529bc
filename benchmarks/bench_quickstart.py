"""PyTorch's beginner-course quickstart, timed on minidl and on PyTorch: wall time of 5 epochs and the ratio.

    python benchmarks/bench_quickstart.py [--epochs 5] [--rounds 2] [--torch-python PYTHON] [--program FILE]

The program (``course_quickstart.py`` beside this file, or ``--program``, e.g. the course's own
quickstart_tutorial.py) is written for PyTorch; it runs unchanged as ``python FILE`` (PyTorch and
torchvision, from ``--torch-python``, default this Python) and as ``python -m minidl.as_torch FILE``
(minidl), each in a fresh process in a scratch folder whose ``data/FashionMNIST/raw/`` holds the four
unpacked Fashion-MNIST files (torchvision's layout; found where ``minidl.datasets`` finds them). Runs
alternate, minidl first in odd rounds and PyTorch first in even ones, so both see the same machine load.
Reported: each run's wall time (the whole process, imports included) and CPU time, then best and median
per framework and the ratios minidl / PyTorch of both (below 1: minidl is faster), with the load average.

Like the other benchmarks, it restarts itself without OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE
(``common.clean_environment``): some machines set them to work around old OpenBLAS builds, and they slow a
current NumPy's matrix products (PyTorch does not read them).
"""
import argparse
import gzip
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import clean_environment, load_average, ratio_line

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # minidl from this checkout, installed or not


def prepare_data(folder):
    """``folder/data/FashionMNIST/raw/`` with the four files unpacked, from wherever minidl finds them."""
    from minidl.datasets import fashion_mnist as fm

    raw = folder / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "test"):
        for path in fm.find_files(split) or fm.download_files(split, fm.MIRRORS):
            name = path.name.removesuffix(".gz")
            with (gzip.open(path) if path.suffix == ".gz" else open(path, "rb")) as src, open(raw / name, "wb") as dst:
                shutil.copyfileobj(src, dst)


def run(framework, program, epochs, torch_python, cwd):
    if framework == "minidl":
        command = [sys.executable, "-m", "minidl.as_torch", str(program), str(epochs)]
    else:
        command = [torch_python, str(program), str(epochs)]
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode:
        sys.exit(f"{framework} run failed:\n{out.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    accuracy = [line.split()[1] for line in out.stdout.splitlines() if line.strip().startswith("Accuracy:")]
    return wall, cpu, accuracy


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--torch-python", default=sys.executable, help="a Python with torch and torchvision")
    parser.add_argument("--program", type=Path, default=HERE / "course_quickstart.py")
    args = parser.parse_args()
    clean_environment()
    times = {"minidl": [], "torch": []}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        prepare_data(scratch)
        for r in range(args.rounds):
            order = ["minidl", "torch"] if r % 2 == 0 else ["torch", "minidl"]
            for framework in order:
                load = load_average()
                wall, cpu, accuracy = run(framework, args.program.resolve(), args.epochs, args.torch_python, scratch)
                times[framework].append((wall, cpu))
                print(f"round {r + 1} {framework:>6}: {wall:7.1f} s wall, {cpu:7.1f} s CPU, load {load:.1f} "
                      f"at start; test accuracy per epoch {' '.join(accuracy)}", flush=True)
    for i, what in enumerate(("wall", "CPU")):
        m = sorted(t[i] for t in times["minidl"])
        p = sorted(t[i] for t in times["torch"])
        print(f"{what:>4}: minidl best {m[0]:.1f} s median {statistics.median(m):.1f} s, PyTorch best {p[0]:.1f} s "
              f"median {statistics.median(p):.1f} s; " + ratio_line({"minidl": m[0], "torch": p[0]},
                                                                   {"minidl": statistics.median(m),
                                                                    "torch": statistics.median(p)}))
    print(f"load average now: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
