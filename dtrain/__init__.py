"""dtrain: data-parallel training from the tensor up.

The numerics live in the C extension dtrain._C; this package gives it the
PyTorch-shaped surface (dtrain.tensor, dtrain.float32, Tensor methods,
dtrain.nn, dtrain.distributed, ...). It normalises arguments and does no
math of its own.
"""
from . import _C
from ._C import from_numpy
from ._dtypes import *  # noqa: F401,F403  float32, int64, ... and aliases
from ._dtypes import dtype, get_default_dtype
from ._device import device
from ._tensor import Size, Tensor
from ._ops.creation import *  # noqa: F401,F403
from ._ops.elementwise import *  # noqa: F401,F403
from ._ops.reduce import *  # noqa: F401,F403
from ._ops.index import *  # noqa: F401,F403
from . import autograd
from .serialization import load, save
from . import nn, optim, utils  # noqa: E402  (they import the core above)
from .autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled

__version__ = "0.1.0"
