"""Joining and splitting: cat, stack, split, chunk, unbind, as functions
and Tensor methods. Compared with NumPy always and torch when installed."""
import numpy as np
import pytest

import dtrain
from helpers import (ALL_DTYPES, assert_close, make, needs_torch, to_np,
                     to_torch, torch, torch_dtype)


# ----------------------------------------------------------------------- cat

@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_cat_matches_numpy(dtype, dim):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    ts = []
    for i, s in enumerate(shapes):
        s = list(s)
        s[dim] = i + 1   # different sizes along dim, one of them 1
        ts.append(make(tuple(s), dtype, seed=i, noncontig=i == 1))
    got = dtrain.cat(ts, dim)
    assert got.dtype == dtype
    assert got.is_contiguous()
    assert_close(got, np.concatenate([to_np(t) for t in ts], axis=dim))
    assert_close(dtrain.cat(tuple(ts), dim=dim), to_np(got))


def test_cat_edge_shapes():
    a, b = make((2, 3)), make((0, 3))
    assert_close(dtrain.cat([a, b]), to_np(a))
    assert dtrain.cat([b, b]).shape == (0, 3)
    assert dtrain.cat([a]).data_ptr() != a.data_ptr()   # always a copy
    big = [make((1, 2), seed=i) for i in range(200)]
    assert_close(dtrain.cat(big), np.concatenate([to_np(t) for t in big]))
    # transposed and expanded inputs
    t = make((3, 4)).t()
    e = make((1, 3)).expand(4, 3)
    assert_close(dtrain.cat([t, e], 1),
                 np.concatenate([to_np(t), to_np(e)], 1))
    assert dtrain.concat is dtrain.cat and dtrain.concatenate is dtrain.cat


@pytest.mark.parametrize("dim", [0, 1, 2])
def test_cat_contiguous_and_strided_paths(dim):
    # contiguous inputs of one dtype take a slab-copy path; small pieces,
    # mixed dtypes and a strided out take the general one
    ts = [make((8, 16, 32), seed=i) for i in range(3)]
    want = np.concatenate([to_np(t) for t in ts], axis=dim)
    assert_close(dtrain.cat(ts, dim), want)
    mixed = ts[:2] + [ts[2].double()]
    assert_close(dtrain.cat(mixed, dim), want.astype(np.float64))
    shape = list(want.shape)
    big = dtrain.tensor(np.zeros(shape[:-1] + [shape[-1] * 2], np.float32))
    out = big.as_strided(tuple(shape), tuple(big.stride()[:-1]) + (2,))
    assert dtrain.cat(ts, dim, out=out) is out
    assert_close(out, want)
    small = [make((64, 3), seed=i) for i in range(3)]
    assert_close(dtrain.cat(small, 1),
                 np.concatenate([to_np(t) for t in small], 1))


def test_cat_skips_legacy_empty_1d():
    a = make((2, 3))
    e = dtrain.tensor(np.zeros(0, np.float32))
    assert_close(dtrain.cat([e, a, e], 1), to_np(a))
    assert dtrain.cat([e, e]).shape == (0,)
    # skipped tensors still promote, as in torch
    assert dtrain.cat([a, e.double()], 0).dtype == dtrain.float64


@needs_torch
@pytest.mark.parametrize("da,db", [
    (dtrain.int32, dtrain.bool), (dtrain.uint8, dtrain.int64),
    (dtrain.float16, dtrain.bfloat16), (dtrain.int64, dtrain.float16),
    (dtrain.float32, dtrain.float64), (dtrain.bool, dtrain.uint8),
], ids=str)
def test_cat_promotes_like_torch(da, db):
    a, b = make((2, 3), da), make((1, 3), db, seed=1)
    want = torch.cat([to_torch(a), to_torch(b)])
    assert_close(dtrain.cat([a, b]), want)
    assert_close(dtrain.stack([a[0], b[0]]), torch.stack([to_torch(a)[0],
                                                          to_torch(b)[0]]))


