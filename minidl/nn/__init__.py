"""Layers and models built from ops: ``Module``, ``Parameter`` and the layers users compose."""
from .. import functional
from . import init
from .layers import Dropout, Flatten, Linear, ReLU, Sequential, Sigmoid, Tanh
from .loss import CrossEntropyLoss, MSELoss
from .module import Module, Parameter
from .conv import AvgPool2d, Conv2d, MaxPool2d
from .saving import ModelFileError, load_model
