"""What DistributedDataParallel does to the model outside backward: pick
the parameters, check that every rank has the same ones, and broadcast
tensors from rank 0 (parameters at construction, buffers before each
forward) coalesced into one flat buffer per dtype."""
from ..._ops.creation import empty
from ...autograd import no_grad

_CHUNK_BYTES = 256 * 1024 * 1024      # PyTorch broadcasts 250 MiB chunks


def named_params(module):
    """PyTorch's parameter order (named_modules, then each module's own
    parameters), requires_grad only, shared ones once, minus the names in
    module._ddp_params_and_buffers_to_ignore."""
    ignore = set(getattr(module, "_ddp_params_and_buffers_to_ignore", ()))
    return [(n, p) for n, p in module.named_parameters()
            if p.requires_grad and n not in ignore]


def _signature(named):
    return [(n, tuple(p.shape), str(p.dtype)) for n, p in named]


def verify_params(named, pg):
    """Every rank raises the same error, naming the first mismatch and
    the ranks, when the models differ (count, names, shapes, dtypes)."""
    if pg.size() == 1:
        return
    from ... import distributed as dist
    sigs = [None] * pg.size()
    dist.all_gather_object(sigs, _signature(named), group=pg)
    ref = sigs[0]
    for r, sig in enumerate(sigs[1:], start=1):
        if len(sig) != len(ref):
            extra = (sig[len(ref)] if len(sig) > len(ref)
                     else ref[len(sig)])
            raise RuntimeError(
                f"DDP expects same model across all ranks, but Rank {r} has "
                f"{len(sig)} params, while rank 0 has inconsistent "
                f"{len(ref)} params (the first one only one of them has: "
                f"{extra[0]!r}).")
        for i, (mine, theirs) in enumerate(zip(sig, ref)):
            if mine != theirs:
                raise RuntimeError(
                    f"DDP expects same model across all ranks, but parameter "
                    f"{i} is {_fmt(mine)} on rank {r} and {_fmt(theirs)} on "
                    f"rank 0.")


def _fmt(sig):
    name, shape, dtype = sig
    return f"{name!r} (shape {list(shape)}, {dtype})"


def broadcast_coalesced(tensors, pg, src=0):
    """Copies group rank src's values into `tensors` on every rank."""
    if pg.size() == 1 or not tensors:
        return
    by_dtype = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    with no_grad():
        for group in by_dtype.values():
            for chunk in _chunks(group):
                _broadcast_flat(chunk, pg, src)


def _chunks(tensors):
    chunk, size = [], 0
    for t in tensors:
        chunk.append(t)
        size += t.numel() * t.element_size()
        if size >= _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _broadcast_flat(tensors, pg, src):
    from ... import distributed as dist
    from ...distributed._collectives import _fill, _unpack
    tensors = [t.detach() for t in tensors]
    flat = empty(sum(t.numel() for t in tensors), dtype=tensors[0].dtype)
    _fill(flat, tensors)
    dist.broadcast(flat, group=pg, group_src=src)
    _unpack(flat, tensors)
