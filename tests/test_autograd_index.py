"""Gradients of indexing (t[key], t[key] = v, index_put_), masked_fill,
gather / scatter_add / index_select, and cat / stack / split / chunk /
unbind: check_grad against finite differences and torch, plus the
in-place and saved-tensor errors."""
import numpy as np
import pytest

import dtrain
from gradcheck import check_grad
from helpers import torch


def _idx(values, dtype=dtrain.int64):
    return dtrain.tensor(np.asarray(values), dtype=dtype)


def _mask(shape, seed=1):
    rng = np.random.default_rng(seed)
    return dtrain.tensor(rng.uniform(size=shape) > 0.5)


def _split_key(key):
    """check_grad hands index tensors to torch_fn as torch tensors: pass
    them as inputs. Returns (tensors, rebuild(tensors) -> key)."""
    items = key if isinstance(key, tuple) else (key,)
    tensors = [k for k in items if isinstance(k, dtrain.Tensor)]

    def rebuild(ts):
        it = iter(ts)
        out = tuple(next(it) if isinstance(k, dtrain.Tensor) else k
                    for k in items)
        return out if isinstance(key, tuple) else out[0]
    return tensors, rebuild


def _lib(x):
    return dtrain if isinstance(x, dtrain.Tensor) else torch


# ---------------------------------------------------------------------------
# t[key]

BASIC_KEYS = [
    1, -1, (1, 2), (-2, slice(None), 0),
    (slice(1, None), slice(None, None, 2)),
    (slice(None, None, 3), slice(1, 4, 2)),
    (slice(4, 2),),                                   # empty
    (None, 0, Ellipsis, None),
    (Ellipsis, 1), (Ellipsis,), (slice(None),), (None,),
    (1, None, slice(1, 3), None),
]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
def test_getitem_basic(key):
    check_grad(lambda x: x[key], [(4, 5, 3)])


@pytest.mark.parametrize("key", [(1, slice(None, None, 2)), (Ellipsis, 0)],
                         ids=repr)
def test_getitem_basic_noncontig(key):
    check_grad(lambda x: x[key], [(4, 5, 3)], noncontig=True)


def test_getitem_is_a_view_node():
    x = dtrain.randn(3, 4).requires_grad_()
    y = x[1:, ::2]
    assert y.grad_fn is not None and not y.is_leaf
    assert y.data_ptr() != 0
    z = x[...]
    assert z.grad_fn is not None
    with dtrain.no_grad():
        assert x[:].grad_fn is None


def test_getitem_zero_dim():
    check_grad(lambda x: x[None], [()])
    check_grad(lambda x: x[..., None, None], [()])
    check_grad(lambda x: x[True], [()])
    check_grad(lambda x: x[False], [(2,)])


def test_getitem_half_types_accumulate():
    for dtype in (dtrain.float16, dtrain.bfloat16, dtrain.float32):
        w = dtrain.zeros(3, 2, dtype=dtype).requires_grad_()
        w[_idx([2, 2, 0, 2])].backward(dtrain.ones(4, 2, dtype=dtype))
        assert w.grad.dtype == dtype
        np.testing.assert_array_equal(w.grad.float().numpy(),
                                      [[1, 1], [0, 0], [3, 3]])


def test_view_chain():
    check_grad(lambda x: x[1:, ::2][0], [(4, 6)])
    check_grad(lambda x: x[1][None][..., 2:][0, ::2], [(3, 7)])


ADVANCED = [
    ("dup", lambda: (_idx([0, 2, 0, 3, 0]),)),
    ("negative", lambda: (_idx([-1, 0, -4]),)),
    ("int32", lambda: (_idx([1, 1, 2], dtrain.int32),)),
    ("2d", lambda: (_idx([[0, 1], [1, 1]]),)),
    ("second_dim", lambda: (slice(None), _idx([4, 0, 4]))),
    ("two_broadcast", lambda: (_idx([[0], [3]]), _idx([1, 1, 2]))),
    ("separated", lambda: (_idx([0, 3, 3]), slice(None), _idx([2, 0, 2]))),
    ("int_and_index", lambda: (0, slice(None), _idx([1, 1]))),
    ("slice_and_index", lambda: (slice(1, None), _idx([0, 4, 0]))),
    ("mask_lead", lambda: (_mask((4,)),)),
    ("mask_full", lambda: (_mask((4, 5, 3)),)),
    ("mask_middle", lambda: (slice(None), _mask((5,)))),
    ("mask_and_index", lambda: (_mask((4,), 3), _idx([1, 2]))),
    ("list", lambda: ([2, 2, 0],)),
    ("bool_true", lambda: (True,)),
    ("ellipsis_index", lambda: (Ellipsis, _idx([2, 0, 2]))),
]


