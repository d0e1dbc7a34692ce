"""GradBucket: what a DDP communication hook receives (torch's
dist.GradBucket).

The reducer writes a bucket's gradients into one flat 1-D buffer (not
divided by the world size when a hook is installed) and hands the hook a
GradBucket over it. The parameters lie in the buffer consecutively, in
the order given, each taking numel elements, with no padding; gradients()
views the buffer accordingly. set_buffer() swaps in another tensor (the
fp16/bf16 wrappers hand the wrapped hook a compressed copy); buffer() and
gradients() then refer to it.
"""
from .._tensor import Tensor

__all__ = ["GradBucket"]


class GradBucket:
    """GradBucket(index, buffer, parameters, is_last): one bucket of
    gradients, as DDP passes it to `hook(state, bucket)`."""

    __slots__ = ("_index", "_buffer", "_parameters", "_shapes", "_offsets",
                 "_is_last")

    def __init__(self, index, buffer, parameters, is_last):
        if not isinstance(buffer, Tensor):
            raise TypeError(f"GradBucket: buffer must be a dtrain.Tensor, "
                            f"got {type(buffer).__name__}")
        if buffer.dim() != 1 or not buffer.is_contiguous():
            raise ValueError(f"GradBucket: buffer must be a flat contiguous "
                             f"1-D tensor, got shape {list(buffer.shape)}")
        parameters = list(parameters)
        shapes, offsets, offset = [], [], 0
        for i, p in enumerate(parameters):
            if not isinstance(p, Tensor):
                raise TypeError(f"GradBucket: parameter {i} is a "
                                f"{type(p).__name__}, not a dtrain.Tensor")
            shapes.append(p.shape)
            offsets.append(offset)
            offset += p.numel()
        if offset != buffer.numel():
            raise ValueError(f"GradBucket: the parameters hold {offset} "
                             f"elements but the buffer has "
                             f"{buffer.numel()}")
        self._index = int(index)
        self._buffer = buffer
        self._parameters = parameters
        self._shapes = shapes
        self._offsets = offsets
        self._is_last = bool(is_last)

    def index(self):
        """The bucket's index (DDP launches buckets in index order)."""
        return self._index

    def buffer(self):
        """The flat 1-D tensor holding the bucket's gradients."""
        return self._buffer

    def gradients(self):
        """One view of buffer() per parameter, shaped like it."""
        buf = self._buffer
        return [buf.narrow(0, off, shape.numel()).view(shape)
                for off, shape in zip(self._offsets, self._shapes)]

    def parameters(self):
        return list(self._parameters)

    def is_last(self):
        """True for the last bucket reduced in an iteration."""
        return self._is_last

    def set_buffer(self, buffer):
        """Replaces the tensor that buffer() and gradients() refer to (a
        flat tensor of the same number of elements)."""
        if not isinstance(buffer, Tensor):
            raise TypeError(f"GradBucket.set_buffer: expected a "
                            f"dtrain.Tensor, got {type(buffer).__name__}")
        if buffer.dim() != 1 or buffer.numel() != self._buffer.numel():
            raise ValueError(f"GradBucket.set_buffer: expected a 1-D tensor "
                             f"of {self._buffer.numel()} elements, got shape "
                             f"{list(buffer.shape)}")
        self._buffer = buffer

    def __repr__(self):
        return (f"<GradBucket {self._index}: {len(self._parameters)} "
                f"parameters, {self._buffer.numel()} elements, "
                f"{self._buffer.dtype}{', last' if self._is_last else ''}>")
