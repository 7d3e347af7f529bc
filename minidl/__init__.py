"""minidl: a deep-learning library written from scratch in NumPy, to read and learn backprop from.

Start reading at ``autograd.py`` (``Tensor``, ``Function`` and the backward pass), then ``ops.py`` and
``functional.py`` (each op's forward next to its backward), ``textbook/`` (convolution, pooling, Gram
matrices), ``nn/`` (layers), ``optim.py`` (optimizers) and ``gradcheck.py``.

Importing minidl changes nothing outside minidl. The engineered kernels (``minidl.fast``) load on the
first convolution, unless ``use_kernels("textbook")`` selected the plain ones.
"""
from . import functional, nn, optim
from .autograd import Function, Tensor, is_grad_enabled, no_grad
from .gradcheck import GradcheckError, gradcheck
from .kernels import use_kernels
from .random import manual_seed

__version__ = "0.1.0"
