"""Autograd of the reductions and matrix products: gradients against finite
differences and torch (tests/gradcheck.py), PyTorch's subgradients at ties
and zeros, broadcast batch dims, and the saved-tensor checks."""
import math

import numpy as np
import pytest

import dtrain
from gradcheck import check_grad
from helpers import needs_torch, torch

INF = float("inf")


# ---------------------------------------------------------------------------
# sum, mean, var, std

DIMS = [None, 1, -1, (0, 2), (-1, 0), ()]


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("keepdim", [False, True])
def test_sum_mean(dim, keepdim):
    check_grad(lambda x: x.sum(dim, keepdim), [(2, 3, 4)])
    check_grad(lambda x: x.mean(dim, keepdim), [(2, 3, 4)], noncontig=True)


def test_sum_mean_variants():
    check_grad(lambda x: x.sum(), [(3, 4)], noncontig=True)
    check_grad(lambda x: x.mean(0), [(5,)])
    check_grad(lambda x: x.sum(), [()])
    check_grad(lambda x: x.mean(0, True), [()])
    check_grad(lambda x: dtrain.sum(x, (0, 1)), [(2, 3)],
               torch_fn=lambda x: torch.sum(x, (0, 1)))
    # sum(dtype=): the gradient comes back in the input's dtype
    x = dtrain.tensor(np.arange(6.0).reshape(2, 3),
                      dtype=dtrain.float32).requires_grad_()
    x.sum(1, dtype=dtrain.float64).sum().backward()
    assert x.grad.dtype == dtrain.float32
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((2, 3)))
    # integer results carry no history
    assert x.sum(dtype=dtrain.int64).grad_fn is None


def test_sum_gradient_is_materialised_in_leaf():
    x = dtrain.tensor(np.ones((3, 4))).requires_grad_()
    x.sum(0).sum().backward()
    assert x.grad.is_contiguous()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((3, 4)))


@pytest.mark.parametrize("op", ["mean", "sum"])
def test_expanded_gradients_accumulate(op):
    """sum/mean hand back stride-0 views; a second gradient into the same
    non-leaf must not be added into one in place."""
    x = dtrain.tensor(np.arange(12.0).reshape(3, 4)).requires_grad_()
    a = x.transpose(0, 1)
    y1 = getattr(a, op)(0).sum()
    y2 = a.sum(1).sum()
    dtrain.autograd.backward([y1, y2])
    want = 1.25 if op == "mean" else 2.0
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), want))


def test_empty_reductions():
    x = dtrain.zeros(0, 3).requires_grad_()
    x.sum().backward()
    assert tuple(x.grad.shape) == (0, 3)
    y = dtrain.zeros(2, 0).requires_grad_()
    y.mean(1).sum().backward()
    assert tuple(y.grad.shape) == (2, 0)


@pytest.mark.parametrize("op", ["var", "std"])
@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2)])
def test_var_std(op, dim):
    check_grad(lambda x: getattr(x, op)(dim), [(3, 2, 4)])
    check_grad(lambda x: getattr(x, op)(dim, keepdim=True, correction=0),
               [(3, 2, 4)], noncontig=True)
    check_grad(lambda x: getattr(x, op)(dim, correction=2), [(3, 2, 4)])


def test_var_std_unbiased_flag():
    check_grad(lambda x: x.var(1, False), [(3, 4)])
    check_grad(lambda x: x.std(0, unbiased=True, keepdim=True), [(3, 4)])


@needs_torch
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("fn", [
    lambda x: x.var(), lambda x: x.var(correction=2), lambda x: x.std(),
    lambda x: x.var(0, correction=2), lambda x: x.var(0, correction=3),
    lambda x: x.std(1), lambda x: x.std(0),
])
@pytest.mark.parametrize("data", [[[1.0, 2.0]], [[1.0, 1.0]], [[2.0]]])
def test_var_std_degenerate_match_torch(fn, data):
    _match_torch(fn, data)


# ---------------------------------------------------------------------------
# norm

@pytest.mark.parametrize("p", [2, "fro", 1, INF, -INF, 3, 0.5, 1.5, -1])
@pytest.mark.parametrize("dim", [None, 1, (0, 1)])
def test_norm(p, dim):
    if p == "fro" and dim == 1:
        return
    check_grad(lambda x: x.norm(p, dim), [(3, 4)], low=0.2, high=2.0)
    check_grad(lambda x: x.norm(p, dim, keepdim=True), [(3, 4)],
               noncontig=True)


