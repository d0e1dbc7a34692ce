"""Autograd of the elementwise family: every differentiable op's gradient
against finite differences and torch (gradcheck.check_grad), with
broadcasting, Python-number operands and non-contiguous inputs; in-place
variants, the in-place refusals and version errors; half-type gradients;
accumulation; ops that must not record."""
import numpy as np
import pytest

import dtrain
from gradcheck import check_grad
from helpers import needs_torch, torch, torch_dtype

F64 = dtrain.float64


def leaf(values, dtype=F64):
    return dtrain.tensor(values, dtype=dtype).requires_grad_()


def tleaf(values, dtype=torch and torch.float64):
    return torch.tensor(values, dtype=dtype).requires_grad_()


def np_of(t):
    t = t.detach()
    return (t.float() if t.dtype == dtrain.bfloat16 else t).numpy()


def tnp(t):
    t = t.detach()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy()


# ---------------------------------------------------------------------------
# one input

def gelu_t(x):
    return torch.nn.functional.gelu(x, approximate="tanh")


UNARY = [
    # (id, fn, torch_fn or None for fn itself, low, high)
    ("neg", lambda x: -x, None, -2, 2),
    ("neg_method", lambda x: x.neg(), None, -2, 2),
    ("abs", lambda x: x.abs(), None, -2, 2),
    ("exp", lambda x: x.exp(), None, -2, 2),
    ("log", lambda x: x.log(), None, 0.2, 3),
    ("sqrt", lambda x: x.sqrt(), None, 0.2, 3),
    ("rsqrt", lambda x: x.rsqrt(), None, 0.2, 3),
    ("sin", lambda x: x.sin(), None, -3, 3),
    ("cos", lambda x: x.cos(), None, -3, 3),
    ("tanh", lambda x: x.tanh(), None, -3, 3),
    ("sigmoid", lambda x: x.sigmoid(), None, -4, 4),
    ("relu", lambda x: x.relu(), None, -2, 2),
    ("gelu", lambda x: dtrain.gelu(x),
     lambda x: torch.nn.functional.gelu(x), -4, 4),
    ("gelu_tanh", lambda x: dtrain.gelu(x, approximate="tanh"), gelu_t,
     -4, 4),
    ("pow2", lambda x: x ** 2, None, -2, 2),
    ("pow3", lambda x: x.pow(3), None, -2, 2),
    ("pow0", lambda x: x ** 0, None, -2, 2),
    ("pow1", lambda x: x ** 1, None, -2, 2),
    ("pow_half", lambda x: x ** 0.5, None, 0.2, 3),
    ("pow_neg1", lambda x: x ** -1, None, 0.2, 3),
    ("pow_neg_half", lambda x: x ** -0.5, None, 0.2, 3),
    ("pow_2_5", lambda x: x ** 2.5, None, 0.2, 3),
    ("pow_neg2", lambda x: x ** -2, None, 0.2, 3),
    ("square", lambda x: dtrain.square(x), lambda x: torch.square(x), -2, 2),
    ("clamp", lambda x: x.clamp(-0.5, 0.7), None, -2, 2),
    ("clamp_min", lambda x: x.clamp(min=-0.5), None, -2, 2),
    ("clamp_max", lambda x: x.clamp(max=0.5), None, -2, 2),
    ("clip_fn", lambda x: dtrain.clip(x, -1, 1),
     lambda x: torch.clip(x, -1, 1), -2, 2),
]


@pytest.mark.parametrize("noncontig", [False, True])
@pytest.mark.parametrize("name,fn,tfn,low,high", UNARY,
                         ids=[u[0] for u in UNARY])
def test_unary(name, fn, tfn, low, high, noncontig):
    check_grad(fn, [(3, 4)], torch_fn=tfn, low=low, high=high,
               noncontig=noncontig)


def test_unary_0dim_and_empty():
    check_grad(lambda x: x.exp(), [()])
    check_grad(lambda x: x.tanh() * 2, [()])
    x = dtrain.zeros(0, 3, dtype=F64).requires_grad_()
    y = x.sigmoid()
    y.backward(dtrain.zeros(0, 3, dtype=F64))
    assert tuple(x.grad.shape) == (0, 3)


