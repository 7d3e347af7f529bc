"""Pretrained weights for minidl's models: the file format, converters, downloads and the search path.

- ``format.py``: minidl's HDF5 weight file (documented in ``weights/README.md``), read and written checked;
- ``convert.py``: Keras ``.h5`` and torchvision ``.pth`` VGG19 files -> minidl's format;
- ``fetch.py``: download Keras's VGG19 file, verify its md5 and convert it;
- ``paths.py``: where weight files are looked for and stored;
- ``__main__.py``: the command line, ``python -m minidl.weights {fetch,convert,info,where}``.

This package needs h5py (and PyTorch only to read a ``.pth`` file). VGG19's architecture, which every file
is checked against, is defined once in ``minidl/models/architecture.py``.

``minidl.weights.convert`` and ``minidl.weights.fetch`` are the functions (re-exported below); the modules
of the same names are still importable with ``from minidl.weights.fetch import VGG19_FILES`` and the like.
"""
from .convert import convert, detect_format
from .fetch import fetch, imagenet_filename
from .format import (
    FORMAT_VERSION, PREPROCESSING, WeightsFormatError, read_vgg19, vgg19_shapes, write_vgg19,
)
from .paths import find_weights, search_dirs, weights_dir

__all__ = [
    "FORMAT_VERSION", "PREPROCESSING", "WeightsFormatError", "convert", "detect_format", "fetch",
    "find_weights", "imagenet_filename", "read_vgg19", "search_dirs", "vgg19_shapes", "weights_dir",
    "write_vgg19",
]
