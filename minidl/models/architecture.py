"""VGG19's architecture as data: its layers in order, with their sizes, and its input conventions.

The one definition of the network: ``VGG19`` (``vgg.py``) builds its layers from ``vgg19_layers``, and the
weight files (``minidl/weights/``) check every layer against ``vgg19_shapes``. Plain data, importing
nothing from minidl, so that both can import it.
"""
# (number of 3×3 convolutions, output channels) of each of VGG19's five blocks; each block ends with a
# 2×2 pooling of stride 2.
VGG19_BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))
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


def vgg19_layers(include_top=False):
    """[(name, kind, sizes)] of VGG19's layers in order, with Keras's names:

        ("block1_conv1", "conv", (3, 64))   a 3×3 convolution, padding 1, ReLU: (in, out) channels
        ("block1_pool", "pool", None)       a 2×2 pooling, stride 2
        ...                                 up to block5_pool, then with ``include_top``:
        ("flatten", "flatten", None), ("fc1", "dense", (25088, 4096)), ("fc2", ...), ("predictions", ...)
    """
    layers, channels = [], 3
    for b, (convs, width) in enumerate(VGG19_BLOCKS, start=1):
        for i in range(1, convs + 1):
            layers.append((f"block{b}_conv{i}", "conv", (channels, width)))
            channels = width
        layers.append((f"block{b}_pool", "pool", None))
    if include_top:
        layers += [("flatten", "flatten", None)] + [(name, "dense", (n_in, n_out)) for name, n_in, n_out in TOP]
    return layers


def vgg19_layer_names(include_top=False):
    """Names of VGG19's layers in order: block1_conv1, block1_conv2, block1_pool, ..., block5_pool[, top]."""
    return [name for name, _, _ in vgg19_layers(include_top)]


def vgg19_shapes(include_top=False):
    """{layer name: (kernel shape, bias shape)} of the layers with weights, in network order.

    conv kernels are OIHW (out, in, 3, 3); dense kernels are (out, in), the layout of ``nn.Linear.weight``.
    """
    return {name: ((n_out, n_in, 3, 3) if kind == "conv" else (n_out, n_in), (n_out,))
            for name, kind, sizes in vgg19_layers(include_top) if sizes for n_in, n_out in [sizes]}
