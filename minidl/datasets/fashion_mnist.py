"""Fashion-MNIST (Xiao, Rasul & Vollgraf, 2017): 70,000 28×28 grayscale images of clothing, 10 classes.

A drop-in replacement for MNIST digits (same file format, same sizes: 60,000 training and 10,000 test
images) that is harder to classify, so the differences between models are visible.

Where the files are looked for, in order (the first folder that holds *all* files of the requested split,
each either gzipped or plain, wins):

1. ``root``, if given;
2. the folder named by the environment variable ``MINIDL_DATA``: the user chose it, so it must hold the
   files (a ``FileNotFoundError`` names it and the files missing; it is never passed over);
3. the cache, ``~/.cache/minidl/fashion-mnist``;
4. ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu: ``apt-get install dataset-fashion-mnist``).

If none has them and ``download=True`` (the default), the official files are downloaded into the cache
(never into ``root`` or a system folder, so a read-only ``root`` is fine), checked against their published
SHA-256 and only then given their real names.
"""
import hashlib
import os
from pathlib import Path

import numpy as np

from ..fileio import DownloadError, download
from .idx import DatasetError, read_bytes, read_idx

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)

# split -> (images file, labels file), names as published (each also accepted with a ".gz" suffix).
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

# SHA-256 of the *decompressed* files: mirrors may recompress (different .gz bytes, same content).
SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}

# Base URLs tried in order; "<base><name>.gz" is fetched. Tests replace this list with a local server.
MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
]

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # installed by the Debian package

IMAGES_MAGIC = 0x00000803  # uint8, 3-D
LABELS_MAGIC = 0x00000801  # uint8, 1-D
NUM_CLASSES = len(FASHION_MNIST_CLASSES)

OFFLINE_HINT = (
    "To use Fashion-MNIST without a network connection, either install the Debian/Ubuntu package "
    f"(`apt-get install dataset-fashion-mnist`, which puts the files in {SYSTEM_DIR}), or put the four files "
    "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, "
    "gzipped or not) in a folder and set the environment variable MINIDL_DATA to it, or pass root=<folder>."
)


def cache_dir():
    """``~/.cache/minidl/fashion-mnist`` (computed at each call so a changed ``$HOME`` is respected)."""
    return Path.home() / ".cache" / "minidl" / "fashion-mnist"


def search_dirs(root=None):
    """The folders searched for the files, in order (see the module docstring)."""
    dirs = []
    if root is not None:
        dirs.append(Path(root).expanduser())
    if _env_dir() is not None:
        dirs.append(_env_dir())
    dirs += [cache_dir(), Path(SYSTEM_DIR)]
    return dirs


def _env_dir():
    env = os.environ.get("MINIDL_DATA")
    return Path(env).expanduser() if env else None  # unset or empty: not searched


