"""Whose defaults minidl follows where Keras and PyTorch differ: Keras's (the default) or PyTorch's.

The project reproduces two Keras tutorials, whose results depend on Keras's choices; a PyTorch program
expects PyTorch's. One switch selects the set:

    minidl.set_defaults("torch")            # from now on
    with minidl.set_defaults("torch"):      # inside the block only
        ...

``python -m minidl.as_torch program.py`` runs the program under "torch". What the switch changes, read
when a layer or an optimizer is built:

=====================  ===========================================  =============================================
                       "keras" (default)                            "torch"
=====================  ===========================================  =============================================
Linear, Conv2d weight  Glorot uniform, U(±√(6 / (fan_in + fan_out)))  U(±1/√fan_in) (kaiming uniform with a = √5)
Linear, Conv2d bias    zeros                                        U(±1/√fan_in)
Adam                   ε = 1e-7, added before the bias correction   ε = 1e-8, added after it (``eps_placement``)
=====================  ===========================================  =============================================

fan_in is the number of inputs of one unit (× the kernel area for a convolution). Everything else (SGD,
RMSprop, Adagrad, dropout, the losses) is the same under both: PyTorch's.
"""

CONVENTIONS = ("keras", "torch")

_selected = "keras"


def get_defaults():
    """The convention in use: "keras" or "torch"."""
    return _selected


class set_defaults:
    """Select the convention: ``set_defaults("torch")`` switches from now on; used in a ``with`` statement,
    it switches for the block only and restores the previous one afterwards."""

    def __init__(self, convention):
        global _selected
        if convention not in CONVENTIONS:
            raise ValueError(f"set_defaults: unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
        self.previous, _selected = _selected, convention

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        global _selected
        _selected = self.previous
