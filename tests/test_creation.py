"""Creation ops: empty/zeros/ones/full and their _like forms, arange,
linspace, eye, new_*; against NumPy and torch, plus bad input."""
import numpy as np
import pytest

import dtrain
from helpers import (ALL_DTYPES, FLOAT_DTYPES, NP_DTYPES, assert_close,
                     make, needs_torch, to_np, torch, torch_dtype)

SHAPES = [(), (0,), (3,), (2, 3), (0, 4), (2, 1, 3), (1, 1, 1, 1, 2)]


def np_dtype(d):
    return NP_DTYPES.get(d, np.float32)


# ---------------------------------------------------------------------------
# zeros / ones / full / empty

@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_zeros_ones(shape, dtype):
    for fn, npfn in ((dtrain.zeros, np.zeros), (dtrain.ones, np.ones)):
        t = fn(shape, dtype=dtype)
        assert t.dtype == dtype and tuple(t.shape) == shape
        assert t.is_contiguous()
        np.testing.assert_array_equal(to_np(t), npfn(shape, np_dtype(dtype)))


def test_size_spellings_and_defaults():
    for t in (dtrain.zeros(2, 3), dtrain.zeros((2, 3)), dtrain.zeros([2, 3]),
              dtrain.zeros(dtrain.Size([2, 3])), dtrain.ones(2, 3),
              dtrain.empty(2, 3), dtrain.empty((2, 3))):
        assert t.shape == (2, 3) and t.dtype == dtrain.float32
    assert dtrain.zeros(()).shape == () and dtrain.zeros([]).ndim == 0
    assert dtrain.zeros(()).item() == 0.0
    e = dtrain.empty(0, 3, dtype=dtrain.int64)
    assert e.shape == (0, 3) and e.dtype == dtrain.int64 and e.numel() == 0


def test_device_and_requires_grad_accepted():
    for dev in (None, "cpu", dtrain.device("cpu")):
        assert dtrain.zeros(2, device=dev).device == dtrain.device("cpu")
    assert dtrain.ones(2, requires_grad=True).shape == (2,)
    assert dtrain.full((2,), 1.0, requires_grad=False).shape == (2,)


@pytest.mark.parametrize("value,dtype", [
    (True, dtrain.bool), (False, dtrain.bool), (3, dtrain.int64),
    (-7, dtrain.int64), (1.5, dtrain.float32), (float("inf"), dtrain.float32),
])
def test_full_infers_dtype(value, dtype):
    t = dtrain.full((2, 3), value)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.full((2, 3), value))
    if torch is not None:
        assert str(torch.full((2, 3), value).dtype)[6:] == str(dtype)[7:]


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_full_explicit_dtype(dtype):
    t = dtrain.full([4], 1, dtype=dtype)
    assert t.dtype == dtype
    np.testing.assert_array_equal(to_np(t), np.ones(4, np_dtype(dtype)))
    t = dtrain.full((3, 2), 2.5, dtype=dtype)
    np.testing.assert_array_equal(
        to_np(t), np.full((3, 2), 2.5).astype(np_dtype(dtype)))


def test_full_exact_int64_and_tensor_fill():
    big = 2 ** 60 + 1
    assert dtrain.full((3,), big).tolist() == [big] * 3
    assert dtrain.full((2,), -big).tolist() == [-big] * 2
    t = dtrain.full((2,), dtrain.tensor(2.5, dtype=dtrain.float64))
    assert t.dtype == dtrain.float32 and t.tolist() == [2.5, 2.5]
    assert dtrain.full((2,), dtrain.tensor(3)).dtype == dtrain.int64
    assert dtrain.full((2,), np.float64(0.5)).tolist() == [0.5, 0.5]
    assert dtrain.full((2,), np.int32(4)).dtype == dtrain.int64


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_like_variants(dtype):
    x = make((3, 4), dtype, noncontig=True)
    for fn, val in ((dtrain.zeros_like, 0), (dtrain.ones_like, 1)):
        t = fn(x)
        assert t.dtype == dtype and t.shape == (3, 4) and t.is_contiguous()
        np.testing.assert_array_equal(to_np(t),
                                      np.full((3, 4), val, np_dtype(dtype)))
    assert dtrain.empty_like(x).shape == (3, 4)
    assert dtrain.full_like(x, 1).dtype == dtype
    assert dtrain.zeros_like(x, dtype=dtrain.float64).dtype == dtrain.float64
    assert dtrain.full_like(x, 2, dtype=dtrain.int32).tolist() == \
        [[2] * 4] * 3
    if dtype.is_floating_point:
        assert dtrain.rand_like(x).dtype == dtype
        assert dtrain.randn_like(x).shape == (3, 4)
    assert dtrain.randint_like(x, 2).dtype == dtype
    assert dtrain.randint_like(x, 1, 2).tolist() == [[1] * 4] * 3


