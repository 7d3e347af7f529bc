"""The documentation keeps its promises: README.md and docs/*.md, read as a newcomer reads them.

1. Every dotted ``minidl.…`` name in their code (blocks and inline code) works after a bare ``import minidl``.
2. Their Python code blocks run as written, in order, each file's blocks in one fresh folder, except the
   blocks listed in ``NOT_RUN`` (which need something a test cannot have offline) and those in ``SLOW``
   (full-length training, run with ``-m slow``). A block with no import line is a fragment of the text
   around it (a class definition, a call with ``...``): it is compiled, not run. Shell blocks (``bash``) are not run here: they install
   packages or start the example programs, which tests/test_fashion_example.py and the other example tests
   run with their own, smaller arguments.
3. Every picture in docs/ is drawn by docs/make_figures.py, and none is older than the files that draw it
   (docs/figures.json records their hash); with ``-m slow``, drawing them again gives the same pictures.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minidl.datasets import fashion_mnist

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HAVE_DATA = fashion_mnist.find_files("train") is not None and fashion_mnist.find_files("test") is not None

# A Python block containing one of these strings is not run, for the reason given.
NOT_RUN = {
    'vgg19(weights="imagenet")': "needs the 80 MB VGG19 ImageNet weights and the reader's own photo.jpg/painting.jpg",
}
# A Python block containing one of these strings is run only with `-m slow`.
SLOW = {
    "for epoch in range(5):": "trains for 5 full epochs on the 60,000 training images",
}

# Names in the prose that stand for others (`minidl.X`, as `torch.X`), not names to look up.
PLACEHOLDERS = {"minidl.X"}

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`([^`\n]+)`")
NAME = re.compile(r"(?<![\w.])minidl(?:\.[A-Za-z_]\w*)+")


def code_blocks(path):
    """``[(language, code, line number)]`` of the fenced blocks of a markdown file."""
    text = path.read_text()
    return [(m.group(1), m.group(2), text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


def code_text(path):
    """All the code a reader would type: the fenced blocks and the inline `code` spans."""
    text = path.read_text()
    blocks = [code for _, code, _ in code_blocks(path)]
    return "\n".join(blocks + INLINE.findall(FENCE.sub("", text)))


def python_blocks():
    params = []
    for path in DOCS:
        for lang, code, line in code_blocks(path):
            if lang not in ("python", "py"):
                continue
            marks = [pytest.mark.skipif(not HAVE_DATA, reason="needs Fashion-MNIST")] if "fashion" in code else []
            for key, reason in NOT_RUN.items():
                if key in code:
                    marks.append(pytest.mark.skip(reason=f"not runnable offline: {reason}"))
            if any(key in code for key in SLOW):
                marks.append(pytest.mark.slow)
            params.append(pytest.param(path, code, id=f"{path.relative_to(ROOT)}:{line}", marks=marks))
    return params


def test_the_docs_have_code_to_check():
    assert (ROOT / "docs" / "fashion.md").exists()
    assert any(lang == "python" for path in DOCS for lang, _, _ in code_blocks(path))


def test_every_minidl_name_in_the_docs_works_after_import_minidl():
    names = sorted({n.rstrip(".") for path in DOCS for n in NAME.findall(code_text(path))} - PLACEHOLDERS)
    assert "minidl.viz.draw_graph" in names  # the README's own example of the problem
    # A fresh interpreter, so modules imported by other tests cannot hide a missing import.
    check = (
        "import minidl, sys\n"
        "bad = []\n"
        "for name in sys.argv[1:]:\n"
        "    obj = minidl\n"
        "    try:\n"
        "        for part in name.split('.')[1:]:\n"
        "            obj = getattr(obj, part)\n"
        "    except AttributeError as e:\n"
        "        bad.append(f'{name}: {e}')\n"
        "print('\\n'.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", check, *names], capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", "names in the docs that `import minidl` does not provide:\n" + result.stdout


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """One folder per markdown file, shared by its blocks: a reader runs them one after the other."""
    return {path: tmp_path_factory.mktemp(path.stem) for path in DOCS}


@pytest.mark.parametrize("path, code", python_blocks())
def test_python_block_runs_as_written(path, code, folders):
    if not re.search(r"^(import|from) ", code, re.M):
        compile(code, f"{path.name} block", "exec")  # a fragment: it must at least be Python
        return
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=folders[path], timeout=900)
    assert result.returncode == 0, f"{path.name} block failed:\n{code}\n{result.stderr[-3000:]}"


# --- the pictures in docs/ are what the code draws now -----------------------------------------------------

def make_figures():
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "docs" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_committed_picture_is_drawn_by_make_figures():
    drawn = {name for name, *_ in make_figures().FIGURES}
    assert {p.name for p in (ROOT / "docs").glob("*.png")} == drawn


def test_committed_pictures_are_as_new_as_the_code_that_draws_them():
    problems = make_figures().stale()
    assert not problems, "\n".join(problems) + "\nrun: python docs/make_figures.py (and commit docs/)"


def test_a_changed_drawing_or_a_replaced_picture_is_found(tmp_path, monkeypatch):
    import json

    figures = make_figures()
    stamps = json.loads(figures.STAMPS.read_text())
    stamps["graph.png"]["sha256"] = "0" * 64  # as if viz.py had changed since graph.png was drawn
    stamps["im2col.png"]["size"] = [10, 10]   # as if im2col.png had been replaced by another picture
    del stamps["predictions.png"]
    monkeypatch.setattr(figures, "STAMPS", tmp_path / "figures.json")
    figures.STAMPS.write_text(json.dumps(stamps))
    problems = figures.stale()
    assert len(problems) == 3
    assert problems[1] == "docs/graph.png is older than the code that draws it (examples/backprop_walkthrough.py, " \
                          "minidl/viz.py)"
    size = figures.pixel_size(ROOT / "docs" / "im2col.png")
    assert problems[2] == f"docs/im2col.png is {size} pixels, not the [10, 10] recorded"
    assert "predictions.png is not recorded" in problems[0]


@pytest.mark.slow
@pytest.mark.skipif(not HAVE_DATA, reason="predictions.png needs Fashion-MNIST")
def test_make_figures_redraws_the_committed_pictures(tmp_path):
    """The pictures drawn now, pixel by pixel, against those in docs/ (a few labels may differ in the last
    digit on another CPU; a changed layout moves most of the pixels)."""
    from PIL import Image

    figures = make_figures()
    assert figures.main(["--out", str(tmp_path)]) == 0
    for name, *_ in figures.FIGURES:
        with Image.open(ROOT / "docs" / name) as a, Image.open(tmp_path / name) as b:
            assert a.size == b.size, name
            differ = np.any(np.asarray(a.convert("RGB")) != np.asarray(b.convert("RGB")), axis=-1).mean()
        assert differ < 0.01, f"{name}: {100 * differ:.1f}% of the pixels differ; run python docs/make_figures.py"
