"""Reductions: sum, mean, amax/amin, max/min, argmax/argmin, var/std, norm.

Every case runs on contiguous and non-contiguous inputs and compares values
and result dtypes against torch (when installed) and against NumPy."""
import itertools
import math

import numpy as np
import pytest

import dtrain
from helpers import (ALL_DTYPES, FLOAT_DTYPES, INT_DTYPES, assert_close,
                     make, needs_torch, to_np, to_torch, torch, torch_dtype)

# torch warns when correction >= N; those cases are tested on purpose
pytestmark = pytest.mark.filterwarnings("ignore:.*degrees of freedom")

if torch is not None:
    # tiny ops: torch's thread pool only adds wake-up latency on a busy box
    torch.set_num_threads(1)

SHAPES = [(), (5,), (3, 4), (2, 3, 4), (4, 1, 3), (2, 0, 3), (0,)]


def dim_args(ndim):
    """None, every single dim (positive and negative), pairs, ()."""
    yield None
    for d in range(-max(ndim, 1), max(ndim, 1)):
        yield d
    for pair in itertools.combinations(range(ndim), 2):
        yield pair
        yield (pair[1], pair[0] - ndim)
    if ndim >= 3:
        yield (0, 1, 2)
    yield ()


def inputs(dtype, shapes=SHAPES, **kw):
    for shape in shapes:
        for noncontig in (False, True):
            if noncontig and (len(shape) == 0 or 0 in shape):
                continue
            yield make(shape, dtype, noncontig=noncontig, **kw)


def check(actual, expected, dtype=None, check_dtype=True):
    assert_close(actual, expected, dtype=dtype, check_dtype=check_dtype)


# ---------------------------------------------------------------------- #
# sum and mean                                                            #


@needs_torch
@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_sum_matches_torch(dtype):
    for t in inputs(dtype):
        tt = to_torch(t)
        for dim in dim_args(t.ndim):
            for keepdim in (False, True):
                got = t.sum(dim, keepdim)
                want = tt.sum(dim, keepdim) if dim is not None else (
                    tt.sum().reshape((1,) * tt.ndim) if keepdim else tt.sum())
                check(got, want)


@needs_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_mean_matches_torch(dtype):
    for t in inputs(dtype):
        tt = to_torch(t)
        for dim in dim_args(t.ndim):
            if dim is None:
                check(t.mean(), tt.mean())
                continue
            for keepdim in (False, True):
                check(t.mean(dim, keepdim), tt.mean(dim, keepdim))


@pytest.mark.parametrize("dtype", [dtrain.float64, dtrain.int64,
                                   dtrain.int32, dtrain.uint8, dtrain.bool],
                         ids=str)
def test_sum_matches_numpy(dtype):
    for t in inputs(dtype):
        a = to_np(t)
        for dim in dim_args(t.ndim):
            axis = dim if dim != () else None
            if a.ndim == 0 and axis is not None:
                axis = None
            want = np.sum(a, axis=axis, dtype=np.float64
                          if dtype == dtrain.float64 else np.int64)
            check(t.sum(dim), want, check_dtype=False)
            assert t.sum(dim).dtype == (dtrain.float64 if dtype ==
                                        dtrain.float64 else dtrain.int64)
            if dtype == dtrain.float64:
                check(t.mean(dim), np.mean(a, axis=axis) if a.size else
                      np.full(np.sum(a, axis=axis).shape, np.nan))


@needs_torch
def test_sum_and_mean_dtype_argument():
    x = make((3, 4), dtrain.float32, noncontig=True)
    i = make((3, 4), dtrain.int32)
    tx, ti = to_torch(x), to_torch(i)
    for src, ts in ((x, tx), (i, ti)):
        for d in (dtrain.float64, dtrain.float16, dtrain.int32,
                  dtrain.int64, dtrain.bfloat16):
            check(src.sum(dtype=d), ts.sum(dtype=torch_dtype(d)))
            check(src.sum(1, True, dtype=d),
                  ts.sum(1, True, dtype=torch_dtype(d)))
            check(dtrain.sum(src, 0, dtype=d),
                  torch.sum(ts, 0, dtype=torch_dtype(d)))
    check(i.mean(dtype=dtrain.float32), ti.mean(dtype=torch.float32))
    check(x.mean(0, dtype=dtrain.float64), tx.mean(0, dtype=torch.float64))