def test_new_methods():
    x = dtrain.ones(2, dtype=dtrain.int32)
    assert x.new_zeros(3).dtype == dtrain.int32
    assert x.new_ones((2, 2)).tolist() == [[1, 1], [1, 1]]
    assert x.new_full((2,), 7).tolist() == [7, 7]
    assert x.new_empty(2, 3, dtype=dtrain.float64).dtype == dtrain.float64


# ---------------------------------------------------------------------------
# arange / linspace / eye

ARANGE_CASES = [
    ((5,), {}), ((0, 5), {}), ((1, 10, 3), {}), ((10, 0, -3), {}),
    ((0, 1, 0.1), {}), ((1, 2.5, 0.5), {}), ((-1.5, 1.5, 0.25), {}),
    ((0, -1, -0.3), {}), ((5.0,), {}), ((0, 10, 2.5), {}), ((3, 3), {}),
    ((3, 3, -1), {}), ((-7, 8, 4), {}), ((0, 1, 1 / 3), {}),
    ((0.5, 3.7, 1), {"dtype": dtrain.int64}),
    ((10,), {"dtype": dtrain.float64}),
    ((10,), {"dtype": dtrain.float16}), ((10,), {"dtype": dtrain.bfloat16}),
    ((200, 255), {"dtype": dtrain.uint8}), ((-5, 5), {"dtype": dtrain.int32}),
    ((2 ** 40, 2 ** 40 + 5), {}), ((2 ** 62, 2 ** 62 - 10, -3), {}),
    ((0, 1000.5, 0.5), {}),
]


@needs_torch
@pytest.mark.parametrize("args,kw", ARANGE_CASES)
def test_arange_vs_torch(args, kw):
    t = dtrain.arange(*args, **kw)
    tkw = {"dtype": torch_dtype(kw["dtype"])} if kw else {}
    ref = torch.arange(*args, **tkw)
    assert t.shape == tuple(ref.shape)
    assert str(t.dtype)[7:] == str(ref.dtype)[6:]
    if t.dtype == dtrain.int64:
        assert t.tolist() == ref.tolist()       # exact past 2**53
    else:
        assert_close(t, ref, rtol=0, atol=0)


def test_arange_numpy_and_dtypes():
    assert dtrain.arange(5).dtype == dtrain.int64
    assert dtrain.arange(5.0).dtype == dtrain.float32
    assert dtrain.arange(0, 5, 1.0).dtype == dtrain.float32
    assert dtrain.arange(dtrain.tensor(4)).tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(dtrain.arange(-2, 2, 0.5).numpy(),
                               np.arange(-2, 2, 0.5, dtype=np.float32))
    assert dtrain.arange(0).shape == (0,)
    # a strided out= goes through the same counter: check via a view
    assert dtrain.arange(6, dtype=dtrain.float64).tolist() == \
        [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


LINSPACE_CASES = [
    (0, 1, 5, None), (0, 10, 5, dtrain.int64), (3, 3, 1, None),
    (0, 1, 0, None), (-1, 1, 7, None), (0, 1, 2, None), (1, 0, 11, None),
    (0, 1, 10, dtrain.float64), (0, 1, 9, dtrain.float16),
    (0, 1e6, 1001, None), (-5, 5, 4, dtrain.int32), (2.5, -2.5, 3, None),
    (0, 1, 100, dtrain.bfloat16),
]


@needs_torch
@pytest.mark.parametrize("start,end,steps,dtype", LINSPACE_CASES)
def test_linspace_vs_torch(start, end, steps, dtype):
    t = dtrain.linspace(start, end, steps, dtype=dtype)
    ref = torch.linspace(start, end, steps,
                         dtype=torch_dtype(dtype) if dtype else None)
    # torch computes in the output type (float32, even bfloat16), dtrain
    # in double and rounds once
    if dtype in (dtrain.float16, dtrain.bfloat16):
        assert_close(t, ref)
    else:
        assert_close(t, ref, rtol=1e-6, atol=1e-6)
    if steps:
        assert to_np(t)[0] == ref[0].item() and to_np(t)[-1] == ref[-1].item()


def test_linspace_numpy():
    np.testing.assert_allclose(dtrain.linspace(-3, 7, 11).numpy(),
                               np.linspace(-3, 7, 11, dtype=np.float32))
    assert dtrain.linspace(0, 1, 5).dtype == dtrain.float32
    with pytest.raises(TypeError, match="linspace"):
        dtrain.linspace(0, 1, 2.5)


@pytest.mark.parametrize("n,m", [(3, None), (2, 3), (3, 2), (0, None),
                                 (1, 1), (4, 0)])
@pytest.mark.parametrize("dtype", [dtrain.float32, dtrain.int64, dtrain.bool,
                                   dtrain.float16, dtrain.bfloat16])
def test_eye(n, m, dtype):
    t = dtrain.eye(n, m, dtype=dtype)
    ref = np.eye(n, m).astype(np_dtype(dtype))
    assert t.dtype == dtype
    np.testing.assert_array_equal(to_np(t), ref)
    if torch is not None:
        assert_close(t, torch.eye(n, n if m is None else m,
                                  dtype=torch_dtype(dtype)))


# ---------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("call,op", [
    (lambda: dtrain.zeros(-1), "zeros"),
    (lambda: dtrain.ones(2, -3), "ones"),
    (lambda: dtrain.empty((-1,)), "empty"),
    (lambda: dtrain.full((2, -1), 1.0), "full"),
    (lambda: dtrain.rand(-2), "rand"),
    (lambda: dtrain.randn(3, -2), "randn"),
    (lambda: dtrain.randint(0, 3, (-1,)), "randint"),
    (lambda: dtrain.arange(0, 3, 0), "arange"),
    (lambda: dtrain.arange(0, 3.0, 0.0), "arange"),
    (lambda: dtrain.arange(0, 3, -1), "arange"),
    (lambda: dtrain.arange(3.0, 0, 1), "arange"),
    (lambda: dtrain.arange(0, float("inf")), "arange"),
    (lambda: dtrain.linspace(0, 1, -1), "linspace"),
    (lambda: dtrain.eye(-1), "eye"),
    (lambda: dtrain.eye(2, -1), "eye"),
    (lambda: dtrain.randint(3, 3, (2,)), "randint"),
    (lambda: dtrain.randint(5, 2, (2,)), "randint"),
    (lambda: dtrain.randint(0, 300, (2,), dtype=dtrain.uint8), "randint"),
    (lambda: dtrain.randint(-1, 2, (2,), dtype=dtrain.uint8), "randint"),
    (lambda: dtrain.randperm(-1), "randperm"),
    (lambda: dtrain.randperm(300, dtype=dtrain.uint8), "randperm"),
])
def test_runtime_errors_name_the_op(call, op):
    with pytest.raises(RuntimeError, match=op):
        call()


