"""minidl: a deep-learning library written from scratch in NumPy, to read and learn backprop from.

Start reading at ``tensor.py`` (the autograd engine), then ``ops.py`` and ``functional.py`` (each op's
forward next to its backward), ``nn/`` (layers), ``optim.py`` (optimizers) and ``gradcheck.py``.
"""
from . import functional, memory, nn, optim
from .gradcheck import GradcheckError, gradcheck
from .random import manual_seed
from .tensor import Function, Tensor, is_grad_enabled, no_grad

__version__ = "0.1.0"

memory.keep_freed_memory()