@pytest.mark.parametrize("name,make", ADVANCED, ids=[a[0] for a in ADVANCED])
def test_getitem_advanced(name, make):
    ts, rebuild = _split_key(make())
    check_grad(lambda x, *ix: x[rebuild(ix)], [(4, 5, 3)] + ts)


def test_getitem_advanced_noncontig():
    idx = _idx([3, 0, 3])
    check_grad(lambda x, i: x[:, i], [(4, 5), idx], noncontig=True)
    check_grad(lambda x, i: x[i], [(4, 5), idx], noncontig=True)
    check_grad(lambda x, i: x[1:, i], [(4, 5, 2), idx], noncontig=True)


def test_getitem_index_duplicates_accumulate():
    w = dtrain.zeros(3, 2).requires_grad_()
    idx = _idx([1, 1, 1, 0])
    w[idx].backward(dtrain.ones(4, 2))
    np.testing.assert_array_equal(w.grad.numpy(), [[1, 1], [3, 3], [0, 0]])


# ---------------------------------------------------------------------------
# t[key] = v

def _assigner(key):
    """(x, v, *index tensors) -> x.clone() with clone[key] = v."""
    _, rebuild = _split_key(key)

    def fn(x, v, *ix):
        y = x.clone()
        y[rebuild(ix)] = v
        return y
    return fn


def _assign_specs(key, shapes):
    return list(shapes) + _split_key(key)[0]


SETITEM = [
    ("int", 1, (5,)),
    ("int_broadcast", 1, ()),
    ("slice", (slice(1, 3),), (2, 5)),
    ("slice_broadcast", (slice(1, 3),), (5,)),
    ("slice_lead_ones", (slice(1, 3),), (1, 1, 5)),
    ("step", (slice(None), slice(None, None, 2)), (4, 3)),
    ("none_ellipsis", (None, Ellipsis, 2), (1, 4)),
    ("index", (_idx([0, 3]),), (2, 5)),
    ("index_broadcast", (_idx([3, 1]),), (5,)),
    ("index_scalar", (_idx([2, 0]), _idx([1, 4])), ()),
    ("mixed", (0, _idx([4, 1])), (2,)),
    ("slice_index", (slice(1, None), _idx([0, 2])), (3, 1)),
    ("mask", (_mask((4, 5)),), None),
    ("mask_rows", (_mask((4,), 5),), (5,)),
]


@pytest.mark.parametrize("name,key,vshape", SETITEM,
                         ids=[s[0] for s in SETITEM])
def test_setitem(name, key, vshape):
    if vshape is None:   # a mask: one value per selected element
        vshape = (int(key[0].numpy().sum()),)
    check_grad(_assigner(key), _assign_specs(key, [(4, 5), vshape]))


def test_setitem_noncontig():
    key = (slice(None), _idx([2, 0]))
    check_grad(_assigner(key), _assign_specs(key, [(4, 5), (4, 2)]),
               noncontig=True)
    key = (slice(1, None), 1)
    check_grad(_assigner(key), [(4, 5), (3,)], noncontig=True)


def test_setitem_python_scalar_and_mask_fill():
    def fill(x, m):
        y = x.clone()
        y[m] = 0.5
        y[1:3] = 2.0
        return y
    check_grad(fill, [(4, 5), _mask((4, 5))])


def test_setitem_scalar_tensor_through_mask():
    key = _mask((4, 5))
    check_grad(_assigner(key), _assign_specs(key, [(4, 5), ()]))


def test_setitem_from_own_view():
    """y[1:] = y[:-1]: the value is read before the write, and its
    gradient flows back into y's old history."""
    def fn(x):
        y = x.clone()
        # torch refuses the overlapping write: it gets a copy
        y[1:] = y[:-1] if isinstance(x, dtrain.Tensor) else y[:-1].clone()
        return y
    check_grad(fn, [(4, 3)])
    check_grad(fn, [(4, 3)], noncontig=True)


