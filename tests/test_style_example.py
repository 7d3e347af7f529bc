"""examples/style_transfer.py end to end, in a subprocess, with random weights on tiny images."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "style_transfer.py"


def run(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_a_small_run_writes_every_output(tmp_path):
    out = run("--weights", "random", "--size", 64, "--steps", 4, "--snapshot-every", 2, "--out", "tmp", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    folder = tmp_path / "tmp"
    expected = {"final.png", "step_0002.png", "step_0004.png", "progress.png", "losses.png", "run.json",
                "content.png", "style.png"}
    assert {p.name for p in folder.iterdir()} == expected  # and no temporary (.part) file left behind

    final = Image.open(folder / "final.png")
    assert max(final.size) == 64 and final.mode == "RGB"
    assert "random weights" in final.text["Title"]
    for name in ("progress.png", "losses.png"):
        assert min(Image.open(folder / name).size) > 200  # real figures, not empty canvases

    info = json.loads((folder / "run.json").read_text())
    assert info["random_weights"] is True and info["settings"]["steps"] == 4
    assert info["step"] == [0, 1, 2, 3, 4] and len(info["loss"]) == 5 and len(info["seconds_per_step"]) == 4
    for part in ("content", "style", "tv"):
        assert len(info[part]) == 5
    np.testing.assert_allclose(info["loss"], np.sum([info["content"], info["style"], info["tv"]], axis=0), rtol=1e-5)
    assert info["snapshots"] == ["step_0002.png", "step_0004.png"]
    assert info["loss_weights"] == {"content_weight": 1e4, "style_weight": 1e-2, "tv_weight": 30.0}
    assert "style transfer" in out.stderr  # the progress bar, with the loss parts
    assert "content=" in out.stderr and "style=" in out.stderr and "tv=" in out.stderr


def test_the_same_seed_gives_the_same_image(tmp_path):
    args = ("--weights", "random", "--size", 32, "--steps", 2, "--init", "noise", "--snapshot-every", 5)
    images = []
    for name in ("a", "b"):  # (that another seed gives another image is checked in test_style.py)
        out = run(*args, "--seed", 5, "--out", name, cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        images.append(np.asarray(Image.open(tmp_path / name / "final.png")))
    assert np.array_equal(images[0], images[1])


def _assert_one_line_error(out, *fragments):
    assert out.returncode != 0
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("option", ["--content", "--style"])
def test_a_missing_image_is_a_one_line_error(tmp_path, option):
    out = run(option, tmp_path / "nowhere.jpg", "--weights", "random", "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, "nowhere.jpg", "no such file", option.lstrip("-"))
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content", [b"not an image at all", b"\xff\xd8\xff\xe0" + b"\x00" * 30])
def test_an_unreadable_image_is_a_one_line_error(tmp_path, content):
    (tmp_path / "broken.jpg").write_bytes(content)
    out = run("--content", tmp_path / "broken.jpg", "--weights", "random", "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, "broken.jpg")


def test_a_directory_instead_of_an_image_is_a_one_line_error(tmp_path):
    out = run("--style", tmp_path, "--weights", "random", "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, "directory")


def test_missing_weights_name_the_fetch_command_and_the_random_option(tmp_path):
    out = run("--weights", tmp_path / "vgg19.h5", "--size", 32, "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, "python -m minidl.weights fetch vgg19", "--weights random")


def test_an_unknown_layer_is_a_one_line_error(tmp_path):
    out = run("--weights", "random", "--size", 32, "--style-layers", "block1_conv1,block9_conv9", "--out", "o",
              cwd=tmp_path)
    _assert_one_line_error(out, "block9_conv9", "--style-layers")
