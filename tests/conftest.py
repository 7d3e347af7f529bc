"""Shared test set-up: no large file outlives the test that wrote it.

pytest keeps the temporary folders of the last three runs. The weight tests write files with VGG19's real
shapes (80 MB without the classifier, 550 MB with it), so without this one run left ~2.3 GB behind. Large
files are deleted after each test in its ``tmp_path``, and, for the folders of module- and session-scoped
fixtures, when the session ends.
"""
from pathlib import Path

import pytest

LARGE = 1 << 20  # bytes: images, JSON and small HDF5 files stay for inspection, weight files go


def delete_large_files(folder):
    for path in Path(folder).rglob("*"):
        if path.is_file() and not path.is_symlink() and path.stat().st_size > LARGE:
            path.unlink()


@pytest.fixture(autouse=True)
def _no_large_files_left_by_a_test(request):
    # asked for here, before the test runs, so that this fixture is torn down before tmp_path is
    folder = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if folder is not None:
        delete_large_files(folder)


@pytest.fixture(autouse=True, scope="session")
def _no_large_files_left_by_the_session(tmp_path_factory):
    yield
    delete_large_files(tmp_path_factory.getbasetemp())
