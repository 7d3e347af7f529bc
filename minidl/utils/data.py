"""``torch.utils.data`` under its PyTorch name; the code is in ``minidl/data.py`` (one loader for arrays
and datasets)."""
from ..data import ConcatDataset, DataLoader, Dataset, Subset, TensorDataset, default_collate, random_split

__all__ = ["ConcatDataset", "DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]
