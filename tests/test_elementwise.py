"""Elementwise ops (forward): unary, binary with broadcasting and type
promotion, comparisons, where, clamp, pow, in-place variants, operators and
errors. Every op is checked against NumPy and, when it is installed,
against torch (values and result dtype)."""
import math

import numpy as np
import pytest

import dtrain
from helpers import (ALL_DTYPES, FLOAT_DTYPES, INT_DTYPES, NP_DTYPES, TOL,
                     assert_close, make, needs_torch, to_np, to_torch, torch)

F32 = dtrain.float32

# shapes for one-input ops, each also tried non-contiguous
SHAPES = [(), (0,), (7,), (2, 3, 4)]
# broadcasting pairs
PAIRS = [((), ()), ((4,), ()), ((), (4,)), ((2, 3), (2, 3)),
         ((3, 1, 4), (2, 4)), ((2, 1), (1, 3)), ((0, 3), (1, 3)),
         ((4, 0), (4, 1))]


def variants(shape, dtype, seed=0, **kw):
    """The same values as a contiguous tensor, a strided view and (2-D and
    up) a transposed view."""
    yield make(shape, dtype, seed=seed, **kw)
    # (helpers.make cannot stride a 0-size bfloat16 tensor: as_strided
    # rejects its empty storage)
    if len(shape) > 0 and math.prod(shape) > 0:
        yield make(shape, dtype, seed=seed, noncontig=True, **kw)
    if len(shape) >= 2:
        t = make(shape[::-1], dtype, seed=seed, **kw)
        yield t.transpose(0, -1)


def np_ref(t):
    """float64 (or bool) NumPy copy of a tensor, for references."""
    a = to_np(t)
    return a if a.dtype == np.bool_ else a.astype(np.float64)


def f64(t):
    return to_np(t).astype(np.float64)


def check_torch(out, fn, *args, rtol=None, atol=None, **kw):
    """out (dtrain) against fn applied to the torch twins of args."""
    if torch is None:
        return
    targs = [to_torch(a) if isinstance(a, dtrain.Tensor) else a for a in args]
    expected = fn(*targs, **kw)
    assert_close(out, expected, rtol=rtol, atol=atol)


def torch_raises(fn, *args, **kw):
    """The exception type torch raises for fn(*args), or None."""
    targs = [to_torch(a) if isinstance(a, dtrain.Tensor) else a for a in args]
    try:
        fn(*targs, **kw)
    except Exception as e:  # noqa: BLE001 - any torch error counts
        return type(e)
    return None


# ---------------------------------------------------------------------------
# unary

def sigmoid_np(a):
    return 1 / (1 + np.exp(-a))


UNARY = {
    "exp": (np.exp, -3, 3), "log": (np.log, 0.1, 5),
    "sqrt": (np.sqrt, 0, 5), "rsqrt": (lambda a: 1 / np.sqrt(a), 0.1, 5),
    "sin": (np.sin, -4, 4), "cos": (np.cos, -4, 4),
    "tanh": (np.tanh, -4, 4), "sigmoid": (sigmoid_np, -6, 6),
}


@pytest.mark.parametrize("name", sorted(UNARY))
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_unary_float_functions(name, dtype):
    ref, lo, hi = UNARY[name]
    for shape in SHAPES:
        for x in variants(shape, dtype, low=lo, high=hi):
            out = getattr(x, name)()
            # integer and bool inputs give float32, as in torch
            want = dtype if dtype in FLOAT_DTYPES else F32
            assert out.dtype == want and out.shape == x.shape
            with np.errstate(divide="ignore", invalid="ignore"):
                assert_close(out, ref(f64(x)), check_dtype=False)
            assert_close(getattr(dtrain, name)(x), to_np(out))
            check_torch(out, lambda t: getattr(torch, name)(t), x)


@pytest.mark.parametrize("name", ["neg", "abs", "relu"])
@pytest.mark.parametrize("dtype", [d for d in ALL_DTYPES if d != dtrain.bool])
def test_unary_keeping_dtype(name, dtype):
    ref = {"neg": np.negative, "abs": np.abs,
           "relu": lambda a: np.maximum(a, 0)}[name]
    for shape in SHAPES:
        for x in variants(shape, dtype):
            out = getattr(x, name)()
            assert out.dtype == dtype
            a = to_np(x)
            want = ref(a.astype(np.float32) if dtype == dtrain.bfloat16
                       else a)
            assert_close(out, want)
            check_torch(out, lambda t: getattr(torch, name)(t), x)