@needs_torch
def test_subgradients_at_kinks():
    """relu 0 at 0, abs 0 at 0 (and NaN), clamp 1 on its bounds, NaN
    gradients as torch gives them."""
    v = [0.0, -0.0, 1.0, -1.0, 0.5, float("nan"), -0.5]
    for f in [lambda x: x.relu(), lambda x: x.abs(),
              lambda x: x.clamp(-0.5, 0.5), lambda x: x.clamp(min=-0.5),
              lambda x: x.clamp(max=0.5), lambda x: x ** 0.5,
              lambda x: x ** 2, lambda x: x ** 0, lambda x: x ** -1]:
        x, tx = leaf(v), tleaf(v)
        f(x).backward(dtrain.ones(7, dtype=F64))
        f(tx).backward(torch.ones(7, dtype=torch.float64))
        np.testing.assert_array_equal(np_of(x.grad), tnp(tx.grad))


def test_gelu_tails():
    """float32 GELU gradients against float64 over a wide range."""
    xs = np.linspace(-12, 12, 2001)
    for approx in ["none", "tanh"]:
        x32 = dtrain.tensor(xs, dtype=dtrain.float32).requires_grad_()
        x64 = dtrain.tensor(xs, dtype=F64).requires_grad_()
        for x in (x32, x64):
            dtrain.gelu(x, approximate=approx).backward(
                dtrain.ones(len(xs), dtype=x.dtype))
        # (torch's own float32 is off by up to 1e-6 here)
        np.testing.assert_allclose(np_of(x32.grad), np_of(x64.grad),
                                   rtol=1e-5, atol=6e-7)


# ---------------------------------------------------------------------------
# two inputs

PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 4), (3, 1)),
         ((3, 4), ()), ((), (2, 3))]

BINARY = [
    ("add", lambda a, b: a + b, -2, 2),
    ("add_alpha", lambda a, b: a.add(b, alpha=2.5), -2, 2),
    ("sub", lambda a, b: a - b, -2, 2),
    ("sub_alpha", lambda a, b: a.sub(b, alpha=-3), -2, 2),
    ("mul", lambda a, b: a * b, -2, 2),
    ("div", lambda a, b: a / b, 0.5, 2),
    ("pow", lambda a, b: a ** b, 0.3, 2),
    ("maximum", lambda a, b: a.maximum(b), -2, 2),
    ("minimum", lambda a, b: a.minimum(b), -2, 2),
]


@pytest.mark.parametrize("shapes", PAIRS, ids=str)
@pytest.mark.parametrize("name,fn,low,high", BINARY,
                         ids=[b[0] for b in BINARY])
def test_binary(name, fn, low, high, shapes):
    check_grad(fn, list(shapes), low=low, high=high)


@pytest.mark.parametrize("name,fn,low,high", BINARY,
                         ids=[b[0] for b in BINARY])
def test_binary_noncontig(name, fn, low, high):
    check_grad(fn, [(3, 4), (3, 4)], low=low, high=high, noncontig=True)
    check_grad(fn, [(4, 3), (3,)], low=low, high=high, noncontig=True)


SCALAR_OPS = [
    ("radd", lambda x: 2 + x), ("rsub", lambda x: 2 - x),
    ("sub_s", lambda x: x - 1.5), ("rmul", lambda x: 3 * x),
    ("mul_s", lambda x: x * -0.5), ("div_s", lambda x: x / 3),
    ("rdiv", lambda x: 3 / x), ("rpow", lambda x: 2 ** x),
    ("rpow0", lambda x: 0 ** x), ("pow_s", lambda x: x ** 1.5),
    ("fn_add", lambda x: dtrain.add(x, 1, alpha=2)
     if isinstance(x, dtrain.Tensor) else torch.add(x, 1, alpha=2)),
    ("fn_rsub", lambda x: dtrain.rsub(x, 1)
     if isinstance(x, dtrain.Tensor) else torch.rsub(x, 1)),
    ("fn_pow", lambda x: dtrain.pow(2.5, x)
     if isinstance(x, dtrain.Tensor) else torch.pow(2.5, x)),
    ("max_s", lambda x: x.maximum(dtrain.tensor(0.3, dtype=x.dtype))
     if isinstance(x, dtrain.Tensor)
     else x.maximum(torch.tensor(0.3, dtype=x.dtype))),
]


