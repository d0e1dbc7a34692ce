"""dtrain.multiprocessing: torch.multiprocessing's process-starting API
(spawn, start_processes), implemented in dtrain/_launch/spawn.py."""
from ._launch.spawn import (ProcessContext, ProcessException,
                            ProcessExitedException, ProcessRaisedException,
                            spawn, start_processes)

__all__ = ["spawn", "start_processes", "ProcessContext", "ProcessException",
           "ProcessRaisedException", "ProcessExitedException"]