def test_unary_integer_edge_cases():
    u = dtrain.tensor([0, 1, 200], dtype=dtrain.uint8)
    assert (-u).tolist() == [0, 255, 56]
    i = dtrain.tensor([-2 ** 31, -5, 7], dtype=dtrain.int32)
    assert abs(i).tolist() == [-2 ** 31, 5, 7]      # wraps, like torch
    assert (-i).tolist() == [-2 ** 31, 5, -7]
    big = dtrain.tensor([-2 ** 63, 2 ** 63 - 1])
    assert (-big).tolist() == [-2 ** 63, -2 ** 63 + 1]
    f = dtrain.tensor([float("nan"), -1.0, 2.0])
    assert np.isnan(f.relu().tolist()[0]) and f.relu().tolist()[1:] == [0, 2]


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_gelu(approximate, dtype):
    for shape in SHAPES:
        for x in variants(shape, dtype, low=-6, high=6):
            out = dtrain.gelu(x, approximate=approximate)
            assert out.dtype == dtype
            a = np_ref(x)
            if approximate == "none":
                want = 0.5 * a * np.array([math.erfc(-v / math.sqrt(2))
                                           for v in a.ravel()]).reshape(
                                               a.shape)
            else:
                want = 0.5 * a * (1 + np.tanh(
                    math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))
            assert_close(out, want)
            if torch is not None:
                tf = torch.nn.functional.gelu
                assert_close(out, tf(to_torch(x), approximate=approximate),
                             atol=2e-6 if dtype == F32 else None)


def ulp_error(got, want):
    """|got - want| in units of float32 spacing at want."""
    spacing = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    return np.abs(got.astype(np.float64) - want) / spacing


def test_float32_math_accuracy():
    """The vectorised float32 exp/tanh/sigmoid/GELU against float64."""
    x = np.linspace(-20, 20, 400_001).astype(np.float32)
    t = dtrain.from_numpy(x)
    xd = x.astype(np.float64)
    assert ulp_error(t.exp().numpy(), np.exp(xd)).max() <= 1.0
    assert ulp_error(t.tanh().numpy(), np.tanh(xd)).max() <= 1.5
    sig = sigmoid_np(xd)
    assert ulp_error(t.sigmoid().numpy(), sig).max() <= 3.0
    erfc = np.array([math.erfc(-v / math.sqrt(2)) for v in xd])
    gelu = 0.5 * xd * erfc
    err = ulp_error(dtrain.gelu(t).numpy(), gelu)
    assert err[np.abs(xd) < 2].max() <= 8
    assert err[xd > -5.6].max() <= 16
    tail = xd < -5.6
    rel = np.abs(dtrain.gelu(t).numpy()[tail] - gelu[tail])
    assert (rel <= 2e-5 * np.abs(gelu[tail]) + 1e-30).all()
    # special values
    s = dtrain.tensor([0.0, float("inf"), -float("inf"), float("nan"), 89.0,
                       -104.0])
    assert s.exp().tolist()[:3] == [1.0, float("inf"), 0.0]
    assert math.isnan(s.exp().tolist()[3]) and s.exp().tolist()[4:] == [
        float("inf"), 0.0]
    assert s.tanh().tolist()[:3] == [0.0, 1.0, -1.0]
    assert s.sigmoid().tolist()[:3] == [0.5, 1.0, 0.0]
    g = dtrain.gelu(s).tolist()
    assert g[0] == 0 and g[1] == float("inf") and math.isnan(g[3])
    assert abs(g[2]) < 1e-30


def test_unary_long_vectors():
    """Lengths around the vector width, so every loop tail runs."""
    for n in list(range(1, 40)) + [1037]:
        x = make((n,), F32, seed=n)
        a = np_ref(x)
        assert_close(x.exp(), np.exp(a), check_dtype=False)
        assert_close(x.relu(), np.maximum(a, 0), check_dtype=False)
        assert_close(x + 1.5, a + 1.5, check_dtype=False)
        assert_close(2.5 - x, 2.5 - a, check_dtype=False)
        assert_close(x * x, a * a, check_dtype=False)
        assert_close(x.add(x, alpha=3), a + 3 * a, check_dtype=False)
        xd = x.double()
        assert_close(xd / (xd + 4), a / (a + 4), check_dtype=False)
        assert_close(1 / (xd + 4), 1 / (a + 4), check_dtype=False)
        assert_close(dtrain.gelu(x), dtrain.gelu(x.double()).float(),
                     check_dtype=False)


# ---------------------------------------------------------------------------
# pow by a scalar

@pytest.mark.parametrize("dtype", ALL_DTYPES)
@pytest.mark.parametrize("exponent", [2, 3, 0.5, -0.5, -1, -2, 0, 1, 2.5,
                                      -1.5, 4])
