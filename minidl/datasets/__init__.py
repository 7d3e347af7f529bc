"""Datasets as NumPy arrays, read from local files or downloaded once into ``~/.cache/minidl``."""
from .fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist
from .idx import DatasetError, read_idx

__all__ = ["FASHION_MNIST_CLASSES", "load_fashion_mnist", "DatasetError", "read_idx"]
