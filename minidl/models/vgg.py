"""VGG19 (Simonyan & Zisserman, 2014), the network behind neural style transfer, with Keras's layer names.

Architecture: five blocks of 3×3 convolutions (stride 1, padding 1, so the size is kept), each conv
followed by a ReLU, each block ending with a 2×2 pooling of stride 2 (halving height and width):

    block   convs   channels   output size for a 224×224 input
    1       2       64         112 × 112
    2       2       128         56 × 56
    3       4       256         28 × 28
    4       4       512         14 × 14
    5       4       512          7 × 7        (block5_pool: 512 × 7 × 7 = 25088 numbers)

and optionally the classifier "top": flatten, fc1 (25088 -> 4096, ReLU), fc2 (4096 -> 4096, ReLU),
predictions (4096 -> 1000). Every layer is an attribute named as in Keras (``model.block3_conv1``,
``model.fc2``), so ``model.extract(x, ["block1_conv1", "block4_conv2"])`` reads like the style-transfer
papers (which say relu1_1, relu4_2: the same activations, since a conv layer's output here is after its
ReLU, as in Keras).

Choices, documented because they differ between libraries:
- ``predictions`` returns **logits** (no softmax), unlike Keras's model (which ends in a softmax) and like
  torchvision's: losses such as ``F.cross_entropy`` take logits, and ``F.softmax(model(x), dim=1)`` gives
  Keras's probabilities.
- ``pooling="avg"`` replaces the five max-pooling layers by average pooling (Gatys et al. found it gives
  smoother style-transfer images). This is not Keras's ``pooling`` argument (a global pooling after the
  last block).
- The top only works on 224×224 inputs (fc1 expects block5_pool to be 512 × 7 × 7), as in Keras.
- Input convention: the pretrained weights expect pixels prepared their own way ("caffe" for Keras's,
  "torch" for torchvision's; see ``preprocess``). Random weights (``weights=None``) use "caffe", the
  convention of the weights ``fetch`` downloads, so code written against random weights (loss weights, value
  ranges) behaves the same once the real weights are loaded.
"""
from pathlib import Path

import numpy as np

from .. import functional as F
from .. import nn
from ..autograd import Tensor
from .architecture import PREPROCESSING, TOP_INPUT, vgg19_layers

POOLINGS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}