def test_pow_scalar(dtype, exponent):
    integral = dtype not in FLOAT_DTYPES
    if integral and isinstance(exponent, int) and exponent < 0:
        with pytest.raises(RuntimeError, match="negative integer powers"):
            make((3,), dtype) ** exponent
        return
    if dtype == dtrain.bool and isinstance(exponent, bool):
        return
    for shape in SHAPES:
        for x in variants(shape, dtype, low=0.5, high=3):
            out = x ** exponent
            with np.errstate(divide="ignore"):
                want = np.power(f64(x), float(exponent))
            assert_close(out, want, check_dtype=False,
                         rtol=2e-5 if out.dtype == F32 else None)
            if torch is not None:
                assert_close(out, to_torch(x) ** exponent)
            assert_close(x.pow(exponent), to_np(out))
            assert_close(dtrain.pow(x, exponent), to_np(out))


def test_pow_int_semantics():
    i = dtrain.tensor([2, -3, 1, -1, 0])
    assert (i ** 3).tolist() == [8, -27, 1, -1, 0]
    assert (i ** 0).tolist() == [1] * 5
    assert (i ** 2.0).dtype == F32                  # float exponent: float
    # a tensor exponent follows torch: negative powers give 0 except +-1
    e = dtrain.tensor([-1, -1, -1, -1, -2])
    assert (i ** e).tolist() == [0, 0, 1, -1, 0]
    assert (dtrain.tensor([3]) ** 41).tolist() == [3 ** 41 % 2 ** 64 -
                                                   2 ** 64 * (3 ** 41 % 2 **
                                                              64 >= 2 ** 63)]
    b = dtrain.tensor([True, False])
    assert (b ** 2).dtype == dtrain.int64
    assert (b ** True).tolist() == [True, False]
    assert (b ** False).tolist() == [True, True]
    with pytest.raises(NotImplementedError, match="pow"):
        b ** b


# ---------------------------------------------------------------------------
# binary

BINARY = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply,
    "div": np.true_divide, "pow": np.power, "maximum": np.maximum,
    "minimum": np.minimum, "eq": np.equal, "ne": np.not_equal,
    "lt": np.less, "le": np.less_equal, "gt": np.greater,
    "ge": np.greater_equal,
}
CMP = {"eq", "ne", "lt", "le", "gt", "ge"}


def binary_ref(name, a, b, dtype):
    """NumPy reference computed in the promoted dtype `dtype`."""
    if name in CMP:
        return BINARY[name](np_ref(a), np_ref(b))
    x, y = np_ref(a), np_ref(b)
    if dtype in FLOAT_DTYPES or name == "div":
        with np.errstate(divide="ignore", invalid="ignore"):
            return BINARY[name](x, y)
    nd = NP_DTYPES[dtype]
    if name == "pow":
        return np.power(x, y).astype(nd)
    with np.errstate(over="ignore"):
        return BINARY[name](x.astype(nd), y.astype(nd))


def check_binary(name, a, b):
    fn = getattr(dtrain, name)
    if torch is not None:
        err = torch_raises(getattr(torch, name), a, b)
        if err is not None:
            with pytest.raises(err, match=name):
                fn(a, b)
            return
    out = fn(a, b)
    assert_close(getattr(a, name)(b), to_np(out))
    if torch is not None:
        tf = getattr(torch, name)
        assert_close(out, tf(to_torch(a), to_torch(b)),
                     rtol=TOL.get(out.dtype, (0, 0))[0] * 4 or None)
    want = binary_ref(name, a, b, out.dtype)
    assert_close(out, want, check_dtype=False,
                 rtol=2e-5 if name == "pow" and out.dtype == F32 else None)


@needs_torch  # torch tells which (op, dtype) pairs must raise
@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_binary_same_dtype(name, dtype):
    for sa, sb in PAIRS:
        low = 0 if name == "pow" else -3
        for a in variants(sa, dtype, seed=1, low=low):
            b = make(sb, dtype, seed=2, low=0 if name == "pow" else -3,
                     high=3)
            check_binary(name, a, b)
            check_binary(name, b, a)


MIXED = [(dtrain.int32, F32), (dtrain.uint8, dtrain.int64),
         (dtrain.bool, dtrain.float16), (dtrain.int64, dtrain.bfloat16),
         (dtrain.float16, dtrain.bfloat16), (F32, dtrain.float64),
         (dtrain.uint8, dtrain.int32), (dtrain.bool, dtrain.int32),
         (dtrain.float16, F32)]


@needs_torch
@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("da,db", MIXED)
def test_binary_mixed_dtypes(name, da, db):
    for sa, sb in [((2, 3), (2, 3)), ((3, 1, 4), (2, 4)), ((3,), ()),
                   ((), (2,))]:
        a = make(sa, da, seed=3, low=0.5)
        b = make(sb, db, seed=4, low=0.5)
        check_binary(name, a, b)
        check_binary(name, b, a)


