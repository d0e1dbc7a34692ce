"""dtrain.save / dtrain.load: round trips, atomic writes, bad files."""
import io
import math
import os
import struct

import numpy as np
import pytest

import dtrain
from dtrain.serialization import CheckpointError


def roundtrip(obj, tmp_path):
    path = tmp_path / "ck.dt"
    dtrain.save(obj, path)
    return dtrain.load(path)


def test_roundtrip_nested_state(tmp_path):
    state = {
        "model": {"w": dtrain.tensor([[1.5, -2.0]]),
                  "b": dtrain.tensor([1, 2, 3]),
                  "h": dtrain.tensor([0.1]).half(),
                  "bf": dtrain.tensor([3.14159]).bfloat16(),
                  "mask": dtrain.tensor([True, False]),
                  "empty": dtrain.zeros(0, 3),
                  "scalar": dtrain.tensor(7.0)},
        "optim": {"state": {0: {"step": 3, "momentum": dtrain.ones(2)}},
                  "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999),
                                    "params": [0, 1]}]},
        "epoch": 5, "name": "run-1", "blob": b"\x00\xff", "none": None,
        "floats": [math.inf, -0.0, 1e-310, float("nan")], "big": 2**70,
    }
    out = roundtrip(state, tmp_path)
    for k, t in state["model"].items():
        u = out["model"][k]
        assert u.dtype == t.dtype and u.shape == t.shape, k
        assert u.float().tolist() == t.float().tolist(), k
    assert out["optim"]["state"][0]["step"] == 3
    assert out["optim"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert out["epoch"] == 5 and out["name"] == "run-1"
    assert out["blob"] == b"\x00\xff" and out["none"] is None
    assert out["big"] == 2**70
    f = out["floats"]
    assert f[0] == math.inf and math.copysign(1, f[1]) < 0
    assert f[2] == 1e-310 and math.isnan(f[3])


def test_noncontiguous_and_views(tmp_path):
    t = dtrain.tensor(np.arange(12.0).reshape(3, 4)).t()
    out = roundtrip({"t": t, "row": t[1]}, tmp_path)
    assert out["t"].tolist() == t.tolist()
    assert out["row"].tolist() == t[1].tolist()


def test_file_objects():
    buf = io.BytesIO()
    dtrain.save([dtrain.tensor([1.0])], buf)
    buf.seek(0)
    assert dtrain.load(buf)[0].tolist() == [1.0]


def test_unsupported_object_raises_and_writes_nothing(tmp_path):
    path = tmp_path / "x.dt"
    with pytest.raises(TypeError, match="cannot save"):
        dtrain.save({"f": object()}, path)
    assert os.listdir(tmp_path) == []


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.dt"
    dtrain.save({"v": 1}, path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        dtrain.save({"v": dtrain.zeros(1000)}, path)
    assert path.read_bytes() == before          # old checkpoint intact
    assert os.listdir(tmp_path) == ["ck.dt"]    # no temporary left


def _good_bytes():
    buf = io.BytesIO()
    dtrain.save({"w": dtrain.arange(10.0), "n": 3}, buf)
    return buf.getvalue()


@pytest.mark.parametrize("mutate, msg", [
    (lambda b: b[:-5], "truncated"),
    (lambda b: b[:10], "too short"),
    (lambda b: b"NOTADTCK" + b[8:], "magic"),
    (lambda b: b[:8] + struct.pack("<I", 99) + b[12:], "version"),
    (lambda b: b[:-3] + b"\x00\x01\x02", "corrupted"),
    (lambda b: b + b"junk", "truncated or padded"),
    (lambda b: b"", "too short"),
])
def test_malformed_files_raise(tmp_path, mutate, msg):
    path = tmp_path / "bad.dt"
    path.write_bytes(mutate(_good_bytes()))
    with pytest.raises(CheckpointError, match=msg):
        dtrain.load(path)


def test_malicious_header_raises(tmp_path):
    import json
    import zlib
    for header in [b"{not json", json.dumps({"X": 1}).encode(),
                   json.dumps({"T": "float32", "stored": "float32",
                               "shape": [1000], "offset": 0,
                               "nbytes": 4000}).encode(),
                   json.dumps({"T": "evil", "stored": "float32", "shape": [],
                               "offset": 0, "nbytes": 4}).encode(),
                   json.dumps({"D": [[{"L": []}, 1]]}).encode()]:
        data = b""
        raw = struct.pack("<8sIQQI", b"DTRAINCK", 1, len(header), 0,
                          zlib.crc32(data)) + header + data
        path = tmp_path / "evil.dt"
        path.write_bytes(raw)
        with pytest.raises((CheckpointError, TypeError)):
            dtrain.load(path)


def test_garbage_fuzz(tmp_path):
    rng = np.random.default_rng(0)
    good = bytearray(_good_bytes())
    for _ in range(200):
        b = bytearray(good)
        for _ in range(rng.integers(1, 6)):
            b[rng.integers(len(b))] = rng.integers(256)
        path = tmp_path / "f.dt"
        path.write_bytes(bytes(b[:rng.integers(len(b) + 1)]))
        try:
            dtrain.load(path)
        except (CheckpointError, TypeError):
            pass