@pytest.mark.parametrize("name,fn", SCALAR_OPS, ids=[s[0] for s in SCALAR_OPS])
def test_python_number_operands(name, fn):
    check_grad(fn, [(3, 4)], low=0.5, high=2)


@needs_torch
def test_pow_zero_base():
    """torch's masks: no exponent gradient where base == 0 and exponent
    >= 0; an exponent of 0 gives the base no gradient."""
    b, e = [0.0, 0.0, 0.0, 2.0, -1.5], [0.0, 2.0, -1.0, -1.0, 2.0]
    x, y, tx, ty = leaf(b), leaf(e), tleaf(b), tleaf(e)
    u = [1.0, 2.0, 3.0, 4.0, 5.0]
    (x ** y).backward(dtrain.tensor(u, dtype=F64))
    (tx ** ty).backward(torch.tensor(u, dtype=torch.float64))
    np.testing.assert_array_equal(np_of(x.grad), tnp(tx.grad))
    np.testing.assert_array_equal(np_of(y.grad), tnp(ty.grad))
    y.grad, ty.grad = None, None
    (0.0 ** y).backward(dtrain.tensor(u, dtype=F64))
    (0.0 ** ty).backward(torch.tensor(u, dtype=torch.float64))
    np.testing.assert_array_equal(np_of(y.grad), tnp(ty.grad))


@needs_torch
@pytest.mark.parametrize("op", ["maximum", "minimum"])
def test_maxmin_ties_split(op):
    va, vb = [1.0, 2.0, 3.0, float("nan"), 1.0], [1.0, 0.0, 5.0, 1.0,
                                                  float("nan")]
    a, b, ta, tb = leaf(va), leaf(vb), tleaf(va), tleaf(vb)
    getattr(dtrain, op)(a, b).backward(dtrain.ones(5, dtype=F64) * 3)
    getattr(torch, op)(ta, tb).backward(torch.ones(5, dtype=torch.float64)
                                        * 3)
    np.testing.assert_array_equal(np_of(a.grad), tnp(ta.grad))
    np.testing.assert_array_equal(np_of(b.grad), tnp(tb.grad))


@pytest.mark.parametrize("noncontig", [False, True])
def test_clamp_tensor_bounds(noncontig):
    check_grad(lambda x, lo, hi: x.clamp(lo, hi), [(3, 4), (3, 4), (4,)],
               noncontig=noncontig)
    check_grad(lambda x, lo: x.clamp(min=lo), [(3, 4), (4,)],
               noncontig=noncontig)
    check_grad(lambda x, hi: x.clamp(max=hi), [(3, 4), (3, 1)],
               noncontig=noncontig)
    check_grad(lambda x, lo: x.clamp(lo, 0.5), [(3, 4), (4,)],
               torch_fn=lambda x, lo: x.clamp(lo, torch.tensor(0.5)))


def where_d(x, y):
    if isinstance(x, dtrain.Tensor):
        return dtrain.where(x > 0, x, y)
    return torch.where(x > 0, x, y)


def test_where():
    check_grad(where_d, [(3, 4), (3, 4)])
    check_grad(where_d, [(3, 4), (4,)], noncontig=True)
    check_grad(where_d, [(3, 1), (1, 4)])
    check_grad(lambda x: where_d(x, 0.5), [(3, 4)])
    check_grad(lambda y: x_where_const(y), [(2, 3)])


def x_where_const(y):
    lib = dtrain if isinstance(y, dtrain.Tensor) else torch
    return lib.where(y < 0.5, 1.0, y)


