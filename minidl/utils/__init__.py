"""PyTorch's ``torch.utils``: ``minidl.utils.data`` is ``torch.utils.data``."""
from . import data

__all__ = ["data"]
