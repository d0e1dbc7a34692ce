"""dtrain.Tensor: the Python half of the tensor type.

The C half (_C.TensorBase) holds the data and implements the ops; this class
adds what is easier to say in Python: argument normalisation (`to`), the
Size type, iteration and printing.
"""
import builtins

from . import _C
from ._device import device as _device_cls


class Size(tuple):
    """The shape of a tensor: a tuple of ints, as torch.Size."""

    def numel(self):
        n = 1
        for s in self:
            n *= s
        return n

    def __repr__(self):
        return f"dtrain.Size([{', '.join(builtins.str(s) for s in self)}])"

    def __getitem__(self, key):
        out = tuple.__getitem__(self, key)
        return Size(out) if isinstance(key, slice) else out


class Tensor(_C.TensorBase):
    """A strided n-dimensional array in the C core (see csrc/dt.h)."""

    __hash__ = object.__hash__
    __array_priority__ = 1000  # ndarray <op> Tensor defers to the Tensor

    @property
    def shape(self):
        return Size(self._shape)

    @property
    def device(self):
        return _device_cls(self._device)

    @property
    def is_cuda(self):
        return self._device.startswith("cuda")

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    @property
    def mT(self):
        return self.transpose(-2, -1)

    def size(self, dim=None):
        return Size(self._shape) if dim is None else _C.TensorBase.size(
            self, dim)

    def dim(self):
        return self.ndim

    def element_size(self):
        return self.dtype.itemsize

    def nelement(self):
        return self.numel()

    def is_floating_point(self):
        return self.dtype.is_floating_point

    def to(self, *args, dtype=None, device=None, copy=False,
           non_blocking=False):
        """to(dtype), to(device), to(device, dtype), to(other_tensor)."""
        for a in args:
            if isinstance(a, _C.dtype):
                dtype = a
            elif isinstance(a, Tensor):
                dtype, device = a.dtype, a.device
            elif isinstance(a, (str, _device_cls)):
                device = a
            else:
                raise TypeError(f"to(): unexpected argument {a!r}")
        if device is not None and _device_cls(device).type != "cpu":
            raise RuntimeError(
                "to(): dtrain was built without CUDA support")
        return self._to_dtype(dtype or self.dtype, copy)

    def type(self, dtype=None):
        if dtype is None:
            return "dtrain." + _TYPE_NAMES[self.dtype]
        return self.to(dtype)

    def float(self):
        return self._to_dtype(_C.float32)

    def double(self):
        return self._to_dtype(_C.float64)

    def half(self):
        return self._to_dtype(_C.float16)

    def bfloat16(self):
        return self._to_dtype(_C.bfloat16)

    def int(self):
        return self._to_dtype(_C.int32)

    def long(self):
        return self._to_dtype(_C.int64)

    def bool(self):
        return self._to_dtype(_C.bool)

    def byte(self):
        return self._to_dtype(_C.uint8)

    def cpu(self):
        return self

    def new_tensor(self, data, dtype=None):
        from ._ops.creation import tensor
        return tensor(data, dtype=dtype or self.dtype)

    def softmax(self, dim, dtype=None):
        from .nn.functional import softmax
        return softmax(self, dim, dtype=dtype)

    def log_softmax(self, dim, dtype=None):
        from .nn.functional import log_softmax
        return log_softmax(self, dim, dtype=dtype)

    # ------------------------------------------------------------ autograd

    def backward(self, gradient=None, retain_graph=None, create_graph=False,
                 inputs=None):
        """Accumulates the gradient of this tensor into the leaves' .grad."""
        from .autograd import backward
        backward(self, gradient, retain_graph, create_graph, inputs)

    def register_hook(self, hook):
        """hook(grad) -> Tensor or None runs when this tensor's gradient is
        computed; returns a handle whose remove() unregisters it."""
        return _RemovableHandle(self, self._register_hook(hook))

    def register_post_accumulate_grad_hook(self, hook):
        """hook(tensor) runs after a leaf's .grad was accumulated."""
        return _RemovableHandle(
            self, self._register_post_accumulate_grad_hook(hook))

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self.select(0, i) for i in range(self._shape[0]))

    def __reversed__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self.select(0, i) for i in reversed(range(self._shape[0])))

    def __contains__(self, element):
        return builtins.bool((self == element).any())

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def __reduce_ex__(self, proto):
        # pickles by value through NumPy (bfloat16 goes via float32)
        from ._ops.creation import tensor
        if self.dtype == _C.bfloat16:
            return (_rebuild_bf16, (self.float().numpy().copy(),))
        return (tensor, (self.numpy().copy(),))

    def __format__(self, spec):
        if self.ndim == 0:
            return self.item().__format__(spec)
        return object.__format__(self, spec)

    def __repr__(self):
        from ._tensor_str import tensor_repr
        return tensor_repr(self)

    __str__ = __repr__


class _RemovableHandle:
    """What register_hook returns: remove() takes the hook off again."""

    def __init__(self, tensor, hook_id):
        import weakref
        self._tensor = weakref.ref(tensor)
        self.id = hook_id

    def remove(self):
        t = self._tensor()
        if t is not None:
            t._remove_hook(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def _rebuild_bf16(array):
    from ._ops.creation import tensor
    return tensor(array).bfloat16()


_TYPE_NAMES = {
    _C.float32: "FloatTensor", _C.float64: "DoubleTensor",
    _C.float16: "HalfTensor", _C.bfloat16: "BFloat16Tensor",
    _C.int32: "IntTensor", _C.int64: "LongTensor", _C.uint8: "ByteTensor",
    _C.bool: "BoolTensor",
}

_C._set_tensor_class(Tensor)
