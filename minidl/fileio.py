"""Atomic file writing and verified downloads, shared by datasets, weights and the examples.

Every file minidl writes goes first to a temporary name in the destination folder and is renamed into
place only when complete (``os.replace`` is atomic on POSIX and Windows), so an interrupted run, a full
disk or a failed checksum never leaves a half-written file under the real name.
"""
import contextlib
import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from .progress import ProgressBar


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    >>> with atomic_path("model.h5") as tmp:
    ...     write_something(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the permissions open() would
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask():
    mask = os.umask(0)  # the only portable way to read the umask is to set it and put it back
    os.umask(mask)
    return mask


def write_json(obj, path):
    """Write ``obj`` as indented JSON, atomically (metrics, run settings, benchmark results)."""
    import json

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2))
    return Path(path)


class DownloadError(RuntimeError):
    """A download failed (network error, truncated transfer or checksum mismatch)."""


def file_digest(path, algorithm="sha256", chunk_size=1 << 20):
    """Hex digest of a file's bytes, read in chunks so large files need little memory."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            h.update(chunk)
    return h.hexdigest()


def download(urls, dest, *, verify=None, desc=None, timeout=30, chunk_size=1 << 16):
    """Download the first URL of ``urls`` that works to ``dest``, atomically.

    ``verify(tmp_path)`` is called on the complete temporary file and must raise ``ValueError`` if the
    content is wrong (e.g. a checksum mismatch); the file is then deleted and the next mirror is tried.
    A transfer shorter than its ``Content-Length`` counts as failed. Raises ``DownloadError`` naming every
    URL tried and why when none succeeds. Nothing is left at ``dest`` (or beside it) on failure.
    """
    if isinstance(urls, str):
        urls = [urls]
    dest = Path(dest)
    failures = []
    for url in urls:
        try:
            with atomic_path(dest) as tmp:
                _fetch(url, tmp, desc or dest.name, timeout, chunk_size)
                if verify is not None:
                    verify(tmp)
            return dest
        except (OSError, ValueError, http.client.HTTPException) as e:  # URLError/HTTPError/timeouts are OSErrors
            failures.append(f"  {url}: {e}")
    raise DownloadError(f"could not download {dest.name}:\n" + "\n".join(failures))


def _fetch(url, path, desc, timeout, chunk_size):
    with urllib.request.urlopen(url, timeout=timeout) as response, open(path, "wb") as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length else None
        received = 0
        with ProgressBar(total=total, desc=f"downloading {desc}", unit="B") as bar:
            while chunk := response.read(chunk_size):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if total is not None and received != total:
        raise ValueError(f"transfer interrupted: received {received} of {total} bytes")
