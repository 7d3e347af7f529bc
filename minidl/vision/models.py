"""torchvision's ``vgg16`` and ``vgg19`` (``torchvision.models`` under ``minidl.as_torch``), random weights only.

The same modules, attribute names and state-dict keys as torchvision's, so a torchvision-layout state dict
loads into them and a program written for torchvision runs unchanged:

    features     Sequential: per block, Conv2d(3×3, padding 1) and ReLU per convolution, then MaxPool2d(2, 2)
                 (features.0 is Conv2d(3, 64), features.1 its ReLU, ...; VGG16 has 31 entries, VGG19 37)
    avgpool      AdaptiveAvgPool2d((7, 7)): 512 × 7 × 7 for any input size (a 224×224 image gives 7×7
                 already; a 32×32 one gives 1×1, repeated 7×7 times)
    classifier   Sequential: Linear(25088, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU, Dropout,
                 Linear(4096, num_classes)

The layer sizes come from ``minidl/models/architecture.py``, the one definition of VGG, which also gives
``minidl.models.vgg19`` (Keras's layer names, fused conv+ReLU, pretrained weights) its layers.

Weights start as torchvision starts them: convolutions N(0, 2 / fan_out) (kaiming normal, mode "fan_out",
for a ReLU), linear layers N(0, 0.01²), biases 0. ImageNet weights cannot be had here: minidl downloads
nothing from torchvision, so ``weights=...`` (a name such as "IMAGENET1K_V1", or ``VGG16_Weights.DEFAULT``)
or ``pretrained=True`` raise one line saying what to do instead.
"""
from enum import Enum

from .. import nn
from ..models.architecture import torchvision_layout

__all__ = ["VGG", "VGG16_Weights", "VGG19_Weights", "vgg16", "vgg19"]


class VGG16_Weights(Enum):
    """torchvision's names for its VGG16 weights, so that ``vgg16(weights=VGG16_Weights.DEFAULT)`` reaches
    ``vgg16`` and is refused there in one line (minidl has none of them)."""
    IMAGENET1K_V1 = "IMAGENET1K_V1"
    DEFAULT = "IMAGENET1K_V1"  # an alias, as in torchvision

    def __str__(self):
        return f"{type(self).__name__}.{self.name}"


class VGG19_Weights(Enum):
    """torchvision's names for its VGG19 weights; see ``VGG16_Weights``."""
    IMAGENET1K_V1 = "IMAGENET1K_V1"
    DEFAULT = "IMAGENET1K_V1"

    __str__ = VGG16_Weights.__str__


class VGG(nn.Module):
    """torchvision's VGG: ``features`` (a Sequential of convolutions, ReLUs and poolings), ``avgpool``, then
    ``classifier`` on the flattened 512 × 7 × 7 numbers. ``init_weights`` draws torchvision's starting
    weights (see the module docstring); ``dropout`` is the probability of both Dropout layers."""

    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5):
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        _, classifier = torchvision_layout("vgg19")  # the same top in every VGG
        self.num_classes, self.dropout = num_classes, dropout
        self.classifier = nn.Sequential(*(_layer(kind, sizes, dropout) for _, kind, sizes in classifier[:-1]),
                                        nn.Linear(classifier[-1][2][0], num_classes))
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):  # the ReLU's gain; fan_out keeps the gradients' variance
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.classifier(x)

    def get_config(self):
        """What ``nn.load_model`` rebuilds it from (``minidl.save(model, path)``); the weights come from the
        file, so none are drawn."""
        from ..nn.saving import architecture  # here, not at the top: saving.py imports this class lazily too

        features = architecture(self.features)
        return None if features is None else {"features": features, "num_classes": self.num_classes,
                                              "init_weights": False, "dropout": self.dropout}


def _layer(kind, sizes, dropout):
    if kind == "conv":
        return nn.Conv2d(*sizes, kernel_size=3, padding=1)
    if kind == "dense":
        return nn.Linear(*sizes)
    if kind == "pool":
        return nn.MaxPool2d(kernel_size=2, stride=2)
    return nn.ReLU(inplace=True) if kind == "relu" else nn.Dropout(p=dropout)


def _vgg(arch, weights, kwargs):
    pretrained = kwargs.pop("pretrained", False)
    if weights is not None or pretrained:
        asked = ("pretrained=True" if weights is None else
                 f"weights={weights}" if isinstance(weights, Enum) else f"weights={weights!r}")
        instead = ("fetch them with" if arch == "vgg19" else
                   "take VGG19, whose ImageNet weights minidl can fetch:")
        raise ValueError(
            f"{arch}({asked}): minidl cannot download torchvision's ImageNet weights; use weights=None (random "
            f"weights, torchvision's initialisation), or {instead} minidl.weights.fetch('vgg19', include_top=True) "
            "(or minidl.weights.convert for a torchvision vgg19 .pth you have), then "
            "minidl.models.vgg19(weights='imagenet', include_top=True)")
    features = nn.Sequential(*(_layer(kind, sizes, None) for _, kind, sizes in torchvision_layout(arch)[0]))
    return VGG(features, **kwargs)


def vgg16(*, weights=None, progress=True, **kwargs):
    """VGG16 (13 convolutions, 3 linear layers) as torchvision builds it, with random weights.
    ``kwargs`` go to ``VGG``: ``num_classes=1000``, ``dropout=0.5``, ``init_weights=True``; ``progress``
    (torchvision's download bar) is accepted and unused: nothing is downloaded."""
    return _vgg("vgg16", weights, kwargs)


def vgg19(*, weights=None, progress=True, **kwargs):
    """VGG19 (16 convolutions, 3 linear layers) as torchvision builds it, with random weights.
    ``kwargs`` go to ``VGG``: ``num_classes=1000``, ``dropout=0.5``, ``init_weights=True``."""
    return _vgg("vgg19", weights, kwargs)
