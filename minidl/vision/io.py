"""``read_image``: an image file as a uint8 tensor (C, H, W), as ``torchvision.io.read_image``."""
import enum

import numpy as np

from ..autograd import Tensor
from ..image import ImageError, open_image


class ImageReadMode(enum.Enum):
    UNCHANGED = 0
    GRAY = 1
    GRAY_ALPHA = 2
    RGB = 3
    RGB_ALPHA = 4


_PIL_MODES = {ImageReadMode.GRAY: "L", ImageReadMode.GRAY_ALPHA: "LA", ImageReadMode.RGB: "RGB",
              ImageReadMode.RGB_ALPHA: "RGBA"}


def read_image(path, mode=ImageReadMode.UNCHANGED):
    """The pixels of a JPEG or PNG file, uint8 (C, H, W): C = 1 for grayscale, 3 for RGB, 4 with alpha
    (``mode`` converts, e.g. ``ImageReadMode.RGB``). A missing or unreadable file raises ``ImageError``
    naming it."""
    img = open_image(path)
    if mode != ImageReadMode.UNCHANGED:
        img = img.convert(_PIL_MODES[ImageReadMode(mode)])
    elif img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.mode or "transparency" in img.info else "RGB")
    array = np.asarray(img)
    if array.dtype != np.uint8:
        raise ImageError(f"{path}: {img.mode} pixels are not 8-bit")
    if array.ndim == 2:
        array = array[:, :, None]
    return Tensor(np.ascontiguousarray(array.transpose(2, 0, 1)))


__all__ = ["ImageReadMode", "read_image"]
