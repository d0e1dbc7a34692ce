"""DistributedDataParallel: torch.nn.parallel.DistributedDataParallel.

The gradient reduction itself is the C reducer (csrc/dist/reducer.c),
driven by the autograd engine's hooks with no Python on the way; this
module checks and syncs the model at construction, tells the reducer
where each iteration starts, broadcasts buffers, and offers no_sync(),
join(), communication hooks and the step statistics.
"""
import contextlib
import warnings

from ... import _C
from ...autograd import is_grad_enabled, no_grad
from ..modules.module import Module
from . import _sync, _trace

__all__ = ["DistributedDataParallel"]

_FIRST_BUCKET_BYTES = 1024 * 1024          # PyTorch's kDefaultFirstBucketBytes


def _dist():
    from ... import distributed
    return distributed


class DistributedDataParallel(Module):
    """Data parallelism over a process group: each rank runs the module on
    its part of the batch; backward averages the gradients across ranks,
    bucket by bucket, while the rest of the backward pass runs.

    Arguments are PyTorch's. CPU modules only: device_ids and
    output_device must be None."""

    def __init__(self, module, device_ids=None, output_device=None, dim=0,
                 broadcast_buffers=True, process_group=None,
                 bucket_cap_mb=None, find_unused_parameters=False,
                 check_reduction=False, gradient_as_bucket_view=False,
                 static_graph=False):
        super().__init__()
        dist = _dist()
        if device_ids is not None or output_device is not None:
            raise ValueError(
                f"DistributedDataParallel device_ids and output_device "
                f"arguments only work with single-device/multiple-device GPU "
                f"modules; dtrain modules are on the CPU, so they must be "
                f"None (got device_ids {device_ids}, output_device "
                f"{output_device})")
        if bucket_cap_mb is None:
            bucket_cap_mb = 25
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must "
                             f"be positive, got {bucket_cap_mb}")
        self.module = module
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        self.bucket_bytes_cap = int(bucket_cap_mb * 1024 * 1024)
        self.require_backward_grad_sync = True
        self.require_forward_param_sync = True
        self.process_group = dist._c10d._resolve(process_group,
                                                 "DistributedDataParallel")
        if self.process_group is None:
            raise ValueError("DistributedDataParallel: this rank is not a "
                             "member of process_group")
        pg = self.process_group
        self._rank, self._world = pg.rank(), pg.size()

        named = _sync.named_params(module)
        self._param_names = [n for n, _ in named]
        self._params = [p for _, p in named]
        self._buffers_list = [b for _, b in module.named_buffers()]
        _sync.verify_params(named, pg)
        _sync.broadcast_coalesced(self._params + self._buffers_list, pg)
        self._reducer = _C._Reducer(
            pg._c, self._params, self._param_names,
            min(_FIRST_BUCKET_BYTES, self.bucket_bytes_cap),
            self.bucket_bytes_cap, bool(find_unused_parameters),
            bool(gradient_as_bucket_view), bool(static_graph))
        self._bucket_params = None
        self._comm_hook = None
        self._join = None                   # the active join() config
        self._warned_unused = False
        self._tracer = _trace.from_env(self._rank)

    # ----------------------------------------------------------- forward

    def forward(self, *inputs, **kwargs):
        grad = is_grad_enabled()
        sync = self.require_backward_grad_sync
        div = 0
        if self._join is not None:
            div = self._join.active_ranks(sync)
        if grad:
            self._reducer.prepare_forward()
            if self._tracer is not None:
                self._tracer.record(self._reducer.stats())
        if self._will_sync_buffers():
            self._sync_buffers()
        out = self.module(*inputs, **kwargs)
        if grad:
            self._reducer.prepare_backward(sync, div)
        return out

    def _will_sync_buffers(self):
        return (self.require_forward_param_sync and self.broadcast_buffers
                and self._world > 1 and len(self._buffers_list) > 0)

    def _sync_buffers(self):
        _sync.broadcast_coalesced(self._buffers_list, self.process_group)

    # ----------------------------------------------------------- no_sync

    @contextlib.contextmanager
    def no_sync(self):
        """Gradients of backward passes inside accumulate locally in .grad;
        the first synchronised backward after it reduces the sum."""
        old = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = old

    # ------------------------------------------------------------ hooks

    def register_comm_hook(self, state, hook):
        """hook(state, bucket: GradBucket) -> Future[Tensor], run for each
        bucket instead of the allreduce. The bucket's buffer holds the
        summed local gradients, not divided by the world size: the hook
        averages (as PyTorch's)."""
        if not callable(hook):
            raise TypeError("register_comm_hook: hook must be callable")
        if self._comm_hook is not None:
            raise RuntimeError("register_comm_hook or "
                               "register_builtin_comm_hook can only be "
                               "called once.")
        GradBucket = _dist().GradBucket

        def launch(index, buffer, is_last):
            params = self._bucket_param_lists()[index]
            return hook(state, GradBucket(index, buffer, params, is_last))

        self._reducer.set_comm_hook(launch)
        self._comm_hook = (state, hook)

    def _bucket_param_lists(self):
        """The parameters of each bucket; the layout changes only when the
        reducer rebuilds its buckets (once)."""
        rebuilt = self._reducer.has_rebuilt()
        if self._bucket_params is None or self._bucket_params[0] != rebuilt:
            self._bucket_params = (rebuilt, [
                [self._params[i] for i in idx]
                for idx in self._reducer.bucket_indices()])
        return self._bucket_params[1]

    def _set_static_graph(self):
        warnings.warn("_set_static_graph: pass static_graph=True to the "
                      "constructor instead", stacklevel=2)

    # ------------------------------------------------------------- join

    def join(self, divide_by_initial_world_size=True, enable=True,
             throw_on_early_termination=False):
        """Context manager for uneven inputs: a rank that runs out of
        batches keeps shadowing the others' collectives (buffer broadcast,
        bucket allreduces with zeros) until every rank has finished; then
        the last rank to finish broadcasts the final model."""
        from ._join import DDPJoin
        return DDPJoin(self, divide_by_initial_world_size, enable,
                       throw_on_early_termination)

    # ------------------------------------------------------ observability

    def stats(self):
        """Means per synchronised backward since reset_stats():
        backward_s, comm_s (some bucket in flight), exposed_comm_s (waited
        after the backward ended), overlap (1 - exposed/comm), bytes; plus
        steps, num_buckets and the last step's bucket timeline (seconds
        from that backward's start: ready, launch, start, end).

        The figures are this rank's: time spent waiting for a slower peer
        counts as communication (and as exposed once the backward ended).
        overlap is 0.0 when nothing was communicated (world size 1)."""
        st = self._reducer.stats()
        n = max(st["steps"], 1)
        comm, exposed = st["comm_s"], st["exposed_comm_s"]
        t0 = st["last_backward_start"]
        timeline = []
        for b in st["buckets"]:
            rel = {k: (b[k] - t0 if b[k] else None)
                   for k in ("ready", "launch", "start", "end")}
            rel.update(index=b["index"], bytes=b["bytes"])
            timeline.append(rel)
        return {
            "steps": st["steps"],
            "backward_s": st["backward_s"] / n,
            "comm_s": comm / n,
            "exposed_comm_s": exposed / n,
            "overlap": (max(0.0, min(1.0, 1.0 - exposed / comm))
                        if comm > 0 else 0.0),
            "bytes": st["bytes"] // n,
            "num_buckets": len(st["buckets"]),
            "last_backward_s": st["last_backward_end"] - t0,
            "buckets": timeline,
        }

    def reset_stats(self):
        self._reducer.reset_stats()

    def write_trace(self, path):
        """Writes the recorded steps as a Chrome-trace JSON file (open it in
        chrome://tracing or Perfetto). Recording starts with this call or
        with DTRAIN_DDP_TRACE=<directory> in the environment."""
        if self._tracer is None:
            self._tracer = _trace.Tracer(self._rank)
        self._tracer.record(self._reducer.stats())
        self._tracer.write(path)

    def _get_bucket_indices(self):
        return self._reducer.bucket_indices()

    def __del__(self):
        reducer = self.__dict__.get("_reducer")
        tracer = self.__dict__.get("_tracer")
        if tracer is not None and tracer.path is not None:
            try:
                tracer.record(reducer.stats())
                tracer.write(tracer.path)
            except Exception:                 # noqa: BLE001 (at exit)
                pass
        if reducer is not None:
            reducer.close()


