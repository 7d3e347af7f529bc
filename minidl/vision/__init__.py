"""The corner of torchvision that PyTorch's beginner course uses (``torchvision`` under ``minidl.as_torch``).

- ``datasets.FashionMNIST`` and ``datasets.MNIST``: torchvision's arguments, folder layout
  (``root/FashionMNIST/raw/``), ``classes``, ``data`` and ``targets``; items are ``(PIL image, int)``
  pairs until a ``transform`` turns the image into a tensor. The files are read by ``minidl.datasets``.
- ``transforms.ToTensor``, ``Normalize``, ``Compose``, ``Lambda``.
- ``io.read_image``: an image file as a uint8 tensor (C, H, W).
- ``models.vgg16`` and ``models.vgg19``: torchvision's VGG modules and state-dict keys, random weights only.
"""
from . import datasets, io, models, transforms

__all__ = ["datasets", "io", "models", "transforms"]
