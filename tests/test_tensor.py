"""The tensor core: construction, dtypes, views, casts, the NumPy bridge."""
import gc
import itertools
import sys

import numpy as np
import pytest

import dtrain
from helpers import (ALL_DTYPES, NP_DTYPES, assert_close, make, needs_torch,
                     to_np, torch, torch_dtype)


# ---------------------------------------------------------------- creation

def test_tensor_infers_dtype_like_torch():
    assert dtrain.tensor([1, 2]).dtype == dtrain.int64
    assert dtrain.tensor([1.0, 2]).dtype == dtrain.float32
    assert dtrain.tensor([True, False]).dtype == dtrain.bool
    assert dtrain.tensor([True, 2]).dtype == dtrain.int64
    assert dtrain.tensor(3.5).ndim == 0
    assert dtrain.tensor([]).shape == (0,)
    assert dtrain.tensor([]).dtype == dtrain.float32
    assert dtrain.tensor([[], []]).dtype == dtrain.float32
    assert dtrain.tensor([[], []]).shape == (2, 0)
    assert dtrain.tensor(np.arange(3.0)).dtype == dtrain.float64
    assert dtrain.tensor(np.float32(2.5)).dtype == dtrain.float32
    assert dtrain.tensor([np.int64(3)]).dtype == dtrain.int64


def test_tensor_int64_is_exact():
    big = 2**62 + 1
    assert dtrain.tensor([big]).tolist() == [big]
    assert dtrain.tensor(big).item() == big


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_tensor_with_dtype_roundtrips(dtype):
    data = [[0, 1, 2], [3, 4, 5]]
    t = dtrain.tensor(data, dtype=dtype)
    assert t.dtype == dtype and t.shape == (2, 3)
    expect = np.array(data).astype(NP_DTYPES.get(dtype, np.float32))
    assert to_np(t).tolist() == expect.tolist()


@pytest.mark.parametrize("bad, exc", [
    ([[1, 2], [3]], ValueError),
    (["a"], TypeError),
    ([1, "a"], TypeError),
    ([[1], 2], ValueError),
    ({1: 2}, TypeError),
    ([1 + 2j], TypeError),
])
def test_tensor_bad_data_raises(bad, exc):
    with pytest.raises(exc, match="tensor"):
        dtrain.tensor(bad)


def test_tensor_bad_dtype_argument():
    with pytest.raises(TypeError, match="dtype"):
        dtrain.tensor([1], dtype="float32")


def test_too_many_dims():
    with pytest.raises(ValueError, match="8"):
        dtrain.tensor(np.zeros((1,) * 9))


# ---------------------------------------------------------------- attributes

def test_attributes():
    t = dtrain.tensor(np.zeros((2, 3, 4), np.float32))
    assert t.shape == (2, 3, 4) and t.size() == (2, 3, 4)
    assert t.size(-1) == 4 and t.dim() == 3 and t.ndim == 3
    assert t.numel() == 24 and len(t) == 2
    assert t.stride() == (12, 4, 1) and t.stride(0) == 12
    assert t.is_contiguous() and t.element_size() == 4
    assert str(t.device) == "cpu" and t.device == dtrain.device("cpu")
    assert t.shape.numel() == 24 and repr(t.shape) == "dtrain.Size([2, 3, 4])"
    with pytest.raises(IndexError, match="size"):
        t.size(3)
    with pytest.raises(TypeError):
        len(dtrain.tensor(1.0))


def test_item_and_python_numbers():
    assert dtrain.tensor(2.5).item() == 2.5
    assert dtrain.tensor([7]).item() == 7
    assert dtrain.tensor(True).item() is True
    assert float(dtrain.tensor(1.5)) == 1.5 and int(dtrain.tensor(3)) == 3
    assert [10, 20, 30][dtrain.tensor(1)] == 20  # __index__
    assert bool(dtrain.tensor([1]))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(dtrain.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="2 elements"):
        dtrain.tensor([1, 2]).item()
    with pytest.raises(TypeError):
        [1, 2][dtrain.tensor(1.0)]


def test_iteration_and_tolist():
    t = dtrain.tensor([[1, 2], [3, 4]])
    assert [r.tolist() for r in t] == [[1, 2], [3, 4]]
    assert t.tolist() == [[1, 2], [3, 4]]
    assert dtrain.tensor([True]).tolist() == [True]
    with pytest.raises(TypeError, match="0-d"):
        iter(dtrain.tensor(1))


