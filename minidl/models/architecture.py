"""VGG's architecture as data: its layers in order, with their sizes, and its input conventions.

The one definition of the networks: ``VGG19`` (``vgg.py``, Keras's layer names) builds its layers from
``vgg19_layers``, the weight files (``minidl/weights/``) check every layer against ``vgg19_shapes``, and
torchvision's ``vgg16``/``vgg19`` (``minidl/vision/models.py``) are built from ``torchvision_layout``. Plain
data, importing nothing from minidl, so that all of them can import it.
"""
# The output channels of VGG's five blocks of 3×3 convolutions, and how many convolutions each block has
# in VGG16 and VGG19 (configurations "D" and "E" of the paper); each block ends with a 2×2 pooling of stride 2.
BLOCK_WIDTHS = (64, 128, 256, 512, 512)
BLOCK_CONVS = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
# block5_pool of a 224×224 image is 512 × 7 × 7 = 25088 numbers; the classifier top only works for that size.
TOP_INPUT = (512, 7, 7)
# The classifier top: (name, inputs, outputs) of its dense layers, after "flatten".
TOP = (("fc1", 512 * 7 * 7, 4096), ("fc2", 4096, 4096), ("predictions", 4096, 1000))
TOP_LAYERS = tuple(name for name, _, _ in TOP)

# How pixels must be prepared for a set of weights (see ``VGG19.preprocess``):
# - "caffe": the VGG authors' Caffe convention kept by Keras: BGR channel order, 0-255, minus the ImageNet
#   mean pixel (per channel, in BGR order), no scaling;
# - "torch": torchvision's convention: RGB in [0, 1], minus mean, divided by std (per channel, RGB order).
PREPROCESSING = {
    "caffe": {"channels": "BGR", "scale": 255.0, "mean": (103.939, 116.779, 123.68), "std": (1.0, 1.0, 1.0)},
    "torch": {"channels": "RGB", "scale": 1.0, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)},
}


def vgg_layers(arch, include_top=False):
    """[(name, kind, sizes)] of the layers of ``arch`` ("vgg16" or "vgg19") in order, with Keras's names:

        ("block1_conv1", "conv", (3, 64))   a 3×3 convolution, padding 1, ReLU: (in, out) channels
        ("block1_pool", "pool", None)       a 2×2 pooling, stride 2
        ...                                 up to block5_pool, then with ``include_top``:
        ("flatten", "flatten", None), ("fc1", "dense", (25088, 4096)), ("fc2", ...), ("predictions", ...)
    """
    if arch not in BLOCK_CONVS:
        raise ValueError(f"unknown VGG {arch!r}: choose one of {', '.join(BLOCK_CONVS)}")
    layers, channels = [], 3
    for b, (convs, width) in enumerate(zip(BLOCK_CONVS[arch], BLOCK_WIDTHS), start=1):
        for i in range(1, convs + 1):
            layers.append((f"block{b}_conv{i}", "conv", (channels, width)))
            channels = width
        layers.append((f"block{b}_pool", "pool", None))
    if include_top:
        layers += [("flatten", "flatten", None)] + [(name, "dense", (n_in, n_out)) for name, n_in, n_out in TOP]
    return layers


def vgg19_layers(include_top=False):
    """``vgg_layers("vgg19", include_top)``: VGG19's layers, the network ``models.VGG19`` builds."""
    return vgg_layers("vgg19", include_top)


def torchvision_layout(arch):
    """torchvision's ``features`` and ``classifier`` of ``arch``: two lists, entry i what sits at index i of
    that ``Sequential``, as (Keras's name or None, kind, sizes):

        features:   ("block1_conv1", "conv", (3, 64)), (None, "relu", None), ..., ("block1_pool", "pool", None), ...
        classifier: ("fc1", "dense", (25088, 4096)), (None, "relu", None), (None, "dropout", None), ("fc2", ...),
                    ..., ("predictions", "dense", (4096, 1000))

    torchvision puts each ReLU in a layer of its own (Keras fuses it into the convolution), and a ReLU and a
    Dropout after fc1 and fc2; its state-dict keys are these indices (``features.0.weight``).
    """
    features = []
    for name, kind, sizes in vgg_layers(arch):
        features.append((name, kind, sizes))
        if kind == "conv":
            features.append((None, "relu", None))
    classifier = []
    for name, n_in, n_out in TOP:
        classifier.append((name, "dense", (n_in, n_out)))
        if name != TOP_LAYERS[-1]:
            classifier += [(None, "relu", None), (None, "dropout", None)]
    return features, classifier


def vgg19_layer_names(include_top=False):
    """Names of VGG19's layers in order: block1_conv1, block1_conv2, block1_pool, ..., block5_pool[, top]."""
    return [name for name, _, _ in vgg19_layers(include_top)]


def vgg19_shapes(include_top=False):
    """{layer name: (kernel shape, bias shape)} of the layers with weights, in network order.

    conv kernels are OIHW (out, in, 3, 3); dense kernels are (out, in), the layout of ``nn.Linear.weight``.
    """
    return {name: ((n_out, n_in, 3, 3) if kind == "conv" else (n_out, n_in), (n_out,))
            for name, kind, sizes in vgg19_layers(include_top) if sizes for n_in, n_out in [sizes]}
