"""Tensor collectives with torch.distributed's names and signatures.

Every function checks its tensors, turns global ranks into group ranks and
calls the C process group, which queues the operation on its comm threads.
With async_op=True it returns a Work; otherwise it waits (without the GIL;
Ctrl-C works) and returns None. On a rank that is not in `group`, every
collective warns and returns None, as in torch.

Tensors must be contiguous CPU dtrain tensors with the same dtype and size
on every rank (all_gather and all_to_all also take lists of uneven sizes,
as long as every rank passes the same sizes). Operations whose torch signature takes lists (all_gather,
gather, scatter, reduce_scatter, all_to_all) pack them into one flat
buffer and unpack after completion; the *_tensor / *_single variants use
the caller's tensors directly. AVG is a SUM followed by a division
(floating types only; Gloo has no AVG).
"""
from .. import Tensor, empty
from .c10d import ReduceOp, Work, _resolve

__all__ = ["all_reduce", "broadcast", "reduce", "all_gather",
           "all_gather_into_tensor", "gather", "scatter", "reduce_scatter",
           "reduce_scatter_tensor", "all_to_all", "all_to_all_single",
           "barrier", "send", "recv", "isend", "irecv"]


def _check_tensor(t, name):
    if not isinstance(t, Tensor):
        raise TypeError(f"Invalid function argument. Expected parameter "
                        f"`{name}` of type dtrain.Tensor but got {type(t)} "
                        f"instead.")


def _check_list(ts, name):
    if not isinstance(ts, (list, tuple)) or not all(
            isinstance(t, Tensor) for t in ts):
        raise TypeError(f"Invalid function argument. Expected parameter "
                        f"`{name}` of type List[dtrain.Tensor] but got "
                        f"{type(ts)} instead.")


def _op(op):
    try:
        return int(ReduceOp(op))
    except ValueError:
        raise ValueError(f"Invalid ReduceOp {op!r}") from None


def _done(pg, work, result, async_op, post=None):
    if not async_op:
        if post is not None:
            post()
        return None
    return Work(work, result, post, pg)


def _flat(like, n):
    return empty(n * like.numel(), dtype=like.dtype)


def _pack(tensors, name):
    """One flat buffer holding the tensors (same dtype and numel)."""
    first = tensors[0]
    for i, t in enumerate(tensors):
        if t.dtype != first.dtype or t.numel() != first.numel():
            raise ValueError(f"{name}: every tensor in the list must have "
                             f"the dtype and size of the first "
                             f"({first.dtype}, {first.numel()} elements); "
                             f"tensor {i} has {t.dtype}, {t.numel()}")
    flat = _flat(first, len(tensors))
    _fill(flat, tensors)
    return flat


def _unpack(flat, tensors):
    start = 0
    for t in tensors:
        n = t.numel()
        if n:                  # (reshaping 0 elements trips the core)
            t.copy_(flat.narrow(0, start, n).view(t.shape))
        start += n


def _check_list_len(ts, size, what, name):
    if len(ts) != size:
        raise ValueError(f"{what}: {name} must have one tensor per rank "
                         f"({size}), got {len(ts)}")


# ---------------------------------------------------------------------------
# in place


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    _check_tensor(tensor, "tensor")
    pg = _resolve(group, "all_reduce")
    if pg is None:
        return None
    work = pg._c.allreduce(tensor, _op(op), async_op)
    return _done(pg, work, [tensor], async_op)


def broadcast(tensor, src=None, group=None, async_op=False, group_src=None):
    _check_tensor(tensor, "tensor")
    pg = _resolve(group, "broadcast")
    if pg is None:
        return None
    root = group_src if group_src is not None else pg._group(src,
                                                             "broadcast")
    work = pg._c.broadcast(tensor, root, async_op)
    return _done(pg, work, [tensor], async_op)


def reduce(tensor, dst=None, op=ReduceOp.SUM, group=None, async_op=False,
           group_dst=None):
    _check_tensor(tensor, "tensor")
    pg = _resolve(group, "reduce")
    if pg is None:
        return None
    root = group_dst if group_dst is not None else pg._group(dst, "reduce")
    work = pg._c.reduce(tensor, _op(op), root, async_op)
    return _done(pg, work, [tensor], async_op)


