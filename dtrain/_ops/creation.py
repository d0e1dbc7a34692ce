"""Creation ops: dtrain.tensor, zeros, ones, arange, rand, ..."""
from .. import _C
from .._device import device as _device_cls

__all__ = ["tensor", "as_tensor"]


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
        a = np.array(data, copy=True, order="C")
        if a.dtype.kind in "OUS":
            raise TypeError(f"tensor(): can't convert np.ndarray of type "
                            f"{a.dtype}")
        t = _C.from_numpy(a)
        return t if dtype is None else t._to_dtype(dtype, False)
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
