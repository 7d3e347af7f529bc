"""The notebooks: committed ones match their sources and were run top to bottom; each runs clean in a
fresh kernel (marked ``notebooks``: ``python -m pytest -m notebooks``, which .ci/run calls)."""
import importlib.util
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ["01_backprop", "02_fashion_mnist", "03_convolution", "04_style_transfer"]


def load_run_all():
    spec = importlib.util.spec_from_file_location("run_all", NOTEBOOKS / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_all = load_run_all()


def test_the_four_notebooks_have_sources_and_committed_notebooks():
    assert list(run_all.sources()) == EXPECTED
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_notebook_is_what_run_all_makes_of_its_source(name):
    assert run_all.check(name) == []


def test_check_finds_a_changed_cell_an_unrun_notebook_and_an_error(tmp_path, monkeypatch):
    """``check`` must be able to fail: on a copy of a committed notebook, change one thing at a time."""
    name = EXPECTED[0]
    original = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{name}.py").write_text((NOTEBOOKS / "src" / f"{name}.py").read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    monkeypatch.setattr(run_all, "SOURCES", src)

    def write(nb):
        (tmp_path / f"{name}.ipynb").write_text(json.dumps(nb), encoding="utf-8")

    write(original)
    assert run_all.check(name) == []

    code = next(c for c in json.loads(json.dumps(original))["cells"] if c["cell_type"] == "code")
    edited = json.loads(json.dumps(original))
    first_code = next(i for i, c in enumerate(edited["cells"]) if c["cell_type"] == "code")
    edited["cells"][first_code]["source"] = "".join(code["source"]) + "\nprint('changed')"
    write(edited)
    assert any(f"cell {first_code} differs" in p for p in run_all.check(name))

    unrun = json.loads(json.dumps(original))
    unrun["cells"][first_code]["execution_count"] = None
    write(unrun)
    assert any("not run top to bottom" in p for p in run_all.check(name))

    failed = json.loads(json.dumps(original))
    failed["cells"][first_code]["outputs"].append({"output_type": "error", "ename": "E", "evalue": "", "traceback": []})
    write(failed)
    assert any("end with an error" in p for p in run_all.check(name))

    (tmp_path / f"{name}.ipynb").unlink()
    assert any("missing" in p for p in run_all.check(name))


def test_parse_cells_splits_code_and_markdown():
    text = "# %% [markdown]\n# # Title\n#\n# text\n\n# %%\nx = 1\n\n\n# %%\n\nprint(x)\n"
    assert run_all.parse_cells(text) == [("markdown", "# Title\n\ntext"), ("code", "x = 1"), ("code", "print(x)")]


def test_committed_notebooks_show_their_pictures_inline():
    """Every notebook has inline images; no cell's output is a progress bar redrawn line after line."""
    for name in EXPECTED:
        nb = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))
        outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
        assert any("image/png" in o.get("data", {}) for o in outputs), name
        streams = ["".join(o["text"]) for o in outputs if o["output_type"] == "stream"]
        assert not any("\r" in text for text in streams), name


@pytest.mark.notebooks
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_clean_in_a_fresh_kernel(name):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = run_all.build(name)
    run_all.execute(nb)  # raises CellExecutionError, with the cell and its traceback, on any error
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
