"""What PyTorch's recorded ops offer beyond forward and backward, inherited by ``autograd.Function``.

- the ctx methods of PyTorch's spelling of a Function: ``ctx.save_for_backward(t, ...)`` and
  ``ctx.saved_tensors``, which refuses tensors changed in place since they were saved;
- the graph as PyTorch shows it: ``grad_fn.next_functions``, ending in ``AccumulateGrad`` at a leaf;
- the two refusals of a graph that cannot be walked: an input changed in place since the forward (its
  version counter moved on, so the arrays the forward saved no longer match it), and a part of the graph an
  earlier ``backward()`` freed (``GraphFreedError``).

Kept apart from ``autograd.py`` so that the file a student reads holds backprop itself. Nothing here needs
``Tensor``: it works on any object with ``_version``, ``requires_grad`` and ``grad_fn``.
"""


class GraphFreedError(RuntimeError):
    """The graph was freed by an earlier ``backward()`` and cannot be walked again."""


class PyTorchFunctionAPI:
    """The methods ``autograd.Function`` takes from here (see the module doc)."""

    def save_for_backward(self, *tensors):
        self._saved = [(t, None if t is None else t._version) for t in tensors]

    @property
    def saved_tensors(self):
        for t, version in self._saved:
            if t is not None and t._version != version:
                raise modified_error(self, None)
        return tuple(t for t, _ in self._saved)

    @property
    def next_functions(self):
        """PyTorch's view of the graph: for each input, (the node its gradient goes to, 0). That node is
        the input's ``grad_fn``, an ``AccumulateGrad`` for a leaf that requires grad, or None."""
        if self.released:
            raise GraphFreedError("next_functions: backward() has freed this part of the graph "
                                  "(backward(retain_graph=True) keeps it)")
        return tuple((None if t is None or not t.requires_grad else t.grad_fn or AccumulateGrad(t), 0)
                     for t in self.inputs)


class AccumulateGrad:
    """Where ``next_functions`` ends: the gradient is added to ``variable.grad`` (as named in PyTorch)."""

    next_functions = ()

    def __init__(self, variable):
        self.variable = variable

    def __repr__(self):
        return "<AccumulateGrad>"


def modified_error(fn, i):
    which = "a saved tensor" if i is None else f"input {i}"
    return RuntimeError(f"one of the variables needed for gradient computation has been modified by an in-place "
                        f"operation: {which} of {fn.name()} changed after the forward pass (its version counter "
                        "moved on); compute a new tensor (y = y + 1) instead of changing it in place")


def check_unchanged(fn):
    """Refuse a backward whose inputs were changed in place since the forward (their version counter moved
    on): the arrays the forward saved no longer match them."""
    for i, (t, version) in enumerate(zip(fn.inputs, fn.input_versions)):
        if t is not None and t._version != version:
            raise modified_error(fn, i)


def check_not_freed(fn):
    """Refuse to walk a part of the graph whose saved arrays an earlier ``backward()`` freed."""
    if fn.released:
        raise GraphFreedError(
            "Trying to backward through the graph a second time: its saved arrays were freed by "
            "the first backward(). Call backward(retain_graph=True) the first time if you need to "
            "go through it again."
        )