def _locate(folder, name):
    """``folder/name`` or ``folder/name.gz``, whichever exists (plain first: no decompression), else None."""
    for candidate in (folder / name, folder / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def files_in(folder, split):
    """Paths (images, labels) of ``split`` in ``folder``, plain or .gz, each None where that file is missing."""
    return tuple(_locate(Path(folder), name) for name in FILES[_check_split(split)])


def find_files(split="train", root=None):
    """Paths (images, labels) of the first searched folder holding both files of ``split``, or None.

    A ``MINIDL_DATA`` folder reached without them raises ``FileNotFoundError`` naming it and the files."""
    for folder in search_dirs(root):
        paths = files_in(folder, split)
        if all(paths):
            return paths
        if folder == _env_dir():
            where = f"{folder} does not hold" if folder.is_dir() else f"there is no folder {folder} to hold"
            missing = [name for name, path in zip(FILES[split], paths) if path is None]
            raise FileNotFoundError(f"MINIDL_DATA={os.environ['MINIDL_DATA']}: {where} the Fashion-MNIST {split} "
                                    f"file(s) {', '.join(missing)} (plain or .gz); put them there, or unset "
                                    "MINIDL_DATA")
    return None


def load_fashion_mnist(split="train", root=None, *, download=True, mirrors=None):
    """Load one split of Fashion-MNIST as NumPy arrays.

    Args:
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000 images).
        root: a folder searched before all others (see the module docstring for the search order).
        download: if the files are found nowhere, download them into ``~/.cache/minidl/fashion-mnist``.
            Like torchvision's ``download=True``, except that the files go to the cache, not to ``root``.
        mirrors: base URLs to download from, in order (default: the module-level ``MIRRORS``).

    Returns:
        ``(images, labels)``: ``images`` uint8 of shape [N, 28, 28] (0 = background, 255 = ink) and
        ``labels`` int64 of shape [N] with values in 0..9; ``FASHION_MNIST_CLASSES[label]`` is the name.

    Raises:
        DatasetError: a file found is corrupt (bad gzip, wrong magic number, size not matching its header,
            labels out of range, images and labels of different counts). Never skipped silently.
        FileNotFoundError: the files are nowhere and ``download=False``, or the ``MINIDL_DATA`` folder
            lacks them.
        DownloadError: the download failed (every mirror down, or content not matching its checksum).

    >>> images, labels = load_fashion_mnist("test")
    >>> images.shape, labels.shape, FASHION_MNIST_CLASSES[labels[0]]
    ((10000, 28, 28), (10000,), 'Ankle boot')
    """
    paths = find_files(split, root)
    if paths is None:
        if not download:
            searched = "\n".join(f"  {d}" for d in search_dirs(root))
            raise FileNotFoundError(
                f"Fashion-MNIST {split} files {FILES[split]} not found in any of:\n{searched}\n{OFFLINE_HINT}"
            )
        paths = _download(split, MIRRORS if mirrors is None else mirrors)
    return _load_pair(*paths)


def _check_split(split):
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def _load_pair(images_path, labels_path):
    images = read_idx(images_path, magic=IMAGES_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DatasetError(f"{images_path}: images are {images.shape[1]}×{images.shape[2]}, expected 28×28")
    labels = read_idx(labels_path, magic=LABELS_MAGIC)
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels"
        )
    if labels.size and labels.max() >= NUM_CLASSES:  # uint8, so never negative
        bad = int(np.argmax(labels >= NUM_CLASSES))
        raise DatasetError(
            f"{labels_path}: label {labels[bad]} at index {bad} is out of range 0..{NUM_CLASSES - 1}"
        )
    return images, labels.astype(np.int64)


def _download(split, mirrors):
    """Download the missing files of ``split`` into the cache; return their paths (images, labels)."""
    folder = cache_dir()
    paths = []
    for name in FILES[split]:
        existing = _locate(folder, name)  # e.g. images downloaded by an earlier, interrupted call
        if existing is not None:
            paths.append(existing)
            continue
        dest = folder / (name + ".gz")
        urls = [base.rstrip("/") + "/" + name + ".gz" for base in mirrors]
        if not urls:
            raise DownloadError(f"could not download {dest.name}: no mirrors given\n{OFFLINE_HINT}")
        try:
            download(urls, dest, verify=_sha256_checker(name), desc=dest.name)
        except DownloadError as e:
            raise DownloadError(f"{e}\n{OFFLINE_HINT}") from None
        paths.append(dest)
    return tuple(paths)


def _sha256_checker(name):
    """A ``verify`` callback for ``fileio.download``: the hash of the decompressed bytes must match.

    The temporary file's name ends in ".part", so gzip is requested explicitly; a truncated gzip raises
    DatasetError, a ValueError, which ``download`` treats as "this mirror failed".
    """
    def verify(tmp_path):
        digest = hashlib.sha256(read_bytes(tmp_path, gzipped=True)).hexdigest()
        if digest != SHA256[name]:
            raise ValueError(f"SHA-256 mismatch for {name}: got {digest}, expected {SHA256[name]}")
    return verify
