"""Matrix products: matmul (and @), mm, bmm, mv, dot.

Shapes cover torch.matmul's cases (1-D/2-D mixes, batched with broadcast
batch dims, empty dims); operands come contiguous, transposed, strided and
expanded; values and dtypes are checked against NumPy and torch."""
import numpy as np
import pytest

import dtrain
from helpers import (TOL, assert_close, make, needs_torch, to_np, to_torch,
                     torch)

if torch is not None:
    torch.set_num_threads(1)   # small products: no thread-pool latency

MATMUL_SHAPES = [
    ((3,), (3,)),
    ((2, 3), (3,)),
    ((3,), (3, 4)),
    ((2, 3), (3, 4)),
    ((1, 3), (3, 1)),
    ((5, 2, 3), (3, 4)),
    ((5, 2, 3), (3,)),
    ((3,), (5, 3, 4)),
    ((5, 2, 3), (5, 3, 4)),
    ((5, 1, 2, 3), (4, 3, 2)),
    ((2, 3), (5, 3, 4)),
    ((1, 2, 3), (5, 3, 4)),
    ((5, 2, 3), (1, 3, 4)),
    ((0, 3), (3, 4)),
    ((2, 0), (0, 4)),
    ((0,), (0,)),
    ((2, 3), (3, 0)),
    ((5, 0, 3), (3, 4)),
    ((0, 2, 3), (3, 4)),
    ((2, 2, 0), (2, 0, 3)),
]

DTYPES = [dtrain.float32, dtrain.float64, dtrain.float16, dtrain.bfloat16,
          dtrain.int32, dtrain.int64, dtrain.uint8]


def operand(shape, dtype, seed, layout):
    """A tensor of `shape` laid out as: contiguous, 'noncontig' (every
    other element), or 'transposed' (a transposed view of the transposed
    contiguous data)."""
    if layout == "noncontig" and len(shape) and 0 not in shape:
        return make(shape, dtype, seed=seed, noncontig=True)
    if layout == "transposed" and len(shape) >= 2:
        t = make(shape[:-2] + (shape[-1], shape[-2]), dtype, seed=seed)
        return t.transpose(-1, -2)
    return make(shape, dtype, seed=seed)


def reference(a, b):
    """NumPy matmul in float64 (or wrapping int64 for integers)."""
    x, y = to_np(a), to_np(b)
    if a.dtype in (dtrain.int32, dtrain.int64, dtrain.uint8):
        return np.matmul(x.astype(np.int64), y.astype(np.int64))
    return np.matmul(x.astype(np.float64), y.astype(np.float64))


def tol(dtype, k):
    r, a = TOL.get(dtype, (0, 0))
    return r, a * max(k, 1)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("layout", ["contig", "noncontig", "transposed"])
def test_matmul_shapes_vs_numpy(dtype, layout):
    for sa, sb in MATMUL_SHAPES:
        a = operand(sa, dtype, 1, layout)
        b = operand(sb, dtype, 2, "contig" if layout == "noncontig"
                    else layout)
        got = a @ b
        want = reference(a, b)
        assert got.dtype == dtype, (sa, sb)
        assert got.shape == want.shape, (sa, sb, got.shape)
        if dtype == dtrain.uint8:
            want = want.astype(np.uint8)   # torch wraps too
        elif dtype == dtrain.int32:
            want = want.astype(np.int32)
        r, atol = tol(dtype, sa[-1])
        assert_close(got, want, rtol=r, atol=atol)
        assert_close(dtrain.matmul(a, b), want, rtol=r, atol=atol)


@needs_torch
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_matmul_matches_torch(dtype):
    for sa, sb in MATMUL_SHAPES:
        for la, lb in (("contig", "transposed"), ("transposed", "noncontig")):
            a, b = operand(sa, dtype, 3, la), operand(sb, dtype, 4, lb)
            want = torch.matmul(to_torch(a), to_torch(b))
            r, atol = tol(dtype, sa[-1])
            assert_close(a.matmul(b), want, rtol=r, atol=atol)


def test_float32_products_use_float32_precision():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((67, 131)).astype(np.float32)
    y = rng.standard_normal((131, 45)).astype(np.float32)
    a, b = dtrain.tensor(x), dtrain.tensor(y)
    want = x.astype(np.float64) @ y.astype(np.float64)
    assert_close(a @ b, want, rtol=1e-4, atol=1e-4)
    assert_close(a.t().t() @ b, want, rtol=1e-4, atol=1e-4)
    # transposed views, each way round
    assert_close(b.t() @ a.t(), want.T, rtol=1e-4, atol=1e-4)
    assert_close(dtrain.tensor(np.ascontiguousarray(x.T)).t() @ b, want,
                 rtol=1e-4, atol=1e-4)
    # vector paths (gemv) with strided vectors
    v = make((131,), noncontig=True)
    assert_close(a @ v, x.astype(np.float64) @ to_np(v), rtol=1e-4,
                 atol=1e-4)
    w = make((67,), noncontig=True)
    assert_close(w @ a, to_np(w) @ x.astype(np.float64), rtol=1e-4,
                 atol=1e-4)
    assert_close(v.dot(v), np.dot(to_np(v), to_np(v)), rtol=1e-4)