def test_cat_out():
    a, b = make((2, 3)), make((1, 3), seed=1)
    out = dtrain.tensor(np.zeros((3, 3), np.float64))
    r = dtrain.cat([a, b], out=out)
    assert r is out
    assert_close(out, np.concatenate([to_np(a), to_np(b)]).astype(np.float64))
    with pytest.raises(RuntimeError, match="cat.*doesn't match"):
        dtrain.cat([a, b], out=dtrain.tensor(np.zeros((2, 3))))
    with pytest.raises(RuntimeError, match="cat.*can't be cast"):
        dtrain.cat([a, b], out=dtrain.tensor(np.zeros((3, 3), np.int64)))


def test_cat_errors():
    a = make((2, 3))
    with pytest.raises(RuntimeError, match=r"cat\(\): Sizes of tensors must "
                       "match except in dimension 0. Expected size 3 but "
                       "got size 4 for tensor number 1 in the list"):
        dtrain.cat([a, make((2, 4))])
    with pytest.raises(RuntimeError, match="cat.*same number of dimensions: "
                       "got 2 and 3"):
        dtrain.cat([a, make((2, 3, 1))])
    with pytest.raises(RuntimeError, match="cat.*zero-dimensional tensor "
                       r"\(at position 1\)"):
        dtrain.cat([a, dtrain.tensor(1.0)])
    with pytest.raises(ValueError, match="cat.*non-empty list"):
        dtrain.cat([])
    with pytest.raises(IndexError, match="cat.*Dimension out of range"):
        dtrain.cat([a, a], 2)
    with pytest.raises(TypeError, match="cat.*element 1"):
        dtrain.cat([a, 1.0])
    with pytest.raises(TypeError, match="cat.*tuple of Tensors"):
        dtrain.cat(a)
    with pytest.raises(TypeError):
        dtrain.cat(None)


# --------------------------------------------------------------------- stack

@pytest.mark.parametrize("dtype", ALL_DTYPES, ids=str)
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
def test_stack(dtype, dim):
    ts = [make((2, 3), dtype, seed=i, noncontig=i % 2 == 1) for i in range(4)]
    got = dtrain.stack(ts, dim)
    assert got.dtype == dtype
    assert_close(got, np.stack([to_np(t) for t in ts], axis=dim))


def test_stack_edge_and_errors():
    s = [dtrain.tensor(float(i)) for i in range(3)]
    assert_close(dtrain.stack(s), np.arange(3.0, dtype=np.float32))
    z = [make((0, 2)), make((0, 2))]
    assert dtrain.stack(z, 1).shape == (0, 2, 2)
    e = dtrain.tensor(np.zeros(0, np.float32))
    assert dtrain.stack([e, e]).shape == (2, 0)   # not skipped here
    with pytest.raises(RuntimeError, match="stack expects each tensor to be "
                       r"equal size, but got \(2, 3\) at entry 0 and "
                       r"\(2, 4\) at entry 1"):
        dtrain.stack([make((2, 3)), make((2, 4))])
    with pytest.raises(RuntimeError, match="stack expects a non-empty"):
        dtrain.stack([])
    with pytest.raises(IndexError, match="stack.*Dimension out of range"):
        dtrain.stack([make((2, 3))], 3)
    with pytest.raises(ValueError, match="dimensions"):
        dtrain.stack([make((1,) * 8)])


# --------------------------------------------------------------------- split

def is_view_of(v, base):
    """v shares base's storage: writing through v shows up in base."""
    before = to_np(base)
    v.fill_(42)
    changed = not np.array_equal(to_np(base), before)
    return changed or v.numel() == 0


@pytest.mark.parametrize("dtype", [dtrain.float32, dtrain.int64,
                                   dtrain.bool, dtrain.bfloat16], ids=str)
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_split_int(dtype, dim, size):
    x = make((5, 6, 3), dtype, noncontig=True)
    a = to_np(x)
    parts = x.split(size, dim)
    assert isinstance(parts, tuple)
    n = a.shape[dim]
    cuts = list(range(size, n, size))
    want = np.split(a, cuts, axis=dim)
    assert len(parts) == len(want)
    for p, w in zip(parts, want):
        assert_close(p, w)
    assert all(is_view_of(p, x) for p in parts)


