"""PowerSGD gradient compression (Vogels et al. 2019, arXiv:1905.13727),
as torch's powerSGD_hook: PowerSGDState, powerSGD_hook (per parameter)
and batched_powerSGD_hook (the whole bucket as one square matrix).

Each gradient matrix M (n x m, the parameter viewed as shape[0] rows) is
sent as two thin factors: P = M Q (n x r) is summed over the ranks and
orthonormalised, Q = M^T P (m x r) is summed, and M is replaced by
P Q^T / world_size, which approximates the mean gradient. What the
approximation misses stays on the rank (error feedback) and is added to
the next iteration's gradient, so nothing is lost, only delayed. Vectors
and matrices too small to be worth it are all-reduced uncompressed.

Ranks must start from the same Q: every rank draws its seeds from
numpy's RandomState(random_seed) in the same order (as torch does), and
fills Q from a dtrain.Generator seeded with them. The seeds match
torch's; the normal draws do not (dtrain's generator is Philox, torch's
CPU one mt19937).

The hooks issue collectives from their future's callbacks (the Q
all-reduce needs the reduced P), which run in the thread that waits on
the future: the reducer must wait on the buckets' futures in the same
order on every rank.
"""
import logging
import math

import numpy as np

from .... import Generator, bmm, cat, empty, randn, stack, zeros
from ... import c10d
from ..._collectives import all_reduce
from . import default_hooks as default

__all__ = ["PowerSGDState", "powerSGD_hook", "batched_powerSGD_hook"]

logger = logging.getLogger(__name__)


def _orthogonalize(matrices, epsilon=0):
    """Orthonormalises the columns of each matrix of a (batch, n, r)
    batch in place, by Gram-Schmidt. torch uses QR instead when r > 2 in
    full precision; dtrain has no QR, and the two differ only in the
    columns' signs, which PowerSGD's result (P P^T M) does not see."""
    if matrices.dim() != 3 or matrices.shape[2] > matrices.shape[1]:
        raise ValueError(f"_orthogonalize: expected a batch of tall "
                         f"matrices, got shape {list(matrices.shape)}")
    num_cols = matrices.shape[2]
    for i in range(num_cols):
        col = matrices[:, :, i:i + 1]
        norm = col.norm(dim=1, keepdim=True)
        # epsilon keeps an all-zero column (vanishing gradients) from
        # turning into NaNs; with 0, as torch, it does
        col.div_(norm + epsilon if epsilon else norm)
        if i + 1 < num_cols:
            rest = matrices[:, :, i + 1:]
            rest.sub_((col * rest).sum(dim=1, keepdim=True) * col)


def _should_compress(num_rows, num_cols, matrix_approximation_rank,
                     min_compression_rate):
    """(worth compressing, numel uncompressed, numel compressed): worth it
    when min_compression_rate * (n + m) * r < n * m."""
    uncompressed_size = num_rows * num_cols
    compressed_size = (num_rows + num_cols) * matrix_approximation_rank
    return (compressed_size * min_compression_rate < uncompressed_size,
            uncompressed_size, compressed_size)


def _report_compression_stats(bucket, state):
    if bucket.is_last() and state.iter >= state.next_stats_report:
        rate, before, after = state.compression_stats()
        logger.info("Compression stats: iter %s, total before compression "
                    "%s, total after compression %s, rate %s",
                    state.iter, before, after, rate)
        state.next_stats_report = (state.iter
                                   + state.compression_stats_logging_frequency)


