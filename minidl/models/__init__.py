"""Ready-made networks. ``vgg19(weights=None | "imagenet" | path)`` builds VGG19 (see ``vgg.py``)."""
from .architecture import vgg19_layer_names
from .vgg import VGG19, vgg19

__all__ = ["VGG19", "vgg19", "vgg19_layer_names"]
