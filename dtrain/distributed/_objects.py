"""Object collectives (broadcast_object_list, all_gather_object,
gather_object, scatter_object_list) with a safe encoding instead of pickle.

torch pickles the objects, so any peer can run code on every rank. Here
objects are encoded as tagged bytes and decoded without executing
anything: None, bool, int (any size), float, str, bytes, list, tuple,
dict (keys of those types too) and dtrain tensors (dtype, shape and data;
decoded as contiguous CPU tensors). Anything else raises TypeError naming
the type. Nesting is limited to 100 levels.
"""
import struct

import numpy as np

from .. import Tensor, empty, from_numpy, tensor as make_tensor
from .. import _dtypes
from ._collectives import all_gather_into_tensor, broadcast, gather, scatter
from .c10d import _resolve

__all__ = ["broadcast_object_list", "all_gather_object", "gather_object",
           "scatter_object_list", "encode_object", "decode_object"]

_MAX_DEPTH = 100
_DTYPES = {name: getattr(_dtypes, name) for name in (
    "float32", "float64", "float16", "bfloat16", "int32", "int64", "uint8",
    "bool")}


def _u32(n):
    return struct.pack("<I", n)


def _encode(obj, out, depth):
    if depth > _MAX_DEPTH:
        raise ValueError("encode_object: objects nest too deeply")
    if obj is None:
        out.append(b"N")
    elif obj is True or obj is False:
        out.append(b"T" if obj else b"F")
    elif type(obj) is int:
        text = str(obj).encode()
        out += [b"I", _u32(len(text)), text]
    elif type(obj) is float:
        out += [b"D", struct.pack("<d", obj)]
    elif type(obj) is str:
        data = obj.encode("utf-8", "surrogatepass")
        out += [b"S", _u32(len(data)), data]
    elif type(obj) in (bytes, bytearray):
        out += [b"B", _u32(len(obj)), bytes(obj)]
    elif type(obj) in (list, tuple):
        out += [b"L" if type(obj) is list else b"U", _u32(len(obj))]
        for item in obj:
            _encode(item, out, depth + 1)
    elif type(obj) is dict:
        out += [b"M", _u32(len(obj))]
        for k, v in obj.items():
            _encode(k, out, depth + 1)
            _encode(v, out, depth + 1)
    elif isinstance(obj, Tensor):
        _encode_tensor(obj, out)
    else:
        raise TypeError(f"object collectives cannot send an object of type "
                        f"{type(obj).__name__}: only None, bool, int, "
                        f"float, str, bytes, list, tuple, dict and dtrain "
                        f"tensors are allowed (no pickle, for safety)")


def _encode_tensor(t, out):
    name = str(t.dtype).rsplit(".", 1)[-1]
    # bfloat16 has no NumPy type: its float32 widening is exact
    arr = (t.float() if name == "bfloat16" else t).contiguous().numpy()
    data = np.ascontiguousarray(arr).tobytes()
    if len(data) >= 2**32:
        raise ValueError("encode_object: tensors over 4 GiB are not allowed")
    out += [b"X", _u32(len(name)), name.encode(), _u32(t.dim())]
    out += [struct.pack("<q", s) for s in t.shape]
    out += [_u32(len(data)), data]


def encode_object(obj):
    """bytes encoding obj (see the module docstring)."""
    out = []
    _encode(obj, out, 0)
    return b"".join(out)


class _Reader:
    def __init__(self, data):
        self.data, self.pos = memoryview(data), 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError("decode_object: truncated or corrupt data")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]


def _decode(r, depth):
    if depth > _MAX_DEPTH:
        raise ValueError("decode_object: objects nest too deeply")
    tag = bytes(r.take(1))
    if tag == b"N":
        return None
    if tag in (b"T", b"F"):
        return tag == b"T"
    if tag == b"I":
        return int(bytes(r.take(r.u32())))
    if tag == b"D":
        return struct.unpack("<d", r.take(8))[0]
    if tag == b"S":
        return str(r.take(r.u32()), "utf-8", "surrogatepass")
    if tag == b"B":
        return bytes(r.take(r.u32()))
    if tag in (b"L", b"U"):
        items = [_decode(r, depth + 1) for _ in range(r.u32())]
        return items if tag == b"L" else tuple(items)
    if tag == b"M":
        n = r.u32()
        out = {}
        for _ in range(n):
            k = _decode(r, depth + 1)
            out[k] = _decode(r, depth + 1)
        return out
    if tag == b"X":
        return _decode_tensor(r)
    raise ValueError(f"decode_object: unknown tag {tag!r}")


def _decode_tensor(r):
    name = str(r.take(r.u32()), "ascii")
    if name not in _DTYPES:
        raise ValueError(f"decode_object: unknown dtype {name!r}")
    ndim = r.u32()
    if ndim > 8:
        raise ValueError("decode_object: too many dimensions")
    shape = [struct.unpack("<q", r.take(8))[0] for _ in range(ndim)]
    data = bytes(r.take(r.u32()))
    np_name = "float32" if name == "bfloat16" else name
    arr = np.frombuffer(data, dtype=np.dtype(np_name)).copy()
    if any(s < 0 for s in shape) or arr.size != int(np.prod(shape)):
        raise ValueError("decode_object: tensor data does not match shape")
    t = from_numpy(arr.reshape(shape))
    return t.to(_DTYPES["bfloat16"]) if name == "bfloat16" else t


