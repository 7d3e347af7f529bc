"""minidl's VGG19 weight file: what it contains, how to write it and how to read it back (checked).

The file is HDF5 (read with ``h5py``), documented in ``weights/README.md``:

    /                       attrs: arch="vgg19", format_version=1, preprocessing="caffe"|"torch",
                                   source=<where the numbers came from>, license=<their license>
    /block1_conv1/kernel    float32 (64, 3, 3, 3)   OIHW: (out channels, in channels, kh, kw)
    /block1_conv1/bias      float32 (64,)
    ...                     one group per layer, Keras's layer names
    /block5_conv4/...
    /fc1/kernel             float32 (4096, 25088)   (out, in) like nn.Linear.weight; the 25088 inputs are
    /fc1/bias               float32 (4096,)          block5_pool flattened in minidl's (C, H, W) order
    /fc2/...  /predictions/...                       only in files "with top"

Every reader goes through ``read_vgg19``, which checks every layer against ``vgg19_shapes`` (the network's
shapes, defined once in ``minidl/models/architecture.py``), so a wrong file fails loudly with the layer and
the file named, instead of producing garbage activations.
"""
from pathlib import Path

import numpy as np

from ..fileio import atomic_path
from ..models.architecture import PREPROCESSING, TOP_LAYERS, vgg19_shapes

FORMAT_VERSION = 1
ARCH = "vgg19"
REQUIRED_ATTRS = ("arch", "format_version", "preprocessing", "source", "license")


class WeightsFormatError(ValueError):
    """A weight file does not have the content expected (missing layer, wrong shape, unknown format)."""


def write_vgg19(path, layers, *, source, preprocessing, license):
    """Write ``layers`` ({name: (kernel, bias)}, minidl layout) to ``path`` atomically, after checking them.

    The layer set must be exactly the 16 convolutions, or those plus the three top layers. Returns the path.
    """
    path = Path(path)
    if preprocessing not in PREPROCESSING:
        raise ValueError(f"preprocessing must be one of {sorted(PREPROCESSING)}, got {preprocessing!r}")
    include_top = any(name in layers for name in TOP_LAYERS)
    _check_layers({name: (np.shape(k), np.shape(b)) for name, (k, b) in layers.items()},
                  vgg19_shapes(include_top), where=f"weights for {path}")
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["arch"] = ARCH
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["preprocessing"] = preprocessing
            f.attrs["source"] = str(source)
            f.attrs["license"] = str(license)
            for name in vgg19_shapes(include_top):  # network order, so h5dump/`info` read naturally
                kernel, bias = layers[name]
                g = f.create_group(name)
                g.create_dataset("kernel", data=np.ascontiguousarray(kernel, dtype=np.float32))
                g.create_dataset("bias", data=np.ascontiguousarray(bias, dtype=np.float32))
    return path


def is_minidl_file(h5file):
    """True if an open ``h5py.File`` looks like a minidl weight file (has the ``arch`` and version attrs)."""
    return "arch" in h5file.attrs and "format_version" in h5file.attrs


def read_vgg19(path, include_top=False):
    """Read a minidl VGG19 weight file: ``({name: (kernel, bias)}, attrs)``, every layer checked.

    ``include_top=False`` reads the 16 convolutions only (a file with top serves a model without one);
    ``include_top=True`` needs a file written with the top. Raises ``FileNotFoundError`` or
    ``WeightsFormatError`` naming the file and the layer at fault.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    if not h5py.is_hdf5(path):
        raise WeightsFormatError(f"{path}: not an HDF5 file, so not a minidl weight file")
    with h5py.File(path, "r") as f:
        attrs = {k: _plain(v) for k, v in f.attrs.items()}
        if not is_minidl_file(f):
            raise WeightsFormatError(
                f"{path}: not a minidl weight file (no 'arch'/'format_version' attributes). If it is a Keras "
                f"or torchvision file, convert it first: python -m minidl.weights convert {path} OUT.h5"
            )
        missing_attrs = [a for a in REQUIRED_ATTRS if a not in attrs]
        if missing_attrs:
            raise WeightsFormatError(f"{path}: missing root attribute(s) {missing_attrs}")
        if attrs["arch"] != ARCH:
            raise WeightsFormatError(f"{path}: holds weights for arch={attrs['arch']!r}, not {ARCH!r}")
        if int(attrs["format_version"]) > FORMAT_VERSION:
            raise WeightsFormatError(
                f"{path}: format_version {attrs['format_version']} is newer than this minidl reads "
                f"({FORMAT_VERSION}); update minidl"
            )
        if attrs["preprocessing"] not in PREPROCESSING:
            raise WeightsFormatError(
                f"{path}: unknown preprocessing {attrs['preprocessing']!r} (known: {sorted(PREPROCESSING)})"
            )
        has_top = any(name in f for name in TOP_LAYERS)
        if include_top and not has_top:
            raise WeightsFormatError(
                f"{path}: has no classifier top (fc1, fc2, predictions), but include_top=True was asked. "
                "Use include_top=False, or get the weights with the top: python -m minidl.weights fetch vgg19 --top"
            )
        found = {}
        for name, obj in f.items():
            if not isinstance(obj, h5py.Group) or "kernel" not in obj or "bias" not in obj:
                raise WeightsFormatError(f"{path}: layer '{name}' must be a group holding 'kernel' and 'bias'")
            found[name] = (obj["kernel"].shape, obj["bias"].shape)
        _check_layers(found, vgg19_shapes(has_top), where=str(path))
        wanted = vgg19_shapes(include_top)
        layers = {name: (f[name]["kernel"][()], f[name]["bias"][()]) for name in wanted}
    attrs["include_top"] = has_top
    return layers, attrs


def describe(path):
    """A short human-readable summary of a minidl weight file (used by ``python -m minidl.weights info``)."""
    import h5py

    layers, attrs = read_vgg19(path, include_top=False)
    lines = [f"{path}"]
    lines += [f"  {k}: {attrs[k]}" for k in REQUIRED_ATTRS]
    with h5py.File(path, "r") as f:
        for name in vgg19_shapes(attrs["include_top"]):
            lines.append(f"  {name:14s} kernel {str(f[name]['kernel'].shape):18s} bias {f[name]['bias'].shape}")
    return "\n".join(lines)


def _check_layers(found, expected, where):
    """Compare {name: (kernel shape, bias shape)} with the expected ones; raise naming the first problem."""
    missing = [n for n in expected if n not in found]
    if missing:
        raise WeightsFormatError(f"{where}: missing layer(s) {missing}")
    unexpected = [n for n in found if n not in expected]
    if unexpected:
        raise WeightsFormatError(f"{where}: unexpected layer(s) {unexpected} (VGG19 has {list(expected)})")
    for name, (k_shape, b_shape) in expected.items():
        got_k, got_b = (tuple(s) for s in found[name])
        if got_k != k_shape:
            raise WeightsFormatError(f"{where}: layer '{name}' kernel has shape {got_k}, expected {k_shape}")
        if got_b != b_shape:
            raise WeightsFormatError(f"{where}: layer '{name}' bias has shape {got_b}, expected {b_shape}")


def _plain(value):
    """HDF5 attributes as plain Python values (bytes -> str, NumPy scalars -> Python numbers)."""
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.generic):
        return value.item()
    return value