@needs_torch
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_python_scalars_promote_like_torch(dtype):
    x = make((2, 3), dtype, seed=5, low=1)
    tx = to_torch(x)
    # (torch refuses uint8 ** 300 as an overflow; dtrain wraps)
    for s in [2, 2.5, True, -1] + ([300] if dtype != dtrain.uint8 else []):
        for name in ["add", "mul", "div", "maximum", "lt", "eq"]:
            if name == "maximum":
                continue  # torch.maximum takes tensors only
            err = torch_raises(getattr(torch, name), tx, s)
            if err is not None:
                with pytest.raises(err):
                    getattr(dtrain, name)(x, s)
                continue
            assert_close(getattr(dtrain, name)(x, s),
                         getattr(torch, name)(tx, s))
        # operators, reflected too
        pairs = [(lambda a, b: a + b), (lambda a, b: b + a),
                 (lambda a, b: a * b), (lambda a, b: b / a),
                 (lambda a, b: a < b), (lambda a, b: b - a),
                 (lambda a, b: a ** b), (lambda a, b: b ** a)]
        for op in pairs:
            try:
                want = op(tx, s)
            except Exception as e:  # noqa: BLE001
                with pytest.raises(type(e)):
                    op(x, s)
                continue
            assert_close(op(x, s), want, rtol=1e-4 if dtype == F32 else None)


def test_promotion_examples():
    i32 = dtrain.tensor([5], dtype=dtrain.int32)
    assert (i32 + 2.5).dtype == F32
    assert (i32 + dtrain.tensor(1.0, dtype=dtrain.float64)).dtype == \
        dtrain.float64
    assert (i32 + 3_000_000_000).tolist() == [-1294967291]
    assert (dtrain.tensor([5], dtype=dtrain.uint8) + 300).tolist() == [49]
    h = dtrain.tensor([1.0], dtype=dtrain.float16)
    assert (h + dtrain.tensor(1.0, dtype=dtrain.float64)).dtype == \
        dtrain.float16
    assert (h + dtrain.tensor([1.0], dtype=dtrain.bfloat16)).dtype == F32
    assert (dtrain.tensor([True]) + 1.5).dtype == F32
    assert (dtrain.tensor([True]) + True).dtype == dtrain.bool
    assert (dtrain.tensor([1, 2]) / dtrain.tensor([2, 2])).dtype == F32
    assert (dtrain.tensor([3], dtype=dtrain.uint8) < -1).tolist() == [True]


def test_int_overflow_wraps():
    a = dtrain.tensor([2 ** 62, -2 ** 63])
    assert (a * 4).tolist() == [0, 0]
    assert (a + a).tolist() == [-2 ** 63, 0]
    i = dtrain.tensor([2 ** 31 - 1], dtype=dtrain.int32)
    assert (i + 1).tolist() == [-2 ** 31]


def test_nan_propagation():
    nan = float("nan")
    a = dtrain.tensor([nan, 1.0, 2.0])
    b = dtrain.tensor([0.0, nan, 1.0])
    for fn in (dtrain.maximum, dtrain.minimum):
        r = fn(a, b).tolist()
        assert math.isnan(r[0]) and math.isnan(r[1])
    assert dtrain.maximum(a, b).tolist()[2] == 2.0
    assert (a == a).tolist() == [False, True, True]
    assert (a != a).tolist() == [True, False, False]


def test_large_broadcast_paths():
    """The contiguous, scalar-a, scalar-b and strided inner loops."""
    a = make((64, 33), F32, seed=6)
    b = make((33,), F32, seed=7)
    c = make((64, 1), F32, seed=8)
    A, B, C = np_ref(a), np_ref(b), np_ref(c)
    assert_close(a + b, A + B, check_dtype=False)
    assert_close(b - a, B - A, check_dtype=False)
    assert_close(a * c, A * C, check_dtype=False)
    assert_close(c / a, C / A, check_dtype=False)
    assert_close(a.t() + c.t(), A.T + C.T, check_dtype=False)
    assert_close(a.expand(2, 64, 33) * b, np.broadcast_to(A * B, (2, 64, 33)),
                 check_dtype=False)
    assert_close(dtrain.tensor(2.0) - a, 2.0 - A, check_dtype=False)
    # expanded (stride-0) inputs to unary ops and where
    e = b.expand(64, 33)
    assert_close(e.exp(), np.broadcast_to(np.exp(B), (64, 33)),
                 check_dtype=False)
    assert_close(dtrain.where(a > 0, e, c), np.where(A > 0, B, C),
                 check_dtype=False)


# ---------------------------------------------------------------------------
# add/sub alpha, division modes

