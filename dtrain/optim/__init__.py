"""dtrain.optim: optimizers and learning-rate schedulers with torch.optim's
surface. Each optimizer's per-parameter update is one fused C loop
(csrc/ops/optim.c); this package keeps the groups, state and checkpoints.
"""
from . import lr_scheduler
from .adam import Adam
from .adamw import AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "AdamW", "Optimizer", "SGD", "lr_scheduler"]