def test_setitem_zero_dim():
    check_grad(_assigner(Ellipsis), [(), ()])
    check_grad(_assigner(None), [(), (1,)])


def test_setitem_integer_target_has_no_gradient():
    v = dtrain.tensor(2.5).requires_grad_()
    t = dtrain.zeros(3, dtype=dtrain.int64)
    t[0] = v
    t[_idx([1])] = v
    t.masked_fill_(dtrain.tensor([False, False, True]), v)
    assert not t.requires_grad and t.tolist() == [2, 2, 2]


def test_setitem_into_plain_tensor():
    """A tensor without history gets one from a value requiring grad."""
    def fn(v):
        z = (dtrain.zeros if isinstance(v, dtrain.Tensor) else torch.zeros)(
            3, 4, dtype=v.dtype)
        z[1:, 2] = v
        return z
    check_grad(fn, [(2,)])


@pytest.mark.parametrize("accumulate", [True, False])
def test_index_put(accumulate):
    # duplicates only when accumulating: otherwise which write wins is
    # unspecified, and torch gives every duplicate the gradient
    idx = _idx([0, 2, 0] if accumulate else [0, 2, 3])

    def inplace(x, v, i):
        y = x.clone()
        y.index_put_((i,), v, accumulate=accumulate)
        return y
    check_grad(inplace, [(4, 3), (3, 3), idx])
    check_grad(lambda x, v, i: x.index_put((i,), v, accumulate=accumulate),
               [(4, 3), (3,), idx])


# ---------------------------------------------------------------------------
# masked_fill

def test_masked_fill():
    m = _mask((4, 5))
    check_grad(lambda x, m: x.masked_fill(m, 0.25), [(4, 5), m])
    check_grad(lambda x, v, m: x.masked_fill(m, v), [(4, 5), (), m])
    check_grad(lambda x, m: x.masked_fill(m, -1.0), [(4, 5), m],
               noncontig=True)


def test_masked_fill_broadcast():
    check_grad(lambda x, m: x.masked_fill(m, 3.0), [(1, 5), _mask((4, 5))])
    check_grad(lambda x, v, m: x.masked_fill(m, v),
               [(4, 5), (), _mask((5,), 4)])


def test_masked_fill_inplace():
    def fn(x, v, m):
        y = x.clone()
        y.masked_fill_(m, v)
        return y
    check_grad(fn, [(3, 4), (), _mask((3, 4))])
    check_grad(fn, [(3, 4), (), _mask((4,))], noncontig=True)
    check_grad(lambda x, m: _lib(x).masked_fill(x, m, 1.0),
               [(3, 4), _mask((3, 4))])


# ---------------------------------------------------------------------------
# gather, scatter_add, index_select

def _random_index(shape, high, seed=0):
    return _idx(np.random.default_rng(seed).integers(0, high, size=shape))


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_gather(dim):
    shape = (3, 4, 5)
    ishape = list(shape)
    ishape[dim] = 6   # more picks than the dim: duplicates
    idx = _random_index(tuple(ishape), shape[dim])
    check_grad(lambda x, i: x.gather(dim, i), [shape, idx])


def test_gather_small_index_and_noncontig():
    idx = _random_index((2, 2), 4)
    check_grad(lambda x, i: x.gather(1, i), [(3, 4), idx], noncontig=True)
    check_grad(lambda x, i: _lib(x).gather(x, 0, i),
               [(3, 4), _random_index((2, 4), 3)])
    check_grad(lambda x, i: x.gather(0, i), [(), _idx(0)])


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_add(dim):
    idx = _random_index((4, 3) if dim == 0 else (3, 5), 3 if dim == 0 else 4)
    check_grad(lambda x, s, i: x.scatter_add(dim, i, s),
               [(3, 4), tuple(idx.shape), idx])
    check_grad(lambda x, s, i: _lib(x).scatter_add(x, dim, i, s),
               [(3, 4), tuple(idx.shape), idx], noncontig=True)