def test_mean_of_integers_errors():
    for dtype in INT_DTYPES + [dtrain.bool]:
        with pytest.raises(RuntimeError, match="mean"):
            make((3,), dtype).mean()
    with pytest.raises(RuntimeError, match="mean"):
        make((3,), dtrain.float32).mean(dtype=dtrain.int64)


def test_float32_sum_is_accurate():
    # naive float32 accumulation of 4M values drifts by ~1e-4 relative
    a = np.full(4 * 1024 * 1024, 0.1, dtype=np.float32)
    exact = a.astype(np.float64).sum()
    assert abs(dtrain.tensor(a).sum().item() - exact) / exact < 1e-6
    r = np.random.default_rng(1).random(3_000_001).astype(np.float32)
    exact = r.astype(np.float64).sum()
    assert abs(dtrain.tensor(r).sum().item() - exact) / exact < 1e-6
    # rows (inner order), columns (outer order), strided
    m = np.random.default_rng(2).random((1024, 4096)).astype(np.float32)
    t = dtrain.tensor(m)
    exact_rows, exact_cols = m.astype(np.float64).sum(1), \
        m.astype(np.float64).sum(0)
    np.testing.assert_allclose(t.sum(1).numpy(), exact_rows, rtol=1e-6)
    np.testing.assert_allclose(t.sum(0).numpy(), exact_cols, rtol=1e-6)
    np.testing.assert_allclose(t.t().sum(0).numpy(), exact_rows, rtol=1e-6)
    every_other = t.as_strided((1024, 2048), (4096, 2))
    np.testing.assert_allclose(every_other.sum().item(),
                               m[:, ::2].astype(np.float64).sum(), rtol=1e-6)
    h = dtrain.tensor(np.full(10000, 0.1, dtype=np.float16))
    assert h.sum().dtype == dtrain.float16
    assert abs(h.sum().item() - 999.5) < 1.0   # half accumulates in float


def test_sum_layouts_agree():
    """Transposed, permuted and strided views of one array give the same
    sums over every dim set (the engine's inner and outer orders)."""
    a = np.random.default_rng(3).standard_normal((6, 5, 7))
    base = dtrain.tensor(a)
    views = {
        (0, 1, 2): base,
        (2, 1, 0): base.permute(2, 1, 0),
        (1, 0, 2): base.transpose(0, 1),
        (2, 0, 1): base.permute(2, 0, 1),
    }
    for perm, v in views.items():
        av = np.transpose(a, perm)
        for dim in dim_args(3):
            axis = None if dim in (None, ()) else dim
            check(v.sum(dim), np.sum(av, axis=axis), dtype=dtrain.float64)
            check(v.amax(dim if dim is not None else ()),
                  np.amax(av, axis=axis), dtype=dtrain.float64)
    e = base.select(2, 0).unsqueeze(2).expand(6, 5, 4)   # stride 0
    check(e.sum((0, 2)), np.sum(a[:, :, :1] * np.ones(4), axis=(0, 2)))


def test_empty_and_zero_dim():
    e = make((0,), dtrain.float32)
    assert e.sum().item() == 0.0 and e.sum().shape == ()
    assert math.isnan(e.mean().item())
    z = make((2, 0, 3), dtrain.float32)
    assert z.sum(1).shape == (2, 3) and np.all(z.sum(1).numpy() == 0)
    assert np.all(np.isnan(z.mean(1).numpy()))
    assert z.sum(0).shape == (0, 3)
    assert z.amax(0).shape == (0, 3)
    assert z.max(2).values.shape == (2, 0)
    i = make((0, 4), dtrain.int32)
    assert i.sum().item() == 0 and i.sum().dtype == dtrain.int64
    s = dtrain.tensor(2.5)
    for dim in (0, -1, (0,), ()):
        assert s.sum(dim).shape == () and s.sum(dim).item() == 2.5
    assert s.sum(0, keepdim=True).shape == ()
    assert s.max(0).values.item() == 2.5 and s.max(0).indices.item() == 0
    assert s.argmax(0).item() == 0 and s.amax().item() == 2.5
    assert math.isnan(s.var().item()) and s.var(correction=0).item() == 0