class VGG19(nn.Module):
    """VGG19 with Keras's layer names; see the module docstring. Usually made with ``vgg19(...)``.

    Attributes besides the layers: ``layer_names`` (in order), ``include_top``, ``pooling``,
    ``preprocessing`` ("caffe" or "torch", the input convention of the loaded weights) and ``weights_file``
    (the file the weights came from, None for random weights).
    """

    def __init__(self, include_top=False, pooling="max", seed=0):
        if pooling not in POOLINGS:
            raise ValueError(f"VGG19: pooling must be one of {sorted(POOLINGS)}, got {pooling!r}")
        self.include_top, self.pooling = bool(include_top), pooling
        layers = vgg19_layers(include_top)
        self.layer_names = tuple(name for name, _, _ in layers)
        self.preprocessing = "caffe"
        self.weights_file = None
        for name, kind, sizes in layers:
            if kind == "conv":  # the ReLU fused into the convolution, as in Keras's VGG19 (one op, not two)
                layer = nn.Conv2d(*sizes, 3, padding=1, activation="relu")
            elif kind == "pool":
                layer = POOLINGS[pooling](2)
            elif kind == "flatten":
                layer = nn.Flatten()
            else:
                layer = nn.Linear(*sizes)
            setattr(self, name, layer)
        if seed is not None:
            self.init_random(seed)

    def init_random(self, seed=0):
        """Glorot-uniform kernels and zero biases, as Keras's ``VGG19(weights=None)``, drawn from a generator
        seeded with ``seed``.

        Glorot's U(-a, a), a = √(6 / (fan_in + fan_out)), gives each ReLU layer's output about half its
        input's variance, so an untrained network's features shrink smoothly with depth. Style transfer with
        it then only blurs and tints the picture (docs/style_transfer.md shows a run); with He-normal kernels,
        which keep the variance through the ReLUs, the same demo turned some pictures into coloured noise.
        """
        rng = np.random.default_rng(seed)
        for name in self.layer_names:
            layer = getattr(self, name)
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                layer.weight.data = nn.init.glorot_uniform(layer.weight.shape, rng=rng)
                layer.bias.data[...] = 0.0
        self.preprocessing, self.weights_file = "caffe", None
        return self

    def load_weights(self, path):
        """Load a minidl VGG19 weight file (see ``weights/README.md``), checking every layer.

        A missing or unexpected layer or a wrong shape raises ``WeightsFormatError`` naming the layer and the
        file, before any parameter is changed. Sets ``preprocessing`` from the file.
        """
        from ..weights.format import read_vgg19  # here, not at the top: the weights package imports models

        path = Path(path)
        return self._set_weights(path, *read_vgg19(path, include_top=self.include_top))

    def _set_weights(self, path, layers, attrs):
        state = {}
        for name, (kernel, bias) in layers.items():
            state[f"{name}.weight"], state[f"{name}.bias"] = kernel, bias
        self.load_state_dict(state, source=f"weight file {path}")
        self.preprocessing, self.weights_file = attrs["preprocessing"], path
        return self

    # --- running the network -----------------------------------------------------------------------
    def forward(self, x):
        """All layers: the block5_pool features, or the 1000 logits with ``include_top``."""
        last = self.layer_names[-1]
        return self.extract(x, [last])[last]

    def extract(self, x, layers):
        """{name: activation} of the layers named in ``layers`` (a name or a list of names) for input x.

        x is a preprocessed (N, 3, H, W) batch (see ``preprocess``). The network is run only up to the
        deepest layer asked for: extracting block1_conv1 costs one convolution, not nineteen. Conv and fc
        outputs are taken after their ReLU, as in Keras.
        """
        names = [layers] if isinstance(layers, str) else list(layers)
        unknown = [n for n in names if n not in self.layer_names]
        if unknown:
            raise ValueError(f"VGG19: unknown layer(s) {unknown}; valid names: {', '.join(self.layer_names)}")
        if not names:
            return {}
        x = self._check_input(x, "extract")
        wanted = set(names)
        deepest = max(self.layer_names.index(n) for n in names)
        found = {}
        for name in self.layer_names[: deepest + 1]:
            x = self._run_layer(name, x)
            if name in wanted:
                found[name] = x
        return {n: found[n] for n in names}

    def _run_layer(self, name, x):
        if name == "flatten" and tuple(x.shape[1:]) != TOP_INPUT:
            raise ValueError(
                f"VGG19: the classifier top needs block5_pool of shape {TOP_INPUT} (a 224×224 input), got "
                f"{tuple(x.shape[1:])}; use include_top=False for other sizes"
            )
        y = getattr(self, name)(x)  # the conv layers apply their ReLU themselves
        if name in ("fc1", "fc2"):
            y = F.relu(y)
        return y

    @staticmethod
    def _check_input(x, where):
        x = x if isinstance(x, Tensor) else Tensor(np.asarray(x, dtype=np.float32))
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG19.{where}: expected images of shape (N, 3, H, W), got {tuple(x.shape)}")
        return x

    # --- input convention --------------------------------------------------------------------------
    def preprocess(self, rgb):
        """RGB images in [0, 1], (N, 3, H, W), -> the network's input, for the loaded weights' convention.

        "caffe" (Keras's weights):  x = 255 · rgb[:, (2, 1, 0)] - mean_bgr,   mean_bgr = (103.939, 116.779, 123.68)
        "torch" (torchvision's):    x = (rgb - mean) / std,   mean = (0.485, 0.456, 0.406), std = (0.229, 0.224, 0.225)

        Takes a NumPy array (returns one) or a Tensor (returns a Tensor in the same graph, so the gradient
        reaches the pixels: style transfer optimises the image in [0, 1] space).
        """
        return self._convert(rgb, inverse=False)

    def deprocess(self, x):
        """The inverse of ``preprocess``: network input -> RGB in [0, 1] (not clipped)."""
        return self._convert(x, inverse=True)

    def _convert(self, images, inverse):
        convention = PREPROCESSING[self.preprocessing]
        as_tensor = isinstance(images, Tensor)
        x = self._check_input(images, "deprocess" if inverse else "preprocess")
        shape = (1, 3, 1, 1)  # per channel, broadcast over the batch and the pixels
        mean = np.asarray(convention["mean"], dtype=np.float32).reshape(shape)
        std = np.asarray(convention["std"], dtype=np.float32).reshape(shape)
        scale = convention["scale"]
        flip = convention["channels"] == "BGR"  # the mean and std are listed in the weights' channel order
        if not inverse:
            if flip:
                x = x[:, ::-1]
            x = (x * scale - mean) / std
        else:
            x = (x * std + mean) / scale
            if flip:
                x = x[:, ::-1]
        return x if as_tensor else x.data

    def extra_repr(self):
        source = self.weights_file or "random (Glorot) weights"
        return f"pooling={self.pooling!r}, preprocessing={self.preprocessing!r}, weights={str(source)!r}"


def vgg19(weights=None, pooling="max", include_top=False, seed=0):
    """Build VGG19 (a ``VGG19`` module) with random or pretrained weights.

    ``weights``:
      - None: random weights as Keras's ``VGG19(weights=None)`` (Glorot-uniform kernels, zero biases), drawn
        with ``seed`` (offline demos, tests; "caffe" preprocessing);
      - "imagenet": the ImageNet weights from the weight search path (``python -m minidl.weights where``),
        put there by ``python -m minidl.weights fetch vgg19`` (add ``--top`` for ``include_top=True``);
        a file with the top also serves ``include_top=False``;
      - a path to a minidl weight file (``python -m minidl.weights convert`` makes one from Keras or
        torchvision files).
    ``pooling``: "max" (the trained network) or "avg" (smoother style transfer). ``include_top``: add
    flatten, fc1, fc2 and predictions (logits; 224×224 inputs only).
    """
    if weights is None:
        return VGG19(include_top, pooling, seed=seed)
    # imported here, not at the top: the weights package imports the architecture from this package
    from ..weights.fetch import imagenet_filename
    from ..weights.format import read_vgg19
    from ..weights.paths import find_weights

    if isinstance(weights, str) and weights == "imagenet":
        names = [imagenet_filename("vgg19", include_top=True)]
        if not include_top:
            names.insert(0, imagenet_filename("vgg19", include_top=False))
        fetch = "python -m minidl.weights fetch vgg19" + (" --top" if include_top else "")
        path = find_weights(names, hint=f"Download the weights with: {fetch}   (or use weights=None for random "
                                        "weights, e.g. for an offline demo)")
    elif isinstance(weights, (str, Path)):
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"VGG19 weight file not found: {path} (weights= takes None, 'imagenet' or "
                                    "the path of a minidl weight file)")
    else:
        raise TypeError(f"vgg19: weights must be None, 'imagenet' or a path, got {type(weights).__name__}")
    # Read (and check) the file before building the model: a bad file fails at once, and no random
    # weights are drawn only to be replaced.
    layers, attrs = read_vgg19(path, include_top=include_top)
    return VGG19(include_top, pooling, seed=None)._set_weights(path, layers, attrs)
