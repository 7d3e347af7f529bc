"""MNIST handwritten digits (LeCun, Cortes & Burges): the same IDX files and sizes as Fashion-MNIST.

``load_mnist(split, folder, download=False)`` reads ``folder``'s four files (gzipped or plain, the
names Fashion-MNIST uses too); with ``download=True`` the missing ones are downloaded into ``folder``
and checked against the MD5 of the published ``.gz`` files (the checksums torchvision lists) before
they get their real names. The IDX reading and checks are Fashion-MNIST's (``fashion_mnist._load_pair``).
"""
import hashlib
from pathlib import Path

from ..fileio import DownloadError
from ..fileio import download as fetch
from . import fashion_mnist as fm

# MD5 of the gzipped files as published (the original site and its mirror serve the same bytes).
MD5_GZ = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}

MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]


def load_mnist(split, folder, *, download=False, mirrors=None):
    """``(images, labels)`` of one split, uint8 [N, 28, 28] and int64 [N], from ``folder``."""
    folder = Path(folder)
    names = fm.FILES[fm._check_split(split)]
    paths = [fm._locate(folder, name) for name in names]
    if not all(paths):
        if not download:
            raise FileNotFoundError(f"MNIST {split} files {names} not found in {folder}: pass download=True")
        bases = MIRRORS if mirrors is None else mirrors
        for i, name in enumerate(names):
            if paths[i] is None:
                dest = folder / (name + ".gz")
                paths[i] = fetch([base.rstrip("/") + "/" + name + ".gz" for base in bases], dest,
                                 verify=_md5_checker(name), desc=dest.name)
    return fm._load_pair(*paths)


def _md5_checker(name):
    def verify(tmp_path):
        digest = hashlib.md5(Path(tmp_path).read_bytes()).hexdigest()
        if digest != MD5_GZ[name]:
            raise ValueError(f"MD5 mismatch for {name}.gz: got {digest}, expected {MD5_GZ[name]}")
    return verify


__all__ = ["load_mnist", "DownloadError"]