# ---------------------------------------------------------------- views

def shares(a, b):
    """Whether two tensors view the same storage (writes show through)."""
    return a.numpy().base is not None and np.shares_memory(a.numpy(),
                                                           b.numpy())


VIEW_CASES = [
    ("view", lambda t: t.view(4, 6), lambda a: a.reshape(4, 6)),
    ("view-1", lambda t: t.view(-1), lambda a: a.reshape(-1)),
    ("reshape", lambda t: t.reshape(6, -1), lambda a: a.reshape(6, -1)),
    ("transpose", lambda t: t.transpose(0, 2), lambda a: a.swapaxes(0, 2)),
    ("permute", lambda t: t.permute(2, 0, 1), lambda a: a.transpose(2, 0, 1)),
    ("T", lambda t: t.T, lambda a: a.T),
    ("unsqueeze", lambda t: t.unsqueeze(1), lambda a: a[:, None]),
    ("unsqueeze-1", lambda t: t.unsqueeze(-1), lambda a: a[..., None]),
    ("narrow", lambda t: t.narrow(2, 1, 2), lambda a: a[:, :, 1:3]),
    ("select", lambda t: t.select(1, -1), lambda a: a[:, -1]),
    ("flatten", lambda t: t.flatten(1), lambda a: a.reshape(2, 12)),
    ("expand", lambda t: t.unsqueeze(0).expand(3, -1, -1, -1),
     lambda a: np.broadcast_to(a, (3,) + a.shape)),
]


@pytest.mark.parametrize("name, op, ref", VIEW_CASES,
                         ids=[c[0] for c in VIEW_CASES])
def test_views_share_memory_and_match_numpy(name, op, ref):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    t = dtrain.from_numpy(a)
    v = op(t)
    np.testing.assert_array_equal(to_np(v), ref(a))
    assert np.shares_memory(v.numpy(), a)


def test_squeeze():
    t = dtrain.tensor(np.zeros((1, 3, 1, 2)))
    assert t.squeeze().shape == (3, 2)
    assert t.squeeze(0).shape == (3, 1, 2)
    assert t.squeeze(1).shape == (1, 3, 1, 2)  # size 3: unchanged
    assert t.squeeze(-2).shape == (1, 3, 2)


def test_view_incompatible_strides_raises_reshape_copies():
    t = dtrain.tensor(np.arange(6.0).reshape(2, 3)).t()
    with pytest.raises(RuntimeError, match="reshape"):
        t.view(6)
    r = t.reshape(6)
    assert r.tolist() == [0, 3, 1, 4, 2, 5]
    assert r.is_contiguous()


def test_view_of_noncontiguous_when_possible():
    t = dtrain.tensor(np.arange(24.0).reshape(2, 3, 4)).transpose(0, 1)
    v = t.view(3, 2, 2, 2)  # splitting the last dim is always fine
    assert v.shape == (3, 2, 2, 2)
    np.testing.assert_array_equal(
        to_np(v), np.arange(24.0).reshape(2, 3, 4).swapaxes(0, 1)
        .reshape(3, 2, 2, 2))


