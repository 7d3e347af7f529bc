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

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and models. Subclasses set parameters/sub-modules in ``__init__`` and define
    ``forward``; calling the module calls ``forward``."""

    training = True

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- traversal ---------------------------------------------------------------------------------
    # As in PyTorch, a module or parameter reachable twice (a layer used twice) is listed once, under
    # the first name; a Sequential's children are named "0", "1", ...
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

    def _modules(self):
        """(attribute name, module) for every attribute holding a module, repeats included."""
        return [(name, value) for name, value in vars(self).items() if isinstance(value, Module)]

    def named_children(self):
        seen = set()
        for name, value in self._modules():
            if id(value) not in seen:
                seen.add(id(value))
                yield name, value

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, prefix="", _seen=None):
        """("", self) first, then every module inside, by dotted name ("linear_relu_stack.0")."""
        seen = set() if _seen is None else _seen
        if id(self) in seen:
            return
        seen.add(id(self))
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name, seen)

    def modules(self):
        return (m for _, m in self.named_modules())

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

    # --- devices and dtypes ------------------------------------------------------------------------
    def to(self, *args, dtype=None, device=None):
        """``model.to(device)``, ``model.to(dtype)``, ``model.to(device, dtype)``: minidl runs on the CPU,
        so a device is only checked ("cpu"; any other raises one line); a float dtype converts every
        parameter in place (the Parameter objects stay the same, so an optimizer built before still holds
        them). Returns the module, as in PyTorch."""
        from .. import dtypes

        dtype, _ = dtypes.to_arguments(args, dtype, device)
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind != "f":
                raise TypeError(f"{type(self).__name__}.to() only accepts floating point dtypes, got {dtype}")
            for p in self.parameters():
                if p.dtype != dtype:
                    p.data = p.data.astype(dtype)
                    p.grad = None if p.grad is None else p.grad.astype(dtype)
        return self

    def cpu(self):
        return self

    def cuda(self, device=None):
        return self.to("cuda" if device is None else f"cuda:{device}" if isinstance(device, int) else device)

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def half(self):
        return self.to(np.float16)

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
                raise ValueError(f"{source}: parameter '{name}' has shape {value.shape}, the model expects {p.data.shape}")
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
        from .saving import write_model_file  # not at the top: saving.py imports the layers, which import this file

        return write_model_file(self, path)

    def load(self, path):
        """Load parameters saved by ``save``; a name or shape mismatch names the parameter and the file.

        A missing file, a file that is not a model file or a damaged one raises naming the file.
        """
        from .saving import read_model_file  # on first use, as in save

        state, attrs = read_model_file(path)
        try:
            return self.load_state_dict(state, source=f"file {path}")
        except KeyError as e:  # other layers than the file's: say what the file holds
            if "architecture" not in attrs:
                raise
            raise KeyError(f"{e.args[0]}. The file holds {_describe(attrs['architecture'])}; "
                           f"nn.load_model({str(path)!r}) rebuilds it") from None

    def __repr__(self):
        """PyTorch's layout: ``Linear(in_features=784, ...)`` for a layer, and for a container one line per
        child, ``(name): repr(child)``, nested children indented two more spaces."""
        extra = self.extra_repr()
        children = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules()]
        if not children and "\n" not in extra:
            return f"{type(self).__name__}({extra})"
        lines = (extra.split("\n") if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"

    def extra_repr(self):
        return ""


def _describe(architecture):
    """One line for a saved layer list, e.g. 'Sequential(Flatten(), Linear(in_features=784, ...), ...)'."""
    def show(arch):
        config = arch["config"]
        if arch["class"] == "Sequential":
            return "Sequential(" + ", ".join(show(layer) for layer in config["layers"]) + ")"
        return arch["class"] + "(" + ", ".join(f"{k}={show(v) if isinstance(v, dict) else v}"
                                              for k, v in config.items()) + ")"

    return show(json.loads(architecture))