def test_norm_dtype_and_function():
    check_grad(lambda x: dtrain.norm(x, 2, 1), [(3, 4)],
               torch_fn=lambda x: torch.norm(x, 2, 1))
    x = dtrain.tensor(np.array([3.0, 4.0]),
                      dtype=dtrain.float32).requires_grad_()
    x.norm(dtype=dtrain.float64).backward()
    assert x.grad.dtype == dtrain.float32
    np.testing.assert_allclose(x.grad.numpy(), [0.6, 0.8], rtol=1e-6)


# ---------------------------------------------------------------------------
# amax/amin, max/min

@pytest.mark.parametrize("dim", [None, 0, -1, (0, 2)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_amax_amin(dim, keepdim):
    d = () if dim is None else dim
    check_grad(lambda x: x.amax(d, keepdim), [(3, 2, 4)])
    check_grad(lambda x: x.amin(d, keepdim), [(3, 2, 4)], noncontig=True)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min(op):
    check_grad(lambda x: getattr(x, op)(), [(3, 4)])
    check_grad(lambda x: getattr(x, op)(1), [(3, 4)])
    check_grad(lambda x: getattr(x, op)(-1, keepdim=True), [(2, 3, 4)],
               noncontig=True)
    check_grad(lambda x: getattr(x, op)(0), [(3, 4)], noncontig=True)
    check_grad(lambda x: getattr(x, op)(0).values, [()])
    check_grad(lambda x: getattr(dtrain, op)(x, 1)[0], [(3, 4)],
               torch_fn=lambda x: getattr(torch, op)(x, 1)[0])


def test_indices_and_arg_ops_record_nothing():
    x = dtrain.tensor(np.random.rand(3, 4)).requires_grad_()
    v, i = x.max(1)
    assert v.grad_fn is not None and i.grad_fn is None
    assert not i.requires_grad
    assert x.argmax().grad_fn is None and x.argmin(1).grad_fn is None


def _grads(lib, fn, data, up=None):
    x = lib.tensor(data, dtype=lib.float64).requires_grad_()
    y = fn(x)
    y = y[0] if isinstance(y, tuple) else y
    y.backward(lib.ones_like(y) if up is None else lib.tensor(up))
    return None if x.grad is None else np.asarray(x.grad.tolist())


def _match_torch(fn, data):
    mine, ref = _grads(dtrain, fn, data), _grads(torch, fn, data)
    if ref is None:
        assert mine is None
    else:
        np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=0,
                                   equal_nan=True)


TIES = [[3.0, -1.0, 3.0, 0.5], [2.0, 2.0, 2.0, 2.0], [-4.0, 1.0, 4.0, -4.0]]


@needs_torch
@pytest.mark.parametrize("fn", [
    lambda x: x.amax(), lambda x: x.amin(), lambda x: x.amax(1),
    lambda x: x.amin(0), lambda x: x.amax((0, 1), keepdim=True),
    lambda x: x.max(), lambda x: x.min(), lambda x: x.max(1),
    lambda x: x.min(1, keepdim=True), lambda x: x.max(0),
    lambda x: x.norm(INF), lambda x: x.norm(-INF), lambda x: x.norm(INF, 1),
    lambda x: x.norm(-INF, 0, keepdim=True),
])
def test_ties_match_torch(fn):
    _match_torch(fn, TIES)


NAN = float("nan")


@needs_torch
@pytest.mark.parametrize("fn", [
    lambda x: x.amax(), lambda x: x.max(), lambda x: x.max(1),
    lambda x: x.amin(1), lambda x: x.norm(INF), lambda x: x.norm(2, 1),
])
def test_nan_match_torch(fn):
    _match_torch(fn, [[NAN, 1.0, NAN], [0.0, 2.0, 2.0]])


@needs_torch
@pytest.mark.parametrize("fn", [
    lambda x: x.norm(), lambda x: x.norm(2, 1), lambda x: x.norm(1),
    lambda x: x.norm(3), lambda x: x.norm(1.5, 1), lambda x: x.norm(0.5),
    lambda x: x.norm(-1, 1), lambda x: x.norm(0), lambda x: x.std(1),
    lambda x: x.norm(INF, 0),
])
@pytest.mark.parametrize("data", [[[0.0, 0.0, 0.0], [1.0, 0.0, -2.0]],
                                  [[0.0, 0.0], [0.0, 0.0]]])
def test_zeros_subgradients_match_torch(fn, data):
    _match_torch(fn, data)


def test_norm_conventions():
    z = dtrain.zeros(3, dtype=dtrain.float64).requires_grad_()
    z.norm().backward()
    np.testing.assert_array_equal(z.grad.numpy(), np.zeros(3))
    x = dtrain.tensor([1.0, -3.0, 3.0]).requires_grad_()
    x.norm(INF).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, -0.5, 0.5])
    y = dtrain.tensor([1.0, 2.0]).requires_grad_()
    y.norm(0).backward()
    assert y.grad is None        # PyTorch: no gradient for p = 0


