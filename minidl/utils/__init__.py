"""PyTorch's ``torch.utils``: ``minidl.utils.data`` is ``torch.utils.data``, and it is ``minidl/data.py``
itself (one loader for arrays and datasets), registered under both names, so that
``from minidl.utils.data import DataLoader`` and ``from minidl.data import DataLoader`` give the same class."""
import sys

from .. import data

sys.modules[f"{__name__}.data"] = data

__all__ = ["data"]
