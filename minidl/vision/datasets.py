"""torchvision's ``FashionMNIST`` and ``MNIST`` datasets, read by ``minidl.datasets``.

``FashionMNIST(root, train=True, transform=None, target_transform=None, download=False)`` looks for the
four IDX files (gzipped or not) in torchvision's layout, ``root/FashionMNIST/raw/``. With
``download=True`` a split missing there is taken from where ``minidl.datasets.load_fashion_mnist`` finds
it (``MINIDL_DATA``, the cache ``~/.cache/minidl/fashion-mnist``, the Debian package's
``/usr/share/datasets/fashion-mnist``), and only when it is nowhere is it downloaded, checksummed, into
``root/FashionMNIST/raw/`` as torchvision does. A corrupt file raises ``DatasetError`` naming it.

``dataset[i]`` is ``(image, label)``: a PIL image (mode "L", 28×28) and an int, each passed through
``transform`` / ``target_transform`` when given. ``data`` is the uint8 tensor [N, 28, 28], ``targets``
the int64 tensor [N], ``classes`` the class names.
"""
from pathlib import Path

import numpy as np

from ..autograd import Tensor
from ..data import Dataset
from ..datasets import fashion_mnist as fm
from . import transforms as T


class MNIST(Dataset):
    """MNIST handwritten digits (LeCun et al.): 60,000 training and 10,000 test images, 28×28, digits 0-9."""

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six", "7 - seven",
               "8 - eight", "9 - nine"]
    folder_name = "MNIST"

    def __init__(self, root, train=True, transform=None, target_transform=None, download=False):
        self.root = Path(root).expanduser()
        self.train = train
        self.transform, self.target_transform = transform, target_transform
        images, labels = self._load(download)
        self.data, self.targets = Tensor(images), Tensor(labels)

    @property
    def raw_folder(self):
        return self.root / self.folder_name / "raw"

    @property
    def class_to_idx(self):
        return {name: i for i, name in enumerate(self.classes)}

    def _load(self, download):
        from ..datasets import mnist

        return mnist.load_mnist("train" if self.train else "test", self.raw_folder, download=download)

    def __len__(self):
        return len(self.data.data)

    def __getitem__(self, index):
        from PIL import Image

        image, target = Image.fromarray(self.data.data[index]), int(self.targets.data[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def collated_batch(self, indices):
        """The batch ``DataLoader``'s default collation makes of ``[self[i] for i in indices]``, computed on
        the whole stack of images at once; None when that cannot be done (a ``Lambda`` transform, a target
        transform, a subclass with its own ``__getitem__``), and the loader then goes sample by sample."""
        if type(self).__getitem__ is not MNIST.__getitem__ or self.target_transform is not None:
            return None
        batch = getattr(self.transform, "batch", None)
        images = self.data.data[indices]
        x = batch(images) if batch is not None else None
        if x is None:
            return None
        return [Tensor(x), Tensor(self.targets.data[indices])]

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}", f"    Split: {'Train' if self.train else 'Test'}"]
        if self.transform is not None:
            lines.append("    StandardTransform")
            lines.append("Transform: " + repr(self.transform).replace("\n", "\n           "))
        if self.target_transform is not None:
            lines.append("Target transform: " + repr(self.target_transform))
        return "\n".join(lines)


class FashionMNIST(MNIST):
    """Fashion-MNIST (Xiao, Rasul & Vollgraf): 28×28 grayscale pictures of clothing in 10 classes."""

    classes = list(fm.FASHION_MNIST_CLASSES)
    folder_name = "FashionMNIST"

    def _load(self, download):
        split = "train" if self.train else "test"
        names = fm.FILES[split]
        paths = tuple(fm._locate(self.raw_folder, name) for name in names)
        if not all(paths):
            if not download:
                raise FileNotFoundError(
                    f"Fashion-MNIST {split} files {names} not found in {self.raw_folder}: pass download=True "
                    f"(it also finds them in MINIDL_DATA, {fm.cache_dir()} or {fm.SYSTEM_DIR})")
            paths = fm.find_files(split) or fm.download_files(split, fm.MIRRORS, folder=self.raw_folder)
        return fm._load_pair(*paths)


__all__ = ["FashionMNIST", "MNIST"]
