"""Which kernels run the convolution, pooling and Gram-matrix ops: the textbook ones or the fast ones.

``minidl.textbook`` holds the plain versions a student reads (im2col over the whole batch, one matrix
product, col2im); ``minidl.fast`` holds engineered versions that compute the same numbers faster
(chunks, threads, direct BLAS calls). ``F.conv2d``, ``F.max_pool2d``, ``F.avg_pool2d`` and
``style.gram_matrix``, and everything built on them (``nn.Conv2d``, VGG19, style transfer), and Adam's
step (``optim.Adam.update``) run on the selected set:

    minidl.use_kernels("textbook")          # from now on
    with minidl.use_kernels("textbook"):    # inside the block only
        ...

or ``MINIDL_KERNELS=textbook python examples/fashion_cnn.py`` to run a program unchanged on the textbook
kernels (so a debugger steps through the very code you read). The default is "fast".

``F.relu`` and ``F.linear`` (so ``nn.ReLU`` and ``nn.Linear``) take the fast set's versions too, through
``op``; the textbook set has none of its own for them: they are the Functions written in ``functional.py``.
Likewise ``nn.Sequential`` asks the set for the steps to run (``sequential_steps``): the fast set runs a
``Conv2d`` and the ``ReLU`` after it as one op (``minidl/fast/fusion.py``), the textbook set each layer.
"""
import importlib
import os

KERNEL_SETS = ("fast", "textbook")

_selected = None  # None until the first use: then MINIDL_KERNELS, or "fast"


def _from_environment():
    name = os.environ.get("MINIDL_KERNELS", "fast")
    if name not in KERNEL_SETS:
        raise ValueError(f"MINIDL_KERNELS={name!r} is not a kernel set: set it to {' or '.join(KERNEL_SETS)} (both "
                         "run on the CPU), or unset it for the default, fast")
    return name


def selected():
    """The name of the kernel set in use: "fast" or "textbook"."""
    global _selected
    if _selected is None:
        _selected = _from_environment()
    return _selected


_modules = {}  # kernel set name -> its module, once imported


def active():
    """The module of the kernel set in use (``minidl.fast`` or ``minidl.textbook``), imported on first use."""
    name = selected()
    module = _modules.get(name)
    if module is None:  # every op asks, several times a training step: import_module costs a few µs a call
        module = _modules[name] = importlib.import_module(f"minidl.{name}")
    return module


class use_kernels:
    """Select the kernel set: ``use_kernels("textbook")`` switches from now on; used in a ``with``
    statement, it switches for the block only and restores the previous set afterwards."""

    def __init__(self, name):
        global _selected
        if name not in KERNEL_SETS:
            raise ValueError(f"use_kernels: unknown kernel set {name!r}; choose one of {', '.join(KERNEL_SETS)}")
        self.previous, _selected = selected(), name

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _selected
        _selected = self.previous


def op(name, plain):
    """The selected kernel set's function ``name`` (e.g. ``"relu"``), or ``plain`` when the set has none
    (the textbook set, for the ops ``functional.py`` writes out itself)."""
    return getattr(active(), name, plain)


def sequential_steps(layers):
    """The steps a ``Sequential`` of ``layers`` runs, one call each: the layers themselves, or, on the fast
    kernels, some of them fused into one op (``minidl/fast/fusion.py``)."""
    return op("sequential_steps", list)(layers)
