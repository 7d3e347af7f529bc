"""``minidl.save(obj, path)`` and ``minidl.load(path)``, as PyTorch spells them, in a format that runs no code.

PyTorch's ``torch.save`` pickles, and unpickling a file can run any code it holds. minidl's files are
NumPy ``.npz`` archives (a zip of ``.npy`` arrays) read with ``allow_pickle=False``:

    __minidl__.npy      the layout: a JSON text (as uint8 bytes) describing ``obj``, with each tensor or
                        array replaced by the name of its entry, e.g.
                        {"dict": [["0.weight", {"array": "a0"}], ...]}
    a0.npy, a1.npy ...  the arrays

``obj`` may be a Tensor, a NumPy array, a number, a string, None, or dicts (string or integer keys),
lists and tuples of them: tensors, state_dicts (``model.state_dict()``, ``optimizer.state_dict()``),
checkpoints as dicts. A whole model (a ``Module``) is written as minidl's model file instead (HDF5,
``nn.saving``), which ``load(path, weights_only=False)`` rebuilds with ``nn.load_model``.

The file is written under a temporary name and renamed when complete. Every refusal names the file.
"""
import json
import zipfile
from pathlib import Path

import numpy as np

from .fileio import atomic_path

LAYOUT = "__minidl__"
FORMAT = "minidl save"
FORMAT_VERSION = 1


class SaveFileError(ValueError):
    """A file is not one ``minidl.save`` wrote, is damaged, or holds what ``load`` was told not to load."""


def save(obj, f):
    """Write ``obj`` (tensors, arrays, numbers, strings and dicts/lists/tuples of them; or a Module) to the
    path ``f``, atomically. Anything else raises ``TypeError`` naming what and where, before writing."""
    from .nn.module import Module

    path = Path(f)
    if isinstance(obj, Module):
        obj.save(path)
        return
    arrays = {}
    layout = _encode(obj, arrays, path, "the object")
    header = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "object": layout})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as out:  # a file object: np.savez would add ".npz" to a name
            np.savez(out, **{LAYOUT: np.frombuffer(header.encode(), dtype=np.uint8)}, **arrays)


def _encode(obj, arrays, path, where):
    from .autograd import Tensor

    if isinstance(obj, Tensor):
        return {"tensor": _store(obj.data, arrays, path, where), "requires_grad": bool(obj.requires_grad)}
    if isinstance(obj, np.ndarray):
        return {"array": _store(obj, arrays, path, where)}
    if isinstance(obj, np.generic):
        return {"scalar": _store(np.asarray(obj), arrays, path, where)}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, (str, int)) or isinstance(k, bool)]
        if bad:
            raise TypeError(f"minidl.save({path}): {where} has a key {bad[0]!r} of type {type(bad[0]).__name__}; "
                            "keys must be strings or integers")
        return {"dict": [[k, _encode(v, arrays, path, f"{where}[{k!r}]")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, arrays, path, f"{where}[{i}]") for i, v in enumerate(obj)]}
    raise TypeError(f"minidl.save({path}): {where} is a {type(obj).__name__}, which minidl does not save (it "
                    "saves tensors, arrays, numbers, strings and dicts/lists/tuples of them, or a whole Module)")


def _store(array, arrays, path, where):
    if array.dtype.kind not in "biufc":
        raise TypeError(f"minidl.save({path}): {where} is an array of {array.dtype}, not of numbers")
    name = f"a{len(arrays)}"
    arrays[name] = array
    return name


def load(f, weights_only=True, map_location=None):
    """What ``save`` wrote to the path ``f``. ``map_location`` may only be the CPU ("cpu" or None).

    A whole model (a minidl model file, HDF5) is refused unless ``weights_only=False``, as PyTorch refuses
    it by default; it is then rebuilt with ``nn.load_model``, each module in the mode (``train``/``eval``)
    it was saved in. A file ``save`` did not write (a PyTorch
    ``.pth``, any other file) is refused without running anything from it.
    """
    from .dtypes import check_device

    if not (map_location is None or callable(map_location) or isinstance(map_location, dict)):
        check_device(map_location)
    path = Path(f)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    import h5py

    if h5py.is_hdf5(path):
        return _load_model(path, weights_only)
    if not zipfile.is_zipfile(path):
        raise SaveFileError(f"{path} is not a file minidl.save wrote (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if LAYOUT + ".npy" not in archive.zip.namelist():
                if any(name.endswith("data.pkl") for name in archive.zip.namelist()):
                    raise SaveFileError(f"{path} is a PyTorch file (pickled); minidl does not unpickle: save "
                                        "the weights with minidl.save, or convert them with PyTorch to NumPy "
                                        "arrays first")
                raise SaveFileError(f"{path} is a zip archive but not a file minidl.save wrote (no layout entry)")
            header = json.loads(archive[LAYOUT].tobytes().decode())
            if header.get("format") != FORMAT:
                raise SaveFileError(f"{path} is not a file minidl.save wrote (format {header.get('format')!r})")
            if int(header.get("format_version", 0)) > FORMAT_VERSION:
                raise SaveFileError(f"{path}: save format {header['format_version']} is newer than this "
                                    f"minidl reads ({FORMAT_VERSION}); update minidl")
            return _decode(header["object"], archive)
    except SaveFileError:
        raise
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise SaveFileError(f"{path} is damaged or not a file minidl.save wrote ({' '.join(str(e).split())})") from None


def _load_model(path, weights_only):
    from .nn.saving import load_model, read_model_file

    if weights_only:
        raise SaveFileError(f"{path} holds a whole model (a minidl model file): load it with "
                            f"minidl.load({str(path)!r}, weights_only=False) or minidl.nn.load_model")
    _, attrs = read_model_file(path)  # refuses checkpoints and weight files, naming them
    model = load_model(path)
    modes = json.loads(attrs.get("training", "{}"))  # train/eval mode of each module, as torch.save pickles it
    for name, m in model.named_modules():
        m.training = modes.get(name, m.training)
    return model


def _decode(node, archive):
    from .autograd import Tensor

    (kind, value), *rest = node.items()
    if kind == "tensor":
        return Tensor(archive[value], requires_grad=bool(dict(rest).get("requires_grad", False)))
    if kind == "array":
        return archive[value]
    if kind == "scalar":
        return archive[value][()]
    if kind == "value":
        return value
    if kind == "dict":
        return {k: _decode(v, archive) for k, v in value}
    if kind == "list":
        return [_decode(v, archive) for v in value]
    if kind == "tuple":
        return tuple(_decode(v, archive) for v in value)
    raise KeyError(f"unknown entry kind {kind!r}")
