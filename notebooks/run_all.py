"""Build the notebooks from their sources and run each in a fresh kernel, saving it with its outputs.

    python notebooks/run_all.py                      # all four: build, run, write notebooks/NN_name.ipynb
    python notebooks/run_all.py 01_backprop          # just that one
    python notebooks/run_all.py --check              # only compare the committed notebooks with their sources

A notebook's source is ``notebooks/src/NN_name.py``, a plain Python file split into cells by ``# %%``
lines (``# %% [markdown]`` starts a text cell, its lines written as ``# `` comments): the code a notebook
runs is reviewed and diffed as Python, and the ``.ipynb`` next to this script is always what this command
made of it. ``tests/test_notebooks.py`` fails when a committed notebook's cells differ from its source, and
(marked ``notebooks``) runs every notebook and fails on any error.

Running needs the ``notebooks`` extra: ``pip install -e ".[notebooks]"``. The kernel imports minidl from
this checkout (its folder is put first on ``PYTHONPATH``) and runs in ``notebooks/``.
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
ROOT = HERE.parent
TIMEOUT = 900  # seconds per cell: far above the longest one (the training runs), to stop only a hang
# The README's picture: the last image notebook 02 shows (a test image through the CNN's convolutions).
README_FIGURE = ("02_fashion_mnist", HERE / "feature_maps.png")


def sources():
    """The notebook sources, in reading order: ``{name: path}`` for every ``src/NN_name.py``."""
    return {p.stem: p for p in sorted(SOURCES.glob("[0-9][0-9]_*.py"))}


def parse_cells(text):
    """[(kind, source)] from a ``# %%`` file: kind "code" or "markdown"; leading and trailing blank lines
    of each cell dropped, markdown lines stripped of their ``# `` prefix."""
    cells, kind, lines = [], None, []

    def flush():
        while lines and not lines[0].strip():
            lines.pop(0)
        while lines and not lines[-1].strip():
            lines.pop()
        if kind is not None and lines:
            if kind == "markdown":
                lines[:] = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
            cells.append((kind, "\n".join(lines)))

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind, lines = ("markdown" if "[markdown]" in line else "code"), []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def build(name):
    """The notebook (an ``nbformat`` node) of source ``name``, without outputs."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in parse_cells(sources()[name].read_text(encoding="utf-8")):
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(make(source))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids: a rebuilt notebook differs only where its content does
    return nb


def execute(nb, timeout=TIMEOUT):
    """Run every cell of ``nb`` in a fresh kernel started in ``notebooks/``; raises nbclient's
    ``CellExecutionError`` on the first cell that fails. Returns ``nb``, now with its outputs."""
    from nbclient import NotebookClient

    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env_path]))
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(HERE)}}).execute()
    finally:
        os.environ["PYTHONPATH"] = env_path
        if not env_path:
            del os.environ["PYTHONPATH"]
    return nb


def last_image(nb):
    """The bytes of the last PNG among the outputs of ``nb`` (a notebook as JSON or nbformat node)."""
    import base64

    pngs = [o["data"]["image/png"] for c in nb["cells"] for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    return base64.b64decode(pngs[-1]) if pngs else None


def committed_cells(name):
    """[(kind, source)] of the committed ``name.ipynb`` (read as JSON: no Jupyter package needed)."""
    nb = json.loads((HERE / f"{name}.ipynb").read_text(encoding="utf-8"))
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in nb["cells"]]


def check(name):
    """What is wrong with the committed notebook ``name`` (a list of sentences; empty when it is fresh)."""
    path = HERE / f"{name}.ipynb"
    if not path.is_file():
        return [f"{path.name} is missing: run python notebooks/run_all.py {name}"]
    want = parse_cells(sources()[name].read_text(encoding="utf-8"))
    have = committed_cells(name)
    problems = []
    if have != want:
        diff = next((i for i, (a, b) in enumerate(zip(have, want)) if a != b), min(len(have), len(want)))
        problems.append(f"{path.name}: cell {diff} differs from src/{name}.py ({len(have)} cells committed, "
                        f"{len(want)} in the source): run python notebooks/run_all.py {name}")
    nb = json.loads(path.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        problems.append(f"{path.name}: not run top to bottom in one kernel (execution counts {counts})")
    errors = [i for i, c in enumerate(nb["cells"]) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        problems.append(f"{path.name}: cell(s) {errors} end with an error")
    figure = README_FIGURE[1]
    if name == README_FIGURE[0] and (not figure.is_file() or figure.read_bytes() != last_image(nb)):
        problems.append(f"{figure.relative_to(ROOT)} is not the last picture of {path.name}: run "
                        f"python notebooks/run_all.py {name}")
    return problems


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", help="notebooks to run (default: all), e.g. 01_backprop")
    p.add_argument("--check", action="store_true", help="only check the committed notebooks against their sources")
    args = p.parse_args(argv)
    known = sources()
    unknown = [n for n in args.names if n not in known]
    if unknown:
        p.error(f"unknown notebook(s) {', '.join(unknown)}; the sources are: {', '.join(known)}")
    names = args.names or list(known)
    if args.check:
        problems = [line for name in names for line in check(name)]
        print("\n".join(problems) or f"{len(names)} notebook(s) match their sources")
        return 1 if problems else 0

    import nbformat
    from nbclient.exceptions import CellExecutionError

    sys.path.insert(0, str(ROOT))
    from minidl.fileio import atomic_path

    for name in names:
        start = time.perf_counter()
        nb = build(name)
        try:
            execute(nb)
        except CellExecutionError as e:
            print(f"{name}: a cell failed, the notebook was not written:\n{e}", file=sys.stderr)
            return 1
        with atomic_path(HERE / f"{name}.ipynb") as tmp:
            nbformat.write(nb, str(tmp))
        print(f"{name}.ipynb: ran in {time.perf_counter() - start:.0f} s", flush=True)
        if name == README_FIGURE[0]:
            with atomic_path(README_FIGURE[1]) as tmp:
                Path(tmp).write_bytes(last_image(nb))
    return 0


if __name__ == "__main__":
    sys.exit(main())
