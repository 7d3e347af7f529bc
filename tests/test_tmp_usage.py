"""Housekeeping: a test run leaves no weight-sized files in pytest's temporary folder."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def folder_size(folder):
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and not p.is_symlink())


def test_weight_tests_leave_no_large_files(tmp_path):
    # a test that converts a module-scoped 80 MB Keras file into an 80 MB file in its tmp_path
    tests = ["tests/test_weights.py::test_keras_first_layer_keeps_bgr_order"]
    base = tmp_path / "basetemp"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={base}", *tests],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed" in out.stdout
    assert folder_size(base) < 5 << 20, f"{folder_size(base) / 1e6:.0f} MB left in {base}"