def test_expanded_and_batched_broadcast():
    base = make((3, 4), dtrain.float64)
    a = base.unsqueeze(0).expand(6, 3, 4)      # batch stride 0
    b = make((6, 4, 2), dtrain.float64, noncontig=True)
    want = np.matmul(to_np(a), to_np(b))
    assert_close(a @ b, want)
    assert_close(a.bmm(b), want)
    assert_close(dtrain.bmm(a, b), want)
    col = make((4, 1), dtrain.float64).expand(4, 5)   # row stride 0 in B
    assert_close(base @ col, to_np(base) @ to_np(col))
    row = make((1, 4), dtrain.float64).expand(3, 4)   # a has stride 0
    assert_close(row @ b.select(0, 1), to_np(row) @ to_np(b)[1])
    v = make((1,), dtrain.float64).expand(4)
    assert_close(base.mv(v), to_np(base) @ to_np(v))
    assert_close(v.dot(v), np.dot(to_np(v), to_np(v)))
    # batch dims of a fold into M: (4, 3, 5, K) @ (K, N) one GEMM
    w = make((4, 3), dtrain.float32)
    big = make((4, 3, 5, 4), dtrain.float32, noncontig=True)
    assert_close(big @ w, np.matmul(to_np(big), to_np(w)))
    permuted = make((5, 4, 3), dtrain.float32).permute(2, 0, 1)
    assert_close(permuted @ w, np.matmul(to_np(permuted), to_np(w)))


def test_mm_bmm_mv_dot():
    a, b = make((2, 3), dtrain.float64), make((3, 4), dtrain.float64)
    assert_close(a.mm(b), to_np(a) @ to_np(b))
    assert_close(dtrain.mm(a, b), to_np(a) @ to_np(b))
    v = make((3,), dtrain.float64, noncontig=True)
    assert_close(a.mv(v), to_np(a) @ to_np(v))
    assert_close(dtrain.mv(a, v), to_np(a) @ to_np(v))
    d = v.dot(v)
    assert d.shape == () and d.dtype == dtrain.float64
    assert_close(dtrain.dot(v, v), np.dot(to_np(v), to_np(v)))
    i = make((4,), dtrain.int64)
    assert i.dot(i).item() == int(np.dot(to_np(i), to_np(i)))
    u = dtrain.tensor(np.array([200, 100], dtype=np.uint8))
    assert u.dot(u).item() == (200 * 200 + 100 * 100) % 256   # wraps
    h = make((3, 5), dtrain.float16)
    assert (h.t() @ h).dtype == dtrain.float16
    e = dtrain.tensor(np.zeros(0, np.float32))
    assert e.dot(e).item() == 0.0


def test_shape_errors_name_op_and_shapes():
    a, b = make((2, 3)), make((4, 5))
    for f, op in ((lambda: a @ b, "matmul"), (lambda: a.mm(b), "mm"),
                  (lambda: dtrain.matmul(a, b), "matmul")):
        with pytest.raises(RuntimeError, match=rf"{op}.*2x3 and 4x5"):
            f()
    with pytest.raises(RuntimeError, match="matmul.*5x2x3 and 4x5"):
        make((5, 2, 3)) @ b
    with pytest.raises(RuntimeError, match="matmul"):
        make((7, 2, 3)) @ make((6, 3, 4))   # batch dims don't broadcast
    with pytest.raises(RuntimeError, match="mv.*size mismatch"):
        a.mv(make((4,)))
    with pytest.raises(RuntimeError, match="dot.*3.*4"):
        make((3,)).dot(make((4,)))
    with pytest.raises(RuntimeError, match="matmul.*3 and 4"):
        make((3,)) @ make((4,))
    with pytest.raises(RuntimeError, match="bmm"):
        make((7, 2, 3)).bmm(make((6, 3, 4)))
    with pytest.raises(RuntimeError, match="bmm"):
        make((7, 2, 3)).bmm(make((7, 4, 4)))
    with pytest.raises(RuntimeError, match="bmm"):
        make((7, 2, 3)).bmm(a)
    with pytest.raises(RuntimeError, match="mm.*matrix"):
        a.mm(make((3,)))
    with pytest.raises(RuntimeError, match="dot.*1D"):
        a.dot(a)
    with pytest.raises(RuntimeError, match="mv"):
        a.mv(a)


def test_bad_operands():
    a = make((2, 3))
    s = dtrain.tensor(1.0)
    with pytest.raises(RuntimeError, match="matmul.*at least 1D.*0D"):
        s @ a
    with pytest.raises(RuntimeError, match="matmul.*0D"):
        a @ s
    with pytest.raises(RuntimeError, match="same dtype.*float32.*float64"):
        a @ make((3, 2), dtrain.float64)
    with pytest.raises(RuntimeError, match="mm.*same dtype"):
        a.mm(make((3, 2), dtrain.int64))
    with pytest.raises(RuntimeError, match="dot.*same dtype"):
        make((3,)).dot(make((3,), dtrain.float16))
    with pytest.raises(NotImplementedError, match="bool"):
        make((2, 3), dtrain.bool) @ make((3, 2), dtrain.bool)
    with pytest.raises(TypeError):
        a @ 3
    with pytest.raises(TypeError):
        3 @ a
    with pytest.raises(TypeError, match="matmul"):
        a.matmul([[1.0], [2.0], [3.0]])


def test_num_threads():
    old = dtrain.get_num_threads()
    dtrain.set_num_threads(1)
    assert dtrain.get_num_threads() == 1 and dtrain._C.get_num_threads() == 1
    x = make((64, 64))
    assert_close(x @ x, to_np(x).astype(np.float64) @ to_np(x),
                 rtol=1e-4, atol=1e-4)
    dtrain.set_num_threads(old)
    with pytest.raises(ValueError):
        dtrain.set_num_threads(0)
