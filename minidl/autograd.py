"""The autograd engine: ``Tensor``, ``Function`` and reverse-mode ``backward``.

Read this file first. The whole idea of backpropagation fits in it:

1. Every operation on tensors is a ``Function`` with a ``forward`` (arrays in, array out) and a ``backward``
   (the gradient of the loss with respect to the output in, the gradients with respect to each input out:
   the chain rule, one op at a time). The ops themselves live in ``ops.py``, ``functional.py`` and
   ``textbook/``; ``Tensor``'s methods that call them, in ``tensor_methods.py``.
2. ``Function.apply`` runs ``forward`` and, when some input requires a gradient, remembers the function in
   the output's ``_ctx`` (PyTorch calls it ``grad_fn``). Following ``_ctx.inputs`` from any tensor walks
   back through the graph that made it.
3. ``Tensor.backward`` sorts that graph (``graph_order``) so that each tensor comes after every tensor
   computed from it (reverse topological order), then walks it once, calling each function's ``backward``
   and summing the gradients that reach a tensor along different paths (a tensor used twice gets two
   contributions).

Gradients are plain NumPy arrays and ``backward`` runs outside the graph, so minidl computes first-order
gradients only (no grad-of-grad). That is a deliberate choice: it keeps each backward a few lines of NumPy
and avoids building a second graph on every step.
"""
import contextlib
import inspect

import numpy as np

from .printing import DType, Grad, Size, tensor_repr
# PyTorch's extras of a Function (save_for_backward, next_functions) and the refusals of a stale or freed
# graph; AccumulateGrad and GraphFreedError are also imported for their users, as minidl.autograd.X
from .pytorch_function import (AccumulateGrad, GraphFreedError, PyTorchFunctionAPI,  # noqa: F401
                               check_not_freed, check_unchanged)

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Inside ``with no_grad():`` nothing is recorded: outputs never require grad, no memory is kept."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