def test_empty_max_errors_name_the_op():
    e = make((0, 3), dtrain.float32)
    with pytest.raises(RuntimeError, match="max"):
        e.max()
    with pytest.raises(IndexError, match="max"):
        e.max(0)
    with pytest.raises(IndexError, match="min"):
        e.min(dim=0)
    with pytest.raises(IndexError, match="amax"):
        e.amax(0)
    with pytest.raises(RuntimeError, match="amin"):
        e.amin()
    with pytest.raises(IndexError, match="argmax"):
        e.argmax()
    with pytest.raises(IndexError, match="argmin"):
        e.argmin(0)
    assert e.argmax(1).shape == (0,) and e.max(1).indices.shape == (0,)
    with pytest.raises(RuntimeError, match="norm"):
        e.norm(p=float("inf"))


# ---------------------------------------------------------------------- #
# max, min, amax, amin, argmax, argmin                                    #

TIES = [dtrain.float32, dtrain.float64, dtrain.float16, dtrain.bfloat16,
        dtrain.int32, dtrain.int64, dtrain.uint8]


def tie_inputs(dtype, shapes=((7,), (3, 4), (2, 3, 5), (4, 1, 3))):
    # few distinct values, so ties are common and first-occurrence matters
    for t in inputs(dtype, shapes, low=-2, high=2):
        if dtype in FLOAT_DTYPES:
            a = np.round(to_np(t).astype(np.float64))
            t2 = dtrain.tensor(a).to(dtype)
            yield t2
            yield t2.transpose(0, -1) if t2.ndim > 1 else t2
        else:
            yield t


@needs_torch
@pytest.mark.parametrize("dtype", TIES + [dtrain.bool], ids=str)
def test_max_min_with_dim_match_torch(dtype):
    for t in tie_inputs(dtype) if dtype != dtrain.bool else inputs(
            dtype, shapes=[(7,), (3, 4), (2, 3, 5)]):
        tt = to_torch(t)
        for d in range(-t.ndim, t.ndim):
            for keepdim in (False, True):
                for name in ("max", "min"):
                    got = getattr(t, name)(d, keepdim)
                    want = getattr(tt, name)(d, keepdim)
                    check(got.values, want.values)
                    check(got.indices, want.indices)
                    check(got[0], want[0])
                    v, i = got
                    assert v is got.values and i is got.indices


@needs_torch
@pytest.mark.parametrize("dtype", TIES, ids=str)
def test_argmax_amax_match_torch(dtype):
    for t in tie_inputs(dtype):
        tt = to_torch(t)
        check(t.max(), tt.max())
        check(t.min(), tt.min())
        check(t.argmax(), tt.argmax())
        check(t.argmin(), tt.argmin())
        check(t.argmax(keepdim=True), tt.argmax(keepdim=True))
        for d in range(-t.ndim, t.ndim):
            for keepdim in (False, True):
                check(t.argmax(d, keepdim), tt.argmax(d, keepdim))
                check(t.argmin(d, keepdim), tt.argmin(d, keepdim))
        for dim in dim_args(t.ndim):
            dim = () if dim is None else dim
            for keepdim in (False, True):
                check(t.amax(dim, keepdim), tt.amax(dim, keepdim))
                check(t.amin(dim, keepdim), tt.amin(dim, keepdim))


