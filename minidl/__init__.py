"""minidl: a deep-learning library written from scratch in NumPy, to read and learn backprop from.

Start reading at ``autograd.py`` (``Tensor``, ``Function`` and the backward pass), then ``ops.py``,
``indexing.py``, ``functional.py`` and ``losses.py`` (each op's forward next to its backward),
``textbook/`` (convolution, pooling, Gram matrices), ``nn/`` (layers), ``optim.py`` (optimizers) and
``gradcheck.py``.

The names follow PyTorch (``minidl.tensor``, ``minidl.randn``, ``minidl.float32``, ``minidl.nn``,
``minidl.optim``, ``minidl.autograd.Function``): docs/pytorch.md lists them and what differs.

Every submodule is reachable from a bare ``import minidl`` (``minidl.viz.draw_graph(...)``,
``minidl.datasets.load_fashion_mnist(...)``): it is imported the first time its name is used.
Importing minidl changes nothing outside minidl. The engineered kernels (``minidl.fast``) load on the
first convolution, unless ``use_kernels("textbook")`` selected the plain ones.
"""
from . import autograd, functional, nn, optim
from .autograd import Function, Tensor, is_grad_enabled, no_grad
from .conventions import get_defaults, set_defaults
from .creation import (arange, as_tensor, empty, eye, from_numpy, full, is_tensor, linspace, ones, ones_like, rand,
                       rand_like, randint, randn, randn_like, tensor, zeros, zeros_like)
from .dtypes import (accelerator, bool, cuda, device, double, float, float16, float32, float64, get_default_device,
                     half, int, int8, int16, int32, int64, long, set_default_device, short, uint8)
from .gradcheck import GradcheckError, gradcheck
from .kernels import use_kernels
from .random import manual_seed
from .printing import Size
from .serialization import load, save
from .tensor_functions import (abs, add, argmax, argmin, cat, clamp, cos, div, exp, flatten, gather, log, matmul, max,
                               log_softmax, mean, min, mm, mul, numel, permute, pow, relu, reshape, scatter,
                               scatter_add, sigmoid, sin, softmax, sqrt, squeeze, stack, sub, sum, tanh, transpose,
                               unsqueeze)

__version__ = "0.1.0"

# A submodule is imported the first time its name is used (PEP 562), so `import minidl` stays quick and
# matplotlib, h5py or the fast kernels load only for a program that uses them.
def __getattr__(name):
    import importlib
    import importlib.util

    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
