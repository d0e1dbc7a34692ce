"""Creation ops (tensor, zeros, ones, arange, rand, ...) and generators.

Mirrors torch's names, signatures and defaults; the numbers come from
dtrain._C (csrc/ops/creation.c, csrc/rng.c). Random numbers come from a
counter-based Philox4x32-10 stream: a Generator is (seed, offset) and
element i of a draw depends only on those and i, never on threads or
chunking. dtrain does not reproduce torch's CPU numbers (torch uses
mt19937 there): same seed, same numbers holds within dtrain.

`requires_grad=True` makes the result a leaf that requires grad.
"""
import functools
import inspect
import operator
import os
import struct

from .. import _C
from .._device import device as _device_cls
from .._dtypes import get_default_dtype
from .._tensor import Tensor

__all__ = [
    "tensor", "as_tensor", "empty", "zeros", "ones", "full", "empty_like",
    "zeros_like", "ones_like", "full_like", "arange", "linspace", "eye",
    "rand", "randn", "randint", "randperm", "rand_like", "randn_like",
    "randint_like", "normal", "bernoulli", "Generator", "default_generator",
    "manual_seed", "seed", "initial_seed", "get_rng_state", "set_rng_state",
    "set_printoptions",
]

_DEFAULT_SEED = 67280421310721   # torch's default seed


