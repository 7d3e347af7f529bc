"""Where weight files live: one search path shared by ``fetch`` (which writes) and the models (which read).

1. ``$MINIDL_WEIGHTS`` if set: the only place used, for reading and writing (explicit beats implicit,
   and tests rely on it to stay away from the real files);
2. otherwise the checkout's ``weights/`` folder (next to the ``minidl`` package) when it exists: files are
   written there if it is writable;
3. otherwise ``~/.cache/minidl/weights`` (e.g. when minidl is pip-installed).
"""
import os
from pathlib import Path

ENV_VAR = "MINIDL_WEIGHTS"


def checkout_dir():
    """The repository's top-level ``weights/`` folder (it may not exist, e.g. for an installed package)."""
    return Path(__file__).resolve().parents[2] / "weights"


def cache_dir():
    return Path.home() / ".cache" / "minidl" / "weights"


def search_dirs():
    """The folders searched for weight files, in order."""
    if os.environ.get(ENV_VAR):
        return [Path(os.environ[ENV_VAR]).expanduser()]
    dirs = [checkout_dir()] if checkout_dir().is_dir() else []
    return dirs + [cache_dir()]


def weights_dir():
    """The folder ``fetch`` writes to (created on demand by the atomic write)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    repo = checkout_dir()
    if repo.is_dir() and os.access(repo, os.W_OK):
        return repo
    return cache_dir()


def find_weights(filenames, hint=""):
    """The first existing file among ``filenames`` in the search path; ``FileNotFoundError`` otherwise.

    ``hint`` is appended to the error message (e.g. the command that downloads the file).
    """
    if isinstance(filenames, str):
        filenames = [filenames]
    for directory in search_dirs():
        for name in filenames:
            if (directory / name).is_file():
                return directory / name
    looked = ", ".join(str(d) for d in search_dirs())
    raise FileNotFoundError(f"weight file {' or '.join(filenames)} not found (looked in: {looked}). {hint}".rstrip())
