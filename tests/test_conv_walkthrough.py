"""examples/conv_walkthrough.py end to end, in a subprocess as a learner runs it, and a broken col2im caught."""
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "conv_walkthrough.py"
CHECKS = 11


def test_walkthrough_runs_offline_and_every_check_passes(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONIOENCODING="utf-8")
    env.pop("MINIDL_KERNELS", None)
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path), "--seed", "3"], capture_output=True,
                          text=True, encoding="utf-8", env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    checks = re.findall(r"^  check: .* (ok|MISMATCH)$", text, re.M)
    assert checks == ["ok"] * CHECKS, text
    assert f"Checks: {CHECKS} of {CHECKS} passed." in text
    for step in ("1. im2col", "2. The convolution", "3. The backward", "4. Max-pool backward"):
        assert step in text
    assert "finite differences of the loops (36 entries)" in text and "(50 entries)" in text
    png = tmp_path / "im2col.png"
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and 30_000 < png.stat().st_size < 150_000
    assert [p.name for p in tmp_path.iterdir()] == ["im2col.png"]  # no temporary file left behind


def test_a_wrong_col2im_is_caught(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("conv_walkthrough", SCRIPT)
    walkthrough = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(walkthrough)
    right = walkthrough.col2im
    walkthrough.col2im = lambda dcols, *args: right(dcols, *args) * np.float64(1.001)  # off by 0.1%
    assert walkthrough.main(["--out", str(tmp_path)]) == 1
    out = capsys.readouterr()
    assert out.out.count("MISMATCH") == 3  # dL/dx against Conv2d, Im2col + matmul and finite differences
    assert "3 checks failed" in out.err