def test_alpha():
    a, b = make((2, 3), F32, seed=1), make((3,), F32, seed=2)
    A, B = np_ref(a), np_ref(b)
    assert_close(dtrain.add(a, b, alpha=2.5), A + 2.5 * B, check_dtype=False)
    assert_close(a.sub(b, alpha=-3), A + 3 * B, check_dtype=False)
    assert_close(dtrain.sub(a, b, alpha=1), A - B, check_dtype=False)
    i = dtrain.tensor([1, 2, 3])
    assert i.add(i, alpha=3).tolist() == [4, 8, 12]
    assert i.sub(i, alpha=-2).tolist() == [3, 6, 9]
    assert dtrain.rsub(i, 10).tolist() == [9, 8, 7]
    assert dtrain.rsub(i, 10, alpha=2).tolist() == [8, 6, 4]
    bb = dtrain.tensor([True, False])
    assert bb.add(bb, alpha=True).tolist() == [True, False]
    assert bb.add(dtrain.tensor([False, True]), alpha=False).tolist() == [
        True, False]
    with pytest.raises(RuntimeError, match="add.*alpha must not be a float"):
        i.add(i, alpha=2.5)
    with pytest.raises(RuntimeError, match="sub.*Boolean alpha"):
        a.sub(a, alpha=True)
    with pytest.raises(TypeError, match="alpha"):
        a.mul(a, alpha=2)


@pytest.mark.parametrize("dtype", [F32, dtrain.float64, dtrain.float16,
                                   dtrain.bfloat16, dtrain.int32,
                                   dtrain.int64, dtrain.uint8])
@pytest.mark.parametrize("mode", ["trunc", "floor"])
def test_div_rounding(dtype, mode):
    hi = 9 if dtype == dtrain.uint8 else 7
    lo = 0 if dtype == dtrain.uint8 else -7
    a = make((4, 5), dtype, seed=9, low=lo, high=hi)
    b = make((5,), dtype, seed=10, low=1, high=4)
    if dtype == dtrain.uint8:
        b = b + 1       # make() starts uint8 at 0
    if dtype not in INT_DTYPES:
        b = b * -1 if mode == "trunc" else b
    out = dtrain.div(a, b, rounding_mode=mode)
    assert out.dtype == dtype
    x, y = np_ref(a), np_ref(b)
    want = np.trunc(x / y) if mode == "trunc" else np.floor(x / y)
    assert_close(out, want, check_dtype=False)
    check_torch(out, torch.div if torch else None, a, b, rounding_mode=mode)
    assert_close(a.div(b, rounding_mode=mode), to_np(out))


def test_div_special_cases():
    i = dtrain.tensor([7, -7, 0])
    with pytest.raises(RuntimeError, match="div.*ZeroDivisionError"):
        dtrain.div(i, 0, rounding_mode="floor")
    with pytest.raises(RuntimeError, match="div_.*ZeroDivisionError"):
        i.clone().div_(dtrain.tensor([1, 0, 1]), rounding_mode="trunc")
    # true division by zero is IEEE
    assert (i / 0).tolist()[:2] == [float("inf"), -float("inf")]
    big = dtrain.tensor([-2 ** 63])
    assert dtrain.div(big, -1, rounding_mode="trunc").tolist() == [-2 ** 63]
    assert dtrain.div(big, -1, rounding_mode="floor").tolist() == [-2 ** 63]
    f = dtrain.tensor([-7.5, 7.5, 5.0])
    assert dtrain.div(f, dtrain.tensor([2.0, -2.0, 0.0]),
                      rounding_mode="floor").tolist() == [-4, -4, float("inf")]
    assert dtrain.div(dtrain.tensor([-0.5]), 2.0,
                      rounding_mode="trunc").tolist() == [0.0]
    with pytest.raises(RuntimeError, match="rounding_mode"):
        dtrain.div(f, 2, rounding_mode="bogus")
    with pytest.raises(NotImplementedError, match="div"):
        dtrain.div(dtrain.tensor([True]), True, rounding_mode="trunc")


# ---------------------------------------------------------------------------
# clamp and where

@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_clamp(dtype):
    bounds = [(0, None), (None, 1), (-1, 2), (2, -1)]
    for shape in SHAPES:
        for x in variants(shape, dtype, seed=11):
            a = np_ref(x)
            for lo, hi in bounds:
                out = x.clamp(lo, hi)
                check_torch(out, torch.clamp if torch else None, x, lo, hi)
                assert_close(dtrain.clamp(x, min=lo, max=hi), to_np(out))
                if dtype == dtrain.uint8:      # bounds wrap into uint8
                    lo, hi = [None if v is None else v % 256
                              for v in (lo, hi)]
                want = a
                if lo is not None:
                    want = np.maximum(want, lo)
                if hi is not None:
                    want = np.minimum(want, hi)
                assert_close(out, want, check_dtype=False)


