"""dtrain.nn.parallel: DistributedDataParallel (torch's spelling)."""
from .distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