def barrier(group=None, async_op=False, device_ids=None):
    pg = _resolve(group, "barrier")
    if pg is None:
        return None
    work = pg._c.barrier(async_op)
    return _done(pg, work, [], async_op)


# ---------------------------------------------------------------------------
# gathers and scatters


def all_gather_into_tensor(output_tensor, input_tensor, group=None,
                           async_op=False):
    _check_tensor(output_tensor, "output_tensor")
    _check_tensor(input_tensor, "input_tensor")
    pg = _resolve(group, "all_gather_into_tensor")
    if pg is None:
        return None
    work = pg._c.allgather(output_tensor, input_tensor, None, async_op)
    return _done(pg, work, [output_tensor], async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    _check_list(tensor_list, "tensor_list")
    _check_tensor(tensor, "tensor")
    pg = _resolve(group, "all_gather")
    if pg is None:
        return None
    _check_list_len(tensor_list, pg.size(), "all_gather", "tensor_list")
    for i, t in enumerate(tensor_list):
        if t.dtype != tensor.dtype:
            raise ValueError(f"all_gather: tensor_list[{i}] must have the "
                             f"dtype of tensor ({tensor.dtype}), got "
                             f"{t.dtype}")
    counts = [t.numel() for t in tensor_list]
    if counts[pg.rank()] != tensor.numel():
        raise ValueError(f"all_gather: tensor_list[{pg.rank()}] (this "
                         f"rank's) must have the size of tensor "
                         f"({tensor.numel()} elements), got "
                         f"{counts[pg.rank()]}")
    uneven = any(n != tensor.numel() for n in counts)
    flat = empty(sum(counts), dtype=tensor.dtype)
    work = pg._c.allgather(flat, tensor, counts if uneven else None,
                           async_op)
    return _done(pg, work, list(tensor_list), async_op,
                 lambda: _unpack(flat, tensor_list))


def gather(tensor, gather_list=None, dst=None, group=None, async_op=False,
           group_dst=None):
    _check_tensor(tensor, "tensor")
    pg = _resolve(group, "gather")
    if pg is None:
        return None
    root = group_dst if group_dst is not None else pg._group(
        0 if dst is None else dst, "gather")
    flat = post = None
    if pg.rank() == root:
        if gather_list is None:
            raise ValueError("Argument ``gather_list`` must be specified on "
                             "destination rank.")
        _check_list(gather_list, "gather_list")
        _check_list_len(gather_list, pg.size(), "gather", "gather_list")
        flat = _flat(tensor, pg.size())
        post = lambda: _unpack(flat, gather_list)          # noqa: E731
    elif gather_list:
        raise ValueError("Argument ``gather_list`` must NOT be specified on "
                         "non-destination ranks.")
    work = pg._c.gather(flat, tensor, root, async_op)
    return _done(pg, work, list(gather_list or []), async_op, post)


def scatter(tensor, scatter_list=None, src=None, group=None, async_op=False,
            group_src=None):
    _check_tensor(tensor, "tensor")
    pg = _resolve(group, "scatter")
    if pg is None:
        return None
    root = group_src if group_src is not None else pg._group(
        0 if src is None else src, "scatter")
    flat = None
    if pg.rank() == root:
        if scatter_list is None:
            raise ValueError("Argument ``scatter_list`` must be specified on "
                             "source rank.")
        _check_list(scatter_list, "scatter_list")
        _check_list_len(scatter_list, pg.size(), "scatter", "scatter_list")
        flat = _pack(scatter_list, "scatter")
    elif scatter_list:
        raise ValueError("Argument ``scatter_list`` must NOT be specified on "
                         "non-source ranks.")
    work = pg._c.scatter(tensor, flat, root, async_op)
    return _done(pg, work, [tensor], async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None,
                          async_op=False):
    _check_tensor(output, "output")
    _check_tensor(input, "input")
    pg = _resolve(group, "reduce_scatter_tensor")
    if pg is None:
        return None
    work = pg._c.reduce_scatter(output, input, _op(op), async_op)
    return _done(pg, work, [output], async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None,
                   async_op=False):
    _check_tensor(output, "output")
    _check_list(input_list, "input_list")
    pg = _resolve(group, "reduce_scatter")
    if pg is None:
        return None
    _check_list_len(input_list, pg.size(), "reduce_scatter", "input_list")
    flat = _pack(input_list, "reduce_scatter")
    work = pg._c.reduce_scatter(output, flat, _op(op), async_op)
    return _done(pg, work, [output], async_op)


def all_to_all_single(output, input, output_split_sizes=None,
                      input_split_sizes=None, group=None, async_op=False):
    """Splits are sizes along dim 0 (None: equal parts), as in torch."""
    _check_tensor(output, "output")
    _check_tensor(input, "input")
    pg = _resolve(group, "all_to_all_single")
    if pg is None:
        return None

    def counts(splits, t):
        if splits is None or len(splits) == 0:
            return None
        row = t.numel() // t.shape[0] if t.dim() and t.shape[0] else 0
        return [int(s) * row for s in splits]

    work = pg._c.alltoall(output, input, counts(output_split_sizes, output),
                          counts(input_split_sizes, input), async_op)
    return _done(pg, work, [output], async_op)


def all_to_all(output_tensor_list, input_tensor_list, group=None,
               async_op=False):
    _check_list(output_tensor_list, "output_tensor_list")
    _check_list(input_tensor_list, "input_tensor_list")
    pg = _resolve(group, "all_to_all")
    if pg is None:
        return None
    size = pg.size()
    _check_list_len(output_tensor_list, size, "all_to_all",
                    "output_tensor_list")
    _check_list_len(input_tensor_list, size, "all_to_all",
                    "input_tensor_list")
    dtype = input_tensor_list[0].dtype
    for t in list(input_tensor_list) + list(output_tensor_list):
        if t.dtype != dtype:
            raise ValueError(f"all_to_all: every tensor must have dtype "
                             f"{dtype}, got {t.dtype}")
    in_counts = [t.numel() for t in input_tensor_list]
    out_counts = [t.numel() for t in output_tensor_list]
    flat_in = empty(sum(in_counts), dtype=dtype)
    _fill(flat_in, input_tensor_list)
    flat_out = empty(sum(out_counts), dtype=dtype)
    work = pg._c.alltoall(flat_out, flat_in, out_counts, in_counts, async_op)
    return _done(pg, work, list(output_tensor_list), async_op,
                 lambda: _unpack(flat_out, output_tensor_list))


def _fill(flat, tensors):
    start = 0
    for t in tensors:
        n = t.numel()
        if n:
            flat.narrow(0, start, n).copy_(t.reshape(-1))
        start += n


# ---------------------------------------------------------------------------
# point to point


def _p2p_peer(pg, rank, what):
    if rank == pg._ranks[pg.rank()]:
        raise ValueError(f"Invalid {what} rank: {what} rank should not be "
                         f"the same as the rank of the current process.")
    return pg._group(rank, what)


def isend(tensor, dst=None, group=None, tag=0, group_dst=None):
    _check_tensor(tensor, "tensor")
    pg = _resolve(group, "isend")
    if pg is None:
        return None
    peer = group_dst if group_dst is not None else _p2p_peer(
        pg, dst, "destination")
    return Work(pg._c.send(tensor, peer, tag, True), [tensor], None, pg)


def irecv(tensor, src=None, group=None, tag=0, group_src=None):
    """src=None receives from any rank (Work.source_rank() tells which)."""
    _check_tensor(tensor, "tensor")
    pg = _resolve(group, "irecv")
    if pg is None:
        return None
    if group_src is not None:
        peer = group_src
    else:
        peer = -1 if src is None else _p2p_peer(pg, src, "source")
    return Work(pg._c.recv(tensor, peer, tag, True), [tensor], None, pg)


def send(tensor, dst=None, group=None, tag=0, group_dst=None):
    work = isend(tensor, dst, group, tag, group_dst)
    if work is not None:
        work.wait()


def recv(tensor, src=None, group=None, tag=0, group_src=None):
    """Returns the global rank of the sender (useful with src=None)."""
    work = irecv(tensor, src, group, tag, group_src)
    if work is None:
        return -1
    work.wait()
    return work.source_rank()
