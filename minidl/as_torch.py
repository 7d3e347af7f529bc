"""Run a program written for PyTorch on minidl, changing nothing but what ``import torch`` finds.

    python -m minidl.as_torch program.py [args...]

``torch`` becomes ``minidl`` for the run, and so do its parts PyTorch's beginner course imports (the
table ``MODULES``): ``torch.nn`` is ``minidl.nn``, ``torch.utils.data`` is ``minidl.utils.data``,
``torchvision`` is ``minidl.vision``, and so on, so a learner can step from PyTorch tutorial code into
minidl's forward and backward. docs/pytorch.md lists what is there and what differs.

The run uses NumPy's BLAS on one thread, as minidl's own training examples do (``minidl.fast.parallel``):
a PyTorch program's matrix products are a training loop's small ones, which a second BLAS thread slows
down (it spins waiting for the next product); the count is restored afterwards.
"""
import importlib
import runpy
import sys
from unittest import mock

# the name a program imports -> minidl's module (or object) that answers, as a dotted path below minidl
MODULES = {
    "torch": "", "torch.nn": "nn", "torch.nn.functional": "functional", "torch.optim": "optim",
    "torch.utils": "utils", "torch.utils.data": "utils.data",
    "torch.backends": "backends", "torch.backends.mps": "backends.mps", "torch.backends.cudnn": "backends.cudnn",
    "torch.accelerator": "accelerator", "torch.cuda": "cuda",
    "torchvision": "vision", "torchvision.datasets": "vision.datasets",
    "torchvision.transforms": "vision.transforms", "torchvision.io": "vision.io",
    "torchvision.models": "vision.models",
}


def resolve(path):
    """minidl's module or object at the dotted ``path`` ("" is minidl itself)."""
    import minidl

    if not path:
        return minidl
    try:
        return importlib.import_module(f"minidl.{path}")
    except ModuleNotFoundError:  # an object, not a module: minidl.accelerator, minidl.backends.mps
        parent, _, name = f"minidl.{path}".rpartition(".")
        return getattr(importlib.import_module(parent), name)


def run(path, argv=()):
    """Run the file at ``path`` as ``__main__`` with ``import torch`` pointing at minidl; the module table
    is restored afterwards. Returns the program's globals."""
    import minidl

    from .fast.parallel import blas_threads

    saved = {name: sys.modules.get(name) for name in MODULES}
    sys.modules.update({name: resolve(target) for name, target in MODULES.items()})
    printed_as, minidl.printing.MODULE = minidl.printing.MODULE, "torch"  # prints torch.Size([...]), torch.float64
    try:  # PyTorch's defaults (init, Adam's ε) for a PyTorch program: minidl.conventions
        with mock.patch.object(sys, "argv", [str(path), *argv]), minidl.set_defaults("torch"), blas_threads(1):
            return runpy.run_path(str(path), run_name="__main__")
    finally:  # only these entries: modules the program imported stay imported
        minidl.printing.MODULE = printed_as
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: python -m minidl.as_torch program.py [args...]")
    run(sys.argv[1], sys.argv[2:])