def _check_device(device):
    if device is not None and _device_cls(device).type != "cpu":
        raise RuntimeError("dtrain was built without CUDA support")


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new tensor holding a copy of `data` (nested sequences, scalars,
    NumPy arrays or tensors). Python floats give float32, ints int64."""
    _check_device(device)
    if isinstance(data, _C.TensorBase):
        return data._to_dtype(dtype or data.dtype, True)
    if type(data).__module__ == "numpy" and hasattr(data, "__array__"):
        import numpy as np
        a = np.asarray(data)
        if a.dtype.kind in "OUS":
            raise TypeError(f"tensor(): can't convert np.ndarray of type "
                            f"{a.dtype}")
        try:
            # one copy, into dtrain's 64-byte-aligned memory
            src = _C.from_numpy(a)
        except ValueError:  # read-only, misaligned or negative strides
            src = _C.from_numpy(np.array(a, copy=True, order="C"))
        return src._to_dtype(dtype or src.dtype, True)
    return _C._tensor_from_data(data, dtype)


def as_tensor(data, dtype=None, device=None):
    """Like tensor() but shares memory with a tensor or ndarray when no
    conversion is needed."""
    _check_device(device)
    if isinstance(data, _C.TensorBase):
        return data if dtype is None else data._to_dtype(dtype, False)
    if type(data).__module__ == "numpy" and hasattr(data, "dtype"):
        try:
            t = _C.from_numpy(data)
        except (TypeError, ValueError):
            return tensor(data, dtype)
        return t if dtype is None else t._to_dtype(dtype, False)
    return tensor(data, dtype)


# ---------------------------------------------------------------------------
# argument normalisation

def _size(op, size):
    """zeros(2, 3), zeros((2, 3)) and zeros([2, 3]) all give (2, 3); the C
    side parses either spelling and rejects non-ints naming the op."""
    if len(size) == 0:
        raise TypeError(f'{op}() missing 1 required positional arguments: '
                        f'"size"')
    return tuple(size)


def _seq_size(size):
    """A size given as one argument (full, randint, normal), in the form
    the C side parses: a 1-tuple holding the sequence."""
    return (size,)


def _scalar(value, op, name):
    """A Python bool, int or float from a number or a one-element tensor."""
    if isinstance(value, _C.TensorBase):
        value = value.item()
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, (str, bytes, complex)) or value is None:
        raise TypeError(f"{op}(): argument '{name}' must be Number, not "
                        f"{type(value).__name__}")
    try:
        return operator.index(value)
    except TypeError:
        return float(value)


def _gen(generator, op):
    if generator is None:
        return None
    if not isinstance(generator, Generator):
        raise TypeError(f"{op}(): generator must be a dtrain.Generator, not "
                        f"{type(generator).__name__}")
    return generator._handle


# ---------------------------------------------------------------------------
# filled tensors

def empty(*size, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return _C._empty(_size("empty", size), dtype or get_default_dtype(),
                     "empty")


def zeros(*size, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return _C._full(_size("zeros", size), None, dtype or get_default_dtype(),
                    "zeros")


def ones(*size, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return _C._full(_size("ones", size), 1, dtype or get_default_dtype(),
                    "ones")


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """dtype None follows fill_value: bool -> bool, int -> int64, float ->
    the default float dtype."""
    _check_device(device)
    fill_value = _scalar(fill_value, "full", "fill_value")
    if dtype is None:
        dtype = (_C.bool if isinstance(fill_value, bool) else
                 _C.int64 if isinstance(fill_value, int) else
                 get_default_dtype())
    return _C._full(_seq_size(size), fill_value, dtype, "full")


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    return empty(input.shape, dtype=dtype or input.dtype, device=device)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    return zeros(input.shape, dtype=dtype or input.dtype, device=device)


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    return ones(input.shape, dtype=dtype or input.dtype, device=device)


def full_like(input, fill_value, *, dtype=None, device=None,
              requires_grad=False):
    return full(input.shape, fill_value, dtype=dtype or input.dtype,
                device=device)


# ---------------------------------------------------------------------------
# ranges

def arange(start, end=None, step=1, *, dtype=None, device=None,
           requires_grad=False):
    """arange(end) or arange(start, end, step=1): int64 when every bound is
    an int, else the default float dtype; ceil((end - start) / step)
    elements."""
    _check_device(device)
    if end is None:
        start, end = 0, start
    args = [_scalar(v, "arange", n)
            for v, n in ((start, "start"), (end, "end"), (step, "step"))]
    if dtype is None:
        all_int = all(isinstance(v, int) for v in args)
        dtype = _C.int64 if all_int else get_default_dtype()
    return _C._arange(*args, dtype)


def linspace(start, end, steps, *, dtype=None, device=None,
             requires_grad=False):
    _check_device(device)
    start = _scalar(start, "linspace", "start")
    end = _scalar(end, "linspace", "end")
    if not isinstance(steps, int) or isinstance(steps, bool):
        raise TypeError(f"linspace(): argument 'steps' must be int, not "
                        f"{type(steps).__name__}")
    return _C._linspace(start, end, steps, dtype or get_default_dtype())


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    _check_device(device)
    return _C._eye(n, n if m is None else m, dtype or get_default_dtype())


# ---------------------------------------------------------------------------
# random tensors

def rand(*size, generator=None, dtype=None, device=None,
         requires_grad=False):
    """Uniform on [0, 1): 24 random bits per float32, 53 per float64."""
    _check_device(device)
    return _C._rand(_size("rand", size), dtype or get_default_dtype(),
                    _gen(generator, "rand"))


def randn(*size, generator=None, dtype=None, device=None,
          requires_grad=False):
    """Standard normal (Box-Muller on pairs of uniforms)."""
    _check_device(device)
    return _C._randn(_size("randn", size), dtype or get_default_dtype(),
                     _gen(generator, "randn"))


def randint(*args, size=None, generator=None, dtype=None, device=None,
            requires_grad=False, low=None, high=None):
    """randint(high, size) or randint(low, high, size): integers uniform in
    [low, high), int64 unless dtype says otherwise."""
    _check_device(device)
    args = list(args)
    if size is None:
        if not args:
            raise TypeError("randint(): missing required argument 'size'")
        size = args.pop()
    if high is None:
        if not args:
            raise TypeError("randint(): missing required argument 'high'")
        high = args.pop()
    if low is None:
        low = args.pop() if args else 0
    if args:
        raise TypeError("randint(): expected (high, size) or (low, high, "
                        "size)")
    return _C._randint(int(low), int(high), _seq_size(size),
                       dtype or _C.int64, _gen(generator, "randint"))


def randperm(n, *, generator=None, dtype=None, device=None,
             requires_grad=False):
    _check_device(device)
    return _C._randperm(n, dtype or _C.int64, _gen(generator, "randperm"))


def rand_like(input, *, dtype=None, device=None, requires_grad=False,
              generator=None):
    return rand(input.shape, dtype=dtype or input.dtype, device=device,
                generator=generator)


def randn_like(input, *, dtype=None, device=None, requires_grad=False,
               generator=None):
    return randn(input.shape, dtype=dtype or input.dtype, device=device,
                 generator=generator)


def randint_like(input, low=0, high=None, *, dtype=None, device=None,
                 requires_grad=False, generator=None):
    if high is None:
        low, high = 0, low
    return randint(low, high, input.shape, dtype=dtype or input.dtype,
                   device=device, generator=generator)


def normal(mean, std, size, *, generator=None, dtype=None, device=None,
           requires_grad=False):
    """normal(mean, std, size) with float mean and std (the tensor
    overloads come with the elementwise ops)."""
    if isinstance(mean, _C.TensorBase) or isinstance(std, _C.TensorBase):
        raise NotImplementedError("normal(): tensor mean/std are not "
                                  "supported yet; use normal_ on a tensor")
    t = empty(*_seq_size(size), dtype=dtype, device=device)
    return _normal_(t, mean, std, generator=generator)


def bernoulli(input, p=None, *, generator=None):
    """1 with probability input[i] (or p), else 0, in input's dtype."""
    if p is not None:
        return _bernoulli_(empty_like(input), p, generator=generator)
    return _C._bernoulli(input, _gen(generator, "bernoulli"))


# ---------------------------------------------------------------------------
# in-place draws and new_* (attached to Tensor below)

def _uniform_(self, from_=0.0, to=1.0, *, generator=None, **kwargs):
    from_ = kwargs.pop("from", from_)   # torch spells it `from`
    if kwargs:
        raise TypeError(f"uniform_(): unexpected arguments {list(kwargs)}")
    _C._uniform_(self, float(from_), float(to), _gen(generator, "uniform_"))
    return self


