"""PyTorch's ``torch.backends``: none of its accelerator back ends exists here, minidl runs on the CPU.

``backends.mps.is_available()`` is False, so the course's ``"cuda" if torch.cuda.is_available() else "mps"
if torch.backends.mps.is_available() else "cpu"`` picks the CPU. ``backends.cudnn`` is there too (unavailable)
so that a program setting ``torch.backends.cudnn.benchmark = True`` runs.
"""
from .dtypes import _NoAccelerator


class _Backend(_NoAccelerator):
    """An accelerator back end minidl does not have; its switches may be set, they change nothing."""

    is_built = staticmethod(_NoAccelerator.is_available)

    def __init__(self):
        self.enabled, self.benchmark, self.deterministic = False, False, False


mps = _Backend()
cudnn = _Backend()

__all__ = ["mps", "cudnn"]
