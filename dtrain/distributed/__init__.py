"""dtrain.distributed: torch.distributed's API. Stores (TCPStore,
FileStore, PrefixStore, HashStore) for rendezvous, process groups over
Gloo (CPU) and the collectives (all_reduce, broadcast, ..., send/recv,
object collectives with a safe encoding)."""
from .store import (DistError, DistNetworkError, DistStoreError,
                    DistStoreTimeoutError, HashStore, PrefixStore, Store,
                    TCPStore)
from .file_store import FileStore
from ._grad_bucket import GradBucket
from .c10d import *  # noqa: F401,F403
from ._collectives import *  # noqa: F401,F403
from ._objects import *  # noqa: F401,F403
from . import c10d as _c10d, _collectives, _objects

__all__ = (["Store", "TCPStore", "PrefixStore", "HashStore", "FileStore",
            "DistError", "DistStoreError", "DistNetworkError",
            "DistStoreTimeoutError", "GradBucket"]
           + _c10d.__all__ + _collectives.__all__ + _objects.__all__)

# starting workers from Python (a notebook, a REPL, a script): see
# dtrain/_launch/spawn.py; dtrain.multiprocessing.spawn is torch's spelling
from .._launch.spawn import launch, spawn  # noqa: E402

__all__ += ["spawn", "launch"]