@pytest.mark.parametrize("call,op", [
    (lambda: dtrain.zeros(2.5), "zeros"),
    (lambda: dtrain.zeros((2, "a")), "zeros"),
    (lambda: dtrain.ones(None), "ones"),
    (lambda: dtrain.full((2,), "a"), "full"),
    (lambda: dtrain.full((2,), None), "full"),
    (lambda: dtrain.zeros(), "zeros"),
    (lambda: dtrain.rand(), "rand"),
])
def test_type_errors_name_the_op(call, op):
    with pytest.raises(TypeError, match=op):
        call()


def test_not_implemented_dtypes():
    for call in (lambda: dtrain.arange(2, dtype=dtrain.bool),
                 lambda: dtrain.arange(0.0, 2.0, dtype=dtrain.bool),
                 lambda: dtrain.linspace(0, 1, 3, dtype=dtrain.bool)):
        with pytest.raises(NotImplementedError, match="bool"):
            call()


def test_bad_dtype_and_device():
    with pytest.raises(TypeError, match="dtype"):
        dtrain.zeros(2, dtype="float32")
    with pytest.raises(TypeError, match="dtype"):
        dtrain.arange(3, dtype=np.float32)
    for fn in (lambda d: dtrain.zeros(2, device=d),
               lambda d: dtrain.full((2,), 1, device=d),
               lambda d: dtrain.arange(3, device=d),
               lambda d: dtrain.rand(2, device=d),
               lambda d: dtrain.randperm(3, device=d),
               lambda d: dtrain.eye(2, device=d)):
        with pytest.raises(RuntimeError, match="without CUDA"):
            fn("cuda")
        with pytest.raises(RuntimeError, match="without CUDA"):
            fn(dtrain.device("cuda", 0))
    with pytest.raises(RuntimeError):
        dtrain.zeros(2, device="tpu")


def test_too_many_dims_and_huge_sizes():
    with pytest.raises(ValueError, match="zeros"):
        dtrain.zeros(*([1] * 9))
    with pytest.raises(MemoryError):
        dtrain.empty(2 ** 40, 2 ** 20)
    with pytest.raises((RuntimeError, MemoryError)):
        dtrain.arange(0, 2 ** 62)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_full_inf_nan(dtype):
    t = dtrain.full((3,), float("nan"), dtype=dtype)
    assert np.isnan(to_np(t)).all()
    t = dtrain.full((3,), float("-inf"), dtype=dtype)
    assert (to_np(t) == -np.inf).all()
