"""Layers and models built from ops: ``Module``, ``Parameter`` and the layers users compose."""
from .. import functional
from . import init
from .layers import Dropout, Flatten, Linear, LogSoftmax, ReLU, Sequential, Sigmoid, Softmax, Tanh
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, SmoothL1Loss
from .module import Module, Parameter
from .conv import AdaptiveAvgPool2d, AvgPool2d, Conv2d, MaxPool2d
from .saving import ModelFileError, load_model
