"""setup.cfg's version floors are the ones CI tests: .ci/oldest-py*.txt pins them, and README states them.

`.ci/run` runs the whole suite a second time in a virtual environment per file .ci/oldest-pyX.Y.txt (Python
X.Y, those pins as constraints). The file for the oldest Python setup.cfg allows pins every floor exactly;
files for newer Pythons pin the oldest wheels pip serves there, which must still satisfy the floors.
"""
import configparser
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PINS = sorted((ROOT / ".ci").glob("oldest-py*.txt"))


def version(text):
    """``"1.22"`` → ``(1, 22, 0)``: numeric versions compared with the missing parts as zeros."""
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (3 - len(parts))


def floors():
    """``{package: floor}`` of setup.cfg's install_requires and its test extra, plus ``"python"``."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].split() + cfg["options.extras_require"]["test"].split()
    found = {}
    for line in lines:
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)>=([0-9.]+)", line)
        assert m, f"setup.cfg: {line!r} is not 'name>=floor', the form whose floor CI can test"
        found[m.group(1).lower()] = m.group(2)
    m = re.fullmatch(r">=([0-9.]+)", cfg["options"]["python_requires"].strip())
    assert m, f"setup.cfg: python_requires {cfg['options']['python_requires']!r} is not '>=X.Y'"
    found["python"] = m.group(1)
    return found


def pins(path):
    """``{package: version}`` of a constraints file's ``name==version`` lines."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            assert pinned, f"{path.name}: {line!r} is not 'name==version'"
            found[name.strip().lower().replace("_", "-")] = pinned.strip()
    return found


def python_of(path):
    return re.fullmatch(r"oldest-py([0-9.]+)\.txt", path.name).group(1)


def test_the_oldest_python_allowed_has_a_pins_file():
    assert [python_of(p) for p in PINS], "no .ci/oldest-py*.txt: CI would test no floors"
    assert min(map(version, map(python_of, PINS))) == version(floors()["python"]), (
        f"setup.cfg allows Python >= {floors()['python']}, but .ci/ has pins for {[python_of(p) for p in PINS]}")


@pytest.mark.parametrize("path", PINS, ids=[p.name for p in PINS])
def test_the_pins_satisfy_the_floors_and_the_oldest_python_pins_them_exactly(path):
    declared, pinned = floors(), pins(path)
    oldest_python = version(python_of(path)) == version(declared["python"])
    for name, floor in declared.items():
        if name == "python":
            continue
        assert name in pinned, f"{path.name} does not pin {name}, which setup.cfg requires"
        if oldest_python:
            assert version(pinned[name]) == version(floor), (
                f"{path.name} pins {name}=={pinned[name]}, setup.cfg's floor is {name}>={floor}")
        else:
            assert version(pinned[name]) >= version(floor), (
                f"{path.name} pins {name}=={pinned[name]}, below setup.cfg's floor {name}>={floor}")


def test_the_readme_states_the_floors():
    paragraphs = [" ".join(p.split()) for p in (ROOT / "README.md").read_text().split("\n\n")]
    text = next((p for p in paragraphs if "oldest" in p and "Python ≥" in p), None)
    assert text, "README.md has no paragraph on the supported (oldest tested) versions"
    for name, floor in floors().items():
        if name != "pytest":
            assert re.search(rf"(?i){re.escape(name)} ≥ {re.escape(floor)}\b", text), (
                f"README.md's versions paragraph does not say {name} ≥ {floor}: {text}")
