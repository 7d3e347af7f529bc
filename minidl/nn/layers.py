"""The basic layers: ``Linear``, activations, ``Flatten``, ``Dropout`` and the ``Sequential`` container."""
from .. import functional as F, kernels
from . import init
from .module import Module, Parameter


class Linear(Module):
    """y = x Wᵀ + b with W of shape (out_features, in_features), as in PyTorch.

    W is Glorot-uniform initialised and b starts at zero (Keras's Dense defaults, which reach the
    reference accuracy on Fashion-MNIST); under ``minidl.set_defaults("torch")`` both start as PyTorch's,
    U(±1/√in_features) (``init.layer_weight``, ``init.layer_bias``).
    """

    def __init__(self, in_features, out_features, bias=True):
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(init.layer_weight((out_features, in_features)))
        self.bias = Parameter(init.layer_bias(out_features, in_features)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features, "bias": self.bias is not None}

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    """max(x, 0) (``functional.relu``). ``inplace=True`` is accepted and printed, as PyTorch programs write
    it (torchvision's VGG does), but the result is still a new tensor and the input is left as it was:
    minidl's ReLU has no in-place form."""

    def __init__(self, inplace=False):
        self.inplace = inplace

    def forward(self, x):
        return F.relu(x)

    def get_config(self):
        return {"inplace": True} if self.inplace else {}  # {} as files saved before ReLU took an argument

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Sigmoid(Module):
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    def forward(self, x):
        return F.tanh(x)


class _SoftmaxLike(Module):
    """Shared by ``Softmax`` and ``LogSoftmax``: the dimension whose values are normalised."""

    op = None  # the functional op, set by each subclass

    def __init__(self, dim=None):
        self.dim = dim

    def forward(self, x):  # dim None: PyTorch's implicit choice and its warning, at the line calling the layer
        return self.op(x, self.dim, _stacklevel=5)

    def get_config(self):
        return {"dim": self.dim}

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxLike):
    """Probabilities along ``dim``: e^{x_i} / Σ_j e^{x_j} (``functional.softmax``)."""

    op = staticmethod(F.softmax)


class LogSoftmax(_SoftmaxLike):
    """log softmax along ``dim``, computed stably (``functional.log_softmax``)."""

    op = staticmethod(F.log_softmax)


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
        return f"p={self.p}, inplace=False"


class Sequential(Module):
    """Applies its layers in order; the i-th layer is the attribute (and parameter prefix) ``str(i)``."""

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)

    def __iter__(self):
        return iter(self._layers())

    def __len__(self):
        return len(self._layers())

    def __getitem__(self, i):
        return self._layers()[i]

    def _layers(self):
        return [layer for _, layer in self._modules()]  # a layer given twice runs twice

    def forward(self, x):
        for layer in kernels.sequential_steps(self._layers()):  # the fast kernels fuse Conv2d + ReLU
            x = layer(x)
        return x

    def get_config(self):
        """{"layers": [each layer's {"class", "config"}]}, or None if a layer is not one of minidl's."""
        from .saving import architecture  # here, not at the top: saving.py imports this file (its layer classes)

        layers = [architecture(layer) for layer in self._layers()]
        return None if None in layers else {"layers": layers}