def test_float_dtypes_of_reduction_grads():
    for dt in (dtrain.float16, dtrain.bfloat16, dtrain.float32):
        x = dtrain.tensor(np.array([[1.0, 4.0], [3.0, 2.0]]),
                          dtype=dt).requires_grad_()
        x.amax(1).sum().backward()
        assert x.grad.dtype == dt
        np.testing.assert_array_equal(x.grad.float().numpy(),
                                      [[0, 1], [1, 0]])
        x.grad = None
        x.var(0).sum().backward()
        np.testing.assert_allclose(x.grad.float().numpy(),
                                   [[-2.0, 2.0], [2.0, -2.0]], rtol=1e-2)


# ---------------------------------------------------------------------------
# matmul, mm, bmm, mv, dot

MATMUL_SHAPES = [
    ((3,), (3,)), ((2, 3), (3,)), ((3,), (3, 4)), ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)), ((3,), (5, 3, 4)), ((5, 2, 3), (3,)),
    ((5, 2, 3), (5, 3, 4)), ((2, 3), (5, 3, 4)), ((2, 1, 2, 3), (3, 3, 4)),
    ((1, 2, 3), (4, 3, 2)), ((3, 1, 2), (1, 2, 1)), ((2, 1, 1, 3), (3,)),
]


@pytest.mark.parametrize("sa,sb", MATMUL_SHAPES)
def test_matmul_shapes(sa, sb):
    check_grad(lambda a, b: a @ b, [sa, sb])
    check_grad(lambda a, b: a.matmul(b), [sa, sb], noncontig=True)


def test_transposed_operands_and_methods():
    check_grad(lambda a, b: a.transpose(0, 1) @ b, [(3, 2), (3, 4)],
               noncontig=True)
    check_grad(lambda a, b: a @ b.transpose(-1, -2), [(2, 2, 3), (4, 3)])
    check_grad(lambda a, b: a.mm(b), [(2, 3), (3, 4)], noncontig=True)
    check_grad(lambda a, b: a.bmm(b), [(2, 2, 3), (2, 3, 4)], noncontig=True)
    check_grad(lambda a, b: a.mv(b), [(2, 3), (3,)], noncontig=True)
    check_grad(lambda a, b: a.dot(b), [(4,), (4,)], noncontig=True)
    check_grad(lambda a, b: dtrain.matmul(a, b), [(2, 3), (3,)],
               torch_fn=torch.matmul if torch else None)


def test_one_operand_requires_grad():
    w = dtrain.tensor(np.random.default_rng(1).standard_normal((3, 4)))
    check_grad(lambda x: x @ w, [(5, 2, 3)], check_float32=False,
               torch_fn=lambda x: x @ torch.tensor(w.numpy()))
    x = dtrain.tensor(np.random.default_rng(2).standard_normal((2, 5, 3)))
    check_grad(lambda w: x @ w, [(3, 4)], check_float32=False,
               torch_fn=lambda w: torch.tensor(x.numpy()) @ w)


def test_expanded_gradient_into_matmul():
    """sum's stride-0 gradient reaches the GEMMs; also the batch fold."""
    check_grad(lambda a, b: (a @ b).sum(), [(4, 2, 3), (3, 5)])
    check_grad(lambda a, b: (a @ b).mean(0), [(4, 2, 3), (4, 3, 5)],
               noncontig=True)


