"""Loss modules, as in ``torch.nn``: each holds its options and calls the loss of ``minidl.functional``."""
from .. import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, reduction="mean"):
        self.reduction = F._check_reduction(reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """loss(input, target) = mean (or sum, or none) of (input - target)²: ``functional.mse_loss``."""

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """loss(logits (N, C), labels (N,)) = cross-entropy of softmax(logits): ``functional.cross_entropy``."""

    def forward(self, input, target):
        return F.cross_entropy(input, target, reduction=self.reduction)