@needs_torch
@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_div_rounding_zero_grad(mode):
    a, b = leaf([3.0, -2.5, 5.0]), leaf([2.0, 2.0, 0.5])
    y = a.div(b, rounding_mode=mode)
    assert y.requires_grad
    y.backward(dtrain.ones(3, dtype=F64))
    ta, tb = tleaf([3.0, -2.5, 5.0]), tleaf([2.0, 2.0, 0.5])
    ta.div(tb, rounding_mode=mode).backward(torch.ones(3,
                                                       dtype=torch.float64))
    np.testing.assert_array_equal(np_of(a.grad), tnp(ta.grad))
    np.testing.assert_array_equal(np_of(b.grad), tnp(tb.grad))


def test_int_and_mixed_dtype_operands():
    w = dtrain.tensor([1.5, -2.0, 0.25], dtype=dtrain.float32)
    w.requires_grad_()
    i = dtrain.tensor([1, 2, 3])
    d = dtrain.tensor([0.5, 0.25, 2.0], dtype=F64).requires_grad_()
    (i * w * d).backward(dtrain.ones(3, dtype=F64))
    assert w.grad.dtype == dtrain.float32 and d.grad.dtype == F64
    np.testing.assert_allclose(np_of(w.grad), [0.5, 0.5, 6.0])
    np.testing.assert_allclose(np_of(d.grad), [1.5, -4.0, 0.75])


# ---------------------------------------------------------------------------
# in place

INPLACE = [
    ("add_", lambda x, b: x.add_(b), -2, 2),
    ("add_alpha_", lambda x, b: x.add_(b, alpha=-2), -2, 2),
    ("sub_", lambda x, b: x.sub_(b, alpha=3), -2, 2),
    ("mul_", lambda x, b: x.mul_(b), -2, 2),
    ("div_", lambda x, b: x.div_(b), 0.5, 2),
    ("pow_t", lambda x, b: x.pow_(b), 0.5, 2),
    ("pow_s", lambda x, b: x.pow_(3), -2, 2),
    ("iadd", lambda x, b: x.__iadd__(b), -2, 2),
    ("isub", lambda x, b: x.__isub__(b), -2, 2),
    ("imul", lambda x, b: x.__imul__(b), -2, 2),
    ("idiv", lambda x, b: x.__itruediv__(b), 0.5, 2),
    ("clamp_", lambda x, b: x.clamp_(-0.5, 0.5), -2, 2),
    ("clamp_t", lambda x, b: x.clamp_(min=b), -2, 2),
    ("clip_", lambda x, b: x.clip_(max=0.3), -2, 2),
    ("relu_", lambda x, b: x.relu_(), -2, 2),
    ("exp_", lambda x, b: x.exp_(), -2, 2),
    ("neg_", lambda x, b: x.neg_(), -2, 2),
    ("abs_", lambda x, b: x.abs_(), -2, 2),
    ("log_", lambda x, b: x.log_(), 0.5, 2),
    ("sqrt_", lambda x, b: x.sqrt_(), 0.5, 2),
    ("rsqrt_", lambda x, b: x.rsqrt_(), 0.5, 2),
    ("sin_", lambda x, b: x.sin_(), -2, 2),
    ("cos_", lambda x, b: x.cos_(), -2, 2),
    ("tanh_", lambda x, b: x.tanh_(), -2, 2),
    ("sigmoid_", lambda x, b: x.sigmoid_(), -2, 2),
    ("eq_", lambda x, b: x.eq_(b), -2, 2),
    ("gt_", lambda x, b: x.gt_(b), -2, 2),
]


@pytest.mark.parametrize("name,op,low,high", INPLACE,
                         ids=[i[0] for i in INPLACE])
def test_inplace(name, op, low, high):
    def fn(a, b):
        x = a * 1
        y = op(x, b)
        assert y is x
        return x * 1.5 + b * x

    check_grad(fn, [(3, 4), (4,)], low=low, high=high)


def test_inplace_on_plain_tensor_records():
    """x.add_(w) with only w requiring grad makes x part of the graph."""
    w = dtrain.tensor([1.0, 2.0], dtype=F64).requires_grad_()
    x = dtrain.zeros(2, dtype=F64)
    x.mul_(w)          # x == 0: w's gradient through here is x's old value
    x.add_(w, alpha=2)
    assert x.requires_grad and x.grad_fn.name() == "AddBackward0"
    x.backward(dtrain.ones(2, dtype=F64))
    np.testing.assert_allclose(np_of(w.grad), [2.0, 2.0])


