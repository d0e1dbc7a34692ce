"""Indexing, gather/scatter, joining and splitting: the functions dtrain
exports at top level. Tensor methods (t.gather, t.split, t[key], ...) come
from the C glue; these mirror torch's function forms."""
from .. import _C

__all__ = ["cat", "concat", "concatenate", "stack", "split", "chunk",
           "unbind", "gather", "scatter_add", "index_select", "masked_fill",
           "nonzero", "one_hot"]


def cat(tensors, dim=0, *, out=None):
    """Concatenates tensors along an existing dim, promoting dtypes."""
    return _C.cat(tensors, dim, out)


concat = cat
concatenate = cat


def stack(tensors, dim=0, *, out=None):
    """Joins equal-shaped tensors along a new dim."""
    return _C.stack(tensors, dim, out)


def split(tensor, split_size_or_sections, dim=0):
    """Views of `tensor`: pieces of one size (the last may be smaller), or
    of the sizes listed."""
    return tensor.split(split_size_or_sections, dim)


def chunk(input, chunks, dim=0):
    """Views of `input` in `chunks` pieces of ceil(size / chunks)."""
    return input.chunk(chunks, dim)


def unbind(input, dim=0):
    """The slices of `input` along `dim`, as views."""
    return input.unbind(dim)


def gather(input, dim, index):
    return input.gather(dim, index)


def scatter_add(input, dim, index, src):
    return input.scatter_add(dim, index, src)


def index_select(input, dim, index):
    return input.index_select(dim, index)


def masked_fill(input, mask, value):
    return input.masked_fill(mask, value)


def nonzero(input):
    return input.nonzero()


def one_hot(tensor, num_classes=-1):
    """An int64 tensor of shape tensor.shape + (num_classes,) with a 1 at
    each class index (torch.nn.functional.one_hot)."""
    return _C.one_hot(tensor, num_classes)
