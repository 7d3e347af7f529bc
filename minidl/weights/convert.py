"""Convert published VGG19 weights (Keras ``.h5``, torchvision ``.pth``) to minidl's weight file.

Two things differ between those files and minidl, and both are handled here, once, explicitly:

1. **Kernel layout.** Keras stores a convolution kernel as HWIO, ``(kh, kw, in, out)``, and a dense kernel
   as ``(in, out)`` (it computes ``x @ K``). minidl, like PyTorch, uses OIHW ``(out, in, kh, kw)`` and
   ``(out, in)`` (``nn.Linear`` computes ``x @ W.T``). So conv kernels are transposed with axes
   ``(3, 2, 0, 1)`` and dense kernels with ``.T``. Convolution in all three libraries is cross-correlation
   (no kernel flip), so nothing else changes.

2. **The flatten before ``fc1``.** Keras (channels-last) flattens block5_pool's ``(H, W, C) = (7, 7, 512)``
   activation so that input ``r = (h·W + w)·C + c`` of fc1 is pixel (h, w) of channel c. minidl is NCHW and
   flattens ``(C, H, W)``, so the same value arrives at input ``(c·H + h)·W + w``. Writing ``a`` for the
   activation, fc1 computes

       y_j = Σ_{h,w,c} a[h,w,c] · K[(h·W+w)·C + c, j]   (Keras)
           = Σ_{c,h,w} a[c,h,w] · W[j, (c·H+h)·W + w]   (minidl)

   which holds for every input exactly when ``W[j, (c·H+h)·W+w] = K[(h·W+w)·C+c, j]``, i.e.
   ``W = K.reshape(H, W, C, out).transpose(3, 2, 0, 1).reshape(out, C·H·W)``: the rows of K are
   reordered (and the matrix transposed, as for every dense kernel), never changed. torchvision is NCHW
   already.

The first convolution's input channels are left as they are: Keras's weights expect BGR (they come from the
VGG authors' Caffe models), torchvision's expect RGB. The file records that as ``preprocessing`` ("caffe" or
"torch") and ``VGG19.preprocess`` follows it, so nothing is flipped silently here.
"""
from pathlib import Path

import numpy as np

from ..models.architecture import PREPROCESSING, TOP_INPUT, TOP_LAYERS, torchvision_layout, vgg19_shapes
from .format import WeightsFormatError, is_minidl_file, write_vgg19

KERAS_LICENSE = (
    "CC BY 4.0 (Creative Commons Attribution 4.0 International). Weights released by Karen Simonyan and "
    "Andrew Zisserman, Visual Geometry Group, University of Oxford "
    "(https://www.robots.ox.ac.uk/~vgg/research/very_deep/), ported to Keras by the Keras authors. "
    "Attribution: K. Simonyan, A. Zisserman, 'Very Deep Convolutional Networks for Large-Scale Image "
    "Recognition', arXiv:1409.1556."
)
TORCHVISION_LICENSE = (
    "Not stated by torchvision. These weights were trained by the PyTorch team, not taken from the VGG "
    "authors' release; the maintainers have indicated torchvision's BSD-3-Clause terms apply "
    "(https://github.com/pytorch/vision/issues/160). Check before redistributing."
)

# torchvision's vgg19: `features` is a Sequential where convolutions sit at these indices (0, 2, 5, 7, ...;
# ReLUs and pools in between); `classifier` is Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear.
TORCHVISION_FEATURES = tuple(i for i, (_, kind, _) in enumerate(torchvision_layout("vgg19")[0]) if kind == "conv")

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# the first PyTorch whose torch.load(weights_only=True) refuses pickled code
SAFE_TORCH = (1, 13)


def torchvision_keys():
    """{minidl layer name: torchvision state-dict prefix}, e.g. 'block1_conv1': 'features.0'."""
    return {name: f"{part}.{i}" for part, layers in zip(("features", "classifier"), torchvision_layout("vgg19"))
            for i, (name, _, sizes) in enumerate(layers) if sizes}  # the layers with weights