@pytest.mark.parametrize("op", [
    lambda t: t.add_(1), lambda t: t.mul_(2), lambda t: t.exp_(),
    lambda t: t.clamp_(0, 1), lambda t: t.relu_(), lambda t: t.pow_(2),
    lambda t: t.div_(2), lambda t: t.__iadd__(1), lambda t: t.eq_(0.5),
    lambda t: t.sub_(dtrain.ones(3)), lambda t: t.neg_()])
def test_inplace_on_leaf_refused_before_writing(op):
    a = dtrain.tensor([0.5, -1.0, 2.0]).requires_grad_()
    with pytest.raises(RuntimeError, match="leaf Variable that requires "
                                           "grad"):
        op(a)
    np.testing.assert_array_equal(np_of(a), [0.5, -1.0, 2.0])
    assert a.grad_fn is None
    with dtrain.no_grad():     # allowed without recording (optimizers)
        op(a)
    assert a.grad_fn is None and a.requires_grad


VERSION_CASES = [
    # saved result
    ("exp", lambda x: x.exp(), lambda y, x: y.add_(1)),
    ("tanh", lambda x: x.tanh(), lambda y, x: y.mul_(2)),
    ("sigmoid", lambda x: x.sigmoid(), lambda y, x: y.sub_(1)),
    ("relu", lambda x: x.relu(), lambda y, x: y.mul_(2)),
    ("sqrt", lambda x: x.abs().sqrt(), lambda y, x: y.add_(1)),
    ("exp_", lambda x: x.exp_(), lambda y, x: y.add_(1)),
    # saved input
    ("log", lambda x: x.abs().log(), lambda y, x: x.add_(1)),
    ("mul", lambda x: x * 2 * x, lambda y, x: x.mul_(3)),
    ("div", lambda x: (x * 2) / x, lambda y, x: x.add_(1)),
    ("pow", lambda x: x ** 2, lambda y, x: x.add_(1)),
    ("maximum", lambda x: x.maximum(x * 0), lambda y, x: x.add_(1)),
    ("clamp", lambda x: x.clamp(0, 1), lambda y, x: x.add_(1)),
    # mul_(self) saves self before writing it
    ("mul_self", lambda x: x.mul_(x), lambda y, x: None),
    ("div_self", lambda x: x.div_(x), lambda y, x: None),
]


@pytest.mark.parametrize("name,make_y,modify", VERSION_CASES,
                         ids=[v[0] for v in VERSION_CASES])
def test_modified_inplace_error(name, make_y, modify):
    a = dtrain.tensor([0.5, -1.0, 2.0]).requires_grad_()
    x = a * 1
    y = make_y(x)
    modify(y, x)
    with pytest.raises(RuntimeError, match="modified by an inplace "
                                           "operation"):
        y.backward(dtrain.ones(3))
    if torch is not None:
        ta = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
        tx = ta * 1
        ty = make_y(tx)
        modify(ty, tx)
        with pytest.raises(RuntimeError, match="modified by an inplace"):
            ty.backward(torch.ones(3))


def test_unsaved_inputs_may_change():
    """add saves nothing, log_ saves a clone: no version error."""
    a = dtrain.tensor([0.5, 1.0, 2.0], dtype=F64).requires_grad_()
    x = a * 1
    y = x + 1
    x.mul_(2)
    z = a * 1
    z.log_()
    z.add_(1)
    (y + z).backward(dtrain.ones(3, dtype=F64))
    np.testing.assert_allclose(np_of(a.grad), 1 + 1 / np.array([0.5, 1, 2]))