def _normal_(self, mean=0.0, std=1.0, *, generator=None):
    _C._normal_(self, float(mean), float(std), _gen(generator, "normal_"))
    return self


def _bernoulli_(self, p=0.5, *, generator=None):
    g = _gen(generator, "bernoulli_")
    if isinstance(p, _C.TensorBase):
        if tuple(p.shape) != tuple(self.shape):
            p = p.expand(*self.shape)
        return self.copy_(_C._bernoulli(p, g))
    _C._bernoulli_(self, float(p), g)
    return self


def _new_empty(self, *size, dtype=None, device=None, requires_grad=False):
    return empty(*size, dtype=dtype or self.dtype, device=device)


def _new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
    return zeros(*size, dtype=dtype or self.dtype, device=device)


def _new_ones(self, *size, dtype=None, device=None, requires_grad=False):
    return ones(*size, dtype=dtype or self.dtype, device=device)


def _new_full(self, size, fill_value, *, dtype=None, device=None,
              requires_grad=False):
    return full(size, fill_value, dtype=dtype or self.dtype, device=device)


for _name, _fn in (("uniform_", _uniform_), ("normal_", _normal_),
                   ("bernoulli_", _bernoulli_), ("new_empty", _new_empty),
                   ("new_zeros", _new_zeros), ("new_ones", _new_ones),
                   ("new_full", _new_full)):
    _fn.__name__ = _fn.__qualname__ = _name
    setattr(Tensor, _name, _fn)
del _name, _fn


# ---------------------------------------------------------------------------
# generators

def _seed_value(seed):
    """torch's rule: any int in [-2**63, 2**64); negatives wrap."""
    seed = int(seed)
    if not -(1 << 63) <= seed < (1 << 64):
        raise RuntimeError(f"manual_seed: seed {seed} must be within the "
                           f"range [-0x8000_0000_0000_0000, "
                           f"0xffff_ffff_ffff_ffff]")
    return seed & ((1 << 64) - 1)


class Generator:
    """A Philox4x32-10 stream: a seed (the key) and an offset (the next
    unused 128-bit counter block). get_state() is a 16-byte uint8 tensor
    holding both, little-endian."""

    __slots__ = ("_handle", "device")

    def __init__(self, device="cpu"):
        _check_device(device)
        self.device = _device_cls(device or "cpu")
        self._handle = _C._generator_new(_DEFAULT_SEED)

    def manual_seed(self, seed):
        _C._generator_set_state(self._handle, _seed_value(seed), 0)
        return self

    def seed(self):
        """Seeds from the OS's entropy pool and returns the seed."""
        s = int.from_bytes(os.urandom(8), "little") >> 1
        self.manual_seed(s)
        return s

    def initial_seed(self):
        return _C._generator_state(self._handle)[0]

    def get_offset(self):
        """The next unused counter block (4 float32 draws per block)."""
        return _C._generator_state(self._handle)[1]

    def set_offset(self, offset):
        seed = self.initial_seed()
        _C._generator_set_state(self._handle, seed, operator.index(offset))
        return self

    def get_state(self):
        seed, offset = _C._generator_state(self._handle)
        return tensor(list(struct.pack("<QQ", seed, offset)), dtype=_C.uint8)

    def set_state(self, new_state):
        if isinstance(new_state, _C.TensorBase):
            if new_state.dtype != _C.uint8:
                raise TypeError(f"set_state(): expected a uint8 tensor, got "
                                f"{new_state.dtype}")
            new_state = bytes(new_state.tolist())
        if not isinstance(new_state, (bytes, bytearray)) or \
                len(new_state) != 16:
            raise RuntimeError("set_state(): expected the 16-byte state "
                               "that get_state() returns")
        _C._generator_set_state(self._handle,
                                *struct.unpack("<QQ", bytes(new_state)))
        return self

    def __repr__(self):
        return f"<dtrain.Generator seed={self.initial_seed()} " \
               f"offset={self.get_offset()}>"


default_generator = Generator.__new__(Generator)
default_generator.device = _device_cls("cpu")
default_generator._handle = _C._default_generator()


def manual_seed(seed):
    """Seeds the default generator (and restarts its stream)."""
    return default_generator.manual_seed(seed)


def seed():
    return default_generator.seed()


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state):
    default_generator.set_state(new_state)


def set_printoptions(precision=None, threshold=None, edgeitems=None,
                     linewidth=None, profile=None, sci_mode=None):
    from .._tensor_str import set_printoptions as _set
    _set(precision, threshold, edgeitems, linewidth, profile, sci_mode)


def _honour_requires_grad(fn):
    """Wraps a creation function so requires_grad=True marks its result."""
    @functools.wraps(fn)
    def wrapper(*args, requires_grad=False, **kwargs):
        out = fn(*args, **kwargs)
        return out.requires_grad_() if requires_grad else out
    return wrapper


for _name in list(__all__):
    _fn = globals()[_name]
    if callable(_fn) and not isinstance(_fn, type) and \
            "requires_grad" in inspect.signature(_fn).parameters:
        globals()[_name] = _honour_requires_grad(_fn)
del _name, _fn
