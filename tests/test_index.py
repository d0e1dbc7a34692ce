"""Indexing: t[key] and t[key] = v for every key kind, index_put_,
gather / scatter_add / index_select, masked_fill, nonzero and one_hot.
Compared with NumPy always and with torch when it is installed."""
import warnings

import numpy as np
import pytest

import dtrain
from helpers import (ALL_DTYPES, NP_DTYPES, assert_close, make, needs_torch,
                     to_np, to_torch, torch, torch_dtype)

SHAPE = (4, 5, 6)


def lib_key(key, lib):
    """A key written with NumPy arrays, made into `lib`'s index tensors
    (lib: dtrain, torch, or np)."""
    if isinstance(key, tuple):
        return tuple(lib_key(k, lib) for k in key)
    if isinstance(key, np.ndarray):
        if lib is np:
            return key
        return lib.tensor(key.tolist(), dtype=lib.bool if key.dtype == bool
                          else lib.int64)
    return key


# Keys on which PyTorch and NumPy agree.
COMMON_KEYS = [
    0, -1, 3, slice(None), slice(1, 3), slice(None, None, 2),
    slice(-3, None), slice(1, 100, 3), slice(5, 2), slice(-100, 2),
    (1, 2), (1, 2, 3), (-1, -2, -3), (slice(None), 1), (Ellipsis, 2),
    (1, Ellipsis), (1, Ellipsis, 2), (Ellipsis,), (), None, (None, 1),
    (slice(None), None, 2), (None, Ellipsis, None), (Ellipsis, None),
    (slice(1, 3), slice(None, None, 2), slice(4, None)),
    np.array([0, 2, 3]), np.array([-1, 0]), np.array([[0, 1], [3, 2]]),
    (np.array([0, 1]), np.array([1, 2])), (slice(None), np.array([4, 0])),
    (np.array([0, 1]), slice(None), np.array([1, 2])),
    (np.array([[0], [1]]), np.array([1, 2, 3])),
    (Ellipsis, np.array([5, 0, 5])),
    (slice(None), np.array([1, 2]), np.array([0, 5])),
    (None, np.array([1, 2]), Ellipsis), (np.array([], dtype=np.int64),),
    np.array([True, False, True, False]),
    (slice(None), np.array([False, True, True, False, True])),
    (Ellipsis, np.array([True] * 6)), np.zeros((4, 5), dtype=bool),
    (np.arange(120).reshape(SHAPE) % 3 == 0),
    (1, np.arange(30).reshape(5, 6) % 4 == 0),
    (np.arange(20).reshape(4, 5) % 7 == 0, np.array([2])),
    (slice(None), np.arange(30).reshape(5, 6) % 4 == 0),
]


def np_ref(a, key):
    return a[lib_key(key, np)]


@pytest.mark.parametrize("key", COMMON_KEYS, ids=repr)
@pytest.mark.parametrize("noncontig", [False, True])
def test_getitem_matches_numpy(key, noncontig):
    x = make(SHAPE, dtrain.float32, noncontig=noncontig)
    got = x[lib_key(key, dtrain)]
    assert_close(got, np_ref(to_np(x), key))


@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_getitem_dtypes(dtype):
    x = make(SHAPE, dtype, noncontig=True)
    a = to_np(x)
    for key in [(1, slice(None, None, 2)), np.array([3, 0]),
                (slice(None), np.array([1, 1]), 0), a[..., 0] > 0]:
        got = x[lib_key(key, dtrain)]
        assert got.dtype == dtype
        assert_close(got, a[lib_key(key, np)])


