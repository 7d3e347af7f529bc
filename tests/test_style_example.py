"""examples/style_transfer.py end to end, in a subprocess, with random weights on tiny images."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
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
    # no temporary (.part) file left behind, and no checkpoint once the run is complete
    assert {p.name for p in folder.iterdir()} == expected

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


def test_losses_figure_gives_the_total_its_own_panel(tmp_path, monkeypatch):
    # as with random weights: the total variation is nearly all of the total, so on one panel the two lines
    # would be one
    import importlib.util

    spec = importlib.util.spec_from_file_location("style_transfer_example", SCRIPT)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    saved = {}
    monkeypatch.setattr(example, "save_figure", lambda fig, path: saved.setdefault("fig", fig))
    tv, content, style = np.array([1.3e5, 6e4, 2.9e4]), np.array([0.0, 10.0, 32.0]), np.array([52.0, 55.0, 58.0])
    history = dict(step=[0, 1, 2], loss=list(tv + content + style), content=list(content), style=list(style),
                   tv=list(tv))
    example.losses_figure(history, tmp_path / "losses.png", "loss", random_weights=True)
    total_ax, parts_ax = saved["fig"].axes
    [total] = total_ax.get_lines()
    np.testing.assert_allclose(total.get_ydata(), history["loss"])
    assert total_ax.get_yscale() == parts_ax.get_yscale() == "log"
    legend = [t.get_text() for t in parts_ax.get_legend().get_texts()]
    assert [text.split(" (")[0] for text in legend] == ["content", "style", "total variation"]
    assert "99.7% of the total at the end" in legend[2]  # which part dominates, in numbers
    np.testing.assert_allclose(parts_ax.get_lines()[0].get_ydata(), [np.nan, 10.0, 32.0])  # a zero: no point


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


def test_an_unknown_kernel_set_is_a_one_line_error_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_KERNELS", "gpu")
    out = run("--weights", "random", "--size", 32, "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, "MINIDL_KERNELS='gpu' is not a kernel set: set it to fast or textbook")
    assert not (tmp_path / "o").exists()


def test_an_unknown_layer_is_a_one_line_error(tmp_path):
    out = run("--weights", "random", "--size", 32, "--style-layers", "block1_conv1,block9_conv9", "--out", "o",
              cwd=tmp_path)
    _assert_one_line_error(out, "block9_conv9", "--style-layers")


# --- option errors name the option and its value ----------------------------------------------------------

@pytest.mark.parametrize("option, value, fragment", [
    ("--size", 8, "--size 8: must be at least 16"),
    ("--style-size", 15, "--style-size 15: must be at least 16"),
    ("--steps", -1, "--steps -1: must be 0 or more"),
    ("--snapshot-every", 0, "--snapshot-every 0: must be 1 or more"),
    ("--lr", 0, "--lr 0: must be positive"),
    ("--tv-weight", -2, "--tv-weight -2: must not be negative"),
])
def test_a_bad_option_value_names_the_option_and_the_value(tmp_path, option, value, fragment):
    out = run("--weights", "random", option, value, "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, fragment)
    assert out.returncode == 2 and not (tmp_path / "o").exists()


def test_an_image_too_small_for_the_layers_is_a_one_line_error(tmp_path):
    # Grace Hopper at --size 16 is 16x13: too narrow for the four poolings before block5_conv2
    out = run("--weights", "random", "--size", 16, "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, "--size 16 makes the content image 14x16 pixels", "block5_conv2", "at least 16")
    out = run("--weights", "random", "--size", 16, "--style-layers", "block1_conv1", "--content-layers",
              "block3_conv1", "--steps", 1, "--out", "o", cwd=tmp_path)
    assert out.returncode == 0, out.stderr  # two poolings before block3_conv1: 4 pixels are enough


def test_a_missing_weight_file_speaks_of_the_weights_option(tmp_path):
    out = run("--weights", "/nonexistent.h5", "--size", 32, "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, "--weights /nonexistent.h5: no such file", "--weights random")
    assert "weights=" not in out.stderr and out.returncode == 1


# --- snapshot spacing ---------------------------------------------------------------------------------------

def test_a_short_run_still_shows_a_few_steps(tmp_path):
    out = run("--weights", "random", "--size", 20, "--steps", 4, "--out", "o", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    info = json.loads((tmp_path / "o" / "run.json").read_text())
    assert info["snapshots"] == ["step_0001.png", "step_0002.png", "step_0003.png", "step_0004.png"]
    assert info["settings"]["snapshot_every"] == 1


def test_default_snapshot_spacing():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from style_transfer import default_snapshot_every
    finally:
        sys.path.remove(str(SCRIPT.parent))
    # the default 1,000-step run keeps its spacing of 100; shorter runs get at least four snapshots
    spacing = {steps: default_snapshot_every(steps) for steps in (0, 3, 4, 9, 60, 100, 250, 399, 400, 1000, 5000)}
    assert spacing == {0: 1, 3: 1, 4: 1, 9: 2, 60: 10, 100: 25, 250: 50, 399: 50, 400: 100, 1000: 100, 5000: 100}


# --- interruption and --resume ------------------------------------------------------------------------------

RUN = ("--weights", "random", "--content", "photo.png", "--size", 20, "--steps", 10, "--snapshot-every", 2, "--init",
       "noise", "--seed", 3)


def write_photo(folder, seed=0):
    """The content image of RUN (a --content file, so that a test can change it between runs)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (20, 16, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "photo.png")


def copy_interrupted(cwd, tmp_path):
    shutil.copytree(cwd / "interrupted", tmp_path / "o")
    shutil.copy(cwd / "photo.png", tmp_path / "photo.png")
    return tmp_path / "o"


