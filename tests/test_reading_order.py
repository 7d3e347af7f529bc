"""The README's "Reading order" keeps its promise: ten questions, each answered in at most 80 lines.

Each row of its table names the functions and classes to read, as ``path:first-last`` and the object's
name (``A`` alone, or ``A`` to ``B`` for a run of consecutive definitions). This test finds each named
object with ``ast`` and fails when it moved (the range no longer starts and ends where the object does),
when a question's lines no longer add up to the number its row states, or when one grew past the budget.

After moving code, ``python tests/test_reading_order.py --fix`` rewrites the ranges and the counts in
README.md from the source (the names, the questions and the budget stay as written).
"""
import ast
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BUDGET = 80  # lines per question
QUESTIONS = 10

ENTRY = re.compile(r"\[`(?P<path>[\w/.]+\.py):(?P<first>\d+)-(?P<last>\d+)`\]\((?P<link>[^)]*)\) "
                   r"`(?P<start>[\w.]+)`(?: to `(?P<end>[\w.]+)`)?")
ROW = re.compile(r"^\| (?P<question>[^|]+\?) \| (?P<entries>.+) \| (?P<lines>\d+) \|$", re.M)


def reading_order_section(text):
    start = text.index("## Reading order")
    end = text.index("\n## ", start + 1)
    return start, end


def rows(text):
    start, end = reading_order_section(text)
    return list(ROW.finditer(text, start, end))


def object_lines(path, qualified_name):
    """(first, last) line of a class or function (``Class.method`` for a method), decorators included."""
    node = ast.parse((ROOT / path).read_text())
    for part in qualified_name.split("."):
        found = [n for n in ast.iter_child_nodes(node)
                 if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name == part]
        if not found:
            raise LookupError(f"README's reading order names {qualified_name} in {path}, which has no such "
                              "class or function")
        node = found[0]
    return min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno


def true_range(entry):
    first, _ = object_lines(entry["path"], entry["start"])
    _, last = object_lines(entry["path"], entry["end"] or entry["start"])
    return first, last


def problems(text):
    """What is wrong with the reading order of README text ``text``: one line per problem."""
    found, out = rows(text), []
    if len(found) != QUESTIONS:
        out.append(f"README's reading order lists {len(found)} questions, not {QUESTIONS}")
    for row in found:
        question, total = row["question"], 0
        entries = list(ENTRY.finditer(row["entries"]))
        if not entries:
            out.append(f"{question}: no `path:first-last` entry")
        for e in entries:
            where = f"{question} {e['path']} {e['start']}"
            try:
                first, last = true_range(e)
            except LookupError as error:
                out.append(f"{where}: {error}")
                continue
            if (int(e["first"]), int(e["last"])) != (first, last):
                out.append(f"{where}: README says lines {e['first']}-{e['last']}, the source has {first}-{last}")
            if e["link"] != f"{e['path']}#L{first}-L{last}":
                out.append(f"{where}: the link {e['link']} is stale")
            total += last - first + 1
        if int(row["lines"]) != total:
            out.append(f"{question}: README says {row['lines']} lines, the ranges add up to {total}")
        if total > BUDGET:
            out.append(f"{question}: {total} lines, over the budget of {BUDGET}")
    return out


def test_ten_questions_each_within_its_budget_at_the_lines_the_readme_names():
    found = problems(README.read_text())
    assert not found, "\n".join(found + ["(after moving code: python tests/test_reading_order.py --fix)"])


def test_a_moved_renamed_or_grown_entry_is_caught():
    text = README.read_text()
    row = rows(text)[0]
    e = next(ENTRY.finditer(row["entries"]))
    moved = text.replace(e.group(0), e.group(0).replace(f":{e['first']}-", f":{int(e['first']) + 1}-", 1), 1)
    assert any("README says lines" in p for p in problems(moved))
    renamed = text.replace(f"`{e['start']}`", f"`{e['start']}_gone`", 1)
    assert any("no such class or function" in p for p in problems(renamed))
    recounted = text.replace(row.group(0), row.group(0).replace(f"| {row['lines']} |", f"| {BUDGET + 1} |"), 1)
    assert any("ranges add up to" in p for p in problems(recounted))
    assert any("not 10" in p for p in problems(text.replace(row.group(0), "")))


def test_lines_include_decorators_and_a_method_is_found_in_its_class(tmp_path, monkeypatch):
    source = "class A:\n    def f(self):\n        pass\n\n    @property\n    def g(self):\n" + "        x = 1\n" * 90
    (tmp_path / "m.py").write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert object_lines("m.py", "A.f") == (2, 3)
    assert object_lines("m.py", "A.g") == (5, 96)  # the decorator's line counts
    with pytest.raises(LookupError):
        object_lines("m.py", "f")  # a method is not a module-level function


def fix(text):
    """The README text with every range, link and count recomputed from the source."""
    start, end = reading_order_section(text)

    def fix_entry(e):
        first, last = true_range(e)
        name = f"`{e['start']}`" + (f" to `{e['end']}`" if e["end"] else "")
        return f"[`{e['path']}:{first}-{last}`]({e['path']}#L{first}-L{last}) {name}"

    def fix_row(row):
        entries = ENTRY.sub(fix_entry, row["entries"])
        total = sum(b - a + 1 for a, b in (true_range(e) for e in ENTRY.finditer(entries)))
        return f"| {row['question']} | {entries} | {total} |"

    return text[:start] + ROW.sub(fix_row, text[start:end]) + text[end:]


if __name__ == "__main__":
    if sys.argv[1:] != ["--fix"]:
        sys.exit("usage: python tests/test_reading_order.py --fix")
    README.write_text(fix(README.read_text()))
    print(f"rewrote the reading-order ranges in {README}")
