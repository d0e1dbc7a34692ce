from .activation import (GELU, Dropout, Flatten, LogSoftmax, ReLU, Sigmoid,
                         Softmax, Tanh)
from .container import ModuleDict, ModuleList, Sequential
from .conv import Conv2d
from .linear import Identity, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from .sparse import Embedding
from .sync_batchnorm import SyncBatchNorm
