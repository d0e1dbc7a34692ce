"""Reductions and matrix products: the functions dtrain exports at top level.

The Tensor methods (sum, mean, max, ..., matmul, mm, ...) live in the C
glue (csrc/python/py_reduce.c) and follow PyTorch's signatures; these
functions forward to them, so `dtrain.sum(x, 1)` is `x.sum(1)`.
"""
import types as _types

from .. import _C

__all__ = [
    "sum", "mean", "amax", "amin", "max", "min", "argmax", "argmin", "var",
    "std", "norm", "matmul", "mm", "bmm", "mv", "dot", "set_num_threads",
    "get_num_threads", "return_types",
]

# torch.return_types: max(dim)/min(dim) return one of these struct
# sequences, a tuple with .values and .indices.
return_types = _types.SimpleNamespace(**_C._return_types())


def sum(input, dim=None, keepdim=False, *, dtype=None):
    return input.sum(dim, keepdim, dtype=dtype)


def mean(input, dim=None, keepdim=False, *, dtype=None):
    return input.mean(dim, keepdim, dtype=dtype)


def amax(input, dim=(), keepdim=False):
    return input.amax(dim, keepdim)


def amin(input, dim=(), keepdim=False):
    return input.amin(dim, keepdim)


def max(input, dim=None, keepdim=False):
    """max(input) -> 0-dim tensor; max(input, dim, keepdim=False) ->
    (values, indices); max(input, other) -> elementwise maximum."""
    return input.max(dim, keepdim)


def min(input, dim=None, keepdim=False):
    return input.min(dim, keepdim)


def argmax(input, dim=None, keepdim=False):
    return input.argmax(dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return input.argmin(dim, keepdim)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if unbiased is None:
        return input.var(dim, keepdim=keepdim, correction=correction)
    return input.var(dim, unbiased, keepdim, correction=correction)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    if unbiased is None:
        return input.std(dim, keepdim=keepdim, correction=correction)
    return input.std(dim, unbiased, keepdim, correction=correction)


def norm(input, p="fro", dim=None, keepdim=False, dtype=None):
    return input.norm(p, dim, keepdim, dtype=dtype)


def matmul(input, other):
    return input.matmul(other)


def mm(input, mat2):
    return input.mm(mat2)


def bmm(input, mat2):
    return input.bmm(mat2)


def mv(input, vec):
    return input.mv(vec)


def dot(input, tensor):
    return input.dot(tensor)


def set_num_threads(n):
    """Sets the number of threads OpenBLAS uses for matrix products."""
    _C.set_num_threads(int(n))


def get_num_threads():
    return _C.get_num_threads()