def test_scatter_add_inplace():
    def fn(x, s, i):
        y = x.clone()
        y.scatter_add_(0, i, s)
        return y
    idx = _random_index((3, 4), 3, seed=2)
    check_grad(fn, [(3, 4), (3, 4), idx])
    check_grad(fn, [(3, 4), (3, 4), idx], noncontig=True)


def test_scatter_add_larger_src():
    """src larger than the index: its other elements get zero gradient."""
    idx = _idx([[0, 2], [1, 1]])
    x = dtrain.randn(3, 3).requires_grad_()
    s = dtrain.randn(3, 4).requires_grad_()
    x.scatter_add(1, idx, s).backward(dtrain.ones(3, 3))
    want = np.zeros((3, 4))
    want[:2, :2] = 1
    np.testing.assert_array_equal(s.grad.numpy(), want)
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((3, 3)))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(dim):
    check_grad(lambda x, i: x.index_select(dim, i),
               [(3, 4, 3), _idx([2, 0, 2, 2, 1])])


def test_index_select_variants():
    check_grad(lambda x, i: x.index_select(1, i),
               [(3, 4), _idx([1, 0, 1], dtrain.int32)], noncontig=True)
    check_grad(lambda x, i: x.index_select(0, i), [(4, 2), _idx(2)])
    check_grad(lambda x, i: _lib(x).index_select(x, 0, i), [(), _idx([0])])


# ---------------------------------------------------------------------------
# cat, stack, split, chunk, unbind

@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim):
    shapes = [(2, 3), (2, 3), (2, 3)]
    shapes = [tuple(s[d] + i if d == dim % 2 else s[d] for d in range(2))
              for i, s in enumerate(shapes)]
    check_grad(lambda a, b, c: _lib(a).cat([a, b, c], dim), shapes)


def test_cat_noncontig_and_skipped():
    check_grad(lambda a, b: _lib(a).cat([a, b], 1), [(3, 2), (3, 4)],
               noncontig=True)

    def fn(a, b):
        empty = _lib(a).zeros(0, dtype=a.dtype)
        return _lib(a).cat([a, empty, b])
    check_grad(fn, [(2, 3), (1, 3)])


def test_cat_mixed_dtypes():
    a = dtrain.randn(2, 3, dtype=dtrain.float32).requires_grad_()
    b = dtrain.randn(1, 3, dtype=dtrain.float64).requires_grad_()
    out = dtrain.cat([a, b])
    assert out.dtype == dtrain.float64
    g = np.arange(9.0).reshape(3, 3)
    out.backward(dtrain.tensor(g))
    assert a.grad.dtype == dtrain.float32 and b.grad.dtype == dtrain.float64
    np.testing.assert_array_equal(a.grad.numpy(), g[:2])
    np.testing.assert_array_equal(b.grad.numpy(), g[2:])


def test_cat_only_some_inputs_require_grad():
    a = dtrain.randn(2, 3).requires_grad_()
    b = dtrain.randn(2, 3)
    dtrain.cat([b, a], 1).backward(dtrain.ones(2, 6))
    assert b.grad is None
    np.testing.assert_array_equal(a.grad.numpy(), np.ones((2, 3)))


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim):
    check_grad(lambda a, b, c: _lib(a).stack([a, b, c], dim),
               [(2, 3), (2, 3), (2, 3)])


def test_stack_noncontig():
    check_grad(lambda a, b: _lib(a).stack([a, b], 1), [(3, 4), (3, 4)],
               noncontig=True)


def test_split_chunk_unbind():
    check_grad(lambda x: x.split(2, 1), [(3, 5)])
    check_grad(lambda x: x.split([1, 3, 1], 1), [(3, 5)])
    check_grad(lambda x: x.chunk(3, 0), [(7, 2)], noncontig=True)
    check_grad(lambda x: x.unbind(1), [(2, 3, 2)])
    check_grad(lambda x: _lib(x).split(x, 1, -1), [(2, 3)])
    check_grad(lambda x: _lib(x).unbind(x), [(3, 2)])


def test_split_some_outputs_unused():
    check_grad(lambda x: x.split(2)[1], [(5, 3)])
    check_grad(lambda x: (lambda p: (p[0], p[2]))(x.split([2, 1, 3])),
               [(6, 2)])
    check_grad(lambda x: x.unbind(0)[-1], [(3, 4)])
    check_grad(lambda x: x.chunk(2, 1)[0], [(2, 5)], noncontig=True)


