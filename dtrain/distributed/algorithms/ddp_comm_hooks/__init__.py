"""DDP communication hooks (torch.distributed.algorithms.ddp_comm_hooks):
functions `hook(state, bucket) -> Future[Tensor]` that DDP runs on each
bucket of gradients instead of its all-reduce (register them with
DistributedDataParallel.register_comm_hook), and DDPCommHookType to
register one by name."""
from enum import Enum
from functools import partial

from . import (debugging_hooks as debugging, default_hooks as default,
               powerSGD_hook as powerSGD)

__all__ = ["DDPCommHookType", "register_ddp_comm_hook"]


def _ddp_comm_hook_wrapper(comm_hook, model, state):
    model.register_comm_hook(state, comm_hook)


def _powerSGD_comm_hook_wrapper(comm_hook, model, state,
                                matrix_approximation_rank,
                                start_powerSGD_iter=1_000):
    """Registers a PowerSGD hook; `state` is the process group, wrapped
    into a PowerSGDState here."""
    powerSGD_state = powerSGD.PowerSGDState(
        process_group=state,
        matrix_approximation_rank=matrix_approximation_rank,
        start_powerSGD_iter=start_powerSGD_iter)
    model.register_comm_hook(powerSGD_state, comm_hook)


def _member(fn):
    # enum.member (3.11+) keeps a partial a member (3.13 would otherwise
    # warn that partials become methods); 3.10 has no member and needs none
    try:
        from enum import member
    except ImportError:
        return fn
    return member(fn)


def _hook(hook):
    return _member(partial(_ddp_comm_hook_wrapper, comm_hook=hook))


def _power(hook, rank):
    return _member(partial(_powerSGD_comm_hook_wrapper, comm_hook=hook,
                           matrix_approximation_rank=rank))


class DDPCommHookType(Enum):
    """The built-in hooks by name: DDPCommHookType.ALLREDUCE.value(
    model=ddp_model, state=process_group) registers allreduce_hook.
    (torch's QUANTIZE_PER_TENSOR/PER_CHANNEL are not provided.)"""

    ALLREDUCE = _hook(default.allreduce_hook)
    FP16_COMPRESS = _hook(default.fp16_compress_hook)
    BF16_COMPRESS = _hook(default.bf16_compress_hook)
    POWER_SGD = _power(powerSGD.powerSGD_hook, 1)
    # rank 2 is often more accurate, but slower and larger
    POWER_SGD_RANK2 = _power(powerSGD.powerSGD_hook, 2)
    # batching the whole bucket is faster, at the cost of accuracy
    BATCHED_POWER_SGD = _power(powerSGD.batched_powerSGD_hook, 1)
    BATCHED_POWER_SGD_RANK2 = _power(powerSGD.batched_powerSGD_hook, 2)
    NOOP = _hook(debugging.noop_hook)


def register_ddp_comm_hook(comm_hook_type, model, state=None):
    """Registers the hook named by `comm_hook_type` on a DDP model, with
    `state` (a process group, or None for the default one).

    >>> register_ddp_comm_hook(DDPCommHookType.FP16_COMPRESS, model, state)
    """
    comm_hook_type.value(model=model, state=state)