def test_clamp_more():
    x = dtrain.tensor([1.0, 2.0, float("nan"), -4.0])
    r = x.clamp(min=0, max=1.5).tolist()
    assert r[:2] == [1.0, 1.5] and math.isnan(r[2]) and r[3] == 0.0
    assert all(math.isnan(v) for v in x.clamp(min=float("nan")).tolist())
    lo = dtrain.tensor([0.0, 3.0, 0.0, -5.0])
    assert x.clamp(min=lo).tolist()[1] == 3.0
    assert x.clamp(min=lo, max=dtrain.tensor(1.0)).tolist()[3] == -4.0
    i = dtrain.tensor([1, 5])
    assert i.clamp(2.5, 3).dtype == F32
    assert i.clamp(2.5, 3).tolist() == [2.5, 3.0]
    assert dtrain.tensor([True, False]).clamp(min=0).dtype == dtrain.int64
    u = dtrain.tensor([3, 250], dtype=dtrain.uint8)
    assert u.clamp(min=10, max=200).tolist() == [10, 200]
    big = dtrain.tensor([2 ** 62, -2 ** 62])
    assert big.clamp(min=0).tolist() == [2 ** 62, 0]
    assert big.clamp(max=0).tolist() == [0, -2 ** 62]
    assert dtrain.clip(x, -1, 1).tolist()[0] == 1.0
    with pytest.raises(RuntimeError, match="clamp.*At least one"):
        x.clamp()
    y = x.clone()
    assert y.clamp_(min=0) is y and y.tolist()[3] == 0.0
    with pytest.raises(RuntimeError, match="clamp_.*can't be cast"):
        i.clamp_(min=0.5)


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_where(dtype):
    for sc, sx, sy in [((2, 3), (2, 3), (2, 3)), ((3, 1), (1, 4), (4,)),
                       ((), (2,), ()), ((0, 2), (2,), (1, 2))]:
        cond = make(sc, dtrain.bool, seed=12)
        for x in variants(sx, dtype, seed=13):
            y = make(sy, dtype, seed=14)
            out = dtrain.where(cond, x, y)
            want = np.where(to_np(cond), np_ref(x), np_ref(y))
            assert out.dtype == dtype
            assert_close(out, want, check_dtype=False)
            check_torch(out, torch.where if torch else None, cond, x, y)
            assert_close(x.where(cond, y), to_np(out))


@needs_torch
def test_where_scalars_and_promotion():
    c = dtrain.tensor([True, False, True])
    tc = to_torch(c)
    x = dtrain.tensor([1, 2, 3], dtype=dtrain.int32)
    for a, b in [(x, 2.5), (1.0, 0), (1, 0), (x, x.double()), (True, x),
                 (x, dtrain.tensor(2.5))]:
        ta = to_torch(a) if isinstance(a, dtrain.Tensor) else a
        tb = to_torch(b) if isinstance(b, dtrain.Tensor) else b
        assert_close(dtrain.where(c, a, b), torch.where(tc, ta, tb))
    with pytest.raises(RuntimeError, match="where.*boolean"):
        dtrain.where(x, x, x)


# ---------------------------------------------------------------------------
# in place and out=

INPLACE = [("add_", (2.0,), np.add), ("sub_", (2.0,), np.subtract),
           ("mul_", (2.0,), np.multiply), ("div_", (2.0,), np.true_divide),
           ("pow_", (2,), np.power)]


@pytest.mark.parametrize("name,args,ref", INPLACE)
def test_inplace_binary_returns_self(name, args, ref):
    x = make((3, 4), F32, seed=15)
    a = np_ref(x)
    v = x._version
    r = getattr(x, name)(*args)
    assert r is x
    assert x._version > v
    assert_close(x, ref(a, *args), check_dtype=False)
    # a broadcast tensor operand, and a non-contiguous self
    y = make((3, 4), F32, seed=16, noncontig=True)
    b = make((4,), F32, seed=17, low=0.5)
    ya, ba = np_ref(y), np_ref(b)
    if name != "pow_":
        assert getattr(y, name)(b) is y
        assert_close(y, ref(ya, ba), check_dtype=False)


def test_inplace_unary():
    for name in ["neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos",
                 "tanh", "sigmoid", "relu"]:
        x = make((2, 5), F32, seed=18, low=0.2)
        want = to_np(getattr(x, name)())
        v = x._version
        assert getattr(x, name + "_")() is x
        assert_close(x, want)
        assert x._version > v
        t = make((4, 3), F32, seed=19, low=0.2).t()      # non-contiguous
        want = to_np(getattr(t, name)())
        assert getattr(t, name + "_")() is t
        assert_close(t, want)


def test_inplace_operators():
    x = make((2, 3), F32, seed=20)
    a = np_ref(x)
    y = x
    x += 1
    x -= 0.5
    x *= 2
    x /= 4
    assert y is x
    assert_close(x, (a + 0.5) * 2 / 4, check_dtype=False)
    i = dtrain.tensor([1, 2])
    i += 3
    assert i.tolist() == [4, 5]
    with pytest.raises(RuntimeError, match="can't be cast"):
        i /= 2
    with pytest.raises(RuntimeError, match="add_.*can't be cast"):
        i += 1.5
    u = dtrain.tensor([3, 250], dtype=dtrain.uint8)
    u += dtrain.tensor([3, 10])
    assert u.tolist() == [6, 4] and u.dtype == dtrain.uint8


