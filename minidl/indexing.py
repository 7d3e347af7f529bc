"""Gather and scatter: ops that read or write the elements an index tensor points at, forward beside backward.

``x.gather(dim, index)`` reads, ``x.scatter(dim, index, src)`` writes (``scatter_add`` adds). Both work
element by element along one dimension: for a matrix and dim = 1, position (i, j) of ``index`` points at
column index[i, j] of row i. Notation as in ``ops.py``: g = dL/dy.
"""
import numpy as np

from .autograd import Function


def _along(index, dim):
    """The full index tuple that picks, for each position p of ``index``, the element p with its ``dim``
    coordinate replaced by index[p]: what gather reads and scatter writes."""
    grid = list(np.indices(index.shape, sparse=True))
    grid[dim] = index
    return tuple(grid)


def _check_index(name, x, index, dim):
    if index.dtype.kind not in "iu":
        raise ValueError(f"{name}: index must be an integer tensor, got dtype {index.dtype}")
    if index.ndim != x.ndim:
        raise ValueError(f"{name}: index has {index.ndim} dimensions, the tensor {x.ndim}; they must be equal")
    for d, (n, m) in enumerate(zip(index.shape, x.shape)):
        if d != dim and n > m:
            raise ValueError(f"{name}: index {index.shape} is larger than the tensor {x.shape} in dimension {d}")
    if index.size and (index.min() < -x.shape[dim] or index.max() >= x.shape[dim]):
        raise IndexError(f"{name}: index values from {index.min()} to {index.max()} are out of range for dimension "
                         f"{dim} of size {x.shape[dim]}")


class Gather(Function):
    """y = x.gather(dim, index): y[p] = x[p with its ``dim`` coordinate replaced by index[p]]; y has
    index's shape. For dim = 1 of a matrix, y_ij = x_{i, index_ij}.

    Each y[p] is a copy of one element of x, so that element receives g[p]; an element picked several
    times receives the sum:   dL/dx = zeros like x, then dL/dx[pick(p)] += g[p]   (``np.add.at``).
    """
    torch_name = "GatherBackward0"

    def forward(self, x, index, dim):
        dim = dim % max(x.ndim, 1)
        _check_index("gather", x, index, dim)
        self.x_shape, self.x_dtype, self.where = x.shape, x.dtype, _along(index, dim)
        return x[self.where]

    def backward(self, g):
        dx = np.zeros(self.x_shape, dtype=self.x_dtype)
        np.add.at(dx, self.where, g)
        return dx, None


class Scatter(Function):
    """y = x.scatter(dim, index, src): a copy of x in which, for each position p of ``index``, the element
    x[p with its ``dim`` coordinate replaced by index[p]] is replaced by src[p] (or by ``value``, a number).
    ``reduce="add"`` (``scatter_add``) adds src[p] there instead, so repeated indices accumulate.

    Replacing:   dL/dx = g with the written positions set to 0 (their old values are gone),
                 dL/dsrc[p] = g[pick(p)]   (a gather of g).
    Adding:      dL/dx = g,   dL/dsrc[p] = g[pick(p)].
    Replacing the same position twice keeps one of the writes (which one is not defined, as in PyTorch);
    the gradient then goes to every src element aimed there, as in PyTorch.
    """
    torch_name = "ScatterBackward0"

    def forward(self, x, index, src=None, dim=0, value=None, reduce=None):
        dim = dim % max(x.ndim, 1)
        _check_index("scatter_add" if reduce == "add" else "scatter", x, index, dim)
        if src is not None and any(n > m for n, m in zip(index.shape, src.shape)):
            raise ValueError(f"scatter: src {src.shape} is smaller than index {index.shape}")
        self.where, self.reduce = _along(index, dim), reduce
        self.src_shape, self.src_dtype = (None, None) if src is None else (src.shape, src.dtype)
        self.picked = None if src is None else tuple(slice(0, n) for n in index.shape)  # src's part that is used
        if src is None:
            self.torch_name = "ScatterBackward1"
        elif reduce == "add":
            self.torch_name = "ScatterAddBackward0"
        y = x.copy()
        update = value if src is None else src[self.picked]
        if reduce == "add":
            np.add.at(y, self.where, update)
        else:
            y[self.where] = update
        return y

    def backward(self, g):
        dx = g
        if self.reduce != "add":
            dx = g.copy()
            dx[self.where] = 0
        dsrc = None
        if self.src_shape is not None and self.needs_input_grad[2]:
            dsrc = np.zeros(self.src_shape, dtype=self.src_dtype)
            dsrc[self.picked] = g[self.where]
        return dx, None, dsrc
