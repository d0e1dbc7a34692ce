"""dtrain.save / dtrain.load: checkpoints without pickle.

File layout (all integers little-endian):

    magic      8 bytes   b"DTRAINCK"
    version    u32       1
    header_len u64       length of the JSON header
    data_len   u64       length of the data section
    data_crc   u32       zlib.crc32 of the data section
    header     JSON      the object tree (UTF-8)
    data       bytes     tensor contents, each 64-byte aligned

The header encodes None, bool, int, float (as float.hex, so nan/inf and
every bit survive), str, bytes (hex), list, tuple, dict (any keys of these
types, order kept) and tensors ({"T": dtype, shape, offset, nbytes} into
the data section). Nothing else is accepted, so loading an untrusted file
can't run code; a truncated or corrupted file raises CheckpointError.
Views are saved as their own values (shared storage is not preserved).

save() writes a temporary file in the same directory, fsyncs it and renames
it over the target, so a crash never leaves a half-written checkpoint.
"""
import json
import os
import struct
import zlib

import numpy as np

from . import _C

MAGIC = b"DTRAINCK"
VERSION = 1
_PREFIX = struct.Struct("<8sIQQI")
_ALIGN = 64
_MAX_DEPTH = 100
_DTYPES = {str(d).split(".")[-1]: d for d in (
    _C.float32, _C.float64, _C.float16, _C.bfloat16, _C.int32, _C.int64,
    _C.uint8, _C.bool)}


class CheckpointError(RuntimeError):
    """A checkpoint file is malformed, truncated or of another version."""


# ---------------------------------------------------------------- encoding

class _Writer:
    def __init__(self):
        self.chunks = []
        self.size = 0

    def add_tensor(self, t):
        dtype = str(t.dtype).split(".")[-1]
        src = t.detach() if hasattr(t, "detach") else t
        if t.dtype == _C.bfloat16:   # NumPy has no bfloat16: exact via f32
            raw = src.float().contiguous().numpy().tobytes()
            stored = "float32"
        else:
            raw = src.contiguous().numpy().tobytes()
            stored = dtype
        pad = (-self.size) % _ALIGN
        if pad:
            self.chunks.append(b"\0" * pad)
            self.size += pad
        entry = {"T": dtype, "stored": stored, "shape": list(t.shape),
                 "offset": self.size, "nbytes": len(raw)}
        self.chunks.append(raw)
        self.size += len(raw)
        return entry

    def encode(self, obj, depth=0):
        if depth > _MAX_DEPTH:
            raise ValueError("dtrain.save: object nests too deeply")
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return {"I": str(obj)}
        if isinstance(obj, float):
            return {"F": obj.hex()}
        if isinstance(obj, bytes):
            return {"B": obj.hex()}
        if isinstance(obj, _C.TensorBase):
            return self.add_tensor(obj)
        if isinstance(obj, (list, tuple)):
            key = "L" if isinstance(obj, list) else "U"
            return {key: [self.encode(x, depth + 1) for x in obj]}
        if isinstance(obj, dict):
            return {"D": [[self.encode(k, depth + 1),
                           self.encode(v, depth + 1)] for k, v in obj.items()]}
        if isinstance(obj, (np.integer, np.floating, np.bool_)):
            return self.encode(obj.item(), depth)
        raise TypeError(f"dtrain.save: cannot save an object of type "
                        f"{type(obj).__name__} (supported: tensors, dicts, "
                        f"lists, tuples, str, bytes, int, float, bool, None)")


def save(obj, f):
    """Writes obj to the path (or binary file object) f."""
    w = _Writer()
    header = json.dumps(w.encode(obj), separators=(",", ":")).encode()
    data = b"".join(w.chunks)
    prefix = _PREFIX.pack(MAGIC, VERSION, len(header), len(data),
                          zlib.crc32(data))
    if hasattr(f, "write"):
        f.write(prefix + header + data)
        return
    path = os.fspath(f)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            out.write(prefix)
            out.write(header)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# ---------------------------------------------------------------- decoding