class PowerSGDState:
    """The hyperparameters and the per-bucket state (error feedback, warm
    start memories, the iteration count) of powerSGD_hook; one instance
    serves every bucket. torch's arguments and defaults:

    - matrix_approximation_rank: r, the factors' width (1-4 typically).
    - start_powerSGD_iter: plain all-reduce until this iteration; must be
      > 1 with error feedback or warm start (DDP may rebuild its buckets
      after iteration 1, which would invalidate the memories).
    - min_compression_rate: a matrix is compressed only if this is below
      n*m / ((n+m)*r).
    - use_error_feedback, warm_start: keep the residual / reuse Q.
    - orthogonalization_epsilon: added to the column norms.
    - random_seed: seeds the initial Qs (the same on every rank).
    - compression_stats_logging_frequency: iterations between log lines.
    - batch_tensors_with_same_shape: compress equal-shaped matrices of a
      bucket in one batched product.
    """

    __slots__ = [
        "process_group", "matrix_approximation_rank", "start_powerSGD_iter",
        "min_compression_rate", "orthogonalization_epsilon",
        "use_error_feedback", "warm_start", "batch_tensors_with_same_shape",
        "rng", "error_dict", "p_memory_dict", "q_memory_dict", "iter",
        "total_numel_before_compression", "total_numel_after_compression",
        "compression_stats_logging_frequency", "next_stats_report",
    ]

    def __init__(self, process_group, matrix_approximation_rank=1,
                 start_powerSGD_iter=1_000, min_compression_rate=2,
                 use_error_feedback=True, warm_start=True,
                 orthogonalization_epsilon=0, random_seed=0,
                 compression_stats_logging_frequency=10_000,
                 batch_tensors_with_same_shape=False):
        logger.info(
            "PowerSGD config: matrix_approximation_rank = %s; "
            "start_powerSGD_iter = %s; min_compression_rate = %s; "
            "orthogonalization_epsilon = %s; use_error_feedback = %s; "
            "warm_start = %s; random_seed = %s; "
            "compression_stats_logging_frequency = %s; "
            "batch_tensors_with_same_shape = %s",
            matrix_approximation_rank, start_powerSGD_iter,
            min_compression_rate, orthogonalization_epsilon,
            use_error_feedback, warm_start, random_seed,
            compression_stats_logging_frequency,
            batch_tensors_with_same_shape)
        if (use_error_feedback or warm_start) and start_powerSGD_iter <= 1:
            raise ValueError(
                "Expect `start_powerSGD_iter` > 1 if `use_error_feedback` or "
                "`warm_start` is enabled, because PowerSGD can only be "
                "applied after the first two iterations in DDP.")
        self.process_group = process_group
        self.matrix_approximation_rank = matrix_approximation_rank
        self.start_powerSGD_iter = start_powerSGD_iter
        self.min_compression_rate = min_compression_rate
        self.use_error_feedback = use_error_feedback
        self.warm_start = warm_start
        self.orthogonalization_epsilon = orthogonalization_epsilon
        # draws one seed per Q initialisation, in the same order on every
        # rank, and a different one every time (different projections)
        self.rng = np.random.RandomState(random_seed)
        self.error_dict = {}        # bucket index -> local residual
        self.p_memory_dict = {}     # bucket index -> flat Ps
        self.q_memory_dict = {}     # bucket index -> flat Qs
        self.iter = 0
        self.total_numel_before_compression = 0
        self.total_numel_after_compression = 0
        self.compression_stats_logging_frequency = max(
            1, compression_stats_logging_frequency)
        self.next_stats_report = 0
        self.batch_tensors_with_same_shape = batch_tensors_with_same_shape

    def __getstate__(self):
        """Everything but the process group, which cannot be pickled."""
        logger.warning("NOTE: Process group is not serializable and "
                       "excluded from a saved state.")
        return {slot: getattr(self, slot) for slot in self.__slots__
                if slot != "process_group"}

    def __setstate__(self, state):
        """Restores a pickled state; the process group becomes the
        default one."""
        self.process_group = (c10d._default_pg() if c10d.is_initialized()
                              else None)
        logger.warning("NOTE: Process group will be set to a default group "
                       "(i.e. the world size). If a different group is "
                       "desired, please set `self.process_group` after "
                       "PowerSGD state is loaded.")
        for slot, value in state.items():
            setattr(self, slot, value)

    def maybe_increase_iter(self, bucket):
        """Counts iterations: one per last bucket."""
        if bucket.is_last():
            self.iter += 1
        if self.iter == self.start_powerSGD_iter:
            logger.info("Start to apply PowerSGD after %s iterations.",
                        self.iter)

    def compression_stats(self):
        """(rate, numel before compression, numel after compression),
        summed over every compressed iteration so far."""
        after = self.total_numel_after_compression
        before = self.total_numel_before_compression
        return (before / after if after > 0 else 0, before, after)


def _split(state, tensors):
    """(matrices to compress, tensors to all-reduce as they are, total P
    numel, total Q numel), updating the compression stats."""
    to_compress, uncompressed = [], []
    p_total = q_total = 0
    for tensor in tensors:
        if tensor.dim() == 0 or tensor.numel() == 0:
            # (torch fails on these; nothing to compress in them)
            uncompressed.append(tensor)
            state.total_numel_before_compression += tensor.numel()
            state.total_numel_after_compression += tensor.numel()
            continue
        matrix = tensor.view(tensor.shape[0], -1)
        n, m = matrix.shape
        r = min(n, m, state.matrix_approximation_rank)
        worth, before, after = _should_compress(n, m, r,
                                                state.min_compression_rate)
        state.total_numel_before_compression += before
        if worth:
            to_compress.append(matrix)
            p_total += n * r
            q_total += m * r
            state.total_numel_after_compression += after
        else:
            uncompressed.append(tensor)
            state.total_numel_after_compression += before
    return to_compress, uncompressed, p_total, q_total


