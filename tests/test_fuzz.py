"""Randomized differential test: every public op gets random shapes, dtypes
and strides (transposed, strided, expanded views) and random bad arguments.
Each call must either match torch (values and result dtype) or raise a
clean Python exception where torch raises too. It never crashes; under the
sanitizer build (tools/test.sh) ASan/UBSan watch every call. Without torch
(the sanitizer run disables it) each call must succeed or raise cleanly."""
import numpy as np
import pytest

import dtrain
from helpers import ALL_DTYPES, TOL, to_np, torch, torch_dtype


CLEAN = (TypeError, ValueError, IndexError, RuntimeError, NotImplementedError)
ROUNDS = 300


# ---------------------------------------------------------------- inputs

def rand_shape(rng, max_ndim=4):
    return tuple(int(s) for s in rng.integers(0, 5, size=rng.integers(0, max_ndim + 1)))


def rand_values(rng, shape, dtype):
    if dtype == dtrain.bool:
        return rng.random(shape) > 0.5
    if dtype in (dtrain.int32, dtrain.int64):
        return rng.integers(-5, 6, size=shape)
    if dtype == dtrain.uint8:
        return rng.integers(0, 10, size=shape)
    return rng.uniform(-2, 2, size=shape)


class _Absent:
    """Stands in for torch when there is no oracle: every attribute and
    call gives the same inert object, so the torch half of a case is a
    no-op."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self


T = torch if torch is not None else _Absent()


def torch_dtype_or_none(dtype):
    return torch_dtype(dtype) if torch is not None else None


def rand_tensor(rng, shape=None, dtype=None):
    """A (dtrain, torch) pair holding equal values, often as a view."""
    shape = rand_shape(rng) if shape is None else shape
    dtype = ALL_DTYPES[rng.integers(len(ALL_DTYPES))] if dtype is None else dtype
    vals = np.asarray(rand_values(rng, shape, dtype), dtype=np.float64)
    layout = rng.integers(4) if len(shape) else 0
    if layout == 1 and len(shape) >= 2:       # transposed view
        base = vals.swapaxes(0, -1).copy()
        d = dtrain.tensor(base).to(dtype).transpose(0, -1)
        t = T.from_numpy(base).to(torch_dtype_or_none(dtype)).transpose(0, -1)
    elif layout == 2:                         # every other element
        wide = np.repeat(vals, 2, axis=-1)
        d = dtrain.tensor(wide).to(dtype)
        t = T.from_numpy(wide).to(torch_dtype_or_none(dtype))
        st = list(d.stride())
        st[-1] *= 2
        d = d.as_strided(shape, st)
        t = t.as_strided(shape, st)
    elif layout == 3 and shape and shape[0] == 1:   # expanded dim
        d = dtrain.tensor(vals).to(dtype).expand(3, *shape[1:])
        t = T.from_numpy(vals).to(torch_dtype_or_none(dtype)).expand(3, *shape[1:])
    else:
        d = dtrain.tensor(vals).to(dtype)
        t = T.from_numpy(vals).to(torch_dtype_or_none(dtype))
    return d, t


def broadcast_partner(rng, shape):
    """A shape that broadcasts with `shape`, or (1 in 6) a random one."""
    if rng.integers(6) == 0 or not shape:
        return rand_shape(rng)
    out = [1 if rng.integers(3) == 0 else s for s in shape]
    return tuple(out[rng.integers(len(out) + 1):])


def rand_dim(rng, ndim):
    """Mostly valid, sometimes out of range."""
    if rng.integers(8) == 0:
        return int(rng.integers(-8, 8))
    return int(rng.integers(-max(ndim, 1), max(ndim, 1)))


# ---------------------------------------------------------------- comparison

def compare(got, want, dtype_hint):
    if isinstance(want, (tuple, list)) and not isinstance(want, torch.Size):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            compare(g, w, dtype_hint)
        return
    if not isinstance(want, torch.Tensor):
        assert got == want
        return
    assert tuple(got.shape) == tuple(want.shape), (got.shape, want.shape)
    assert str(got.dtype).split(".")[-1] == str(want.dtype).split(".")[-1], \
        (got.dtype, want.dtype)
    w = want.float() if want.dtype == torch.bfloat16 else want
    rtol, atol = TOL.get(got.dtype, (0, 0))
    np.testing.assert_allclose(
        to_np(got).astype(np.float64), w.numpy().astype(np.float64),
        rtol=max(rtol, 1e-5) if rtol else 0, atol=max(atol, 1e-6) if atol else 0,
        equal_nan=True)


def check(fn_dt, fn_t, dtype_hint=None):
    """Runs both; they must agree on success/failure and on the result."""
    if torch is None:
        try:
            fn_dt()
        except CLEAN as e:
            assert str(e), "exception without a message"
        return "no-oracle"
    try:
        want = fn_t()
        torch_err = None
    except Exception as e:  # torch rejected it: dtrain must reject cleanly
        torch_err = e
    try:
        got = fn_dt()
    except CLEAN as e:
        if torch_err is None:
            raise AssertionError(f"dtrain raised {type(e).__name__}: {e} "
                                 f"but torch succeeded") from e
        assert str(e), "exception without a message"
        return "both-raised"
    if torch_err is not None:
        raise AssertionError(f"dtrain succeeded but torch raised "
                             f"{type(torch_err).__name__}: {torch_err}")
    compare(got, want, dtype_hint)
    return "ok"


# ---------------------------------------------------------------- the ops

UNARY = {
    "neg": lambda x: -x, "abs": lambda x: x.abs(), "exp": lambda x: x.exp(),
    "log": lambda x: x.log(),
    "sqrt": lambda x: x.sqrt(), "rsqrt": lambda x: x.rsqrt(),
    "sin": lambda x: x.sin(), "cos": lambda x: x.cos(),
    "tanh": lambda x: x.tanh(), "sigmoid": lambda x: x.sigmoid(),
    "relu": lambda x: x.relu(), "square": lambda x: x ** 2,
    "pow_half": lambda x: x.pow(0.5), "clamp": lambda x: x.clamp(-1, 1),
    "clamp_min": lambda x: x.clamp(min=0.5),
    "contiguous": lambda x: x.contiguous(), "clone": lambda x: x.clone(),
}
BINARY = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b, "div": lambda a, b: a / b,
    "pow": lambda a, b: a ** b, "maximum": lambda a, b: a.maximum(b),
    "minimum": lambda a, b: a.minimum(b), "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}


def test_fuzz_unary():
    rng = np.random.default_rng(1234)
    for i in range(ROUNDS):
        name = list(UNARY)[i % len(UNARY)]
        d, t = rand_tensor(rng)
        f = UNARY[name]
        check(lambda: f(d), lambda: f(t))


def test_fuzz_gelu():
    rng = np.random.default_rng(7)
    for _ in range(60):
        d, t = rand_tensor(rng, dtype=[dtrain.float32, dtrain.float64][rng.integers(2)])
        check(lambda: dtrain.gelu(d), lambda: T.nn.functional.gelu(t))
        check(lambda: dtrain.gelu(d, approximate="tanh"),
              lambda: T.nn.functional.gelu(t, approximate="tanh"))


def test_fuzz_binary_broadcast_and_promotion():
    rng = np.random.default_rng(99)
    for i in range(ROUNDS * 2):
        name = list(BINARY)[i % len(BINARY)]
        f = BINARY[name]
        a, ta = rand_tensor(rng)
        b, tb = rand_tensor(rng, shape=broadcast_partner(rng, tuple(a.shape)))
        if name == "pow" and b.dtype != dtrain.bool and not (
                a.dtype.is_floating_point or b.dtype.is_floating_point):
            b, tb = b.abs(), tb.abs()  # int ** negative int is an error
        if rng.integers(4) == 0 and name not in ("maximum", "minimum"):
            # a Python scalar on one side (torch's maximum takes tensors)
            s = [2, 0.5, True][rng.integers(3)]
            check(lambda: f(a, s), lambda: f(ta, s))
            check(lambda: f(s, a), lambda: f(s, ta))
        else:
            check(lambda: f(a, b), lambda: f(ta, tb))


def test_fuzz_inplace():
    rng = np.random.default_rng(5)
    for _ in range(ROUNDS):
        a, ta = rand_tensor(rng)
        a, ta = a.clone(), ta.clone()  # in place needs non-overlapping memory
        b, tb = rand_tensor(rng, shape=broadcast_partner(rng, tuple(a.shape)))
        op = ["add_", "sub_", "mul_", "div_"][rng.integers(4)]
        check(lambda: getattr(a, op)(b), lambda: getattr(ta, op)(tb))


def test_fuzz_where():
    rng = np.random.default_rng(11)
    for _ in range(100):
        c, tc = rand_tensor(rng, dtype=dtrain.bool)
        a, ta = rand_tensor(rng, shape=broadcast_partner(rng, tuple(c.shape)))
        b, tb = rand_tensor(rng, shape=broadcast_partner(rng, tuple(c.shape)))
        check(lambda: dtrain.where(c, a, b), lambda: T.where(tc, ta, tb))


def test_fuzz_reductions():
    rng = np.random.default_rng(21)
    for i in range(ROUNDS):
        a, ta = rand_tensor(rng)
        dim = rand_dim(rng, a.ndim)
        keep = bool(rng.integers(2))
        k = i % 9
        if k == 0:
            check(lambda: a.sum(), lambda: ta.sum())
        elif k == 1:
            check(lambda: a.sum(dim, keepdim=keep), lambda: ta.sum(dim, keepdim=keep))
        elif k == 2:
            check(lambda: a.mean(dim, keepdim=keep), lambda: ta.mean(dim, keepdim=keep))
        elif k == 3:
            check(lambda: tuple(a.max(dim, keepdim=keep)),
                  lambda: tuple(ta.max(dim, keepdim=keep)))
        elif k == 4:
            check(lambda: a.argmax(dim), lambda: ta.argmax(dim))
        elif k == 5:
            check(lambda: a.var(dim), lambda: ta.var(dim))
        elif k == 6:
            check(lambda: a.std(), lambda: ta.std())
        elif k == 7:
            check(lambda: a.min(), lambda: ta.min())
        else:
            check(lambda: a.norm(), lambda: ta.norm())


def test_fuzz_matmul():
    rng = np.random.default_rng(31)
    for _ in range(ROUNDS):
        dtype = [dtrain.float32, dtrain.float64, dtrain.int64][rng.integers(3)]
        m, k, n = (int(v) for v in rng.integers(0, 6, size=3))
        batch = rand_shape(rng, 2)
        sa = [(k,), (m, k), batch + (m, k)][rng.integers(3)]
        sb = [(k,), (k, n), broadcast_partner(rng, batch) + (k, n)][rng.integers(3)]
        if rng.integers(6) == 0:
            sb = rand_shape(rng)  # mostly incompatible
        a, ta = rand_tensor(rng, shape=sa, dtype=dtype)
        b, tb = rand_tensor(rng, shape=sb, dtype=dtype)
        check(lambda: a @ b, lambda: ta @ tb)


def test_fuzz_views_and_shapes():
    rng = np.random.default_rng(41)
    for i in range(ROUNDS):
        a, ta = rand_tensor(rng)
        d0, d1 = rand_dim(rng, a.ndim), rand_dim(rng, a.ndim)
        k = i % 8
        if k == 0:
            check(lambda: a.transpose(d0, d1), lambda: ta.transpose(d0, d1))
        elif k == 1:
            check(lambda: a.reshape(-1), lambda: ta.reshape(-1))
        elif k == 2:
            check(lambda: a.unsqueeze(d0), lambda: ta.unsqueeze(d0))
        elif k == 3:
            check(lambda: a.squeeze(d0), lambda: ta.squeeze(d0))
        elif k == 4:
            check(lambda: a.flatten(), lambda: ta.flatten())
        elif k == 5:
            perm = [int(p) for p in rng.permutation(a.ndim)]
            check(lambda: a.permute(*perm), lambda: ta.permute(*perm))
        elif k == 6:
            shape = broadcast_partner(rng, tuple(a.shape))
            check(lambda: a.expand(*shape), lambda: ta.expand(*shape))
        else:
            n = int(rng.integers(1, 4))
            check(lambda: a.chunk(n, d0), lambda: ta.chunk(n, d0))


def rand_key(rng, shape):
    """A random indexing key: ints, slices, None, Ellipsis, index tensors,
    masks; sometimes out of range."""
    key = []
    for size in shape[:rng.integers(0, len(shape) + 1)]:
        kind = rng.integers(6)
        if kind == 0:
            key.append(int(rng.integers(-size - 1, size + 1)) if size else 0)
        elif kind == 1:
            lo, hi = sorted(int(v) for v in rng.integers(-size - 2, size + 2, 2))
            key.append(slice(lo, hi, int(rng.integers(1, 3))))
        elif kind == 2:
            key.append(None)
        elif kind == 3:
            key.append(Ellipsis if Ellipsis not in key else slice(None))
        elif kind == 4:
            key.append(("idx", rng.integers(-size, max(size, 1), size=rng.integers(0, 4))))
        else:
            key.append(("mask", rng.random(size) > 0.5))
    return key


def materialize(key, lib):
    out = []
    for k in key:
        if isinstance(k, tuple) and k[0] == "idx":
            out.append(lib.tensor(k[1].tolist(), dtype=lib.int64))
        elif isinstance(k, tuple):
            out.append(lib.tensor(k[1].tolist(), dtype=lib.bool))
        else:
            out.append(k)
    return tuple(out)


def test_fuzz_getitem_setitem():
    rng = np.random.default_rng(51)
    for _ in range(ROUNDS):
        a, ta = rand_tensor(rng)
        key = rand_key(rng, tuple(a.shape))
        kd, kt = materialize(key, dtrain), materialize(key, T)
        check(lambda: a[kd], lambda: ta[kt])
        a2, ta2 = a.clone(), ta.clone()

        def set_d():
            a2[kd] = 1
            return a2

        def set_t():
            ta2[kt] = 1
            return ta2
        check(set_d, set_t)


def test_fuzz_join_gather():
    rng = np.random.default_rng(61)
    for i in range(ROUNDS):
        a, ta = rand_tensor(rng)
        dim = rand_dim(rng, a.ndim)
        if i % 3 == 0:
            b, tb = rand_tensor(rng, shape=tuple(a.shape), dtype=a.dtype)
            check(lambda: dtrain.cat([a, b], dim), lambda: T.cat([ta, tb], dim))
        elif i % 3 == 1:
            b, tb = rand_tensor(rng, shape=tuple(a.shape), dtype=a.dtype)
            check(lambda: dtrain.stack([a, b], dim), lambda: T.stack([ta, tb], dim))
        elif a.ndim:
            shape = tuple(int(rng.integers(0, s + 1)) for s in a.shape)
            hi = a.shape[dim] if -a.ndim <= dim < a.ndim else 3
            idx = rng.integers(0, max(hi, 1) + (rng.integers(5) == 0), size=shape)
            check(lambda: a.gather(dim, dtrain.tensor(idx)),
                  lambda: ta.gather(dim, T.from_numpy(idx)))


@pytest.mark.parametrize("bad", [None, "x", [1, 2], object(), 1j])
def test_bad_argument_types_raise_cleanly(bad):
    a = dtrain.tensor([1.0, 2.0])
    calls = [lambda: a + bad, lambda: a.sum(bad), lambda: a.view(bad),
             lambda: a.clamp(bad), lambda: a[bad] if bad is not None else a["x"],
             lambda: a.transpose(bad, 0), lambda: dtrain.cat(bad),
             lambda: a @ bad, lambda: a.gather(0, bad), lambda: a.to(bad),
             lambda: a.reshape(bad), lambda: a.expand(bad)]
    for call in calls:
        try:
            call()
        except CLEAN:
            pass
