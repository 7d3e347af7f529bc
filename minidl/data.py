"""Mini-batches from NumPy arrays: ``DataLoader``.

Stochastic gradient descent estimates the gradient of the mean loss over the whole training set from a
small random batch B of examples,  ∇L ≈ (1/|B|) Σ_{i∈B} ∇ℓ_i.  Drawing the batches as consecutive slices
of a fresh random permutation each epoch ("sampling without replacement") uses every example exactly once
per epoch while keeping the batches random, which is what ``shuffle=True`` does.
"""
import math

import numpy as np


class DataLoader:
    """Iterate over tuples of mini-batches cut from arrays that share their first dimension.

    Args:
        *arrays: NumPy arrays (or anything ``np.asarray`` accepts) with the same length N, e.g. images
            [N, 28, 28] and labels [N]. Row i of every array belongs to example i.
        batch_size: examples per batch; the last batch may be smaller unless ``drop_last``.
        shuffle: visit the examples in a new random order at every epoch (every ``iter()``).
        drop_last: skip a final batch smaller than ``batch_size`` (keeps batch statistics uniform).
        seed: seed of the random generator used for shuffling, for reproducible runs; the same seed gives
            the same sequence of epochs. Ignored without ``shuffle``.
        generator: a ``np.random.Generator`` to draw permutations from instead of ``seed``.

    Each iteration yields a tuple with one batch per array, even for a single array. Shuffled batches are
    copies (fancy indexing); unshuffled batches are views (slices) of the arrays, so do not modify them in
    place if the arrays must stay intact.

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

    def __init__(self, *arrays, batch_size=32, shuffle=False, drop_last=False, seed=None, generator=None):
        if not arrays:
            raise ValueError("DataLoader needs at least one array")
        arrays = tuple(np.asarray(a) for a in arrays)
        if any(a.ndim == 0 for a in arrays):
            raise ValueError("DataLoader arrays must have a first (sample) dimension, got a scalar")
        if len({a.shape[0] for a in arrays}) != 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"DataLoader arrays must have the same first dimension (number of samples), "
                             f"got shapes {shapes}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if seed is not None and generator is not None:
            raise ValueError("pass either seed or generator, not both")
        self.arrays = arrays
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = generator if generator is not None else np.random.default_rng(seed)

    @property
    def num_samples(self):
        return self.arrays[0].shape[0]

    def __len__(self):
        """Number of batches per epoch."""
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self):
        # The permutation is drawn here, at iter() time, not lazily at the first next(): each call to
        # iter() is one epoch and consumes the generator in a predictable order.
        order = self.generator.permutation(self.num_samples) if self.shuffle else None
        return self._batches(order)

    def _batches(self, order):
        for b in range(len(self)):
            start = b * self.batch_size
            stop = start + self.batch_size
            index = order[start:stop] if order is not None else slice(start, stop)
            yield tuple(a[index] for a in self.arrays)