class _Reader:
    def __init__(self, data, name):
        self.data = data
        self.name = name

    def fail(self, why):
        raise CheckpointError(f"dtrain.load({self.name}): {why}")

    def tensor(self, e):
        from ._ops.creation import tensor as make_tensor
        try:
            dtype = _DTYPES[e["T"]]
            stored = np.dtype("bool" if e["stored"] == "bool" else e["stored"])
            shape = tuple(int(s) for s in e["shape"])
            offset, nbytes = int(e["offset"]), int(e["nbytes"])
        except (KeyError, TypeError, ValueError) as exc:
            self.fail(f"malformed tensor entry {e!r}: {exc}")
        if any(s < 0 for s in shape) or len(shape) > 8:
            self.fail(f"bad tensor shape {shape}")
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if nbytes != count * stored.itemsize or offset < 0 or \
                offset + nbytes > len(self.data):
            self.fail(f"tensor of shape {shape} does not fit the data "
                      f"section (offset {offset}, {nbytes} bytes)")
        arr = np.frombuffer(self.data, dtype=stored, count=count,
                            offset=offset).reshape(shape)
        return make_tensor(arr.copy(), dtype=dtype)

    def decode(self, x, depth=0):
        if depth > _MAX_DEPTH:
            self.fail("object nests too deeply")
        if x is None or isinstance(x, (bool, str)):
            return x
        if not isinstance(x, dict):
            self.fail(f"unexpected header value {x!r:.60}")
        if "T" in x:
            return self.tensor(x)
        if len(x) != 1:
            self.fail(f"unexpected header entry {x!r:.60}")
        (kind, v), = x.items()
        try:
            if kind == "I":
                return int(v)
            if kind == "F":
                return float.fromhex(v)
            if kind == "B":
                return bytes.fromhex(v)
            if kind in ("L", "U"):
                items = [self.decode(i, depth + 1) for i in v]
                return items if kind == "L" else tuple(items)
            if kind == "D":
                return {self.decode(k, depth + 1): self.decode(val, depth + 1)
                        for k, val in v}
        except (TypeError, ValueError) as exc:
            self.fail(f"malformed {kind} entry: {exc}")
        self.fail(f"unknown header entry kind {kind!r}")


def load(f, map_location=None, weights_only=True, **kwargs):
    """Reads what save() wrote. map_location may be None or "cpu"."""
    if map_location not in (None, "cpu") and str(map_location) != "cpu":
        raise RuntimeError("dtrain.load: only map_location='cpu' is "
                           "supported in a build without CUDA")
    if hasattr(f, "read"):
        raw, name = f.read(), getattr(f, "name", "<file>")
    else:
        name = os.fspath(f)
        with open(name, "rb") as fh:
            raw = fh.read()
    r = _Reader(b"", repr(name))
    if len(raw) < _PREFIX.size:
        r.fail(f"file is {len(raw)} bytes, too short for a checkpoint")
    magic, version, hlen, dlen, crc = _PREFIX.unpack_from(raw)
    if magic != MAGIC:
        r.fail("not a dtrain checkpoint (bad magic number)")
    if version != VERSION:
        r.fail(f"checkpoint version {version}, this dtrain reads {VERSION}")
    if _PREFIX.size + hlen + dlen != len(raw):
        r.fail(f"truncated or padded: header says {_PREFIX.size + hlen + dlen}"
               f" bytes, file has {len(raw)}")
    header = raw[_PREFIX.size:_PREFIX.size + hlen]
    data = memoryview(raw)[_PREFIX.size + hlen:]
    if zlib.crc32(data) != crc:
        r.fail("data section is corrupted (CRC mismatch)")
    try:
        tree = json.loads(header)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        r.fail(f"header is not valid JSON: {exc}")
    r.data = data
    return r.decode(tree)

