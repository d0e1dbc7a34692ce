"""The built-in DDP communication hooks (torch's default_hooks):
allreduce_hook (the mean, as DDP without a hook), fp16/bf16_compress_hook
(the mean, communicated in half precision) and the wrappers that run any
hook on a half-precision copy of the bucket.

A hook is `hook(state, bucket) -> Future` whose result is a tensor with
bucket.buffer()'s size and dtype. The reducer does not divide the
gradients by the world size when a hook is installed, so every hook here
divides before communicating (which also keeps half-precision sums from
overflowing).
"""
from .... import bfloat16, float16
from ... import c10d
from ..._collectives import all_reduce

__all__ = ["allreduce_hook", "fp16_compress_hook", "bf16_compress_hook",
           "fp16_compress_wrapper", "bf16_compress_wrapper"]


def _group(process_group, what):
    """The ProcessGroup to use: process_group, or the default one."""
    pg = c10d._resolve(process_group, what)
    if pg is None:
        raise ValueError(f"{what}: this rank ({c10d.get_rank()}) is not a "
                         f"member of the hook's process group")
    return pg


def _allreduce_fut(process_group, tensor):
    """Averages `tensor` in place across the group; a future of it."""
    group = _group(process_group, "allreduce_hook")
    # divide first: keeps fp16 sums from overflowing (as torch)
    tensor.div_(group.size())
    return (all_reduce(tensor, group=group, async_op=True).get_future()
            .then(lambda fut: fut.value()[0]))


def allreduce_hook(process_group, bucket):
    """The mean of the bucket over the group, as DDP computes without a
    hook: divide by the world size, then a SUM all-reduce.

    >>> ddp_model.register_comm_hook(process_group, allreduce_hook)
    """
    return _allreduce_fut(process_group, bucket.buffer())


def _compress_hook(dtype, process_group, bucket, what):
    group = _group(process_group, what)
    buffer = bucket.buffer()
    compressed = buffer.to(dtype).div_(group.size())

    def decompress(fut):
        # in place, so the full-precision result needs no second buffer
        # (torch #45968)
        buffer.copy_(fut.value()[0])
        return buffer

    return (all_reduce(compressed, group=group, async_op=True).get_future()
            .then(decompress))


def fp16_compress_hook(process_group, bucket):
    """The mean, communicated in float16: the bucket is cast to float16
    and divided by the world size, all-reduced, and the result is copied
    back into bucket.buffer() (which the future returns).

    >>> ddp_model.register_comm_hook(process_group, fp16_compress_hook)
    """
    return _compress_hook(float16, process_group, bucket,
                          "fp16_compress_hook")


def bf16_compress_hook(process_group, bucket):
    """fp16_compress_hook with bfloat16 (float32's range, 8 significant
    bits)."""
    return _compress_hook(bfloat16, process_group, bucket,
                          "bf16_compress_hook")


def _compress_wrapper(dtype, hook):
    def wrapped(hook_state, bucket):
        buffer = bucket.buffer()
        bucket.set_buffer(buffer.to(dtype))
        fut = hook(hook_state, bucket)

        def decompress(fut):
            # torch copies into the compressed buffer and returns that;
            # the bucket's own full-precision buffer is what the reducer
            # expects back (its size and dtype), so decompress into it
            buffer.copy_(fut.value())
            bucket.set_buffer(buffer)
            return buffer

        return fut.then(decompress)

    return wrapped


def fp16_compress_wrapper(hook):
    """Runs `hook` on a float16 copy of the bucket: fp16_compress_hook is
    fp16_compress_wrapper(allreduce_hook).

    >>> state = PowerSGDState(process_group=pg, start_powerSGD_iter=10)
    >>> ddp_model.register_comm_hook(state,
    ...                              fp16_compress_wrapper(powerSGD_hook))
    """
    return _compress_wrapper(float16, hook)


def bf16_compress_wrapper(hook):
    """bf16 version of fp16_compress_wrapper."""
    return _compress_wrapper(bfloat16, hook)