def decode_object(data):
    r = _Reader(data)
    obj = _decode(r, 0)
    if r.pos != len(r.data):
        raise ValueError("decode_object: trailing bytes")
    return obj


# ---------------------------------------------------------------------------
# the collectives


def _bytes_tensor(data, size=None):
    """A uint8 tensor holding data, padded to size."""
    size = len(data) if size is None else size
    arr = np.zeros(size, dtype=np.uint8)
    arr[:len(data)] = np.frombuffer(data, dtype=np.uint8)
    return from_numpy(arr)


def _sizes(t):
    return [int(v) for v in t.tolist()]


def broadcast_object_list(object_list, src=None, group=None, device=None,
                          group_src=None):
    pg = _resolve(group, "broadcast_object_list")
    if pg is None:
        return
    root = group_src if group_src is not None else pg._group(
        0 if src is None else src, "broadcast_object_list")
    n = len(object_list)
    if pg.rank() == root:
        blobs = [encode_object(o) for o in object_list]
        sizes = make_tensor([len(b) for b in blobs], dtype=_DTYPES["int64"])
    else:
        sizes = empty(n, dtype=_DTYPES["int64"])
    broadcast(sizes, group=group, group_src=root)
    lens = _sizes(sizes)
    data = (_bytes_tensor(b"".join(blobs)) if pg.rank() == root
            else empty(sum(lens), dtype=_DTYPES["uint8"]))
    broadcast(data, group=group, group_src=root)
    if pg.rank() != root:
        raw, start = bytes(memoryview(data.numpy())), 0
        for i, k in enumerate(lens):
            object_list[i] = decode_object(raw[start:start + k])
            start += k


def _gather_sizes(pg, blob, group):
    mine = make_tensor([len(blob)], dtype=_DTYPES["int64"])
    sizes = empty(pg.size(), dtype=_DTYPES["int64"])
    all_gather_into_tensor(sizes, mine, group=group)
    return _sizes(sizes)


def _split(raw, lens, width):
    return [decode_object(raw[i * width:i * width + k])
            for i, k in enumerate(lens)]


def all_gather_object(object_list, obj, group=None):
    pg = _resolve(group, "all_gather_object")
    if pg is None:
        return
    if len(object_list) != pg.size():
        raise ValueError(f"all_gather_object: object_list must have "
                         f"{pg.size()} entries, got {len(object_list)}")
    blob = encode_object(obj)
    lens = _gather_sizes(pg, blob, group)
    width = max(lens)
    out = empty(width * pg.size(), dtype=_DTYPES["uint8"])
    all_gather_into_tensor(out, _bytes_tensor(blob, width), group=group)
    object_list[:] = _split(bytes(memoryview(out.numpy())), lens, width)


def gather_object(obj, object_gather_list=None, dst=None, group=None,
                  group_dst=None):
    pg = _resolve(group, "gather_object")
    if pg is None:
        return
    root = group_dst if group_dst is not None else pg._group(
        0 if dst is None else dst, "gather_object")
    if pg.rank() == root and (object_gather_list is None or
                              len(object_gather_list) != pg.size()):
        raise ValueError(f"gather_object: object_gather_list must have "
                         f"{pg.size()} entries on the destination rank")
    blob = encode_object(obj)
    lens = _gather_sizes(pg, blob, group)
    width = max(lens)
    parts = ([empty(width, dtype=_DTYPES["uint8"]) for _ in lens]
             if pg.rank() == root else None)
    gather(_bytes_tensor(blob, width), parts, group=group, group_dst=root)
    if pg.rank() == root:
        for i, (p, k) in enumerate(zip(parts, lens)):
            object_gather_list[i] = decode_object(
                bytes(memoryview(p.numpy()))[:k])


def scatter_object_list(scatter_object_output_list,
                        scatter_object_input_list=None, src=None, group=None,
                        group_src=None):
    pg = _resolve(group, "scatter_object_list")
    if pg is None:
        return
    root = group_src if group_src is not None else pg._group(
        0 if src is None else src, "scatter_object_list")
    if not isinstance(scatter_object_output_list, list) or \
            len(scatter_object_output_list) < 1:
        raise ValueError("Expected argument scatter_object_output_list to "
                         "be a list of size at least 1.")
    if pg.rank() == root:
        if scatter_object_input_list is None or \
                len(scatter_object_input_list) != pg.size():
            raise ValueError(f"scatter_object_list: the input list must "
                             f"have {pg.size()} entries on the source rank")
        blobs = [encode_object(o) for o in scatter_object_input_list]
        lens = make_tensor([len(b) for b in blobs], dtype=_DTYPES["int64"])
    else:
        lens = empty(pg.size(), dtype=_DTYPES["int64"])
    broadcast(lens, group=group, group_src=root)
    sizes = _sizes(lens)
    width = max(sizes)
    parts = ([_bytes_tensor(b, width) for b in blobs]
             if pg.rank() == root else None)
    out = empty(width, dtype=_DTYPES["uint8"])
    scatter(out, parts, group=group, group_src=root)
    me = pg.rank()
    scatter_object_output_list[0] = decode_object(
        bytes(memoryview(out.numpy()))[:sizes[me]])