def test_out_argument_refuses_autograd():
    a = dtrain.tensor([1.0, 2.0]).requires_grad_()
    out = dtrain.empty(2)
    for f in [lambda: dtrain.add(a, 1, out=out),
              lambda: dtrain.exp(a, out=out),
              lambda: dtrain.clamp(a, 0, 1, out=out),
              lambda: dtrain.where(a > 1, a, 0.0, out=out),
              lambda: dtrain.mul(dtrain.ones(2), 2,
                                 out=dtrain.zeros(2).requires_grad_())]:
        with pytest.raises(RuntimeError, match="out=.*automatic "
                                               "differentiation"):
            f()
    with dtrain.no_grad():
        dtrain.add(a, 1, out=out)
    np.testing.assert_array_equal(np_of(out), [2.0, 3.0])
    dtrain.eq(a, 1, out=dtrain.empty(2, dtype=dtrain.bool))  # no gradient


# ---------------------------------------------------------------------------
# what must not record, and what must stay the same

def test_comparisons_record_nothing():
    a = dtrain.tensor([1.0, 2.0]).requires_grad_()
    for r in [a > 0, a == 1, a.le(a), dtrain.ne(a, 2), a < a * 2]:
        assert r.dtype == dtrain.bool
        assert not r.requires_grad and r.grad_fn is None
    with dtrain.no_grad():
        assert not (a * 2).requires_grad and not a.exp().requires_grad


def test_int_results_of_recording_ops_fail_cleanly():
    a = dtrain.tensor([1.0, 2.0]).requires_grad_()
    i = dtrain.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        i.mul_(a)
    assert not i.requires_grad
    np.testing.assert_array_equal(i.numpy(), [1, 2])


@pytest.mark.parametrize("dtype", [dtrain.float32, dtrain.float16,
                                   dtrain.bfloat16, F64])
def test_forward_identical_when_recording(dtype):
    rng = np.random.default_rng(3)
    a_np, b_np = rng.uniform(0.2, 2, (5, 7)), rng.uniform(0.2, 2, (7,))
    fns = [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a / b,
           lambda a, b: a ** b, lambda a, b: a.sub(b, alpha=2),
           lambda a, b: a.maximum(b), lambda a, b: a * 0.3,
           lambda a, b: dtrain.gelu(a), lambda a, b: a.exp(),
           lambda a, b: dtrain.gelu(a, approximate="tanh"),
           lambda a, b: a.sigmoid(), lambda a, b: a.tanh(),
           lambda a, b: a.relu(), lambda a, b: a.clamp(0.5, 1.5),
           lambda a, b: a ** 2.5, lambda a, b: 2 ** a,
           lambda a, b: dtrain.where(a > 1, a, b)]
    for f in fns:
        plain = f(dtrain.tensor(a_np, dtype=dtype),
                  dtrain.tensor(b_np, dtype=dtype))
        rec = f(dtrain.tensor(a_np, dtype=dtype).requires_grad_(),
                dtrain.tensor(b_np, dtype=dtype).requires_grad_())
        assert rec.requires_grad
        np.testing.assert_array_equal(np_of(rec), np_of(plain))


# ---------------------------------------------------------------------------
# half types, accumulation

HALF_OPS = [
    lambda a, b: a * b, lambda a, b: a + b, lambda a, b: a / b,
    lambda a, b: a.sub(b, alpha=2), lambda a, b: a ** b,
    lambda a, b: (a * 2.5).exp(), lambda a, b: a.relu() * b,
    lambda a, b: a.sigmoid(), lambda a, b: a.tanh(), lambda a, b: a.log(),
    lambda a, b: a.sqrt(), lambda a, b: a ** 2, lambda a, b: a.maximum(b),
    lambda a, b: a.clamp(0.5, 1.0), lambda a, b: a * 0.1,
    lambda a, b: dtrain.gelu(a) if isinstance(a, dtrain.Tensor)
    else torch.nn.functional.gelu(a),
    lambda a, b: a.sin() * b.cos(),
]