def test_split_many_uneven_pieces():
    sizes = [1, 2] * 12   # more pieces than fit in a node's int args
    check_grad(lambda x: x.split(sizes)[3::5], [(36, 2)],
               check_float32=False)


def test_split_outputs_refuse_inplace():
    x = dtrain.randn(4, 2).requires_grad_()
    a, b = x.clone().split(2)
    with pytest.raises(RuntimeError, match="view"):
        a[0] = 1.0
    a, b = x.clone().unbind(1)
    with pytest.raises(RuntimeError, match="view"):
        b.masked_fill_(dtrain.tensor(True), 0.0)


# ---------------------------------------------------------------------------
# not differentiable

def test_integer_results_do_not_require_grad():
    x = dtrain.randn(3, 4).requires_grad_()
    assert not x.nonzero().requires_grad
    assert not dtrain.one_hot(_idx([0, 2])).requires_grad
    assert x[_idx([0])].requires_grad


def test_no_grad_records_nothing():
    x = dtrain.randn(3, 4).requires_grad_()
    with dtrain.no_grad():
        assert x[1:].grad_fn is None
        assert x[_idx([0, 1])].grad_fn is None
        assert dtrain.cat([x, x]).grad_fn is None
        assert all(p.grad_fn is None for p in x.split(1))


# ---------------------------------------------------------------------------
# errors

@pytest.mark.parametrize("write", [
    lambda x: x.__setitem__(0, 1),
    lambda x: x.__setitem__((slice(None), 1), 2.0),
    lambda x: x.__setitem__(_idx([0, 1]), 0.0),
    lambda x: x.__setitem__(x.detach() > 0, 0.0),
    lambda x: x.masked_fill_(x.detach() > 0, 0.0),
    lambda x: x.index_put_((_idx([0]),), dtrain.zeros(3)),
    lambda x: x.scatter_add_(0, _idx([[0, 1, 0]]), dtrain.ones(1, 3)),
], ids=["int", "slice", "index", "mask", "masked_fill_", "index_put_",
        "scatter_add_"])
def test_leaf_inplace_refused(write):
    x = dtrain.randn(2, 3).requires_grad_()
    before = x.detach().numpy().copy()
    with pytest.raises(RuntimeError, match="leaf Variable that requires "
                       "grad"):
        write(x)
    np.testing.assert_array_equal(x.detach().numpy(), before)


def test_leaf_without_grad_and_no_grad_mode_may_be_written():
    x = dtrain.randn(2, 3)
    v = dtrain.ones(3).requires_grad_()
    x[0] = v
    assert x.requires_grad and not x.is_leaf
    w = dtrain.randn(2, 3).requires_grad_()
    with dtrain.no_grad():
        w[0] = 1
    assert w.is_leaf and w.detach().numpy()[0].tolist() == [1, 1, 1]


def test_inplace_on_view_refused():
    y = dtrain.randn(3, 4).requires_grad_().clone()
    v = y[0]
    with pytest.raises(RuntimeError, match="view"):
        v[1] = 2.0


def test_modified_index_detected():
    x = dtrain.randn(3, 4).requires_grad_()
    idx = _idx([[0, 1, 2, 0]])
    out = x.gather(0, idx)
    idx.add_(0)
    with pytest.raises(RuntimeError, match="modified by an inplace"):
        out.backward(dtrain.ones(1, 4))


def test_modified_mask_detected():
    x = dtrain.randn(3).requires_grad_()
    m = dtrain.tensor([True, False, True])
    out = x[m]
    m.logical_not_() if hasattr(m, "logical_not_") else m.fill_(True)
    with pytest.raises(RuntimeError, match="modified by an inplace"):
        out.backward(dtrain.ones(2))


def test_cat_out_refused_with_grad():
    a = dtrain.randn(2).requires_grad_()
    out = dtrain.empty(4)
    with pytest.raises(RuntimeError, match="cat.*out="):
        dtrain.cat([a, a], out=out)
    with pytest.raises(RuntimeError, match="stack.*out="):
        dtrain.stack([a, a], out=dtrain.empty(2, 2))