class Function(PyTorchFunctionAPI):
    """One differentiable operation, written in either of two ways; ``apply`` runs both.

    minidl's ops (``ops.py``, ``functional.py``) use the array way: ``forward(self, *arrays, **options)``
    receives the inputs' ``.data`` (``None`` stays ``None``, e.g. a missing bias) and returns the output
    array, saving on ``self`` what ``backward(self, g)`` needs; ``backward`` gets dL/dy as an array and
    returns one array per input, of that input's shape (or ``None`` where no gradient is wanted).

    PyTorch's way works too, as its tutorials write it: a ``@staticmethod forward(ctx, *args)`` receiving
    Tensors (run without recording), ``ctx.save_for_backward(t, ...)``, and a ``@staticmethod
    backward(ctx, grad_output)`` that reads ``ctx.saved_tensors`` and returns Tensors (run by
    ``_ctx_style_forward`` and ``_ctx_style_backward``, at the end of this file; the ctx methods are in
    ``pytorch_function.py``). In both ways the context is the Function object itself, which is also the
    output's ``grad_fn``.
    ``needs_input_grad[i]`` tells whether input ``i`` needs a gradient (all False under ``no_grad``), so a
    backward can skip work nobody asked for and a forward can skip saving what no backward will read.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.ctx_style = isinstance(inspect.getattr_static(cls, "forward"), staticmethod)

    @classmethod
    def apply(cls, *inputs, **options):
        """Run the op on tensors and record it in the graph (unless inside ``no_grad``)."""
        fn = cls()
        if cls.ctx_style:  # PyTorch's spelling, forward(ctx, *args) on Tensors: see _ctx_style_forward
            tensors, out = _ctx_style_forward(fn, inputs, options)
        else:
            tensors = [x if x is None or isinstance(x, Tensor) else _constant(x, inputs) for x in inputs]
            fn.needs_input_grad = _needs_input_grad(tensors)
            arrays = [None if t is None else t.data for t in tensors]
            try:
                out = fn.forward(*arrays, **options)
            except ValueError as e:  # name the op and the shapes it was given
                shapes = ", ".join("None" if a is None else str(a.shape) for a in arrays)
                raise ValueError(f"{cls.__name__}: {e} (input shapes: {shapes})") from None
        result = Tensor(out)
        if any(fn.needs_input_grad):  # remember how result was made: the graph that backward walks
            result.requires_grad, result._ctx, fn.inputs = True, fn, tensors
            fn.input_versions = [None if t is None else t._version for t in tensors]  # see check_unchanged
        return result

    def forward(self, *arrays, **options):
        raise NotImplementedError

    def backward(self, grad):
        raise NotImplementedError

    def input_grads(self, g):
        """dL/d(each input) from dL/dy = g, as arrays: ``backward``, once the inputs are known unchanged."""
        if self.ctx_style:
            return _ctx_style_backward(self, g)
        check_unchanged(self)
        return self.backward(g)

    torch_name = None  # PyTorch's name for the op's grad_fn (minidl's ops set it; a forward may refine it)

    def name(self):
        """``AddBackward0``, ``AddmmBackward0``, ...: PyTorch's names, so a printed graph reads as PyTorch's
        does; ``CubeBackward`` for a Function ``Cube`` of your own."""
        return self.torch_name or f"{type(self).__name__}Backward"

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"

    def release(self):
        """Drop the saved arrays and the links to the inputs, so memory is freed after backward."""
        name = self.name()
        self.__dict__.clear()
        self.inputs, self.torch_name = None, name

    @property
    def released(self):
        return getattr(self, "inputs", None) is None


def graph_order(output, constants=False):
    """The tensors of the graph that produced ``output``, each after all of its inputs (data-flow order).

    Reversed, it is the order in which backward visits them: a tensor's gradient is complete once every
    tensor computed from it has passed its contribution back. An iterative depth-first search: a recursive
    one would hit Python's recursion limit on a chain of a few thousand ops. Inputs are visited in argument
    order. ``constants=True`` also includes inputs that need no gradient (data, labels), for drawing.
    """
    order, visited = [], set()
    stack = [(output, False)]
    while stack:
        t, inputs_done = stack.pop()
        if inputs_done:
            order.append(t)
            continue
        if id(t) in visited:
            continue
        visited.add(id(t))
        stack.append((t, True))
        if t._ctx is not None:
            check_not_freed(t._ctx)
            stack.extend((x, False) for x in reversed(t._ctx.inputs)  # reversed: the first argument pops first
                         if x is not None and (constants or x.requires_grad) and id(x) not in visited)
    return order


def _constant(value, inputs):
    """Wrap a non-Tensor operand. A Python number takes the dtype of the tensor it meets, as in NumPy:
    ``x * 0.5`` keeps a float64 ``x`` in float64 and a float32 one in float32."""
    if isinstance(value, (int, float)):
        like = next((x.data.dtype for x in inputs if isinstance(x, Tensor) and x.data.dtype.kind == "f"), np.float32)
        return Tensor(np.asarray(value, dtype=like))
    return Tensor(value)


# The PyTorch-named methods (operators, reductions, shapes, in-place ops) are in tensor_methods.py; it
# imports ops.py, whose ops subclass Function, so it comes after Function and before Tensor.
from .tensor_methods import TensorMethods  # noqa: E402


class Tensor(TensorMethods):
    """An n-dimensional array that remembers how it was computed, so gradients can flow back through it.

    ``data`` is the ``np.ndarray``; ``grad`` is filled by ``backward`` (on leaves, and on any tensor that
    called ``retain_grad()``); ``requires_grad`` marks tensors whose gradient is wanted. Python numbers and
    lists follow ``torch.tensor``: floats become float32 (minidl's default float, as PyTorch's), integers
    int64, booleans bool; NumPy arrays keep their dtype.
    """

    __array_priority__ = 1000  # make `ndarray + Tensor` call Tensor.__radd__ rather than NumPy's add

    def __init__(self, data, requires_grad=False, name=None):
        if isinstance(data, Tensor):
            data = data.data
        if isinstance(data, np.generic):  # NumPy scalars (what ops on 0-d arrays return) keep their dtype
            data = np.asarray(data)
        elif not isinstance(data, np.ndarray):
            data = np.asarray(data)
            if data.dtype.kind == "f":  # NumPy would make Python floats float64
                data = data.astype(np.float32)
            elif data.dtype.kind in "iu":
                data = data.astype(np.int64)
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._ctx = None  # the Function that produced this tensor (None for leaves)
        self._retain_grad = False
        self._version = 0  # bumped by every in-place change (tensor_methods.py), checked by backward

    shape = property(lambda self: Size(self.data.shape))
    dtype = property(lambda self: DType(self.data.dtype))  # NumPy's dtype, printed as minidl.float32
    ndim = property(lambda self: self.data.ndim)

    def detach(self):
        """A new leaf tensor sharing this one's data, cut off from the graph."""
        return Tensor(self.data)

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        """The Function that made this tensor (PyTorch's name for ``_ctx``); None for a leaf."""
        return self._ctx

    def retain_grad(self):
        """Also keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retain_grad = True
        return self

    def requires_grad_(self, flag=True):
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self):
        self.grad = None

    def __repr__(self):  # PyTorch's: tensor([1.0000, 2.5000], dtype=..., grad_fn=<AddBackward0>)
        suffixes = [f"grad_fn=<{self._ctx.name()}>" if self._ctx else "requires_grad=True"] if self.requires_grad else []
        if self.name:
            suffixes.append(f"name={self.name!r}")
        return tensor_repr(self.data, suffixes)

    def __format__(self, spec):
        """A single number formats as that number (``f"{loss:>7f}"``), as in PyTorch; others as ``repr``."""
        return format(self.data.item(), spec) if self.data.ndim == 0 else format(repr(self), spec)

    # --- the backward pass --------------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False):
        """Compute dself/dx for every tensor x in the graph that requires grad, accumulating into ``x.grad``.

        ``gradient`` is dL/dself, of self's shape; it may be omitted only for a single-element tensor (then
        dL/dself = 1). For a non-scalar y, ``y.backward(v)`` gives x the vector-Jacobian product vᵀ·(dy/dx).
        Gradients add up across calls, as in PyTorch, until ``zero_grad()``. The graph is freed afterwards
        unless ``retain_graph=True``.
        """
        grads = {id(self): _initial_grad(self, gradient)}  # dL/dt for tensors reached so far, summed over paths
        store = _GradStore(grads[id(self)])  # does t.grad += g (without a copy where that is safe)
        for t in reversed(graph_order(self)):  # each tensor after every tensor computed from it
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if t._ctx is None or t._retain_grad:
                store.add(t, g)
            if t._ctx is None:
                continue
            fn = t._ctx
            # the chain rule for one op: dL/d(input) from dL/d(output), added to what the input already got
            for inp, needs, ig in zip(fn.inputs, fn.needs_input_grad, fn.input_grads(g)):
                if needs and ig is not None:
                    # not in place: `ig` may be the very array another input also received
                    grads[id(inp)] = ig if id(inp) not in grads else grads[id(inp)] + ig
            if not retain_graph:
                fn.release()


# --- the machinery around backprop: argument checks, PyTorch's second spelling ---------------------------
def _initial_grad(t, grad):
    """dL/dt for ``t.backward(gradient)``: 1 for a single-element t when it is omitted, else it, checked."""
    if not t.requires_grad:
        raise RuntimeError(
            "backward() called on a tensor that does not require grad: none of the tensors it was "
            "computed from has requires_grad=True (or it was computed inside no_grad()), so there is "
            "no graph to differentiate."
        )
    if grad is None:
        if t.data.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a single-element output, got shape {t.data.shape}; "
                "pass gradient= (dL/d output, same shape) or reduce the output first, e.g. .sum()."
            )
        return np.ones_like(t.data)
    grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=t.dtype)
    if grad.shape != t.shape:
        raise ValueError(f"backward(): gradient has shape {grad.shape}, but the tensor has shape {t.data.shape}")
    return grad


class _GradStore:
    """``t.grad += g`` for the tensors of one backward pass, keeping ``g`` itself as ``t.grad`` when safe.

    Copying every gradient into ``.grad`` would cost a new parameter-sized allocation (and its page faults)
    per parameter and step. ``g`` can be kept when it is a fresh array nobody else holds; it must be copied
    when it is a view, or an array another tensor also received (``Add`` gives both inputs the same g), or
    the caller's own ``grad``.
    """

    def __init__(self, caller_grad):
        # the arrays some .grad (or the caller) holds, never to be handed on, by id; held here too, because
        # once an array is freed a new one may get its id (its address), and would then be copied needlessly
        self.kept = {id(caller_grad): caller_grad}

    def add(self, t, g):
        if t.grad is not None:
            new = t.grad + g
        elif g.flags.owndata and g.flags.writeable and g.dtype == t.dtype and id(g) not in self.kept:
            new = g
        else:
            new = g.astype(t.dtype, copy=True)
        self.kept[id(new)] = new
        t.grad = new.view(Grad)  # a NumPy array that prints as PyTorch prints a gradient (printing.py)


def _needs_input_grad(tensors):
    """For each input: does it need a gradient? (All False under ``no_grad``.)"""
    return tuple(_grad_enabled and t is not None and t.requires_grad for t in tensors)


def _ctx_style_forward(fn, inputs, options):
    """``apply`` for PyTorch's spelling: a static ``forward(ctx, *args)`` on Tensors, run without recording;
    non-Tensor arguments are no inputs of the graph. Returns (the input tensors, the output array)."""
    tensors = [x if isinstance(x, Tensor) else None for x in inputs]
    fn.needs_input_grad = _needs_input_grad(tensors)
    with no_grad():  # the forward's own tensor ops are not part of the graph
        out = type(fn).forward(fn, *inputs, **options)
    if not isinstance(out, Tensor):
        raise TypeError(f"{type(fn).__name__}.forward must return one Tensor, got {type(out).__name__}")
    return tensors, out.data


def _ctx_style_backward(fn, g):
    """``input_grads`` for PyTorch's spelling: ``backward(ctx, grad_output)`` on Tensors, one per input."""
    with no_grad():
        grads = type(fn).backward(fn, Tensor(g))
    grads = grads if isinstance(grads, tuple) else (grads,)
    n = len(fn.inputs)
    if len(grads) < n or any(x is not None for x in grads[n:]):  # extra Nones are fine, as in PyTorch
        raise RuntimeError(f"{type(fn).__name__}.backward returned {len(grads)} gradients for {n} inputs "
                           "of forward: return one per input (None for non-tensors)")
    return [None if x is None else np.asarray(x.data if isinstance(x, Tensor) else x) for x in grads]
