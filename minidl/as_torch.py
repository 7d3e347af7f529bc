"""Run a program written for PyTorch on minidl, changing nothing but what ``import torch`` finds.

    python -m minidl.as_torch program.py [args...]

``torch``, ``torch.nn``, ``torch.nn.functional`` and ``torch.optim`` become ``minidl``, ``minidl.nn``,
``minidl.functional`` and ``minidl.optim`` for the run, so a learner can step from PyTorch tutorial code
into minidl's forward and backward. docs/pytorch.md lists what is there and what differs.
"""
import runpy
import sys
from unittest import mock

MODULES = {"torch": "", "torch.nn": "nn", "torch.nn.functional": "functional", "torch.optim": "optim"}


def run(path, argv=()):
    """Run the file at ``path`` as ``__main__`` with ``import torch`` pointing at minidl; the module table
    is restored afterwards. Returns the program's globals."""
    import minidl

    saved = {name: sys.modules.get(name) for name in MODULES}
    sys.modules.update({name: getattr(minidl, attr) if attr else minidl for name, attr in MODULES.items()})
    printed_as, minidl.printing.MODULE = minidl.printing.MODULE, "torch"  # prints torch.Size([...]), torch.float64
    try:  # PyTorch's defaults (init, Adam's ε) for a PyTorch program: minidl.conventions
        with mock.patch.object(sys, "argv", [str(path), *argv]), minidl.set_defaults("torch"):
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