@pytest.mark.parametrize("call, exc, msg", [
    (lambda t: t.view(5, 5), RuntimeError, "invalid for input"),
    (lambda t: t.view(-1, -1), RuntimeError, "one dimension"),
    (lambda t: t.transpose(0, 5), IndexError, "transpose"),
    (lambda t: t.permute(0, 1), RuntimeError, "permute"),
    (lambda t: t.permute(0, 0, 1), RuntimeError, "repeated"),
    (lambda t: t.unsqueeze(5), IndexError, "unsqueeze"),
    (lambda t: t.expand(3, 5, 4), RuntimeError, "expand"),
    (lambda t: t.narrow(0, 1, 5), IndexError, "narrow"),
    (lambda t: t.select(1, 3), IndexError, "out of bounds"),
    (lambda t: t.flatten(2, 1), RuntimeError, "flatten"),
    (lambda t: t.view(2, "a"), TypeError, "view"),
    (lambda t: t.as_strided((10, 10), (10, 1)), RuntimeError, "storage"),
])
def test_view_bad_input(call, exc, msg):
    t = dtrain.tensor(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(exc, match=msg):
        call(t)


# ---------------------------------------------------------------- copies, casts

@pytest.mark.parametrize("src, dst", list(itertools.product(ALL_DTYPES,
                                                            ALL_DTYPES)))
def test_cast_every_dtype_pair(src, dst):
    vals = [0, 1, 2, 5, 100, 127]
    if src.is_floating_point:
        vals += [0.5, 2.75, -0.0]
    if src.is_signed and src != dtrain.bool:
        vals += [-3]
    t = dtrain.tensor(vals, dtype=dtrain.float64).to(src)
    out = t.to(dst)
    assert out.dtype == dst
    ref = to_np(t)  # the source as NumPy sees it
    if dst == dtrain.bfloat16 or src == dtrain.bfloat16:
        expect = to_np(t).astype(np.float32)
        if dst == dtrain.bfloat16:
            got = to_np(out)
            np.testing.assert_allclose(got, expect.astype(np.float64),
                                       rtol=1 / 128)
            return
        expect = expect.astype(NP_DTYPES[dst])
    else:
        expect = ref.astype(NP_DTYPES[dst])
    np.testing.assert_array_equal(to_np(out), expect)


@needs_torch
def test_bfloat16_rounding_matches_torch():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(1000).astype(np.float32) * 100,
                        np.array([np.inf, -np.inf, 0.0, 1e-40, 3.0e38],
                                 np.float32)])
    ours = to_np(dtrain.tensor(x).bfloat16())
    theirs = torch.from_numpy(x).bfloat16().float().numpy()
    np.testing.assert_array_equal(ours, theirs)


@needs_torch
@pytest.mark.parametrize("dst", ALL_DTYPES)
def test_float_to_dtype_matches_torch(dst):
    x = np.array([0.0, 0.4, 0.6, 1.5, 2.5, -1.5, 255.0, 70000.0], np.float32)
    ours = to_np(dtrain.tensor(x).to(dst))
    theirs = torch.from_numpy(x).to(torch_dtype(dst))
    if dst == dtrain.bfloat16:
        theirs = theirs.float()
    if dst == dtrain.uint8:  # negative floats to uint8 are UB in C/C++
        keep = x >= 0
        ours, theirs = ours[keep], theirs.numpy()[keep]
    np.testing.assert_array_equal(ours, np.asarray(theirs))


def test_copy_broadcasts_and_casts():
    dst = dtrain.tensor(np.zeros((2, 3), np.float64))
    dst.copy_(dtrain.tensor([1, 2, 3], dtype=dtrain.int32))
    assert dst.tolist() == [[1, 2, 3], [1, 2, 3]]
    dst.copy_(2)
    assert dst.tolist() == [[2, 2, 2], [2, 2, 2]]
    with pytest.raises(RuntimeError, match="copy_"):
        dst.copy_(dtrain.tensor([1, 2]))


def test_copy_into_noncontiguous_view_writes_through():
    base = dtrain.tensor(np.zeros((3, 4), np.float32))
    base.t().copy_(dtrain.tensor(np.arange(12.0).reshape(4, 3)))
    np.testing.assert_array_equal(to_np(base), np.arange(12.0).reshape(4, 3).T)


def test_clone_contiguous_fill_zero():
    t = make((3, 5), noncontig=True)
    c = t.clone()
    assert c.is_contiguous() and not np.shares_memory(c.numpy(),
                                                      to_np(t))
    np.testing.assert_array_equal(to_np(c), to_np(t))
    assert t.contiguous().is_contiguous()
    x = dtrain.tensor(np.zeros(4, np.float32))
    assert x.contiguous().data_ptr() == x.data_ptr()  # no copy needed
    t.fill_(1.5)
    assert (to_np(t) == 1.5).all()
    t.zero_()
    assert (to_np(t) == 0).all()
    i = dtrain.tensor([1, 2, 3])
    i.fill_(2**62 + 3)
    assert i.tolist() == [2**62 + 3] * 3


def test_version_counter_bumps_on_writes():
    t = dtrain.tensor([1.0, 2.0])
    v0 = t._version
    t.fill_(3.0)
    t.view(2).zero_()
    assert t._version == v0 + 2


