"""dtrain.distributed: what torch.distributed offers, so far the stores
that ranks rendezvous through (process groups build on them)."""
from .store import (DistError, DistNetworkError, DistStoreError,
                    DistStoreTimeoutError, HashStore, PrefixStore, Store,
                    TCPStore)

__all__ = ["Store", "TCPStore", "PrefixStore", "HashStore", "DistError",
           "DistStoreError", "DistNetworkError", "DistStoreTimeoutError"]