@needs_torch
@pytest.mark.parametrize("key", [
    # PyTorch-only rules: an int next to index tensors is a select, so
    # the index dims stay in place; Python bools add a dim
    (0, slice(None), [0, 1]), (slice(None), 0, [0, 1]), ([0, 1], 0, 2),
    (True,), (False,), (None, True, Ellipsis, False), (1, True),
    ([0, 2], slice(None), 1), (1, [1, 2], slice(None), None),
    ([0, 1], [True, False, False, True, False]), ([[0, 1]], slice(1, 3)),
    ([], slice(None), 0), ([0, 0, 0],), ([3, 0], Ellipsis, [0, 1]),
], ids=repr)
def test_getitem_matches_torch(key):
    x = make(SHAPE, dtrain.float64, noncontig=True)
    tk = tuple(torch.tensor(k, dtype=None if k else torch.int64)
               if isinstance(k, list) else k for k in key)
    dk = tuple(dtrain.tensor(k) if isinstance(k, list) and k else k
               for k in key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = to_torch(x)[tk]
    assert_close(x[dk], want)
    assert_close(x[key], want)   # lists are index tensors too


@needs_torch
def test_getitem_zero_dim_and_index_tensors():
    x = make(SHAPE, dtrain.float32)
    tx = to_torch(x)
    s = dtrain.tensor(2.5)
    assert_close(s[None], torch.tensor(2.5)[None])
    assert_close(s[...], torch.tensor(2.5)[...])
    assert_close(s[True], torch.tensor(2.5)[True])
    assert_close(s[dtrain.tensor(True)], torch.tensor(2.5)[torch.tensor(True)])
    # a 0-dim integer tensor selects (a view), as in torch
    i = dtrain.tensor(3)
    assert_close(x[i], tx[torch.tensor(3)])
    assert x[i].data_ptr() == x[3].data_ptr()
    assert_close(x[i, dtrain.tensor([1, 2])],
                 tx[torch.tensor(3), torch.tensor([1, 2])])
    # int32 and uint8 (mask) index tensors, NumPy arrays and scalars
    idx = dtrain.tensor([3, 1]).int()
    assert_close(x[idx], tx[torch.tensor([3, 1], dtype=torch.int32)])
    m = dtrain.tensor([1, 0, 0, 1]).byte()
    assert_close(x[m], tx[torch.tensor([True, False, False, True])])
    assert_close(x[np.array([2, 0])], tx[[2, 0]])
    assert_close(x[np.int64(2)], tx[2])


def test_getitem_zero_size():
    x = make((3, 0, 4))
    assert x[[0, 2]].shape == (2, 0, 4)
    assert x[:, [], 1].shape == (3, 0)
    assert x[1:1].shape == (0, 0, 4)
    y = make((3, 4))
    assert y[[]].shape == (0, 4)
    assert y[dtrain.tensor(np.zeros((3, 4), bool))].shape == (0,)
    assert y[:, 10:].shape == (3, 0)
    assert y[False].shape == (0, 3, 4)


# --------------------------------------------------------------------- views

BASIC_KEYS = [0, (1, slice(None, None, 2)), (Ellipsis, 3), (None, 2, None),
              (slice(1, 3), slice(None), -1), slice(None)]
ADVANCED_KEYS = [np.array([0, 1]), (slice(None), np.array([2, 2])),
                 np.array([True, False, True, False]), (True,)]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
def test_basic_indexing_returns_views(key):
    x = make(SHAPE, dtrain.float64, noncontig=True)
    a = to_np(x)
    v = x[key]
    v.fill_(7.0)
    a[key] = 7.0
    assert_close(x, a)   # the write went through to x
    # and v points into x's buffer (twice x's size: x is strided)
    lo = x.data_ptr()
    assert lo <= v.data_ptr() < lo + 2 * x.numel() * 8


@pytest.mark.parametrize("key", ADVANCED_KEYS, ids=repr)
def test_advanced_indexing_copies(key):
    x = make(SHAPE, dtrain.float64)
    before = to_np(x)
    r = x[lib_key(key, dtrain)]
    r.fill_(7.0)
    assert_close(x, before)   # x unchanged
    assert r.is_contiguous()


# ------------------------------------------------------------------- setitem

SET_KEYS = [0, -1, (1, 2), (slice(None), slice(1, None, 2)), (Ellipsis, 0),
            (None, 1), np.array([0, 3]), (slice(None), np.array([4, 0, 1])),
            (np.array([0, 1]), slice(None), np.array([1, 2])),
            np.array([True, False, True, True]),
            (1, np.arange(30).reshape(5, 6) % 4 == 0), (),
            (np.array([], dtype=np.int64),), slice(2, 2)]


@pytest.mark.parametrize("key", SET_KEYS, ids=repr)
@pytest.mark.parametrize("noncontig", [False, True])
def test_setitem_scalar(key, noncontig):
    x = make(SHAPE, dtrain.float32, noncontig=noncontig)
    a = to_np(x)
    v0 = x._version
    x[lib_key(key, dtrain)] = -2.5
    a[lib_key(key, np)] = -2.5
    assert_close(x, a)
    assert x._version > v0


@pytest.mark.parametrize("key", SET_KEYS, ids=repr)
def test_setitem_broadcast_tensor(key):
    x = make(SHAPE, dtrain.float64)
    a = to_np(x)
    target = a[lib_key(key, np)].shape
    # a value covering only the last dim (broadcast), with leading 1s
    val = np.arange(target[-1] if target else 1, dtype=np.float64) + 10
    vt = dtrain.tensor(val.reshape((1, 1) + val.shape))
    x[lib_key(key, dtrain)] = vt
    a[lib_key(key, np)] = val if target else val[0]
    assert_close(x, a)


@pytest.mark.parametrize("dtype,value,vdtype", [
    (dtrain.float32, 1.5, dtrain.float64), (dtrain.int64, 2.7, dtrain.float32),
    (dtrain.int32, -3, dtrain.int64), (dtrain.bool, 2, dtrain.int64),
    (dtrain.float16, 0.1, dtrain.float64), (dtrain.bfloat16, 3.0,
                                            dtrain.float32),
    (dtrain.uint8, 200, dtrain.int64), (dtrain.float64, True, dtrain.bool),
], ids=str)
def test_setitem_casts(dtype, value, vdtype):
    for key in [(1, slice(None)), np.array([0, 2])]:
        x = make((3, 4), dtype)
        a = to_np(x)
        np_dt = NP_DTYPES.get(dtype, np.float32)
        x[lib_key(key, dtrain)] = dtrain.tensor([value] * 4, dtype=vdtype)
        a[lib_key(key, np)] = np.asarray(value).astype(
            NP_DTYPES.get(vdtype, np.float32)).astype(np_dt)
        assert x.dtype == dtype
        assert_close(x, a, atol=1e-2 if dtype == dtrain.bfloat16 else None)
        x[lib_key(key, dtrain)] = value   # Python scalars too
        assert_close(x, a, atol=1e-2 if dtype == dtrain.bfloat16 else None)


def test_setitem_duplicates_last_wins():
    x = dtrain.tensor([0.0] * 5)
    x[[1, 3, 1, 1]] = dtrain.tensor([1.0, 2.0, 3.0, 4.0])
    assert x.tolist() == [0.0, 4.0, 0.0, 2.0, 0.0]
    y = dtrain.tensor(np.zeros((3, 4)))
    y[[0, 0, 0], [1, 1, 1]] = dtrain.tensor([1.0, 2.0, 3.0])
    assert y[0].tolist() == [0.0, 3.0, 0.0, 0.0]


def test_setitem_aliasing_value():
    a = np.arange(10.0)
    x = dtrain.tensor(a)
    x[1:] = x[:-1]
    a[1:] = a[:-1].copy()
    assert_close(x, a)
    x = dtrain.tensor(np.arange(10.0))
    x[[1, 2, 3]] = x[:3]
    assert x[:4].tolist() == [0.0, 0.0, 1.0, 2.0]


def test_setitem_index_aliasing_self():
    # the index is a view of the tensor being written
    x = dtrain.tensor([1, 0, 3, 2])
    x[x[:2]] = 7
    assert x.tolist() == [7, 7, 3, 2]
    y = dtrain.tensor([2, 0, 1])
    y.index_put_((y,), dtrain.tensor([5, 6, 7]), accumulate=True)
    assert y.tolist() == [8, 7, 6]   # read as a copy (torch refuses)


@needs_torch
@pytest.mark.parametrize("key", [(True,), (False,), (0, slice(None), [0, 1]),
                                 ([0, 1], 0, 2), (None, [3], Ellipsis, 5)],
                         ids=repr)
def test_setitem_matches_torch(key):
    x = make(SHAPE, dtrain.float32, noncontig=True)
    tx = to_torch(x)
    tk = tuple(torch.tensor(k) if isinstance(k, list) else k for k in key)
    x[key] = 9.0
    tx[tk] = 9.0
    assert_close(x, tx)


@pytest.mark.parametrize("dtype", [dtrain.float32, dtrain.int64,
                                   dtrain.bool, dtrain.float16], ids=str)
def test_setitem_mask_scalar(dtype):
    # t[mask] = scalar runs as masked_fill_; the general path is the check
    x = make(SHAPE, dtype, noncontig=True)
    a = to_np(x)
    m = np.random.default_rng(3).random(SHAPE[:2]) > 0.5
    for mask, value in [(dtrain.tensor(m), 1), (dtrain.tensor(m).byte(), 0),
                        (dtrain.tensor(m), dtrain.tensor([1.0])),
                        (dtrain.tensor(m[:, 0]), True)]:
        x[mask] = value
        a[mask.bool().numpy()] = np.asarray(value).astype(a.dtype)
        assert_close(x, a)
    with pytest.raises(IndexError, match="mask"):
        x[dtrain.tensor(m[:, :3])] = 1
    with pytest.raises(RuntimeError, match="memory location"):
        make((1, 4)).expand(3, 4)[dtrain.tensor([True] * 3)] = 1.0


def test_index_put_accumulate_rows():
    # embedding-backward shape: whole rows added at repeated indices
    w = make((10, 64), dtrain.float64)
    a = to_np(w)
    idx = np.array([3, 1, 3, 9, 3, -1])
    rows = make((6, 64), dtrain.float64, seed=2, noncontig=True)
    w.index_put_((dtrain.tensor(idx).int(),), rows, accumulate=True)
    np.add.at(a, idx, to_np(rows))
    assert_close(w, a)
    w[dtrain.tensor(idx)] = rows
    a[idx] = to_np(rows)   # NumPy keeps the last write too
    assert_close(w, a)


# ---------------------------------------------------------------- index_put_

@needs_torch
@pytest.mark.parametrize("accumulate", [False, True])
@pytest.mark.parametrize("dtype", [dtrain.float32, dtrain.float64,
                                   dtrain.int64, dtrain.int32,
                                   dtrain.float16, dtrain.bfloat16,
                                   dtrain.uint8, dtrain.bool], ids=str)
def test_index_put_(accumulate, dtype):
    x = make((5, 3), dtype, noncontig=True)
    tx = to_torch(x)
    i, j = [0, 4, 0, 2], [1, 1, 1, 0]
    v = make((4,), dtype, seed=3)
    x.index_put_((dtrain.tensor(i), dtrain.tensor(j)), v, accumulate)
    tx.index_put_((torch.tensor(i), torch.tensor(j)), to_torch(v),
                  accumulate=accumulate)
    if accumulate:
        assert_close(x, tx)
    else:
        assert_close(x[[4, 2]], tx[[4, 2]])   # the unduplicated slots
    out = x.index_put((dtrain.tensor([1]),), make((1, 3), dtype, seed=4),
                      accumulate=accumulate)
    assert out.shape == (5, 3) and out.data_ptr() != x.data_ptr()


def test_index_put_errors():
    x = make((3, 4))
    with pytest.raises(RuntimeError, match="dtypes match"):
        x.index_put_((dtrain.tensor([0]),), make((4,), dtrain.float64))
    with pytest.raises(RuntimeError, match="index_put_.*shape mismatch"):
        x.index_put_((dtrain.tensor([0, 1]),), make((3,)))
    with pytest.raises(IndexError, match="too many indices"):
        x.index_put_((dtrain.tensor([0]),) * 3, make((1,)))
    with pytest.raises(TypeError, match="index_put_"):
        x.index_put_(dtrain.tensor([0]), make((4,)))
    with pytest.raises(RuntimeError, match="memory location"):
        make((1, 4)).expand(3, 4).index_put_((dtrain.tensor([0]),),
                                              make((4,)))


# ------------------------------------------------------------------ bad keys

@pytest.mark.parametrize("key,exc,msg", [
    (5, IndexError, "index 5 is out of bounds for dimension 0 with size 4"),
    (-5, IndexError, "index -5 is out of bounds for dimension 0 with size 4"),
    ((0, 7), IndexError, "out of bounds for dimension 1 with size 5"),
    ((0, 0, 6), IndexError, "out of bounds for dimension 2 with size 6"),
    ((Ellipsis, -7), IndexError, "dimension 2 with size 6"),
    (2 ** 70, IndexError, "out of range"),
    (slice(None, None, -1), ValueError, "step must be greater than zero"),
    (slice(None, None, 0), ValueError, "slice step cannot be zero"),
    ((0, 0, 0, 0), IndexError, "too many indices for tensor of dimension 3"),
    ((Ellipsis, Ellipsis), IndexError, "single ellipsis"),
    ("a", IndexError, "valid indices"),
    (1.5, IndexError, "valid indices"),
    ({1: 2}, IndexError, "valid indices"),
    ([0.5], IndexError, "must be long, int, byte or bool"),
    ([0, 4], IndexError, "index 4 is out of bounds for dimension 0 with "
                         "size 4"),
    ((slice(None), [-6]), IndexError, "index -6 is out of bounds for "
                                      "dimension 1 with size 5"),
    (([0, 1], [0, 1, 2]), IndexError, "shape mismatch"),
    ([True, False], IndexError, r"mask \(2,\) at index 0 does not match"),
    ((slice(None), [True] * 4), IndexError, "mask.*at index 1"),
], ids=repr)
def test_bad_keys(key, exc, msg):
    x = make(SHAPE)
    with pytest.raises(exc, match=msg):
        x[key]
    with pytest.raises(exc, match=msg):
        x[key] = 1.0


def test_bad_key_tensors_and_values():
    x = make(SHAPE)
    with pytest.raises(IndexError, match="must be long, int, byte or bool"):
        x[make((2,))]
    with pytest.raises(IndexError, match="must be long, int, byte or bool"):
        x[dtrain.tensor(1.0)]
    with pytest.raises(IndexError, match="index 9 is out of bounds"):
        x[dtrain.tensor(9)]
    with pytest.raises(IndexError, match="invalid index of a 0-dim"):
        dtrain.tensor(1.0)[0]
    with pytest.raises(IndexError, match="too many indices"):
        dtrain.tensor(1.0)[:]
    with pytest.raises(RuntimeError, match="cannot be broadcast"):
        x[0] = make((4,))
    with pytest.raises(RuntimeError, match="shape mismatch"):
        x[[0, 1]] = make((3,))
    with pytest.raises(TypeError, match="__setitem__.*value"):
        x[0] = [1, 2]
    with pytest.raises(TypeError, match="deleting"):
        del x[0]
    with pytest.raises((IndexError, ValueError), match="dimensions"):
        x[(None,) * 9]
    with pytest.raises(RuntimeError, match="memory location"):
        make((1, 4)).expand(3, 4)[:, 1] = 0.0


# -------------------------------------------------------------------- gather

@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_matches_numpy(dtype, dim):
    x = make((4, 5, 3), dtype, noncontig=True)
    rng = np.random.default_rng(1)
    shape = list(x.shape)
    shape[dim] = 7
    idx = rng.integers(0, x.shape[dim], size=shape)
    got = x.gather(dim, dtrain.tensor(idx))
    assert got.dtype == dtype
    assert_close(got, np.take_along_axis(to_np(x), idx, axis=dim))
    assert_close(dtrain.gather(x, dim, dtrain.tensor(idx)), to_np(got))


@needs_torch
def test_gather_smaller_index_and_edge_shapes():
    x = make((4, 5), dtrain.float64)
    tx = to_torch(x)
    idx = np.array([[3, 0], [2, 2]])
    assert_close(x.gather(1, dtrain.tensor(idx)),
                 tx.gather(1, torch.from_numpy(idx)))
    assert_close(x.gather(dim=0, index=dtrain.tensor(idx)),
                 tx.gather(0, torch.from_numpy(idx)))
    e = np.zeros((0, 5), np.int64)
    assert x.gather(0, dtrain.tensor(e)).shape == (0, 5)
    s = dtrain.tensor(3.0)
    assert_close(s.gather(0, dtrain.tensor(0)),
                 torch.tensor(3.0).gather(0, torch.tensor(0)))
    assert_close(s.gather(0, dtrain.tensor([0, 0])),
                 torch.tensor(3.0).gather(0, torch.tensor([0, 0])))


def test_gather_errors():
    x = make((3, 4))
    with pytest.raises(RuntimeError, match="gather.*index 7 is out of bounds "
                       "for dimension 1 with size 4"):
        x.gather(1, dtrain.tensor([[7]]))
    with pytest.raises(RuntimeError, match="gather.*index -1 is out of"):
        x.gather(1, dtrain.tensor([[-1]]))
    with pytest.raises(RuntimeError, match="Index tensor must have the same "
                       "number of dimensions as input tensor"):
        x.gather(1, dtrain.tensor([1]))
    with pytest.raises(RuntimeError, match="gather.*int64"):
        x.gather(1, dtrain.tensor([[1]]).int())
    with pytest.raises(RuntimeError, match="gather.*no larger than self"):
        x.gather(1, dtrain.tensor([[0]] * 4))
    with pytest.raises(IndexError, match="gather.*Dimension out of range"):
        x.gather(2, dtrain.tensor([[0]]))
    with pytest.raises(TypeError):
        x.gather(0, [[0]])


# --------------------------------------------------------------- scatter_add

@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_add_matches_numpy(dtype, dim):
    x = make((4, 5, 3), dtype, noncontig=True)
    rng = np.random.default_rng(2)
    shape = [2, 3, 2]
    idx = rng.integers(0, x.shape[dim], size=shape)
    src = make((3, 4, 3), dtype, seed=5, noncontig=True)
    got = x.scatter_add(dim, dtrain.tensor(idx), src)
    # reference: np.add.at over the coordinates of idx
    ref = to_np(x).astype(np.float64)
    s = to_np(src).astype(np.float64)
    for pos in np.ndindex(*shape):
        tgt = list(pos)
        tgt[dim] = idx[pos]
        ref[tuple(tgt)] += s[pos]
    assert got.dtype == dtype
    if dtype == dtrain.bool:
        ref = ref != 0
    elif dtype == dtrain.uint8:
        ref = ref % 256
    assert_close(got, ref.astype(to_np(x).dtype), atol=3e-2 if dtype in
                 (dtrain.float16, dtrain.bfloat16) else None)
    v0 = x._version
    x.scatter_add_(dim, dtrain.tensor(idx), src)
    assert_close(x, to_np(got))
    assert x._version > v0


@needs_torch
def test_scatter_add_matches_torch():
    x = make((3, 5), dtrain.float32)
    idx = np.array([[0, 1, 2, 0, 0], [2, 0, 0, 1, 2]])
    src = make((2, 5), dtrain.float32, seed=9)
    want = to_torch(x).scatter_add(0, torch.from_numpy(idx), to_torch(src))
    assert_close(x.scatter_add(0, dtrain.tensor(idx), src), want)
    assert_close(dtrain.scatter_add(x, 0, dtrain.tensor(idx), src), want)
    # src and index that are views of the written tensor
    y = make((4, 4), dtrain.float64)
    ty = to_torch(y)
    y.scatter_add_(1, dtrain.tensor([[3, 2]] * 4), y[:, :2])
    ty.scatter_add_(1, torch.tensor([[3, 2]] * 4), ty[:, :2].clone())
    assert_close(y, ty)


def test_scatter_add_errors():
    x = make((3, 4))
    with pytest.raises(RuntimeError, match="scatter_add.*index 7 is out of "
                       "bounds for dimension 1 with size 4"):
        x.scatter_add(1, dtrain.tensor([[7]]), make((1, 1)))
    with pytest.raises(RuntimeError, match="self.dtype to be equal"):
        x.scatter_add(1, dtrain.tensor([[1]]), make((1, 1), dtrain.float64))
    with pytest.raises(RuntimeError, match="no larger size than src"):
        x.scatter_add(1, dtrain.tensor([[1, 2]]), make((1, 1)))
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        x.scatter_add(1, dtrain.tensor([1]), make((1,)))
    with pytest.raises(RuntimeError, match="memory location"):
        make((1, 4)).expand(3, 4).scatter_add_(0, dtrain.tensor([[0]]),
                                                make((1, 1)))


# -------------------------------------------------------------- index_select

@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("dim", [0, 1, 2, -2])
def test_index_select(dtype, dim):
    x = make((4, 5, 3), dtype, noncontig=True)
    idx = np.array([2, 0, 2, 1])
    for ix in (dtrain.tensor(idx), dtrain.tensor(idx).int()):
        got = x.index_select(dim, ix)
        assert_close(got, np.take(to_np(x), idx, axis=dim))
    assert x.index_select(dim, dtrain.tensor(np.zeros(0, np.int64))).shape[
        dim] == 0
    assert_close(dtrain.index_select(x, dim, dtrain.tensor(1)),
                 np.take(to_np(x), [1], axis=dim))


def test_index_select_errors():
    x = make((3, 4))
    with pytest.raises(IndexError, match="index_select.*index 3 is out of "
                       "bounds for dimension 0 with size 3"):
        x.index_select(0, dtrain.tensor([3]))
    with pytest.raises(IndexError, match="index_select.*-1"):
        x.index_select(1, dtrain.tensor([-1]))
    with pytest.raises(IndexError, match="supposed to be a vector"):
        x.index_select(0, dtrain.tensor([[0]]))
    with pytest.raises(RuntimeError, match="index_select.*int32 or int64"):
        x.index_select(0, dtrain.tensor([0.0]))


# --------------------------------------------------------------- masked_fill

@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_masked_fill(dtype):
    x = make((3, 4, 5), dtype, noncontig=True)
    mask = make((4, 1), dtrain.bool, seed=7)
    ref = np.where(to_np(mask), np.asarray(1).astype(to_np(x).dtype),
                   to_np(x))
    got = x.masked_fill(mask, 1)
    assert got.dtype == dtype
    assert_close(got, ref)
    assert_close(x.masked_fill(mask, dtrain.tensor(1.0)), ref)
    assert_close(dtrain.masked_fill(x, mask, True), ref)
    v0 = x._version
    assert x.masked_fill_(mask, 1) is x
    assert_close(x, ref)
    assert x._version > v0


@needs_torch
def test_masked_fill_broadcast_and_errors():
    x = make((3, 4))
    m = make((2, 1, 4), dtrain.bool, seed=1)
    want = to_torch(x).masked_fill(to_torch(m), -1.5)
    assert_close(x.masked_fill(m, -1.5), want)
    with pytest.raises(RuntimeError, match="cannot be broadcast"):
        x.masked_fill_(m, -1.5)
    with pytest.raises(RuntimeError, match="masked_fill.*boolean masks"):
        x.masked_fill(dtrain.tensor([1, 0, 1, 0]), 0.0)
    with pytest.raises(RuntimeError, match="0-dimensional value"):
        x.masked_fill(m, dtrain.tensor([1.0]))
    with pytest.raises(TypeError, match="masked_fill"):
        x.masked_fill(m, "a")
    # a mask that is the tensor being filled
    b = dtrain.tensor([True, False, True])
    b.masked_fill_(b, False)
    assert b.tolist() == [False, False, False]


# ---------------------------------------------------------- nonzero, one_hot

@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
def test_nonzero(dtype):
    x = make((3, 4, 2), dtype, low=-1, high=2, noncontig=True)
    assert_close(x.nonzero(), np.argwhere(to_np(x)))
    assert dtrain.nonzero(dtrain.tensor(0.0)).shape == (0, 0)
    assert dtrain.tensor([-0.0, 0.0]).nonzero().shape == (0, 1)


@needs_torch
@pytest.mark.parametrize("shape", [(5,), (2, 3), (0,), ()])
def test_one_hot(shape):
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 4, size=shape)
    for classes in (-1, 4, 6):
        if classes == -1 and idx.size == 0:
            continue
        got = dtrain.one_hot(dtrain.tensor(idx), classes)
        want = torch.nn.functional.one_hot(torch.from_numpy(idx), classes)
        assert_close(got, want)
        assert got.dtype == dtrain.int64
    rev = tuple(reversed(range(idx.ndim)))   # a strided input
    assert_close(dtrain._C.one_hot(dtrain.tensor(idx).permute(rev),
                                   num_classes=4),
                 torch.nn.functional.one_hot(
                     torch.from_numpy(idx).permute(rev), 4))


