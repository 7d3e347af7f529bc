"""``Module`` and ``Parameter``: the containers that turn ops into reusable layers, as in ``torch.nn``.

A Module finds its parameters by looking at its own attributes: every ``Parameter`` assigned to
``self.something`` is a parameter named ``something``, every Module assigned to an attribute is a child
whose parameters get the prefix ``something.``. No registration calls are needed.
"""
import json

import numpy as np

from ..autograd import Tensor


class Parameter(Tensor):
    """A Tensor that is a learnable weight: ``requires_grad=True`` and found by ``Module.parameters()``."""

    def __init__(self, data, requires_grad=True, name=None):
        super().__init__(data, requires_grad=requires_grad, name=name)


class Module:
    """Base class of layers and models. Subclasses set parameters/sub-modules in ``__init__`` and define
    ``forward``; calling the module calls ``forward``."""

    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- traversal ---------------------------------------------------------------------------------
    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix="", *, remove_duplicate=True):
        """(dotted name, Parameter) for every parameter of this module and its children, in definition order.

        A tensor reached twice (a layer used twice, ``self.b = self.a``) is listed once, under its first
        name, as in PyTorch: an optimizer then moves it once per step, and a file holds it once.
        ``remove_duplicate=False`` lists it under every name.
        """
        seen = set()
        for name, p in self._every_parameter(prefix):
            if not remove_duplicate or id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _every_parameter(self, prefix):
        for name, value in vars(self).items():
            full = f"{prefix}.{name}" if prefix else name
            if isinstance(value, Parameter):
                yield full, value
            elif isinstance(value, Module):
                yield from value._every_parameter(full)

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    # --- training state ----------------------------------------------------------------------------
    def zero_grad(self):
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, flag=True):
        """Freeze (False) or unfreeze all parameters; frozen layers skip their weight-gradient work."""
        for p in self.parameters():
            p.requires_grad = flag
        return self

    # --- weights in and out ------------------------------------------------------------------------
    def state_dict(self):
        """{dotted name: array} of every parameter (the arrays themselves, not copies), a shared one once."""
        return {name: p.data for name, p in self.named_parameters()}

    def load_state_dict(self, state, source="state dict"):
        """Copy arrays into the parameters, after checking that names and shapes match exactly.

        ``source`` names where the arrays came from (e.g. a file) in error messages.
        """
        params = dict(self.named_parameters())
        missing = [n for n in params if n not in state]
        unexpected = [n for n in state if n not in params]
        if missing or unexpected:
            parts = []
            if missing:
                parts.append(f"missing parameters {missing}")
            if unexpected:
                parts.append(f"unexpected parameters {unexpected}")
            raise KeyError(f"{source} does not match {type(self).__name__}: " + "; ".join(parts))
        for name, p in params.items():
            value = np.asarray(state[name])
            if value.shape != p.shape:
                raise ValueError(f"{source}: parameter '{name}' has shape {value.shape}, the model expects {p.shape}")
        for name, p in params.items():  # only after every check passed: never leave a half-loaded model
            p.data[...] = state[name]
        return self

    def get_config(self):
        """The constructor arguments that rebuild this layer (Keras's ``get_config``), used by ``save`` so
        that ``nn.load_model`` can rebuild a model from its file. {} for a layer built without arguments,
        None when unknown (a custom Module: it is saved with its weights only)."""
        return {} if type(self).__init__ is object.__init__ else None

    def save(self, path):
        """Write the parameters to an HDF5 file, one dataset per parameter at its dotted name with '/', and,
        for a Sequential of minidl's layers, the layer list (see ``nn.saving``).

        The file is written under a temporary name and renamed when complete.
        """
        from .saving import write_model_file

        return write_model_file(self, path)

    def load(self, path):
        """Load parameters saved by ``save``; a name or shape mismatch names the parameter and the file.

        A missing file, a file that is not a model file or a damaged one raises naming the file.
        """
        from .saving import read_model_file

        state, attrs = read_model_file(path)
        try:
            return self.load_state_dict(state, source=f"file {path}")
        except KeyError as e:  # other layers than the file's: say what the file holds
            if "architecture" not in attrs:
                raise
            raise KeyError(f"{e.args[0]}. The file holds {_describe(attrs['architecture'])}; "
                           f"nn.load_model({str(path)!r}) rebuilds it") from None

    def __repr__(self):
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self.named_children()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        return f"{type(self).__name__}({extra}\n" + "\n".join(lines) + "\n)"

    def extra_repr(self):
        return ""


def _describe(architecture):
    """One line for a saved layer list, e.g. 'Sequential(Flatten(), Linear(in_features=784, ...), ...)'."""
    def show(arch):
        config = arch["config"]
        if arch["class"] == "Sequential":
            return "Sequential(" + ", ".join(show(layer) for layer in config["layers"]) + ")"
        return arch["class"] + "(" + ", ".join(f"{k}={v}" for k, v in config.items()) + ")"

    return show(json.loads(architecture))