def detect_format(path):
    """'keras', 'torchvision' or 'minidl' for the file at ``path``; ``WeightsFormatError`` otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with open(path, "rb") as f:
        head = f.read(8)
    if head == HDF5_SIGNATURE:
        import h5py

        with h5py.File(path, "r") as f:
            if is_minidl_file(f):
                return "minidl"
            if f.attrs.get("format") == "minidl checkpoint":
                raise WeightsFormatError(f"{path}: a minidl checkpoint (a run's saved state), not VGG19 weights; "
                                         "convert reads Keras .h5 and torchvision .pth VGG19 files")
            if "module" in f.attrs:  # written by Module.save
                module = f.attrs["module"]
                raise WeightsFormatError(
                    f"{path}: a minidl model file (a {module.decode() if isinstance(module, bytes) else module} "
                    "saved by model.save), not VGG19 weights: load it with minidl.nn.load_model(path); convert "
                    "reads Keras .h5 and torchvision .pth VGG19 files"
                )
            if _keras_root(f) is not None:
                return "keras"
            if "layers" in f:  # Keras 3's `.weights.h5`: layers/<name>/vars/0, ...
                raise WeightsFormatError(
                    f"{path}: looks like a Keras 3 '.weights.h5' file, which is not supported; use the "
                    "legacy Keras .h5 (what `python -m minidl.weights fetch vgg19` downloads)"
                )
        raise WeightsFormatError(f"{path}: an HDF5 file, but neither a Keras weights file (no 'layer_names' "
                                 "attribute at the root or in 'model_weights') nor a minidl one")
    # torch.save writes a zip archive (PyTorch >= 1.6) or, in older versions, a pickle stream (0x80 0x02).
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):
        return "torchvision"
    raise WeightsFormatError(
        f"{path}: unknown weights format (first bytes {head!r}); expected a Keras VGG19 .h5 file or a "
        "torchvision vgg19 .pth state dict"
    )


def convert(src, dest, include_top=None):
    """Convert the VGG19 weights in ``src`` (Keras .h5 or torchvision .pth) to a minidl file ``dest``.

    ``include_top``: None keeps the classifier layers if ``src`` has them, False drops them, True requires
    them. ``dest`` is written atomically: on any error nothing is left under its name. Returns ``dest``.
    """
    src, dest = Path(src), Path(dest)
    fmt = detect_format(src)
    keep_top = include_top is not False
    if fmt == "keras":
        layers = read_keras_vgg19(src, keep_top)
        meta = {"source": f"Keras applications VGG19 ({src.name})", "preprocessing": "caffe",
                "license": KERAS_LICENSE}
    elif fmt == "torchvision":
        layers = read_torchvision_vgg19(src, keep_top)
        meta = {"source": f"torchvision vgg19 ({src.name})", "preprocessing": "torch",
                "license": TORCHVISION_LICENSE}
    else:
        raise WeightsFormatError(f"{src}: is already a minidl weight file; nothing to convert")
    if include_top and "fc1" not in layers:
        raise WeightsFormatError(f"{src}: has no classifier top (fc1, fc2, predictions) to keep")
    assert meta["preprocessing"] in PREPROCESSING
    return write_vgg19(dest, layers, **meta)


# --- Keras ------------------------------------------------------------------------------------------

def keras_conv_kernel_to_oihw(kernel):
    """Keras HWIO ``(kh, kw, in, out)`` -> OIHW ``(out, in, kh, kw)``."""
    return np.ascontiguousarray(np.transpose(kernel, (3, 2, 0, 1)))


def keras_dense_kernel_to_out_in(kernel):
    """Keras ``(in, out)`` (y = x @ K) -> ``(out, in)`` (y = x @ W.T)."""
    return np.ascontiguousarray(np.asarray(kernel).T)


def keras_flatten_kernel_to_chw(kernel, chw=TOP_INPUT):
    """Keras dense kernel fed by a channels-last flatten, ``(H·W·C, out)`` -> minidl ``(out, C·H·W)``.

    See the module docstring for the derivation: the rows are regrouped from (h, w, c) to (c, h, w) order.
    """
    c, h, w = chw
    kernel = np.asarray(kernel)
    if kernel.ndim != 2 or kernel.shape[0] != c * h * w:
        raise ValueError(f"expected a kernel of shape ({c * h * w}, out), got {kernel.shape}")
    n_out = kernel.shape[1]
    # rows (h, w, c) -> (c, h, w) and the output axis first, in a single copy (this matrix is 400 MB)
    k = kernel.reshape(h, w, c, n_out).transpose(3, 2, 0, 1)
    return np.ascontiguousarray(k).reshape(n_out, c * h * w)


def _keras_root(f):
    """The group holding Keras's per-layer groups: the file itself (``save_weights``) or, for a whole
    model saved with ``model.save``, its ``model_weights`` group. None if neither looks like Keras's."""
    if "layer_names" in f.attrs or "layer_names0" in f.attrs:
        return f
    if "model_weights" in f:
        g = f["model_weights"]
        if "layer_names" in g.attrs or "layer_names0" in g.attrs:
            return g
    return None


