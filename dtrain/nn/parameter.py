"""Parameter: a tensor that a Module registers as one of its parameters."""
from .. import _C
from .._tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad (by default) and that Module
    attribute assignment registers. Parameter(data) shares data's memory."""

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            from .._ops.creation import empty
            data = empty(0)
        if not isinstance(data, _C.TensorBase):
            raise TypeError(f"Parameter: expected a Tensor, got "
                            f"{type(data).__name__}")
        p = _C._make_subclass(cls, data.detach())
        p.requires_grad_(requires_grad)
        return p

    def __init__(self, data=None, requires_grad=True):
        pass

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()

    __str__ = __repr__

    def __reduce_ex__(self, proto):
        return (Parameter, (self.detach(), self.requires_grad))


class Buffer(Tensor):
    """Marks a tensor as a buffer when assigned to a Module attribute."""

    def __new__(cls, data, persistent=True):
        b = _C._make_subclass(cls, data.detach())
        b.persistent = persistent
        return b
