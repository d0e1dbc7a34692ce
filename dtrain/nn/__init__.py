"""dtrain.nn: layers, losses, init and functional, as torch.nn."""
from . import functional, init, parallel, utils
from .modules import *  # noqa: F401,F403
from .modules import Module
from .parameter import Buffer, Parameter