def test_to_signatures():
    t = dtrain.tensor([1.5])
    assert t.to(dtrain.float64).dtype == dtrain.float64
    assert t.to("cpu") is t
    assert t.to("cpu", dtrain.int32).dtype == dtrain.int32
    assert t.to(dtype=dtrain.float16).dtype == dtrain.float16
    assert t.to(dtrain.tensor([1])).dtype == dtrain.int64
    assert t.to(dtrain.float32, copy=True) is not t
    assert t.double().dtype == dtrain.float64 and t.long().dtype == dtrain.int64
    with pytest.raises(RuntimeError, match="CUDA"):
        t.to("cuda")
    with pytest.raises(RuntimeError, match="device"):
        t.to("tpu")


# ---------------------------------------------------------------- NumPy bridge

@pytest.mark.parametrize("np_dtype", [np.float32, np.float64, np.float16,
                                      np.int32, np.int64, np.uint8, np.bool_])
def test_from_numpy_shares_memory_both_ways(np_dtype):
    a = np.zeros((3, 4), dtype=np_dtype)
    t = dtrain.from_numpy(a)
    assert t.shape == (3, 4) and NP_DTYPES[t.dtype] == np_dtype
    t.fill_(1)
    assert (a == 1).all()
    a[1, 2] = 0
    assert t.tolist()[1][2] == 0
    n = t.numpy()
    assert np.shares_memory(n, a)


def test_from_numpy_strided_and_keeps_owner_alive():
    a = np.arange(20.0).reshape(4, 5)[:, ::2]
    t = dtrain.from_numpy(a)
    assert t.stride() == (5, 2)
    np.testing.assert_array_equal(to_np(t), a)
    del a
    gc.collect()
    assert t.tolist()[3] == [15.0, 17.0, 19.0]


def test_numpy_keeps_tensor_alive():
    t = dtrain.tensor([1.0, 2.0, 3.0])
    n = t.numpy()
    ref = sys.getrefcount(t)
    del t
    gc.collect()
    assert n.tolist() == [1.0, 2.0, 3.0] and ref >= 3


def test_np_asarray_and_buffer_protocol():
    t = dtrain.tensor(np.arange(6, dtype=np.int32).reshape(2, 3)).t()
    a = np.asarray(t)
    assert a.shape == (3, 2) and a.dtype == np.int32
    np.testing.assert_array_equal(a, np.arange(6).reshape(2, 3).T)
    m = memoryview(dtrain.tensor([1.0, 2.0]))
    assert m.format == "f" and m.tolist() == [1.0, 2.0]


@pytest.mark.parametrize("bad, exc, msg", [
    (np.zeros(3, np.complex64), TypeError, "from_numpy"),
    (np.zeros(3, np.int8), TypeError, "from_numpy"),
    (np.arange(5.0)[::-1], ValueError, "negative"),
    (np.zeros(3, ">f4"), TypeError, "byte order"),
    ([1, 2], TypeError, "ndarray"),
])
def test_from_numpy_bad_input(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        dtrain.from_numpy(bad)


def test_from_numpy_readonly_rejected():
    a = np.zeros(3)
    a.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        dtrain.from_numpy(a)
    assert dtrain.tensor(a).tolist() == [0.0, 0.0, 0.0]  # copying is fine


def test_bfloat16_has_no_numpy():
    t = dtrain.tensor([1.0]).bfloat16()
    with pytest.raises(TypeError, match="bfloat16"):
        t.numpy()
    with pytest.raises((TypeError, BufferError)):
        memoryview(t)


def test_pickle_roundtrip():
    import pickle
    for t in [dtrain.tensor([[1.5, 2]]), dtrain.tensor([1, 2]),
              dtrain.tensor([1.0]).bfloat16()]:
        u = pickle.loads(pickle.dumps(t))
        assert u.dtype == t.dtype and u.tolist() == t.tolist()


def test_dtype_objects():
    assert dtrain.float is dtrain.float32 and dtrain.long is dtrain.int64
    assert dtrain.float32.is_floating_point and not dtrain.int32.is_floating_point
    assert dtrain.float16.itemsize == 2 and repr(dtrain.int64) == "dtrain.int64"
    assert dtrain.get_default_dtype() is dtrain.float32


def test_device_objects():
    d = dtrain.device("cuda:1")
    assert d.type == "cuda" and d.index == 1 and str(d) == "cuda:1"
    assert dtrain.device("cpu") == "cpu"
    with pytest.raises(RuntimeError):
        dtrain.device("gpu")