def _keras_strings(group, name):
    """A list-of-strings attribute as Keras reads it (``load_attributes_from_hdf5_group``).

    Keras splits an attribute that would exceed HDF5's 64 kB object-header limit into ``name0``,
    ``name1``, ...; the values are bytes in files written by h5py < 3 or str in newer ones.
    """
    if name in group.attrs:
        chunks = [group.attrs[name]]
    else:
        chunks, i = [], 0
        while f"{name}{i}" in group.attrs:
            chunks.append(group.attrs[f"{name}{i}"])
            i += 1
    values = []
    for chunk in chunks:
        values.extend(np.atleast_1d(chunk).tolist())
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def read_keras_vgg19(path, keep_top=True):
    """{layer: (kernel, bias)} in minidl's layout from a Keras VGG19 weights file (with or without top).

    Every layer is checked; with ``keep_top=False`` the classifier's arrays (~550 MB) are not read.

    Reads the file the way Keras does: the root attribute ``layer_names`` lists the layers, each layer
    group's ``weight_names`` lists its datasets in order (kernel, then bias). Dataset names vary between
    releases (``block1_conv1_W_1:0`` in the 2016 files, ``block1_conv1/kernel:0`` later, which h5py stores
    as a nested group), which is why they are never guessed.
    """
    import h5py

    path = Path(path)
    with h5py.File(path, "r") as f:
        root = _keras_root(f)
        if root is None:
            raise WeightsFormatError(f"{path}: not a Keras weights file (no 'layer_names' attribute)")
        weighted = {}  # layer name -> list of its datasets, for the layers that have weights
        for name in _keras_strings(root, "layer_names"):
            if name not in root:
                raise WeightsFormatError(f"{path}: layer '{name}' is listed in layer_names but has no group "
                                         f"'{root.name.rstrip('/')}/{name}'")
            group = root[name]
            datasets = []
            for weight_name in _keras_strings(group, "weight_names"):
                if weight_name not in group:
                    raise WeightsFormatError(f"{path}: dataset '{group.name}/{weight_name}' of layer '{name}' "
                                             "is listed in weight_names but missing")
                datasets.append(group[weight_name])
            if datasets:
                weighted[name] = datasets

        include_top = any(name in weighted for name in TOP_LAYERS)
        expected = vgg19_shapes(include_top)
        missing = [n for n in expected if n not in weighted]
        if missing:
            raise WeightsFormatError(f"{path}: missing layer(s) {missing} (layers with weights in the file: "
                                     f"{list(weighted)})")
        unexpected = [n for n in weighted if n not in expected]
        if unexpected:
            raise WeightsFormatError(f"{path}: unexpected layer(s) with weights {unexpected}: not a VGG19 file?")

        layers = {}
        for name, (kernel_shape, bias_shape) in expected.items():
            datasets = weighted[name]
            if len(datasets) != 2:
                raise WeightsFormatError(f"{path}: layer '{name}' has {len(datasets)} weights "
                                         f"{[d.name for d in datasets]}, expected 2 (kernel, bias)")
            kernel, bias = datasets
            conv = len(kernel_shape) == 4
            # the same shapes in Keras's layout: HWIO for convolutions, (in, out) for dense layers
            keras_shape = kernel_shape[2:] + kernel_shape[1::-1] if conv else kernel_shape[::-1]
            if kernel.shape != keras_shape:
                hint = ""
                if conv and kernel.shape == kernel_shape:
                    hint = (" (this is the channels-first layout of the 'th_dim_ordering' files; use the "
                            "'tf_dim_ordering_tf_kernels' file)")
                raise WeightsFormatError(f"{path}: layer '{name}': dataset '{kernel.name}' has shape "
                                         f"{kernel.shape}, expected {keras_shape}{hint}")
            if bias.shape != bias_shape:
                raise WeightsFormatError(f"{path}: layer '{name}': dataset '{bias.name}' has shape "
                                         f"{bias.shape}, expected {bias_shape}")
            if name in TOP_LAYERS and not keep_top:
                continue
            k = kernel[()].astype(np.float32, copy=False)
            if conv:
                k = keras_conv_kernel_to_oihw(k)
            elif name == "fc1":
                k = keras_flatten_kernel_to_chw(k, TOP_INPUT)
            else:
                k = keras_dense_kernel_to_out_in(k)
            layers[name] = (k, bias[()].astype(np.float32, copy=False))
    return layers


