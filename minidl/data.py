"""Mini-batches: ``DataLoader`` over NumPy arrays or over a ``Dataset``, as in ``torch.utils.data``.

Stochastic gradient descent estimates the gradient of the mean loss over the whole training set from a
small random batch B of examples,  ∇L ≈ (1/|B|) Σ_{i∈B} ∇ℓ_i.  Drawing the batches as consecutive slices
of a fresh random permutation each epoch ("sampling without replacement") uses every example exactly once
per epoch while keeping the batches random, which is what ``shuffle=True`` does.

Two ways in, one loader:

- ``DataLoader(x, y, batch_size=32)``: NumPy arrays sharing their first dimension; each batch is a tuple
  of array slices (minidl's own way, what ``training.fit`` uses).
- ``DataLoader(dataset, batch_size=1)``: PyTorch's way. ``dataset`` is anything with ``len()`` and
  ``dataset[i]`` (a ``Dataset``, a ``TensorDataset``, a list of ``(x, y)`` pairs, a tensor); each batch is
  the list of samples ``dataset[i]`` put together by ``collate_fn`` (``default_collate``: tensors of the
  samples' parts stacked along a new first dimension).
"""
import math
from collections.abc import Mapping, Sequence

import numpy as np

from .autograd import Tensor


class Dataset:
    """A map-style dataset, as ``torch.utils.data.Dataset``: subclasses define ``__len__`` and
    ``__getitem__(i)``, returning sample i (often an ``(input, label)`` pair)."""

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} does not define __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class TensorDataset(Dataset):
    """Sample i is ``(t[i] for t in tensors)``: tensors (or arrays) sharing their first dimension."""

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        tensors = tuple(t if isinstance(t, Tensor) else Tensor(t) for t in tensors)
        _check_same_length(tensors, "TensorDataset")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __len__(self):
        return len(self.tensors[0].data)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order (what ``random_split`` returns)."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, [int(i) for i in indices]

    def __getitem__(self, index):
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """The samples of several datasets one after the other (``dataset_a + dataset_b``)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self):
        return self.cumulative_sizes[-1] if self.cumulative_sizes else 0

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for a ConcatDataset of {len(self)} samples")
        which = int(np.searchsorted(self.cumulative_sizes, index, side="right"))
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into ``Subset``s of the given lengths, drawn without overlap in a random order.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1 (the remainder left by
    rounding down goes to the first subsets, one sample each, as in PyTorch). ``generator``: a
    ``np.random.Generator`` (default: minidl's, seeded by ``minidl.manual_seed``).
    """
    n = len(dataset)
    lengths = list(lengths)
    if lengths and all(isinstance(x, float) for x in lengths) and math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if any(isinstance(x, float) or x < 0 for x in lengths) or sum(lengths) != n:
        raise ValueError(f"random_split: lengths {lengths} must be counts summing to the dataset's length {n} "
                         "or fractions summing to 1")
    order = _rng(generator).permutation(n)
    bounds = np.cumsum([0, *lengths])
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def default_collate(batch):
    """Put a list of samples together into one batch, as PyTorch's ``default_collate``.

    Tensors and NumPy arrays are stacked along a new first dimension into a Tensor; Python floats become
    a float64 tensor, ints an int64 tensor, bools a bool tensor; strings stay a list; tuples and lists are
    collated part by part (a list of ``(x, y)`` pairs gives the list ``[X, Y]``), dicts key by key.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor(np.stack([b.data for b in batch]))
    if isinstance(elem, (np.ndarray, np.generic)) and elem.dtype.kind in "biufc":
        return Tensor(np.stack(batch))
    if isinstance(elem, bool):
        return Tensor(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return Tensor(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return Tensor(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return list(batch)
    if isinstance(elem, Mapping):
        return {key: default_collate([b[key] for b in batch]) for key in elem}
    if isinstance(elem, Sequence):
        if any(len(b) != len(elem) for b in batch):
            raise RuntimeError(f"default_collate: the samples of a batch have different lengths "
                               f"({sorted({len(b) for b in batch})}): each sample must have the same parts")
        parts = [default_collate(list(column)) for column in zip(*batch)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # a namedtuple
            return type(elem)(*parts)
        return parts  # a list, for tuples too, as PyTorch's
    raise TypeError(f"default_collate: cannot batch samples of type {type(elem).__name__} (it batches tensors, "
                    "NumPy arrays, numbers, strings, and tuples, lists and dicts of them); pass a collate_fn")


class DataLoader:
    """Iterate over mini-batches of arrays or of a dataset's samples.

    Args:
        *data: either NumPy arrays (or anything ``np.asarray`` accepts) with the same length N, e.g.
            images [N, 28, 28] and labels [N], row i of every array belonging to example i; or one
            dataset (anything with ``len()`` and ``[i]`` that is not a NumPy array).
        batch_size: examples per batch (default 32 for arrays, 1 for a dataset, as in PyTorch); the last
            batch may be smaller unless ``drop_last``.
        shuffle: visit the examples in a new random order at every epoch (every ``iter()``).
        drop_last: skip a final batch smaller than ``batch_size`` (keeps batch statistics uniform).
        collate_fn: (datasets only) turns the list of a batch's samples into the batch; default
            ``default_collate``.
        seed: seed of the random generator used for shuffling, for reproducible runs; the same seed gives
            the same sequence of epochs. Ignored without ``shuffle``.
        generator: a ``np.random.Generator`` to draw permutations from instead of ``seed``. For a dataset
            without either, minidl's generator is used, so ``minidl.manual_seed`` fixes the order.
        num_workers, pin_memory: accepted for PyTorch's programs; minidl loads in the calling process.

    Over arrays, each iteration yields a tuple with one batch per array, even for a single array.
    Shuffled batches are copies (fancy indexing); unshuffled batches are views (slices) of the arrays, so
    do not modify them in place if the arrays must stay intact.

    >>> x, y = np.arange(10).reshape(5, 2), np.arange(5)
    >>> loader = DataLoader(x, y, batch_size=2, shuffle=True, seed=0)
    >>> len(loader)
    3
    >>> for xb, yb in loader:
    ...     print(xb.shape, yb.shape)
    (2, 2) (2,)
    (2, 2) (2,)
    (1, 2) (1,)
    """

    def __init__(self, *data, batch_size=None, shuffle=False, drop_last=False, collate_fn=None, seed=None,
                 generator=None, num_workers=0, pin_memory=False):
        if not data:
            raise ValueError("DataLoader needs a dataset or at least one array")
        if len(data) == 1 and _is_dataset(data[0]):
            self.dataset, self.arrays = data[0], None
            default_batch = 1
        else:
            if collate_fn is not None:
                raise ValueError("DataLoader: collate_fn is for a dataset, not for arrays (their batches are slices)")
            self.arrays = tuple(np.asarray(a) for a in data)
            if any(a.ndim == 0 for a in self.arrays):
                raise ValueError("DataLoader arrays must have a first (sample) dimension, got a scalar")
            _check_same_length(self.arrays, "DataLoader arrays")
            self.dataset = None
            default_batch = 32
        batch_size = default_batch if batch_size is None else batch_size
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None and generator is not None:
            raise ValueError("pass either seed or generator, not both")
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self.num_workers, self.pin_memory = num_workers, pin_memory
        if generator is None and (seed is not None or self.dataset is None):
            generator = np.random.default_rng(seed)
        self.generator = generator  # None: minidl's generator at each epoch

    @property
    def num_samples(self):
        return self.arrays[0].shape[0] if self.dataset is None else len(self.dataset)

    def __len__(self):
        """Number of batches per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self):
        # The permutation is drawn here, at iter() time, not lazily at the first next(): each call to
        # iter() is one epoch and consumes the generator in a predictable order.
        order = _rng(self.generator).permutation(self.num_samples) if self.shuffle else None
        return self._batches(order) if self.dataset is None else self._samples(order)

    def _batch_indices(self, order):
        for b in range(len(self)):
            start = b * self.batch_size
            stop = start + self.batch_size
            yield order[start:stop] if order is not None else slice(start, stop)

    def _batches(self, order):
        for index in self._batch_indices(order):
            yield tuple(a[index] for a in self.arrays)

    def _samples(self, order):
        # With the default collation a dataset may hand over a whole batch at once (``collated_batch``,
        # minidl's vision datasets do, returning None when their transform is not one they can batch): the
        # same tensors, without the Python work per sample. ``__getitems__`` is PyTorch's batched fetch.
        whole = getattr(self.dataset, "collated_batch", None) if self.collate_fn is None else None
        many = getattr(self.dataset, "__getitems__", None)
        collate = self.collate_fn or default_collate
        for index in self._batch_indices(order):
            if isinstance(index, slice):
                index = range(index.start, min(index.stop, self.num_samples))
            indices = [int(i) for i in index]
            batch = whole(indices) if whole is not None else None
            if batch is None:
                batch = collate(many(indices) if many is not None else [self.dataset[i] for i in indices])
            yield batch


def _is_dataset(x):
    return not isinstance(x, np.ndarray) and hasattr(x, "__len__") and hasattr(x, "__getitem__")


def _check_same_length(arrays, what):
    shapes = [tuple(a.shape) for a in arrays]
    if any(not s for s in shapes) or len({s[0] for s in shapes}) != 1:
        raise ValueError(f"{what} must have the same first dimension (number of samples), "
                         f"got shapes {', '.join(map(str, shapes))}")


__all__ = ["ConcatDataset", "DataLoader", "Dataset", "Subset", "TensorDataset", "default_collate", "random_split"]


def _rng(generator):
    from . import random

    return random.generator() if generator is None else generator
