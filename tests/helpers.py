"""Shared test helpers: dtype tables, NumPy/torch references, and makers of
non-contiguous inputs. Every op test compares against NumPy, and against
torch when it is installed (dtrain itself never imports torch)."""
import os

import numpy as np
import pytest

import dtrain

try:  # the reference oracle; optional
    if os.environ.get("DTRAIN_TEST_NO_TORCH", "0") != "0":
        # to check that the suite holds up on a machine without torch
        raise ImportError("torch disabled by DTRAIN_TEST_NO_TORCH")
    import torch
except ImportError:  # pragma: no cover
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch not installed")

# dtrain dtype -> NumPy dtype (bfloat16 has none: compare through float32)
NP_DTYPES = {
    dtrain.float32: np.float32, dtrain.float64: np.float64,
    dtrain.float16: np.float16, dtrain.int32: np.int32,
    dtrain.int64: np.int64, dtrain.uint8: np.uint8, dtrain.bool: np.bool_,
}
ALL_DTYPES = list(NP_DTYPES) + [dtrain.bfloat16]
FLOAT_DTYPES = [dtrain.float32, dtrain.float64, dtrain.float16,
                dtrain.bfloat16]
INT_DTYPES = [dtrain.int32, dtrain.int64, dtrain.uint8]

# tolerance by dtype: (rtol, atol)
TOL = {
    dtrain.float64: (1e-10, 1e-12), dtrain.float32: (1e-5, 1e-6),
    dtrain.float16: (2e-3, 1e-3), dtrain.bfloat16: (1.6e-2, 1e-2),
}


def to_np(t):
    """A dtrain tensor as a NumPy array (bfloat16 through float32)."""
    if t.dtype == dtrain.bfloat16:
        return t.float().numpy().copy()
    return t.numpy().copy()


def to_torch(t):
    tt = torch.from_numpy(to_np(t))
    if t.dtype == dtrain.bfloat16:
        tt = tt.to(torch.bfloat16)
    return tt


def torch_dtype(d):
    return getattr(torch, str(d).split(".")[-1])


def make(shape, dtype=dtrain.float32, low=-3.0, high=3.0, seed=0,
         noncontig=False):
    """A random tensor; with noncontig=True, a strided view of a larger one
    holding the same values."""
    rng = np.random.default_rng(seed)
    if dtype == dtrain.bool:
        a = rng.random(shape) > 0.5
    elif dtype in INT_DTYPES:
        lo = 0 if dtype == dtrain.uint8 else int(low)
        a = rng.integers(lo, max(int(high), lo + 1), size=shape)
    else:
        a = rng.uniform(low, high, size=shape)
    np_dtype = NP_DTYPES.get(dtype, np.float32)
    a = np.asarray(a).astype(np_dtype)
    if noncontig and a.ndim > 0:
        # embed in a buffer twice as wide in the last dim, take every other
        big = np.zeros(a.shape[:-1] + (a.shape[-1] * 2,), dtype=np_dtype)
        big[..., ::2] = a
        t = dtrain.tensor(big)
        if dtype == dtrain.bfloat16:
            t = t.bfloat16()
        v = t.as_strided(a.shape, _strides_every_other(t))
        assert not v.is_contiguous() or a.size <= 1
        return v
    t = dtrain.tensor(a)
    return t.bfloat16() if dtype == dtrain.bfloat16 else t


def _strides_every_other(t):
    st = list(t.stride())
    st[-1] *= 2
    return st


def assert_close(actual, expected, dtype=None, rtol=None, atol=None,
                 check_dtype=True):
    """actual: dtrain tensor; expected: array-like (NumPy or torch)."""
    if torch is not None and isinstance(expected, torch.Tensor):
        if check_dtype:
            assert str(actual.dtype).split(".")[-1] == \
                str(expected.dtype).split(".")[-1], \
                f"dtype {actual.dtype} vs torch {expected.dtype}"
        expected = expected.float().numpy() if expected.dtype == \
            torch.bfloat16 else expected.numpy()
    expected = np.asarray(expected)
    a = to_np(actual)
    assert a.shape == expected.shape, f"shape {a.shape} vs {expected.shape}"
    dtype = dtype or actual.dtype
    r, t = TOL.get(dtype, (0, 0))
    np.testing.assert_allclose(a.astype(np.float64) if a.dtype != np.bool_
                               else a,
                               expected.astype(np.float64)
                               if expected.dtype != np.bool_ else expected,
                               rtol=rtol if rtol is not None else r,
                               atol=atol if atol is not None else t,
                               equal_nan=True)


# ---------------------------------------------------------------------------
# multi-process tests


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_ranks(script, n, args, env=None):
    """Starts `script` as ranks 0..n-1 of a world of n (torchrun's env
    vars, a fresh port on 127.0.0.1); returns the Popen objects."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    port = free_port()
    procs = []
    for r in range(n):
        e = dict(os.environ, PYTHONPATH=root, RANK=str(r), WORLD_SIZE=str(n),
                 LOCAL_RANK=str(r), LOCAL_WORLD_SIZE=str(n),
                 MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                 OMP_NUM_THREADS="1", **(env or {}))
        procs.append(subprocess.Popen(
            [sys.executable, os.path.abspath(script), *map(str, args)],
            env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True))
    return procs


def finish_ranks(procs, timeout=60):
    """Waits for every process; returns [(returncode, stdout, stderr)].
    All of them are killed if the timeout passes."""
    results = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            results.append((p.returncode, out, err))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return results


def launch_ranks(script, n, args, timeout=60, env=None):
    """start_ranks then finish_ranks."""
    return finish_ranks(start_ranks(script, n, args, env), timeout)
