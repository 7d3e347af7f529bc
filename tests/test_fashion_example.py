"""End-to-end runs of examples/fashion_mlp.py: the README's main job, a reduced run, a sweep, and errors."""
import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minidl.datasets import fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "fashion_mlp.py"
HAVE_DATA = fashion_mnist.find_files("train") is not None and fashion_mnist.find_files("test") is not None
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
OUTPUTS = ["metrics.json", "accuracy_curve.png", "per_class_accuracy.png", "confusion_matrix.png", "predictions.png", "model.h5"]


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, cwd=ROOT)


@needs_data
def test_default_run_reaches_86_percent_and_writes_every_output(tmp_path):
    result = run("--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in OUTPUTS:
        assert (tmp_path / name).stat().st_size > 1000, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.86
    assert len(metrics["epochs"]) == 5 and metrics["settings"]["hidden"] == [128]
    assert set(metrics["per_class_accuracy"]) == set(fashion_mnist.FASHION_MNIST_CLASSES)
    assert sum(map(sum, metrics["confusion_matrix"])) == 10_000
    assert "Shirt" in result.stdout and "test accuracy" in result.stdout

    # the saved weights reproduce the reported accuracy
    import numpy as np

    from minidl import Tensor, no_grad
    from minidl.datasets import load_fashion_mnist

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from fashion_mlp import build_model
    finally:
        sys.path.pop(0)
    model = build_model([128]).load(tmp_path / "model.h5")
    images, labels = load_fashion_mnist("test")
    with no_grad():
        predicted = model(Tensor(images.astype(np.float32) / 255)).data.argmax(1)
    assert abs(np.mean(predicted == labels) - metrics["test_accuracy"]) < 1e-9


@needs_data
def test_reduced_run_beats_chance_widely_and_is_reproducible(tmp_path):
    args = ["--epochs", "1", "--limit-train", "3000", "--hidden", "32", "16", "--seed", "7"]
    first, second = run(*args, "--out", tmp_path / "a"), run(*args, "--out", tmp_path / "b")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in "ab")
    assert a["test_accuracy"] > 0.6  # chance is 0.1
    assert a["epochs"][0]["test_loss"] == b["epochs"][0]["test_loss"]
    assert a["confusion_matrix"] == b["confusion_matrix"]
    assert (tmp_path / "a" / "model.h5").read_bytes() != b""


@needs_data
def test_sweep_writes_table_and_figure(tmp_path):
    result = run("--sweep", "--sweep-widths", "8", "16", "--sweep-depths", "1", "2", "--epochs", "1",
                 "--limit-train", "1000", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    sweep = json.loads((tmp_path / "sweep.json").read_text())["results"]
    assert [(r["depth"], r["width"]) for r in sweep] == [(1, 8), (1, 16), (2, 8), (2, 16)]
    assert sweep[0]["parameters"] == 784 * 8 + 8 + 8 * 10 + 10
    assert (tmp_path / "sweep.png").stat().st_size > 1000
    assert "width   16" in result.stdout


def test_corrupt_data_gives_a_one_line_error(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (data / f"{name}.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03garbage")[:-4])  # truncated gzip
    result = run("--data", data, "--out", tmp_path / "out")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error:") and "train-images-idx3-ubyte" in result.stderr
    assert not (tmp_path / "out").exists()


def test_bad_arguments_are_rejected():
    result = run("--epochs", "0")
    assert result.returncode == 2 and "must be positive" in result.stderr