def test_inplace_errors():
    x = dtrain.tensor([[1.0, 2.0, 3.0]])
    with pytest.raises(RuntimeError, match=r"add_.*\(1, 3\).*\(2, 3\)"):
        x.add_(dtrain.tensor([[1.0], [2.0]]))
    e = dtrain.tensor([1.0, 2.0]).expand(3, 2)
    with pytest.raises(RuntimeError, match="add_.*more than one element"):
        e.add_(1)
    i = dtrain.tensor([1, 2])
    with pytest.raises(RuntimeError, match="exp_.*can't be cast"):
        i.exp_()
    b = dtrain.tensor([True])
    with pytest.raises(RuntimeError, match="can't be cast"):
        b.add_(dtrain.tensor([2]))
    with pytest.raises(RuntimeError, match="negative integer"):
        i.pow_(-1)
    # a float16 self with a float32 operand computes in float32, rounds
    h = dtrain.tensor([1.0, 2.0], dtype=dtrain.float16)
    h.mul_(dtrain.tensor([0.1, 3.0]))
    assert h.dtype == dtrain.float16
    assert_close(h, np.array([0.1, 6.0], dtype=np.float16))


def test_inplace_overlapping_operand():
    """An operand that overlaps self is read as it was before the op."""
    a = np.arange(10, dtype=np.float32)
    t = dtrain.tensor(a)
    t.narrow(0, 1, 9).add_(t.narrow(0, 0, 9))     # t[1:] += t[:-1]
    want = a.copy()
    want[1:] = a[1:] + a[:-1]
    assert_close(t, want)
    m = dtrain.tensor(np.arange(9, dtype=np.float32).reshape(3, 3))
    m.add_(m.t())
    w = np.arange(9, dtype=np.float32).reshape(3, 3)
    assert_close(m, w + w.T)


def test_out_argument():
    a, b = make((2, 3), F32, seed=21), make((3,), F32, seed=22)
    o = dtrain.tensor(np.zeros((2, 3), np.float32))
    r = dtrain.add(a, b, out=o)
    assert r is o
    assert_close(o, np_ref(a) + np_ref(b), check_dtype=False)
    o64 = dtrain.tensor(np.zeros((2, 3)))
    dtrain.mul(a, b, out=o64)
    assert o64.dtype == dtrain.float64
    assert_close(o64, np_ref(a) * np_ref(b), rtol=1e-6)
    ob = dtrain.tensor(np.zeros((2, 3), np.float32))
    dtrain.lt(a, b, out=ob)
    assert_close(ob, (np_ref(a) < np_ref(b)).astype(np.float32))
    assert dtrain.exp(a, out=o) is o
    assert_close(o, np.exp(np_ref(a)), check_dtype=False)
    with pytest.raises(RuntimeError, match=r"add.*\(3,\).*\(2, 3\)"):
        dtrain.add(a, b, out=dtrain.tensor(np.zeros(3, np.float32)))
    with pytest.raises(RuntimeError, match="can't be cast"):
        dtrain.add(a, b, out=dtrain.tensor([[0] * 3] * 2))
    with pytest.raises(TypeError, match="out"):
        dtrain.add(a, b, out=3)


# ---------------------------------------------------------------------------
# operators and bad operands

def test_operators_match_functions():
    a, b = make((2, 3), F32, seed=23), make((3,), F32, seed=24, low=0.5)
    A, B = np_ref(a), np_ref(b)
    assert_close(a + b, A + B, check_dtype=False)
    assert_close(a - b, A - B, check_dtype=False)
    assert_close(2 - a, 2 - A, check_dtype=False)
    assert_close(a * 3, A * 3, check_dtype=False)
    assert_close(a / b, A / B, check_dtype=False)
    assert_close(1 / b, 1 / B, check_dtype=False)
    assert_close(b ** 2, B ** 2, check_dtype=False)
    assert_close(2 ** a, 2 ** A, check_dtype=False)
    assert_close(b ** b, B ** B, check_dtype=False)
    assert_close(-a, -A, check_dtype=False)
    assert_close(abs(a), np.abs(A), check_dtype=False)
    assert ((a > 0) == dtrain.tensor(A > 0)).tolist() == [[True] * 3] * 2
    assert_close(a >= b, A >= B)
    assert_close(1 < a, 1 < A)
    assert_close(a + np.float32(2), A + 2, check_dtype=False)
    assert (a + np.int64(2)).dtype == F32
    assert (dtrain.tensor([1]) * np.int64(2)).tolist() == [2]
    assert dtrain.add(2, a).shape == a.shape
    assert dtrain.mul(2, 3).tolist() == 6