def _batches(state, matrices):
    """The matrices to compress as (batch, n, m) tensors, grouped by shape
    (torch's order, which fixes the P and Q memory layout); equal shapes
    are stacked into one batch with batch_tensors_with_same_shape.
    Returns [(batch tensor, originals it was stacked from or None)]."""
    by_shape = {}
    for m in matrices:
        by_shape.setdefault(tuple(m.shape), []).append(m)
    out = []
    for group in by_shape.values():
        if state.batch_tensors_with_same_shape and len(group) > 1:
            out.append((stack(group), group))
        else:
            out.extend((m.unsqueeze(0), None) for m in group)
    return out


def _low_rank_views(state, bucket_index, batches):
    """Views of the bucket's flat P and Q memories, one (batch, n, r) and
    one (batch, m, r) per batch."""
    ps, qs = [], []
    p_mem = state.p_memory_dict[bucket_index]
    q_mem = state.q_memory_dict[bucket_index]
    p_idx = q_idx = 0
    for tensor, _ in batches:
        b, n, m = tensor.shape
        r = min(n, m, state.matrix_approximation_rank)
        ps.append(p_mem.narrow(0, p_idx, b * n * r).view(b, n, r))
        qs.append(q_mem.narrow(0, q_idx, b * m * r).view(b, m, r))
        p_idx += b * n * r
        q_idx += b * m * r
    return ps, qs


def _low_rank_factors(state, bucket_index, batches, p_total, q_total,
                      dtype):
    """The Ps and Qs of a bucket (views of its flat memories), the Qs
    orthonormal: drawn at random the first time (and every time without
    warm start), else last iteration's."""
    need_randomize_qs = (not state.warm_start
                         or bucket_index not in state.p_memory_dict)
    if need_randomize_qs:
        if state.warm_start:
            logger.info("Allocating contiguous memory of length %s for Ps, "
                        "and of length %s for Qs, respectively.",
                        p_total, q_total)
        state.p_memory_dict[bucket_index] = empty(p_total, dtype=dtype)
        state.q_memory_dict[bucket_index] = empty(q_total, dtype=dtype)
    ps, qs = _low_rank_views(state, bucket_index, batches)
    if need_randomize_qs:
        _fill_random(state, qs, dtype)
    for q in qs:
        _orthogonalize(q, state.orthogonalization_epsilon)
    return ps, qs


def _fill_random(state, tensors, dtype):
    """Fills each tensor with standard normal draws from a generator
    seeded by the state's next seed (the same on every rank)."""
    gen = Generator().manual_seed(int(state.rng.randint(1_000_000_000)))
    for t in tensors:
        t.copy_(randn(*t.shape, generator=gen, dtype=dtype))


def _add_error(state, bucket_index, tensor):
    """Adds the bucket's residual to `tensor`; returns a copy of the sum
    (None without error feedback)."""
    if not state.use_error_feedback:
        return None
    if bucket_index in state.error_dict:
        tensor.add_(state.error_dict[bucket_index])
    else:
        logger.info("A zero tensor of length %s that represents local "
                    "error is created.", tensor.numel())
        state.error_dict[bucket_index] = zeros(tensor.numel(),
                                               dtype=tensor.dtype)
    return tensor.clone()


def _finish(state, bucket, bucket_index, input_copy, approx):
    """Keeps the residual, drops the memories without warm start and
    counts the iteration."""
    if state.use_error_feedback:
        state.error_dict[bucket_index] = input_copy - approx
    if not state.warm_start:
        state.p_memory_dict.clear()
        state.q_memory_dict.clear()
    state.maybe_increase_iter(bucket)