@pytest.mark.parametrize("sections", [[1, 4], [5], [0, 2, 3], (2, 0, 3)])
def test_split_sections(sections):
    x = make((5, 4))
    a = to_np(x)
    parts = dtrain.split(x, sections)
    want = np.split(a, np.cumsum(sections)[:-1], axis=0)
    assert [p.shape[0] for p in parts] == list(sections)
    for p, w in zip(parts, want):
        assert_close(p, w)
    parts = x.t().split(list(sections), dim=1)
    for p, w in zip(parts, want):
        assert_close(p, w.T)


@needs_torch
@pytest.mark.parametrize("n,size", [(0, 0), (0, 3), (4, 4), (4, 5), (9, 2)])
def test_split_counts_match_torch(n, size):
    x = make((n, 2))
    got = [tuple(p.shape) for p in x.split(size)]
    want = [tuple(p.shape) for p in torch.zeros(n, 2).split(size)]
    assert got == want


def test_split_errors():
    x = make((4, 3))
    with pytest.raises(RuntimeError, match="split_size can only be 0"):
        x.split(0)
    with pytest.raises(RuntimeError, match="split expects split_size be "
                       "non-negative"):
        x.split(-1)
    with pytest.raises(RuntimeError, match="split_with_sizes expects "
                       r"split_sizes to sum exactly to 4.*\[1, 2\]"):
        x.split([1, 2])
    with pytest.raises(RuntimeError, match="only non-negative entries"):
        x.split([5, -1])
    with pytest.raises(RuntimeError, match="split expects at least a "
                       "1-dimensional"):
        dtrain.tensor(1.0).split(1)
    with pytest.raises(IndexError, match="split.*Dimension out of range"):
        x.split(1, 2)
    with pytest.raises(TypeError, match="split"):
        x.split([1.5, 2.5])
    with pytest.raises(TypeError):
        x.split("a")


# --------------------------------------------------------------------- chunk

@needs_torch
@pytest.mark.parametrize("n", [0, 1, 5, 6, 7, 13])
@pytest.mark.parametrize("chunks", [1, 2, 3, 4, 6, 20])
def test_chunk_rule_matches_torch(n, chunks):
    x = make((3, n), dtrain.float64, noncontig=True)
    got = x.chunk(chunks, 1)
    want = to_torch(x).chunk(chunks, 1)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert_close(g, w)


def test_chunk_views_and_function():
    x = make((6, 4))
    parts = dtrain.chunk(x, 4, dim=0)
    assert [p.shape[0] for p in parts] == [2, 2, 2]   # ceil(6 / 4) = 2
    assert all(is_view_of(p, x) for p in parts)
    with pytest.raises(RuntimeError, match="chunk expects `chunks` to be "
                       "greater than 0"):
        x.chunk(0)
    with pytest.raises(RuntimeError, match="chunk expects at least a "
                       "1-dimensional"):
        dtrain.tensor(1.0).chunk(1)
    with pytest.raises(IndexError, match="chunk.*Dimension out of range"):
        x.chunk(2, -3)


# -------------------------------------------------------------------- unbind

@pytest.mark.parametrize("dim", [0, 1, -1])
def test_unbind(dim):
    x = make((3, 4, 2), dtrain.float32, noncontig=True)
    a = to_np(x)
    parts = x.unbind(dim)
    assert len(parts) == a.shape[dim]
    for i, p in enumerate(parts):
        assert_close(p, np.take(a, i, axis=dim))
    assert all(is_view_of(p, x) for p in dtrain.unbind(x, dim))
    assert make((0, 3)).unbind(0) == ()
    with pytest.raises(IndexError, match="unbind.*no dimensions"):
        dtrain.tensor(1.0).unbind()
    with pytest.raises(IndexError, match="unbind.*Dimension out of range"):
        x.unbind(3)


@needs_torch
def test_cat_of_split_roundtrip():
    x = make((7, 5), dtrain.float16, noncontig=True)
    for dim in (0, 1):
        back = dtrain.cat(x.split(2, dim), dim)
        assert_close(back, to_np(x))
        want = torch.cat(to_torch(x).split(2, dim), dim)
        assert_close(back, want)
        assert back.dtype == dtrain.float16
        assert str(want.dtype) == "torch." + str(back.dtype).split(".")[-1]
        assert torch_dtype(back.dtype) == want.dtype