def test_argmax_matches_numpy_first_occurrence():
    a = np.array([[1, 5, 5, 0], [7, 7, 2, 7], [3, 3, 3, 3]], dtype=np.int64)
    t = dtrain.tensor(a)
    np.testing.assert_array_equal(t.argmax(1).numpy(), a.argmax(1))
    np.testing.assert_array_equal(t.argmin(0).numpy(), a.argmin(0))
    np.testing.assert_array_equal(t.t().argmax(0).numpy(), a.argmax(1))
    assert t.argmax().item() == a.argmax()
    assert t.t().argmax().item() == a.T.argmax()   # flat index, logical order
    assert t.t().argmin().item() == a.T.argmin()
    f = make((4, 6), dtrain.float64, noncontig=True)
    np.testing.assert_array_equal(f.argmax(0).numpy(), to_np(f).argmax(0))
    np.testing.assert_array_equal(f.max(1).indices.numpy(),
                                  to_np(f).argmax(1))


def test_nan_wins():
    nan = float("nan")
    t = dtrain.tensor([[1.0, nan, 3.0, nan], [2.0, 0.5, -1.0, 4.0]])
    assert math.isnan(t.max().item()) and math.isnan(t.amin().item())
    m = t.max(1)
    assert math.isnan(m.values.tolist()[0]) and m.indices.tolist() == [1, 3]
    assert t.min(1).indices.tolist() == [1, 2]
    assert t.argmax().item() == 1 and t.argmin().item() == 1
    assert t.argmax(0).tolist() == [1, 0, 0, 0]
    col = t.max(0)
    assert math.isnan(col.values.tolist()[1])
    assert col.indices.tolist() == [1, 0, 0, 0]
    assert math.isnan(t.norm(float("inf")).item())


def test_bool_argmax_errors_and_max_works():
    b = dtrain.tensor([[True, False], [False, False]])
    assert b.max().item() is True and b.max().dtype == dtrain.bool
    assert b.amax(0).tolist() == [True, False]
    assert b.max(1).indices.tolist() == [0, 0]
    with pytest.raises(RuntimeError, match="argmax"):
        b.argmax()


def test_return_types_and_functions():
    t = make((3, 4), dtrain.float32)
    r = dtrain.max(t, 1)
    assert isinstance(r, tuple) and isinstance(r, dtrain.return_types.max)
    assert isinstance(dtrain.min(t, dim=0), dtrain.return_types.min)
    assert "values=" in repr(r) and len(r) == 2
    assert dtrain.max(t).item() == t.max().item()
    assert dtrain.argmin(t, 1, keepdim=True).shape == (3, 1)
    assert dtrain.amax(t, (0, 1)).item() == t.max().item()
    assert dtrain.amin(t, 1).shape == (3,)
    assert dtrain.mean(t, 0, True).shape == (1, 4)


# ---------------------------------------------------------------------- #
# var, std, norm                                                          #


@needs_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_var_std_match_torch(dtype):
    for t in inputs(dtype, shapes=[(5,), (3, 4), (2, 3, 4), (4, 1, 3),
                                   (2, 0, 3)]):
        tt = to_torch(t)
        for dim in dim_args(t.ndim):
            for corr in (0, 1, 2.5):
                for keepdim in (False, True):
                    check(t.var(dim, keepdim=keepdim, correction=corr),
                          tt.var(dim, keepdim=keepdim, correction=corr))
                    check(t.std(dim, keepdim=keepdim, correction=corr),
                          tt.std(dim, keepdim=keepdim, correction=corr))


@needs_torch
def test_var_signatures():
    t = make((3, 4), dtrain.float64, noncontig=True)
    tt = to_torch(t)
    check(t.var(0, True), tt.var(0, True))
    check(t.var(0, False), tt.var(0, False))
    check(t.var(1, False, True), tt.var(1, False, True))
    check(t.var(False), tt.var(False))
    check(t.std(unbiased=False), tt.std(unbiased=False))
    check(dtrain.var(t, 0, True, True), torch.var(tt, 0, True, True))
    check(dtrain.std(t, correction=0), torch.std(tt, correction=0))
    check(dtrain.std(t, 1, keepdim=True), torch.std(tt, 1, keepdim=True))
    np.testing.assert_allclose(t.var(1, correction=0).numpy(),
                               np.var(to_np(t), axis=1), rtol=1e-12)
    np.testing.assert_allclose(t.std(0).numpy(),
                               np.std(to_np(t), axis=0, ddof=1), rtol=1e-12)
    with pytest.raises(RuntimeError, match="var"):
        make((3,), dtrain.int64).var()
    with pytest.raises(RuntimeError, match="std"):
        make((3,), dtrain.bool).std()


