"""Model files: ``Module.save`` writes them, ``Module.load`` and ``load_model`` read them.

A model file is HDF5:

    /                 attrs: format="minidl model", format_version=1, module=<class name>,
                             architecture=<JSON, only for a Sequential of minidl's own layers>
    /0/weight         one dataset per parameter, at its dotted name with '/' (here: layer 0's weight)
    /0/bias ...

``architecture`` is the layer list with each layer's constructor arguments (``get_config``), e.g.
``{"class": "Sequential", "config": {"layers": [{"class": "Flatten", "config": {}}, {"class": "Linear",
"config": {"in_features": 784, "out_features": 128, "bias": true}}, ...]}}``, as Keras's ``model.save``
records its model's config: ``load_model(path)`` rebuilds the model from the file alone. torchvision's VGG
(``minidl.vision.models``) is recorded the same way, its ``features`` Sequential inside its config. A custom
``Module`` is saved with its weights only; rebuild it in code and call ``model.load(path)``.

A tensor shared by two layers (``Sequential(lin, ReLU(), lin)``) is stored once, under its first name; the
root attribute ``tied`` (JSON, only when something is shared) maps each other name to it, e.g.
``{"2.weight": "0.weight", "2.bias": "0.bias"}``, and ``load_model`` ties the rebuilt layers the same way.
The root attribute ``training`` (JSON) records each module's mode, {"": false, "0": false, ...}:
``minidl.load(path, weights_only=False)`` restores it, as unpickling does in PyTorch; ``load_model``, as
Keras's, returns a model in training mode.
"""
import json
from pathlib import Path

from ..fileio import atomic_path
from . import conv, layers

FORMAT = "minidl model"
FORMAT_VERSION = 1


class ModelFileError(ValueError):
    """A file is not a minidl model file, is damaged, or cannot be rebuilt into a model."""


def layer_classes():
    """{class name: class} of the layers and models ``load_model`` can rebuild."""
    from ..vision.models import VGG  # here, not at the top: minidl.vision imports minidl.nn

    classes = (layers.Linear, layers.ReLU, layers.Sigmoid, layers.Tanh, layers.Flatten, layers.Dropout,
               layers.Softmax, layers.LogSoftmax, layers.Sequential, conv.Conv2d, conv.MaxPool2d, conv.AvgPool2d,
               conv.AdaptiveAvgPool2d, VGG)
    return {cls.__name__: cls for cls in classes}


def architecture(module):
    """{"class", "config"} of ``module`` if ``load_model`` can rebuild it, else None (a custom module)."""
    if type(module) not in layer_classes().values():
        return None
    config = module.get_config()
    return None if config is None else {"class": type(module).__name__, "config": config}


def write_model_file(module, path):
    import h5py

    arch = architecture(module)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["module"] = type(module).__name__
            if arch is not None:
                f.attrs["architecture"] = json.dumps(arch)
            tied = tied_names(module)
            if tied:
                f.attrs["tied"] = json.dumps(tied)
            f.attrs["training"] = json.dumps({name: m.training for name, m in module.named_modules()})
            for name, array in module.state_dict().items():
                f.create_dataset(name.replace(".", "/"), data=array)
    return Path(path)


def tied_names(module):
    """{later name: first name} of every parameter reachable under two names (a layer used twice)."""
    first = {}
    for name, p in module.named_parameters(remove_duplicate=False):
        first.setdefault(id(p), name)
    return {name: first[id(p)] for name, p in module.named_parameters(remove_duplicate=False)
            if first[id(p)] != name}


def read_model_file(path):
    """({dotted name: array}, root attributes) of a model file; clear errors naming the file otherwise.

    Files saved before the format was marked (root attribute ``module`` only) are read too.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such model file: {path}" + (" (it is a folder)" if path.is_dir() else ""))
    if not h5py.is_hdf5(path):
        raise ModelFileError(f"{path} is not a minidl model file (not an HDF5 file; model files are written by "
                             "model.save)")
    state = {}
    try:
        with h5py.File(path, "r") as f:
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
            _check_kind(path, attrs)
            f.visititems(lambda name, obj: state.__setitem__(name.replace("/", "."), obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
    except (OSError, KeyError, RuntimeError) as e:  # truncated or damaged
        raise ModelFileError(f"{path} is damaged or not a minidl model file ({' '.join(str(e).split())})") from None
    return state, attrs


def _check_kind(path, attrs):
    """Refuse the HDF5 files that are not model files, saying what they are when it is known."""
    if attrs.get("format") == "minidl checkpoint":
        raise ModelFileError(f"{path} is a minidl checkpoint, not a model file: read it with minidl.checkpoint.load")
    if "arch" in attrs:
        raise ModelFileError(f"{path} is a {attrs['arch']} weight file, not a model file: load it with "
                             f"minidl.models.{attrs['arch']}(weights=path)")
    if "module" not in attrs:
        raise ModelFileError(f"{path} is an HDF5 file but not a minidl model file (no 'module' attribute; model "
                             "files are written by model.save)")
    if int(attrs.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: model file format {attrs['format_version']} is newer than this minidl "
                             f"reads ({FORMAT_VERSION}); update minidl")


def load_model(path):
    """Rebuild the model saved in ``path`` by ``Sequential.save`` and load its weights (Keras's ``load_model``).

    Works for a ``Sequential`` of minidl's layers (``Linear``, ``Conv2d``, activations, ``Flatten``,
    ``Dropout``, pooling, nested ``Sequential``) and for torchvision's VGG, whose file records the layer
    list. A file of a custom ``Module`` (weights only) raises ``ModelFileError`` saying to build the model in
    code and call ``model.load(path)``; so do files written before the layer list was recorded. The model is returned in
    training mode, as a newly built one would be: call ``.eval()`` before predicting with dropout.
    """
    state, attrs = read_model_file(path)
    if "architecture" not in attrs:
        why = ("was saved by an older minidl, before model files recorded their layers" if "format" not in attrs
               else f"holds the weights of a {attrs['module']}, a model that is not a Sequential of minidl's layers")
        raise ModelFileError(f"{path} {why}: build the model in code and call model.load({str(path)!r})")
    try:
        model = _build(json.loads(attrs["architecture"]), layer_classes())
        _tie(model, json.loads(attrs.get("tied", "{}")))
    except (ValueError, TypeError, KeyError) as e:
        raise ModelFileError(f"{path}: cannot rebuild the model from its layer list: {e}") from None
    return model.load_state_dict(state, source=f"model file {path}")


def _build(arch, classes):
    name, config = arch["class"], dict(arch["config"])
    if name not in classes:
        raise ValueError(f"unknown layer class {name!r} (known: {', '.join(classes)})")
    if name == "Sequential":
        return classes[name](*(_build(layer, classes) for layer in config["layers"]))
    # an argument that is itself a module (VGG's features) is rebuilt first
    return classes[name](**{k: _build(v, classes) if _is_architecture(v) else v for k, v in config.items()})


def _is_architecture(value):
    return isinstance(value, dict) and set(value) == {"class", "config"}


def _tie(model, tied):
    """Make each later name of ``tied`` ({later: first}) the same Parameter as its first name."""
    modules, params = dict(model.named_modules()), dict(model.named_parameters())
    for later, first in tied.items():
        owner, _, attr = later.rpartition(".")
        setattr(modules[owner], attr, params[first])