def test_empty_matmul_grads():
    for sa, sb in [((0, 3), (3, 4)), ((2, 0), (0, 4)), ((2, 3), (3, 0)),
                   ((0, 2, 3), (3, 4))]:
        a = dtrain.ones(*sa).requires_grad_()
        b = dtrain.ones(*sb).requires_grad_()
        (a @ b).sum().backward()
        assert tuple(a.grad.shape) == sa and tuple(b.grad.shape) == sb
        # each gradient sums over the other product dim: all K or N ones
        np.testing.assert_array_equal(a.grad.numpy(), np.full(sa, sb[-1]))
        np.testing.assert_array_equal(
            b.grad.numpy(), np.full(sb, int(np.prod(sa[:-1]))))


@pytest.mark.parametrize("dt", ["float16", "bfloat16"])
@needs_torch
def test_half_matmul_grads(dt):
    rng = np.random.default_rng(0)
    an, bn = rng.standard_normal((3, 2, 4)), rng.standard_normal((4, 5))
    a = dtrain.tensor(an, dtype=getattr(dtrain, dt)).requires_grad_()
    b = dtrain.tensor(bn, dtype=getattr(dtrain, dt)).requires_grad_()
    (a @ b).sum().backward()
    assert a.grad.dtype == a.dtype and b.grad.dtype == b.dtype
    ta = torch.tensor(an, requires_grad=True)
    tb = torch.tensor(bn, requires_grad=True)
    (ta @ tb).sum().backward()
    tol = 1e-2 if dt == "float16" else 5e-2
    np.testing.assert_allclose(a.grad.float().numpy(), ta.grad.numpy(),
                               rtol=tol, atol=tol)
    np.testing.assert_allclose(b.grad.float().numpy(), tb.grad.numpy(),
                               rtol=tol, atol=tol)


@needs_torch
def test_float32_training_shapes_match_torch():
    rng = np.random.default_rng(3)
    xn = rng.standard_normal((64, 100)).astype(np.float32)
    wn = rng.standard_normal((100, 30)).astype(np.float32)
    x, w = dtrain.tensor(xn).requires_grad_(), dtrain.tensor(wn)
    w.requires_grad_()
    (x @ w).sum().backward()
    tx = torch.tensor(xn, requires_grad=True)
    tw = torch.tensor(wn, requires_grad=True)
    (tx @ tw).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5,
                               atol=1e-4)
    np.testing.assert_allclose(w.grad.numpy(), tw.grad.numpy(), rtol=1e-5,
                               atol=1e-4)


# ---------------------------------------------------------------------------
# saved tensors

def test_matmul_saved_input_modified():
    x = dtrain.ones(2, 3).requires_grad_()
    b = dtrain.ones(3, 4).requires_grad_()
    a = x * 1
    y = a @ b
    a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace"):
        y.sum().backward()


def test_only_needed_operands_are_saved():
    """A weight that needs no gradient may change after the product (the
    input's gradient uses the weight, not the input)."""
    x = dtrain.ones(2, 3).requires_grad_()
    w = dtrain.ones(3, 4)
    y = x @ w
    y.sum().backward()       # fine
    x2 = dtrain.ones(2, 3)
    y2 = x2 @ w.requires_grad_()
    x2.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace"):
        y2.sum().backward()


@pytest.mark.parametrize("fn", [
    lambda x: x.var(1), lambda x: x.norm(), lambda x: x.amax(0),
    lambda x: x.max(), lambda x: x.std(),
])
def test_reduction_saved_input_modified(fn):
    a = dtrain.tensor(np.random.rand(2, 3)).requires_grad_()
    y = fn(a)
    with dtrain.no_grad():
        a.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace"):
        y.sum().backward()


def test_backward_twice_fails():
    x = dtrain.tensor(np.random.rand(3)).requires_grad_()
    y = x.norm()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()
    w = dtrain.tensor(np.random.rand(3, 2)).requires_grad_()
    z = (x @ w).sum()
    z.backward(retain_graph=True)
    z.backward()
    np.testing.assert_allclose(w.grad.numpy(),
                               2 * np.outer(x.detach().numpy(), [1, 1]))


def test_no_grad_records_nothing():
    x = dtrain.tensor(np.random.rand(3, 2)).requires_grad_()
    with dtrain.no_grad():
        assert x.sum().grad_fn is None
        assert (x @ x.transpose(0, 1)).grad_fn is None
    assert x.sum().grad_fn.name() == "SumBackward0"
    assert (x @ x.transpose(0, 1)).grad_fn.name() == "MmBackward0"
    assert x.max(1).values.grad_fn.name() == "MaxBackward0"
    assert not math.isnan(float(x.std()))