def start(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # a shell's background jobs inherit SIGINT ignored: give the example the default, as in a terminal
    return subprocess.Popen([sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def interrupt_after_first_checkpoint(folder, sig, cwd):
    proc = start(*RUN, "--out", folder, cwd=cwd)
    deadline = time.monotonic() + 240
    while not (cwd / folder / "checkpoint.h5").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.02)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=240)
    return proc.returncode, stderr


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run and the same run interrupted by SIGINT after its first checkpoint."""
    cwd = tmp_path_factory.mktemp("resume")
    write_photo(cwd)
    out = run(*RUN, "--out", "straight", cwd=cwd)
    assert out.returncode == 0, out.stderr
    code, stderr = interrupt_after_first_checkpoint("interrupted", signal.SIGINT, cwd)
    return cwd, code, stderr


def test_ctrl_c_writes_the_outputs_of_the_steps_done(runs):
    cwd, code, stderr = runs
    assert code == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert "interrupted at step" in last and "--resume" in last and "interrupted" in last and "Traceback" not in stderr
    folder = cwd / "interrupted"
    info = json.loads((folder / "run.json").read_text())
    assert info["interrupted"] is True and 2 <= info["step_reached"] < 10
    assert info["step"] == list(range(info["step_reached"] + 1))
    assert len(info["seconds_per_step"]) == info["step_reached"]
    for name in ("final.png", "progress.png", "losses.png", "checkpoint.h5", "step_0002.png"):
        assert (folder / name).is_file(), name
    assert "interrupted at step" in Image.open(folder / "final.png").text["Title"]
    straight = json.loads((cwd / "straight" / "run.json").read_text())
    assert info["loss"] == straight["loss"][: len(info["loss"])]


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    write_photo(tmp_path)
    code, stderr = interrupt_after_first_checkpoint("o", signal.SIGTERM, tmp_path)
    assert code == 130 and "Traceback" not in stderr
    assert json.loads((tmp_path / "o" / "run.json").read_text())["interrupted"] is True


def test_resume_ends_with_the_uninterrupted_image(runs, tmp_path):
    cwd, _, _ = runs
    copy_interrupted(cwd, tmp_path)
    out = run(*RUN, "--resume", "--out", "o", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "resuming from" in out.stdout
    resumed = json.loads((tmp_path / "o" / "run.json").read_text())
    straight = json.loads((cwd / "straight" / "run.json").read_text())
    assert resumed["interrupted"] is False and resumed["step"] == straight["step"]
    assert resumed["loss"] == straight["loss"]  # Adam resumes bit for bit: every loss identical
    for name in ("final.png", "step_0010.png"):
        resumed_png, straight_png = Image.open(tmp_path / "o" / name), Image.open(cwd / "straight" / name)
        assert np.array_equal(np.asarray(resumed_png), np.asarray(straight_png)), name
    assert not (tmp_path / "o" / "checkpoint.h5").exists()


def _unchanged(folder, before):
    return {p.name: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("change, fragment", [
    (("--size", 24), "--size 20, not 24"),
    (("--seed", 4), "--seed 3, not 4"),
    (("--optimizer", "lbfgs"), "--optimizer adam, not lbfgs"),
    (("--style-layers", "block1_conv1"), "--style-layers block1_conv1,block2_conv1"),
])
def test_resume_with_other_settings_is_refused_naming_the_option(runs, tmp_path, change, fragment):
    cwd, _, _ = runs
    copy_interrupted(cwd, tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "o").iterdir()}
    args = list(RUN)
    if change[0] in args:
        args[args.index(change[0]) + 1] = change[1]
    else:
        args += list(change)
    out = run(*args, "--resume", "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, "--resume", "checkpoint.h5", fragment)
    assert _unchanged(tmp_path / "o", before)


def test_resume_with_a_changed_content_image_is_refused(runs, tmp_path):
    cwd, _, _ = runs
    folder = copy_interrupted(cwd, tmp_path)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    write_photo(tmp_path, seed=1)  # same file name, same options, other pixels
    out = run(*RUN, "--resume", "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, "--resume: the content image is not the one", "checkpoint.h5")
    assert _unchanged(folder, before)


@pytest.mark.parametrize("content", [None, b"garbage", "truncated", "other"])
def test_a_missing_or_corrupt_checkpoint_is_refused_and_nothing_is_overwritten(runs, tmp_path, content):
    cwd, _, _ = runs
    folder = copy_interrupted(cwd, tmp_path)
    good = (folder / "checkpoint.h5").read_bytes()
    if content is None:
        (folder / "checkpoint.h5").unlink()
    elif content == "truncated":
        (folder / "checkpoint.h5").write_bytes(good[: len(good) // 2])
    elif content == "other":  # a valid checkpoint of something else
        from minidl import checkpoint
        checkpoint.save(folder / "checkpoint.h5", arrays={"w": np.zeros(3)}, info={"epoch": 2})
    else:
        (folder / "checkpoint.h5").write_bytes(content)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    out = run(*RUN, "--resume", "--out", "o", cwd=tmp_path)
    _assert_one_line_error(out, "--resume", str(Path("o") / "checkpoint.h5"))
    assert out.returncode == 1 and _unchanged(folder, before)


def test_resume_without_any_run_creates_nothing(tmp_path):
    write_photo(tmp_path)
    out = run(*RUN, "--resume", "--out", "empty", cwd=tmp_path)
    _assert_one_line_error(out, "--resume: no checkpoint file", "checkpoint.h5")
    assert not (tmp_path / "empty").exists()
