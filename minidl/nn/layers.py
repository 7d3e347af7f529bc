"""The basic layers: ``Linear``, activations, ``Flatten``, ``Dropout`` and the ``Sequential`` container."""
import numpy as np

from .. import functional as F
from . import init
from .module import Module, Parameter


class Linear(Module):
    """y = x Wᵀ + b with W of shape (out_features, in_features), as in PyTorch.

    W is Glorot-uniform initialised and b starts at zero (Keras's Dense defaults, which reach the
    reference accuracy on Fashion-MNIST).
    """

    def __init__(self, in_features, out_features, bias=True):
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(init.glorot_uniform((out_features, in_features)))
        self.bias = Parameter(np.zeros(out_features, dtype=np.float32)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None}

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class Flatten(Module):
    """Merges dimensions ``start_dim``..``end_dim`` into one. The defaults keep the batch dimension:
    (N, d1, d2, ...) -> (N, d1·d2·...); ``Flatten(0, 1)`` turns (N, 1) into (N,)."""

    def __init__(self, start_dim=1, end_dim=-1):
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x):
        return x.flatten(self.start_dim, self.end_dim)

    def get_config(self):
        # the defaults are left out: files saved before Flatten took arguments read {} and mean the same
        changed = {"start_dim": self.start_dim != 1, "end_dim": self.end_dim != -1}
        return {name: getattr(self, name) for name, differs in changed.items() if differs}

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Randomly zeroes elements with probability ``p`` in training mode; identity in ``eval()`` mode."""

    def __init__(self, p=0.5):
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def get_config(self):
        return {"p": self.p}

    def extra_repr(self):
        return f"p={self.p}"


class Sequential(Module):
    """Applies its layers in order; the i-th layer is the attribute (and parameter prefix) ``str(i)``."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __iter__(self):
        return self.children()

    def __len__(self):
        return sum(1 for _ in self.children())

    def __getitem__(self, i):
        return list(self.children())[i]

    def forward(self, x):
        for layer in self.children():
            x = layer(x)
        return x

    def get_config(self):
        """{"layers": [each layer's {"class", "config"}]}, or None if a layer is not one of minidl's."""
        from .saving import architecture  # here, not at the top: saving.py imports this file (its layer classes)

        layers = [architecture(layer) for layer in self.children()]
        return None if None in layers else {"layers": layers}
