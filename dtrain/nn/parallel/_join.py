"""DistributedDataParallel.join(): training with uneven inputs.

While the context is active, every forward on a rank that still has data
all-reduces [1, will_sync] so the ranks can count who is still active.
A rank that leaves the loop (exits the context) shadows the others: per
iteration it all-reduces [0, 0], and while some rank is active, mirrors
that rank's collectives: the bucket rebuild (once), the buffer broadcast
and, when the iteration synchronises gradients, the bucket allreduces
with zeros. Once every rank has left, the last to leave broadcasts the
final parameters and buffers (as PyTorch's join does).
"""
from ..._dtypes import int64
from ..._ops.creation import tensor
from . import _sync

_EARLY = ("Detected at least one rank that exhausted inputs. Throwing "
          "across all ranks.")


class DDPJoin:
    def __init__(self, ddp, divide_by_initial_world_size, enable,
                 throw_on_early_termination):
        self.ddp = ddp
        self.divide_by_initial = divide_by_initial_world_size
        self.enable = enable
        self.throw = throw_on_early_termination

    def __enter__(self):
        if self.enable:
            self.ddp._join = self
        return self

    def _allreduce(self, values, op=None):
        from ... import distributed as dist
        t = tensor(values, dtype=int64)
        dist.all_reduce(t, op=op or dist.ReduceOp.SUM,
                        group=self.ddp.process_group)
        return [int(v) for v in t.tolist()]

    def active_ranks(self, sync):
        """Called by each forward of a rank that still has data; returns
        the reducer's divisor (0: the world size)."""
        active, _ = self._allreduce([1, int(sync)])
        if self.throw and active < self.ddp._world:
            raise RuntimeError(_EARLY)
        return 0 if self.divide_by_initial else active

    def __exit__(self, exc_type, exc, tb):
        if self.ddp._join is self:
            self.ddp._join = None
        if not self.enable or exc_type is not None:
            return False
        self._shadow()
        return False

    def _shadow(self):
        ddp = self.ddp
        shadowed = 0
        while True:
            active, sync = self._allreduce([0, 0])
            if active == 0:
                break
            if self.throw:
                raise RuntimeError(_EARLY)
            shadowed += 1
            ddp._reducer.prepare_forward()
            if ddp._will_sync_buffers():
                ddp._sync_buffers()
            if sync:
                ddp._reducer.shadow_backward()
        from ... import distributed as dist
        (src,) = self._allreduce([ddp._rank if shadowed == 0 else -1],
                                 op=dist.ReduceOp.MAX)
        _sync.broadcast_coalesced(ddp._params + ddp._buffers_list,
                                  ddp.process_group, src=src)