def powerSGD_hook(state, bucket):
    """PowerSGD, layer by layer: plain all-reduce (the mean) before
    state.start_powerSGD_iter; then each gradient of the bucket that is
    worth it is replaced by its rank-r approximation of the mean (see
    the module comment), the others by their exact mean, all-reduced
    together in one flat collective. The Ps, and then the Qs, of the whole
    bucket go out in one collective each.

    >>> state = PowerSGDState(process_group=pg, matrix_approximation_rank=1,
    ...                       start_powerSGD_iter=10)
    >>> ddp_model.register_comm_hook(state, powerSGD_hook)
    """
    group = default._group(state.process_group, "powerSGD_hook")
    world_size = group.size()
    input_tensor = bucket.buffer()
    if state.iter < state.start_powerSGD_iter:
        state.maybe_increase_iter(bucket)
        return default._allreduce_fut(group, input_tensor)

    dtype = input_tensor.dtype
    bucket_index = bucket.index()
    input_copy = _add_error(state, bucket_index, input_tensor)
    to_compress, uncompressed, p_total, q_total = _split(
        state, bucket.gradients())
    _report_compression_stats(bucket, state)

    # the uncompressed tensors go out first, as one flat collective
    uncompressed_mem = (cat([t.reshape(-1) for t in uncompressed])
                        if uncompressed else empty(0, dtype=dtype))
    uncompressed_fut = all_reduce(uncompressed_mem, group=group,
                                  async_op=True).get_future()

    batches = _batches(state, to_compress)
    ps, qs = _low_rank_factors(state, bucket_index, batches, p_total,
                               q_total, dtype)
    for (tensor, _), q, p in zip(batches, qs, ps):
        p.copy_(bmm(tensor, q))
    # P needs no division: it is orthonormalised next
    p_fut = all_reduce(state.p_memory_dict[bucket_index], group=group,
                       async_op=True).get_future()

    def unpack_uncompressed(fut):
        mem = fut.value()[0].div_(world_size)
        idx = 0
        for t in uncompressed:
            n = t.numel()
            t.copy_(mem.narrow(0, idx, n).view(t.shape))
            idx += n
        return p_fut.wait()[0]

    def compute_qs(fut):
        for p in ps:
            _orthogonalize(p, state.orthogonalization_epsilon)
        for (tensor, _), p, q in zip(batches, ps, qs):
            q.copy_(bmm(tensor.transpose(1, 2), p))
        return all_reduce(state.q_memory_dict[bucket_index], group=group,
                          async_op=True).get_future().wait()[0]

    def decompress(fut):
        fut.value().div_(world_size)
        for (tensor, originals), p, q in zip(batches, ps, qs):
            tensor.copy_(bmm(p, q.transpose(1, 2)))
            for i, original in enumerate(originals or ()):
                original.copy_(tensor[i])
        _finish(state, bucket, bucket_index, input_copy, input_tensor)
        return input_tensor

    return uncompressed_fut.then(unpack_uncompressed).then(
        compute_qs).then(decompress)


def batched_powerSGD_hook(state, bucket):
    """PowerSGD on the whole bucket at once: the flat buffer, padded with
    zeros to the next square, is one side x side matrix. Faster than
    powerSGD_hook but usually much less accurate, except with rank 1.

    torch resizes the bucket's buffer in place to the padded length;
    dtrain works on a padded copy and writes the first numel elements
    back. (torch 2.13's own batched_powerSGD_hook fails from its second
    compressed iteration on, passing a 2-D Q to its 3-D _orthogonalize;
    this one orthonormalises Q as intended.)
    """
    group = default._group(state.process_group, "batched_powerSGD_hook")
    world_size = group.size()
    input_tensor = bucket.buffer()
    total_length = input_tensor.shape[0]
    if state.iter < state.start_powerSGD_iter or total_length == 0:
        state.maybe_increase_iter(bucket)
        return default._allreduce_fut(group, input_tensor)

    dtype = input_tensor.dtype
    side = math.ceil(math.sqrt(total_length))
    rank = min(side, state.matrix_approximation_rank)
    state.total_numel_before_compression += total_length
    state.total_numel_after_compression += side * rank * 2
    padded = zeros(side * side, dtype=dtype)
    padded.narrow(0, 0, total_length).copy_(input_tensor)
    _report_compression_stats(bucket, state)

    bucket_index = bucket.index()
    input_copy = _add_error(state, bucket_index, padded)
    matrix = padded.view(side, side)

    if not state.warm_start or bucket_index not in state.p_memory_dict:
        if state.warm_start:
            logger.info("Initializing low-rank tensors P and Q, each of "
                        "which has a shape of %s x %s.", side, rank)
        state.p_memory_dict[bucket_index] = empty(side, rank, dtype=dtype)
        q = empty(side, rank, dtype=dtype)
        _fill_random(state, [q], dtype)
        state.q_memory_dict[bucket_index] = q
    p = state.p_memory_dict[bucket_index]
    q = state.q_memory_dict[bucket_index]
    _orthogonalize(q.unsqueeze(0), state.orthogonalization_epsilon)
    p.copy_(matrix.matmul(q))
    p_fut = all_reduce(p, group=group, async_op=True).get_future()

    def compute_q(fut):
        _orthogonalize(p.unsqueeze(0), state.orthogonalization_epsilon)
        q.copy_(matrix.t().matmul(p))
        return all_reduce(q, group=group,
                          async_op=True).get_future().wait()[0]

    def decompress(fut):
        q.div_(world_size)
        matrix.copy_(p.matmul(q.t()))
        _finish(state, bucket, bucket_index, input_copy, padded)
        input_tensor.copy_(padded.narrow(0, 0, total_length))
        return input_tensor

    return p_fut.then(compute_q).then(decompress)
