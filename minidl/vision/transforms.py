"""torchvision's transforms for the course: ``ToTensor``, ``Normalize``, ``Compose``, ``Lambda``.

Each is a callable object applied to one sample. ``ToTensor`` and ``Normalize`` also have
``batch(images)``, the same computation on a whole stack of images at once, which the vision datasets use
to hand the ``DataLoader`` a batch without a Python call per image (tests check both give the same bits).
"""
import numpy as np

from ..autograd import Tensor


class ToTensor:
    """A PIL image or a NumPy array (H, W) or (H, W, C) -> a float32 Tensor (C, H, W).

    uint8 values (PIL's 8-bit modes) are scaled to [0, 1] by dividing by 255; other dtypes are kept as
    they are (torchvision's rule). A 1-bit PIL image gives 0. and 1.
    """

    def __call__(self, pic):
        array = _pixels(pic)
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3:
            raise ValueError(f"ToTensor: expected an image of shape (H, W) or (H, W, C), got shape {array.shape}")
        return Tensor(self._scale(np.ascontiguousarray(array.transpose(2, 0, 1))))

    def batch(self, images):
        """uint8 images (N, H, W) -> float32 (N, 1, H, W), as ``__call__`` on each and stacked."""
        return self._scale(images[:, None])

    @staticmethod
    def _scale(array):
        if array.dtype == np.bool_:
            return array.astype(np.float32)
        if array.dtype == np.uint8:
            return array.astype(np.float32) / np.float32(255)
        return array

    def __repr__(self):
        return "ToTensor()"


def _pixels(pic):
    if isinstance(pic, np.ndarray):
        return pic
    if hasattr(pic, "mode") and hasattr(pic, "size"):  # a PIL image
        return np.asarray(pic)
    raise TypeError(f"ToTensor: expected a PIL image or a NumPy array, got {type(pic).__name__}")


class Normalize:
    """(x - mean[c]) / std[c] for each channel c of a float Tensor (C, H, W) or (N, C, H, W)."""

    def __init__(self, mean, std, inplace=False):
        self.mean, self.std, self.inplace = mean, std, inplace
        std_array = np.asarray(std, dtype=np.float64)
        if np.any(std_array == 0):
            raise ValueError(f"Normalize: std {std} contains a zero, which would divide by zero")

    def __call__(self, tensor):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"Normalize: expected a Tensor (apply ToTensor first), got {type(tensor).__name__}")
        if tensor.dtype.kind != "f":
            raise TypeError(f"Normalize: expected a float tensor, got {tensor.dtype} (apply ToTensor first)")
        if tensor.ndim < 3:
            raise ValueError(f"Normalize: expected a tensor (C, H, W), got shape {tensor.shape}")
        out = self.batch(tensor.data)
        if self.inplace:
            tensor.data[...] = out
            return tensor
        return Tensor(out)

    def batch(self, images):
        """The same on an array of shape (..., C, H, W)."""
        channels = images.shape[-3]
        mean = np.asarray(self.mean, dtype=images.dtype).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=images.dtype).reshape(-1, 1, 1)
        if mean.shape[0] not in (1, channels) or std.shape[0] not in (1, channels):
            raise ValueError(f"Normalize: mean {self.mean} and std {self.std} do not fit {channels} channels")
        return (images - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class Compose:
    """Apply ``transforms`` one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def batch(self, images):
        """``batch`` through every transform, or None when one of them has none (a ``Lambda``)."""
        if not self.transforms or not isinstance(self.transforms[0], ToTensor):
            return None
        for t in self.transforms:
            step = getattr(t, "batch", None)
            if step is None:
                return None
            images = step(images)
            if images is None:
                return None
        return images

    def __repr__(self):
        return "Compose(\n" + "".join(f"    {t}\n" for t in self.transforms) + ")"


class Lambda:
    """Apply any function, e.g. ``Lambda(lambda y: minidl.zeros(10).scatter_(0, minidl.tensor(y), value=1))``."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"Lambda: argument should be callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, x):
        return self.lambd(x)

    def __repr__(self):
        return "Lambda()"
