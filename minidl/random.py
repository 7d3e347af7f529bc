"""minidl's one source of randomness (weight initialisation, dropout), seedable like ``torch.manual_seed``."""
import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed):
    """Make every later initialisation and dropout mask reproducible."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def generator():
    """The generator minidl draws from (replaced by ``manual_seed``)."""
    return _generator