def test_non_numeric_operands():
    t = dtrain.tensor([1.0, 2.0])
    assert (t == None) is False  # noqa: E711
    assert (t != None) is True  # noqa: E711
    for bad in ["x", None, [1, 2], object()]:
        with pytest.raises(TypeError):
            t + bad
        with pytest.raises(TypeError):
            bad * t
    with pytest.raises(TypeError):
        t += "x"
    with pytest.raises(TypeError, match="add.*other.*str"):
        dtrain.add(t, "x")
    with pytest.raises(TypeError, match="mul.*input"):
        dtrain.mul(None, t)
    with pytest.raises(TypeError, match="exp"):
        dtrain.exp(2.0)
    with pytest.raises(TypeError, match="clamp"):
        t.clamp(min="a")


def test_bad_inputs():
    with pytest.raises(RuntimeError, match=r"add.*\(3, 1, 4\).*\(2, 5\)"):
        make((3, 1, 4), F32) + make((2, 5), F32)
    with pytest.raises(RuntimeError, match=r"mul.*\(2,\).*\(3,\)"):
        make((2,), F32).mul(make((3,), F32))
    with pytest.raises(RuntimeError, match=r"where.*\(2,\).*\(3,\)"):
        dtrain.where(make((2,), dtrain.bool), make((3,), F32), 0.0)
    b = dtrain.tensor([True, False])
    with pytest.raises(RuntimeError, match="neg.*bool"):
        -b
    with pytest.raises(RuntimeError, match="sub.*two bool"):
        b - b
    with pytest.raises(RuntimeError, match="sub.*bool"):
        dtrain.tensor([1]) - True
    with pytest.raises(RuntimeError, match="sub.*bool"):
        1 - b
    with pytest.raises(NotImplementedError, match="abs.*bool"):
        abs(b)
    with pytest.raises(RuntimeError, match="relu.*Boolean"):
        b.relu()
    with pytest.raises(NotImplementedError, match="gelu.*int64"):
        dtrain.gelu(dtrain.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="approximate"):
        dtrain.gelu(make((2,), F32), approximate="fast")
    with pytest.raises(RuntimeError, match="pow.*negative integer"):
        dtrain.tensor([1, 2], dtype=dtrain.uint8) ** -2
    with pytest.raises(RuntimeError, match="pow.*negative integer"):
        dtrain.pow(dtrain.tensor([1, 2]), -1)


@needs_torch
def test_errors_match_torch():
    """Where torch refuses an op, dtrain refuses it with the same type."""
    b = dtrain.tensor([True, False])
    i = dtrain.tensor([1, 2])
    f = dtrain.tensor([1.0, 2.0])
    cases = [(lambda x: -x, b), (lambda x: abs(x), b),
             (lambda x: x - x, b), (lambda x: x ** x, b),
             (lambda x: x ** -1, i), (lambda x: x.exp_(), i),
             (lambda x: x.add_(1.5), i), (lambda x: x.relu(), b),
             (lambda x: x.clamp(), f)]
    for fn, x in cases:
        err = torch_raises(fn, x)
        assert err is not None
        with pytest.raises(err):
            fn(x)


@needs_torch
def test_half_types_round_like_torch():
    """float16/bfloat16 compute in float32 and round once, and treat Python
    numbers the way torch does (mul/div keep them at float32, add/sub and
    pow round them to the tensor dtype): exact operations match bit for
    bit; transcendental ones (float32 results a few ulp apart) within one
    half-precision ulp."""
    exact = [lambda x, y: x + y, lambda x, y: x * y, lambda x, y: x / y,
             lambda x, y: x * 0.1, lambda x, y: 0.3 * x,
             lambda x, y: x / 0.3, lambda x, y: x - 0.1,
             lambda x, y: x ** 1.7, lambda x, y: x ** 2,
             lambda x, y: x.sqrt(), lambda x, y: x.clamp(1.3, 5.1)]
    close = [lambda x, y: x.exp(), lambda x, y: x.sigmoid(),
             lambda x, y: x.tanh(), lambda x, y: x.log()]
    for dt in [dtrain.float16, dtrain.bfloat16]:
        a = make((2000,), dt, seed=25, low=0.1, high=8)
        b = make((2000,), dt, seed=26, low=0.5)
        for fn in exact + close:
            out = to_np(fn(a, b))
            want = fn(to_torch(a), to_torch(b)).float().numpy()
            if fn in exact:
                np.testing.assert_array_equal(out, want)
            else:
                ulp = np.spacing(np.abs(want).astype(
                    np.float16 if dt == dtrain.float16 else np.float32))
                if dt == dtrain.bfloat16:
                    ulp = ulp * 2 ** 16
                assert (np.abs(out - want) <= ulp.astype(np.float64)).all()