def test_var_is_stable():
    # a large mean and a small spread: naive E[x^2]-E[x]^2 fails here
    a = 1e4 + np.random.default_rng(4).standard_normal(100000)
    t = dtrain.tensor(a.astype(np.float32))
    np.testing.assert_allclose(t.var().item(),
                               np.var(a.astype(np.float32).astype(np.float64),
                                      ddof=1), rtol=1e-4)


NORM_PS = ["fro", 2, 1, float("inf"), float("-inf"), 0, 3, 0.5, -1]


@needs_torch
@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=str)
def test_norm_matches_torch(dtype):
    for t in inputs(dtype, shapes=[(), (5,), (3, 4), (2, 3, 4)]):
        tt = to_torch(t)
        for p in NORM_PS:
            for dim in [None, 0, -1, (0, -1)]:
                if t.ndim == 0 and dim is not None:
                    continue
                if dim == (0, -1) and t.ndim < 2:
                    continue
                for keepdim in (False, True):
                    check(t.norm(p, dim, keepdim), tt.norm(p, dim, keepdim))


@needs_torch
def test_norm_dtype_and_errors():
    t = make((3, 4), dtrain.float16)
    tt = to_torch(t)
    check(t.norm(dtype=dtrain.float32), tt.norm(dtype=torch.float32))
    check(dtrain.norm(t, 1, 0, dtype=dtrain.float64),
          torch.norm(tt, 1, 0, dtype=torch.float64))
    check(t.norm(p=None), tt.norm(p=None))
    with pytest.raises(RuntimeError, match="norm"):
        make((3,), dtrain.int64).norm()
    with pytest.raises(RuntimeError, match="norm"):
        t.norm(dtype=dtrain.int64)
    with pytest.raises(RuntimeError, match="fro"):
        make((2, 2, 2), dtrain.float32).norm("fro", (0, 1, 2))
    with pytest.raises(NotImplementedError, match="nuclear"):
        t.norm("nuc")
    with pytest.raises(RuntimeError, match="norm"):
        t.norm("abc")


# ---------------------------------------------------------------------- #
# bad input                                                               #


@pytest.mark.parametrize("name", ["sum", "mean", "amax", "amin", "var",
                                  "std", "norm"])
def test_dim_errors_name_the_op(name):
    t = make((2, 3), dtrain.float32)
    call = getattr(t, name)
    kw = {"dim": 2} if name != "norm" else {"p": 2, "dim": 2}
    with pytest.raises(IndexError, match=name):
        call(**kw)
    with pytest.raises(IndexError, match=name):
        call(**dict(kw, dim=-3))
    with pytest.raises(RuntimeError, match=f"{name}.*multiple times"):
        call(**dict(kw, dim=(0, -2)))
    with pytest.raises(TypeError, match=name):
        call(**dict(kw, dim=1.5))
    with pytest.raises(IndexError, match=name):
        dtrain.tensor(1.0).__getattribute__(name)(**dict(kw, dim=1))


@pytest.mark.parametrize("name", ["max", "min", "argmax", "argmin"])
def test_single_dim_errors_name_the_op(name):
    t = make((2, 3), dtrain.float32)
    with pytest.raises(IndexError, match=name):
        getattr(t, name)(2)
    with pytest.raises(IndexError, match=name):
        getattr(t, name)(-3)
    with pytest.raises(TypeError, match=name):
        getattr(t, name)((0, 1))