@needs_torch
@pytest.mark.parametrize("dtype", [dtrain.float16, dtrain.bfloat16])
@pytest.mark.parametrize("k", range(len(HALF_OPS)))
def test_half_gradients(dtype, k):
    """Gradients of half inputs have their dtype and match torch's (which
    also computes in float32 and rounds)."""
    fn = HALF_OPS[k]
    rng = np.random.default_rng(k)
    a_np, b_np = rng.uniform(0.3, 1.5, (4, 6)), rng.uniform(0.3, 1.5, (6,))
    u_np = rng.standard_normal((4, 6))
    a = dtrain.tensor(a_np, dtype=dtype).requires_grad_()
    b = dtrain.tensor(b_np, dtype=dtype).requires_grad_()
    td = torch_dtype(dtype)
    ta = torch.tensor(a_np, dtype=td, requires_grad=True)
    tb = torch.tensor(b_np, dtype=td, requires_grad=True)
    y, ty = fn(a, b), fn(ta, tb)
    y.backward(dtrain.tensor(u_np, dtype=dtype) if tuple(y.shape) ==
               (4, 6) else dtrain.tensor(u_np[0], dtype=dtype))
    ty.backward(torch.tensor(u_np if tuple(ty.shape) == (4, 6) else u_np[0],
                             dtype=td))
    tol = 1e-2 if dtype == dtrain.float16 else 6e-2
    for g, tg in [(a.grad, ta.grad), (b.grad, tb.grad)]:
        if tg is None:
            assert g is None
            continue
        assert g.dtype == dtype
        np.testing.assert_allclose(np_of(g), tnp(tg), rtol=tol, atol=tol)


def test_accumulates_across_backward_calls():
    a = dtrain.tensor([0.5, -1.0, 2.0], dtype=F64).requires_grad_()
    b = dtrain.tensor([2.0, 3.0, -1.0], dtype=F64).requires_grad_()
    u = dtrain.ones(3, dtype=F64)
    for _ in range(2):
        (a * b).backward(u)
    np.testing.assert_allclose(np_of(a.grad), 2 * np_of(b))
    np.testing.assert_allclose(np_of(b.grad), 2 * np_of(a))
    y = a.exp()
    y.backward(u, retain_graph=True)
    y.backward(u)
    np.testing.assert_allclose(np_of(a.grad), 2 * np_of(b) +
                               2 * np.exp(np_of(a)))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward(u)
    z = a + a       # both edges into one leaf
    z.backward(u)
    np.testing.assert_allclose(np_of(a.grad), 2 * np_of(b) + 2 +
                               2 * np.exp(np_of(a)))


def test_grad_fn_names():
    a = dtrain.tensor([1.0, 2.0]).requires_grad_()
    names = {"MulBackward0": a * 2, "AddBackward0": a + 1,
             "SubBackward0": a - 1, "DivBackward0": a / 2,
             "PowBackward0": a ** 2, "PowBackward1": a ** a,
             "PowBackward2": 2 ** a, "ExpBackward0": a.exp(),
             "GeluBackward0": dtrain.gelu(a), "ClampBackward1": a.clamp(0, 1),
             "WhereBackward0": dtrain.where(a > 1, a, 0.0),
             "MaximumBackward0": a.maximum(a), "NegBackward0": -a}
    for name, t in names.items():
        assert t.grad_fn.name() == name


def test_no_leaks():
    """Recording, backward and the refusals leave the core's live tensor
    counts flat."""
    import gc

    def once():
        a = dtrain.tensor([0.5, 1.5, 2.0]).requires_grad_()
        b = dtrain.tensor([[1.0], [2.0]]).requires_grad_()
        x = a * 1
        x.mul_(b[0]).div_(b[1]).pow_(2).clamp_(0, 5).relu_()
        y = (x.exp() + a.maximum(b) * dtrain.where(a > 1, a, b) -
             dtrain.gelu(a) / b + 2 ** a + a.clamp(b, b + 1) +
             a.sigmoid().tanh().log().abs().neg())
        y.backward(dtrain.ones(2, 3))
        for bad in [lambda: a.add_(1), lambda: dtrain.exp(a, out=x),
                    lambda: dtrain.tensor([1, 2, 3]).mul_(a)]:
            with pytest.raises(RuntimeError):
                bad()
        z = a.exp()
        z.add_(1)
        with pytest.raises(RuntimeError):
            z.backward(dtrain.ones(3))

    once()
    gc.collect()
    before = dtrain._C._live_counts()
    for _ in range(20):
        once()
    gc.collect()
    assert dtrain._C._live_counts() == before