# --- torchvision ------------------------------------------------------------------------------------

def _load_torch_state_dict(path):
    try:
        import torch
    except ImportError:
        raise ImportError(f"{path}: reading a torchvision .pth file needs PyTorch, which is not installed "
                          "(pip install torch; the CPU build is enough). minidl itself does not need it.") from None
    if _version(torch.__version__) < SAFE_TORCH:
        # before 1.13 torch.load has no weights_only: it would run whatever code is pickled in the file
        raise WeightsFormatError(
            f"{path}: PyTorch {torch.__version__} cannot read a .pth file safely (its torch.load runs any code "
            f"pickled in the file); install PyTorch {'.'.join(map(str, SAFE_TORCH))} or newer, whose "
            "torch.load(weights_only=True) reads tensors only"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # no arbitrary pickled code
    except Exception as e:  # a corrupt file or a pickled model object rather than a state dict
        raise WeightsFormatError(f"{path}: could not be read as a PyTorch state dict: {e}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # a training checkpoint wrapping the state dict
    if not isinstance(state, dict):
        raise WeightsFormatError(f"{path}: holds a {type(state).__name__}, not a state dict")
    # nn.DataParallel prefixes every key with "module."
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def _version(text):
    """(major, minor) of a version string such as '2.13.0+cpu' or '1.12.1'."""
    major, minor = (text.split("+")[0].split(".") + ["0"])[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def read_torchvision_vgg19(path, keep_top=True):
    """{layer: (kernel, bias)} from a torchvision ``vgg19`` state dict (e.g. ``vgg19-dcbb9e9d.pth``).

    torchvision's layout already is minidl's (OIHW convolutions, (out, in) linear weights, NCHW flatten),
    so this only renames: ``features.0`` -> ``block1_conv1``, ..., ``classifier.6`` -> ``predictions``.
    With ``keep_top=False`` the classifier layers are checked but left out of the result.
    """
    path = Path(path)
    state = _load_torch_state_dict(path)
    prefixes = torchvision_keys()
    include_top = any(f"{prefixes[n]}.weight" in state for n in TOP_LAYERS)
    expected = vgg19_shapes(include_top)
    known = {f"{prefixes[n]}.{p}" for n in expected for p in ("weight", "bias")}
    unexpected = sorted(k for k in state if k not in known)
    if unexpected:
        hint = " (batch-norm buffers: vgg19_bn is not supported)" if any("running_" in k for k in unexpected) else ""
        raise WeightsFormatError(f"{path}: unexpected key(s) {unexpected[:8]}{hint}: not a torchvision vgg19 "
                                 "state dict?")
    layers = {}
    for name, shapes in expected.items():
        arrays = []
        for suffix, shape in zip(("weight", "bias"), shapes):
            key = f"{prefixes[name]}.{suffix}"
            if key not in state:
                raise WeightsFormatError(f"{path}: missing key '{key}' (layer '{name}')")
            value = np.asarray(state[key].detach().cpu().numpy(), dtype=np.float32)  # no copy if float32
            if value.shape != shape:
                raise WeightsFormatError(f"{path}: key '{key}' (layer '{name}') has shape {value.shape}, "
                                         f"expected {shape}")
            arrays.append(np.ascontiguousarray(value))
        if name not in TOP_LAYERS or keep_top:
            layers[name] = tuple(arrays)
    return layers