def test_one_hot_errors():
    with pytest.raises(RuntimeError, match="one_hot.*non-negative"):
        dtrain.one_hot(dtrain.tensor([1, -1]))
    with pytest.raises(RuntimeError, match="one_hot.*smaller than num_cl"):
        dtrain.one_hot(dtrain.tensor([1, 3]), 3)
    with pytest.raises(RuntimeError, match="one_hot.*empty tensor"):
        dtrain.one_hot(dtrain.tensor(np.zeros(0, np.int64)))
    with pytest.raises(RuntimeError, match="one_hot.*LongTensor"):
        dtrain.one_hot(dtrain.tensor([1]).int(), 3)
    with pytest.raises(RuntimeError, match="one_hot"):
        dtrain.one_hot(dtrain.tensor([1]), -2)


# ---------------------------------------------------------------------- fuzz

def rand_key(rng, shape):
    key = []
    for size in shape[:rng.integers(0, len(shape) + 1)]:
        kind = rng.integers(7)
        if kind == 0:
            key.append(int(rng.integers(-size - 1, size + 1)) if size else 0)
        elif kind == 1:
            lo, hi = sorted(int(v) for v in rng.integers(-size - 2, size + 2,
                                                         2))
            key.append(slice(lo, hi, int(rng.integers(1, 3))))
        elif kind == 2:
            key.append(None)
        elif kind == 3:
            seen = any(k is Ellipsis for k in key)
            key.append(slice(None) if seen else Ellipsis)
        elif kind == 4:
            key.append(rng.integers(-size - 1, size + 1,
                                    size=rng.integers(0, 4)))
        elif kind == 5:
            key.append(rng.random(size) > 0.5)
        else:
            key.append(bool(rng.integers(2)))
    return tuple(key)


@needs_torch
def test_fuzz_keys_against_torch():
    rng = np.random.default_rng(7)
    for _ in range(400):
        shape = tuple(int(s) for s in rng.integers(0, 4, rng.integers(0, 4)))
        x = make(shape, dtrain.float64, noncontig=bool(rng.integers(2)))
        key = rand_key(rng, shape)
        tk, dk = lib_key(key, torch), lib_key(key, dtrain)
        try:
            want = to_torch(x)[tk]
        except (IndexError, RuntimeError, ValueError):
            with pytest.raises((IndexError, RuntimeError, ValueError)):
                x[dk]
            continue
        assert_close(x[dk], want)
        tx = to_torch(x)
        tx[tk] = 5.0
        x[dk] = 5.0
        assert_close(x, tx)
