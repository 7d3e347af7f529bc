"""examples/backprop_walkthrough.py end to end, in a subprocess, as a learner runs it."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "backprop_walkthrough.py"


def run(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          encoding="utf-8", env=env, cwd=ROOT, timeout=120)


def check_output(result, out):
    assert result.returncode == 0, result.stderr
    text = result.stdout
    m = re.search(r"Finite-difference check: (\d+) of (\d+) gradient entries agree", text)
    assert m and m.group(1) == m.group(2) and int(m.group(2)) >= 20, text
    assert "MISMATCH" not in text
    # every gradient of the network is printed, in backward order
    names = ["dL/dloss", "dL/dlogits", "dL/dh ", "dL/dfc2.weight", "dL/dfc2.bias", "dL/dz1", "dL/dfc1.weight",
             "dL/dfc1.bias"]
    positions = [text.index(n) for n in names]
    assert positions == sorted(positions)
    assert (out / "graph.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert (out / "graph.png").stat().st_size > 20_000
    dot = (out / "graph.dot").read_text(encoding="utf-8")
    assert "digraph" in dot and "fc1.weight" in dot and len(re.findall(r"^\s*\w+ -> \w+", dot, re.M)) == 13
    assert not [p for p in out.iterdir() if p.suffix == ".part"]


def test_synthetic_run_writes_graph_and_passes_finite_differences(tmp_path):
    out = tmp_path / "walk"
    result = run("--synthetic", "--out", out, "--seed", "1")
    check_output(result, out)
    assert "synthetic batch" in result.stdout


def test_fashion_mnist_run_or_fallback(tmp_path):
    """With the data installed the real images are used; without it the script says so and falls back."""
    result = run("--out", tmp_path)
    check_output(result, tmp_path)
    assert "Fashion-MNIST test images" in result.stdout or "synthetic batch" in result.stdout


def test_error_is_one_line_and_exit_code_non_zero(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run("--synthetic", "--out", blocker)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
