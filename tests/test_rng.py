"""The Philox4x32-10 RNG: known-answer vectors, the documented layout of a
draw (element i reads block offset + i / per_block), generators and their
state, and statistical sanity of rand/randn/randint/randperm/bernoulli."""
import math

import numpy as np
import pytest

import dtrain
from helpers import FLOAT_DTYPES, to_np

C = dtrain._C
MASK32 = 0xFFFFFFFF

# Random123 tests/kat_vectors, the three "philox4x32 10" lines:
# counter[4], key[2] -> result[4]
KAT = [
    ((0, 0, 0, 0), (0, 0),
     (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((MASK32,) * 4, (MASK32,) * 2,
     (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344),
     (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_philox_known_answers(ctr, key, expected):
    assert C._philox(ctr, key) == expected


def blocks(seed, first, n):
    """The words of blocks first .. first+n-1, shape (n, 4), via the KAT'd
    core: the reference for every layout test below."""
    key = (seed & MASK32, seed >> 32)
    return np.array([C._philox((b & MASK32, b >> 32, 0, 0), key)
                     for b in range(first, first + n)], dtype=np.uint64)


# ---------------------------------------------------------------------------
# layout: the numbers are a function of (seed, offset, index) only

def test_rand_float32_layout():
    g = dtrain.Generator().manual_seed(2024)
    x = dtrain.rand(37, generator=g).numpy()
    w = blocks(2024, 0, 10).reshape(-1)[:37]
    np.testing.assert_array_equal(x, (w >> 8).astype(np.float64) * 2.0**-24)
    assert g.get_offset() == 10


def test_rand_float64_layout():
    g = dtrain.Generator().manual_seed(7)
    x = dtrain.rand(9, dtype=dtrain.float64, generator=g).numpy()
    w = blocks(7, 0, 5)
    u64 = np.stack([w[:, 0] | w[:, 1] << np.uint64(32),
                    w[:, 2] | w[:, 3] << np.uint64(32)], 1).reshape(-1)[:9]
    np.testing.assert_array_equal(x, (u64 >> 11).astype(np.float64) * 2.0**-53)
    assert g.get_offset() == 5


def test_randn_float32_layout():
    seed = 12345
    g = dtrain.Generator().manual_seed(seed)
    n = 4096
    x = dtrain.randn(n, generator=g).numpy().astype(np.float64)
    w = blocks(seed, 0, n // 4)
    ref = np.empty(n)
    for k in (0, 2):
        u1 = ((w[:, k] >> 8) + 1).astype(np.float64) * 2.0**-24
        u2 = (w[:, k + 1] >> 8).astype(np.float64) * 2.0**-24
        r = np.sqrt(-2 * np.log(u1))
        ref[k::4] = r * np.cos(2 * np.pi * u2)
        ref[k + 1::4] = r * np.sin(2 * np.pi * u2)
    np.testing.assert_allclose(x, ref, rtol=2e-6, atol=1e-6)


def test_randint_layout():
    g = dtrain.Generator().manual_seed(99)
    x = dtrain.randint(-5, 1000, (7,), generator=g).tolist()
    w = blocks(99, 0, 4)
    u64 = [int(w[b, 2 * k]) | int(w[b, 2 * k + 1]) << 32
           for b in range(4) for k in range(2)][:7]
    assert x == [-5 + (u * 1005 >> 64) for u in u64]


def test_counter_property_split_draws():
    """rand(N) then rand(M) equals rand(N + M) when N fills whole blocks."""
    for n, m, dtype, per in ((8, 13, dtrain.float32, 4),
                             (4000, 1, dtrain.float32, 4),
                             (6, 7, dtrain.float64, 2),
                             (64, 100, dtrain.float16, 4)):
        for fn in (dtrain.rand, dtrain.randn):
            dtrain.manual_seed(5)
            a, b = fn(n, dtype=dtype), fn(m, dtype=dtype)
            dtrain.manual_seed(5)
            whole = to_np(fn(n + m, dtype=dtype))
            np.testing.assert_array_equal(to_np(a), whole[:n])
            np.testing.assert_array_equal(to_np(b), whole[n:])
    assert n % per == 0


def test_noncontiguous_output_follows_logical_order():
    g = dtrain.Generator()
    g.manual_seed(5)
    a = dtrain.empty(6, 4).uniform_(generator=g)
    g.manual_seed(5)
    b = dtrain.empty(4, 6).t().uniform_(generator=g)   # a transposed view
    assert not b.is_contiguous()
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    g.manual_seed(5)
    big = dtrain.zeros(6, 8)
    view = big.as_strided((6, 4), (8, 2))
    view.normal_(generator=g)
    g.manual_seed(5)
    np.testing.assert_array_equal(view.numpy(),
                                  dtrain.randn(6, 4, generator=g).numpy())
    assert (big.numpy()[:, 1::2] == 0).all()


def test_draws_are_independent_of_batching():
    """Sizes around the 16-block batch boundary give the same prefix."""
    dtrain.manual_seed(3)
    ref = dtrain.rand(1000).numpy()
    for n in (1, 3, 63, 64, 65, 127, 128, 129, 999):
        dtrain.manual_seed(3)
        np.testing.assert_array_equal(dtrain.rand(n).numpy(), ref[:n])
    dtrain.manual_seed(3)
    ref = dtrain.randint(0, 2 ** 40, (300,)).tolist()
    for n in (31, 32, 33):
        dtrain.manual_seed(3)
        assert dtrain.randint(0, 2 ** 40, (n,)).tolist() == ref[:n]


# ---------------------------------------------------------------------------
# generators and seeds

def test_same_seed_same_numbers_different_seed_differs():
    for fn in (lambda: dtrain.rand(50), lambda: dtrain.randn(3, 5),
               lambda: dtrain.randint(0, 100, (20,)),
               lambda: dtrain.randperm(30),
               lambda: dtrain.empty(40).bernoulli_(0.5),
               lambda: dtrain.rand(9, dtype=dtrain.float64)):
        dtrain.manual_seed(0)
        a = fn().tolist()
        b = fn().tolist()
        dtrain.manual_seed(0)
        assert fn().tolist() == a
        assert b != a
        dtrain.manual_seed(1)
        assert fn().tolist() != a


def test_default_seed_and_initial_seed():
    assert dtrain.Generator().initial_seed() == 67280421310721
    dtrain.manual_seed(42)
    assert dtrain.initial_seed() == 42
    dtrain.manual_seed(-1)       # wraps like torch
    assert dtrain.initial_seed() == 2 ** 64 - 1
    dtrain.rand(3)
    with pytest.raises(RuntimeError, match="seed"):
        dtrain.manual_seed(2 ** 64)
    with pytest.raises(RuntimeError, match="seed"):
        dtrain.manual_seed(-2 ** 63 - 1)
    s = dtrain.seed()
    assert isinstance(s, int) and dtrain.initial_seed() == s


def test_generator_kwarg_leaves_default_alone():
    dtrain.manual_seed(11)
    before = dtrain.default_generator.get_offset()
    g = dtrain.Generator().manual_seed(11)
    outs = [dtrain.rand(5, generator=g), dtrain.randn(5, generator=g),
            dtrain.randint(0, 9, (5,), generator=g),
            dtrain.randperm(5, generator=g),
            dtrain.empty(5).uniform_(1, 2, generator=g),
            dtrain.empty(5).normal_(0, 1, generator=g),
            dtrain.empty(5).bernoulli_(0.5, generator=g),
            dtrain.bernoulli(dtrain.full((5,), 0.5), generator=g),
            dtrain.normal(0.0, 1.0, (5,), generator=g)]
    assert dtrain.default_generator.get_offset() == before
    g.manual_seed(11)
    again = [dtrain.rand(5, generator=g), dtrain.randn(5, generator=g),
             dtrain.randint(0, 9, (5,), generator=g),
             dtrain.randperm(5, generator=g),
             dtrain.empty(5).uniform_(1, 2, generator=g),
             dtrain.empty(5).normal_(0, 1, generator=g),
             dtrain.empty(5).bernoulli_(0.5, generator=g),
             dtrain.bernoulli(dtrain.full((5,), 0.5), generator=g),
             dtrain.normal(0.0, 1.0, (5,), generator=g)]
    for a, b in zip(outs, again):
        assert a.tolist() == b.tolist()
    with pytest.raises(TypeError, match="generator"):
        dtrain.rand(2, generator=42)


def test_state_roundtrip():
    g = dtrain.Generator().manual_seed(123)
    dtrain.rand(10, generator=g)
    state = g.get_state()
    assert state.dtype == dtrain.uint8 and state.shape == (16,)
    a = dtrain.rand(10, generator=g).tolist()
    g.set_state(state)
    assert dtrain.rand(10, generator=g).tolist() == a
    g.manual_seed(0)
    g.set_state(bytes(state.tolist()))
    assert dtrain.rand(10, generator=g).tolist() == a
    assert g.initial_seed() == 123
    # the module-level functions act on the default generator
    dtrain.manual_seed(8)
    st = dtrain.get_rng_state()
    b = dtrain.randn(4).tolist()
    dtrain.set_rng_state(st)
    assert dtrain.randn(4).tolist() == b
    with pytest.raises(RuntimeError, match="state"):
        g.set_state(b"short")
    with pytest.raises(TypeError, match="uint8"):
        g.set_state(dtrain.zeros(16))
    g.set_offset(3)
    assert g.get_offset() == 3


def test_offset_advances_by_blocks():
    g = dtrain.Generator().manual_seed(1)
    dtrain.rand(10, generator=g)                       # 3 blocks of 4
    assert g.get_offset() == 3
    dtrain.rand(3, dtype=dtrain.float64, generator=g)  # 2 blocks of 2
    assert g.get_offset() == 5
    dtrain.randperm(7, generator=g)                    # 4 blocks
    assert g.get_offset() == 9
    dtrain.rand(0, generator=g)
    assert g.get_offset() == 9


# ---------------------------------------------------------------------------
# distributions

@pytest.mark.parametrize("dtype", [dtrain.float32, dtrain.float64])
def test_rand_moments(dtype):
    dtrain.manual_seed(0)
    x = dtrain.rand(1_000_000, dtype=dtype).numpy().astype(np.float64)
    assert x.min() >= 0.0 and x.max() < 1.0
    assert abs(x.mean() - 0.5) < 2e-3
    assert abs(x.var() - 1 / 12) < 1e-3
    hist = np.histogram(x, bins=10, range=(0, 1))[0]
    assert np.abs(hist / len(x) - 0.1).max() < 3e-3


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_rand_dtypes_stay_below_one(dtype):
    dtrain.manual_seed(0)
    x = to_np(dtrain.rand(100_000, dtype=dtype)).astype(np.float64)
    assert dtrain.rand(3, dtype=dtype).dtype == dtype
    assert x.min() >= 0.0 and x.max() < 1.0
    assert abs(x.mean() - 0.5) < 1e-2


@pytest.mark.parametrize("dtype", [dtrain.float32, dtrain.float64])
def test_randn_moments(dtype):
    dtrain.manual_seed(1)
    x = dtrain.randn(1_000_000, dtype=dtype).numpy().astype(np.float64)
    assert abs(x.mean()) < 5e-3
    assert abs(x.var() - 1.0) < 1e-2
    assert abs((x ** 3).mean()) < 2e-2                 # skew
    assert abs((x ** 4).mean() - 3.0) < 5e-2           # kurtosis
    # quantiles of N(0, 1)
    qs = [0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99]
    z = [-2.3263, -1.2816, -0.6745, 0.0, 0.6745, 1.2816, 2.3263]
    np.testing.assert_allclose(np.quantile(x, qs), z, atol=0.01)
    # pairs of neighbours are uncorrelated (Box-Muller's cos/sin halves)
    assert abs(np.corrcoef(x[0::2], x[1::2])[0, 1]) < 5e-3


@pytest.mark.parametrize("dtype", [dtrain.float16, dtrain.bfloat16])
def test_randn_half(dtype):
    dtrain.manual_seed(2)
    x = to_np(dtrain.randn(100_000, dtype=dtype)).astype(np.float64)
    assert abs(x.mean()) < 2e-2 and abs(x.std() - 1) < 2e-2


def test_uniform_normal_in_place():
    dtrain.manual_seed(3)
    t = dtrain.empty(200_000).uniform_(-2, 3)
    x = t.numpy()
    assert x.min() >= -2 and x.max() < 3 and abs(x.mean() - 0.5) < 2e-2
    t = dtrain.empty(200_000, dtype=dtrain.float64).uniform_(**{"from": 5},
                                                           to=6)
    assert 5 <= t.numpy().min() and t.numpy().max() < 6
    x = dtrain.empty(200_000).normal_(10, 0.5).numpy()
    assert abs(x.mean() - 10) < 1e-2 and abs(x.std() - 0.5) < 1e-2
    x = dtrain.normal(2.0, 3.0, (200_000,)).numpy()
    assert abs(x.mean() - 2) < 3e-2 and abs(x.std() - 3) < 3e-2
    assert dtrain.empty(4).normal_(1.0, 0.0).tolist() == [1.0] * 4
    t = dtrain.empty(3)
    assert t.uniform_() is t and t.normal_() is t and t.bernoulli_() is t


def test_randint_range_and_coverage():
    dtrain.manual_seed(4)
    x = dtrain.randint(0, 10, (100_000,))
    assert x.dtype == dtrain.int64
    counts = np.bincount(x.numpy(), minlength=10)
    assert counts.sum() == 100_000 and len(counts) == 10
    chi2 = ((counts - 10_000) ** 2 / 10_000).sum()
    assert chi2 < 40           # 9 dof; p ~ 1e-5
    x = dtrain.randint(-5, 5, (10_000,)).numpy()
    assert x.min() == -5 and x.max() == 4
    x = dtrain.randint(7, (1000,)).numpy()
    assert x.min() == 0 and x.max() == 6
    big = dtrain.randint(-2 ** 62, 2 ** 62, (1000,)).numpy()
    assert big.min() >= -2 ** 62 and big.max() < 2 ** 62
    assert big.min() < -2 ** 60 and big.max() > 2 ** 60
    full = dtrain.randint(-2 ** 63, 2 ** 63 - 1, (100,)).numpy()
    assert full.min() < 0 < full.max()
    assert dtrain.randint(3, 4, (5,)).tolist() == [3] * 5
    assert dtrain.randint(0, 10, size=(2, 3)).shape == (2, 3)
    assert dtrain.randint(low=2, high=4, size=(3,)).numpy().min() >= 2


@pytest.mark.parametrize("dtype,high", [
    (dtrain.int32, 1000), (dtrain.uint8, 256), (dtrain.bool, 2),
    (dtrain.float32, 100), (dtrain.float16, 2048), (dtrain.bfloat16, 256),
    (dtrain.float64, 2 ** 53)])
def test_randint_dtypes(dtype, high):
    dtrain.manual_seed(5)
    x = dtrain.randint(0, high, (5000,), dtype=dtype)
    assert x.dtype == dtype
    v = to_np(x).astype(np.float64)
    assert v.min() >= 0 and v.max() <= high - 1 and (v == np.round(v)).all()
    assert len(np.unique(v)) > 1


@pytest.mark.parametrize("n", [0, 1, 2, 10, 1000, 100_000])
def test_randperm_is_permutation(n):
    dtrain.manual_seed(n)
    p = dtrain.randperm(n)
    assert p.dtype == dtrain.int64 and p.shape == (n,)
    np.testing.assert_array_equal(np.sort(p.numpy()), np.arange(n))
    if n >= 10:
        assert (p.numpy() != np.arange(n)).any()


def test_randperm_uniform_and_dtypes():
    dtrain.manual_seed(6)
    seen = {}
    for _ in range(6000):
        key = tuple(dtrain.randperm(3).tolist())
        seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 6
    assert all(abs(c - 1000) < 150 for c in seen.values())
    for dtype in (dtrain.int32, dtrain.float32, dtrain.float64, dtrain.uint8,
                  dtrain.float16):
        p = dtrain.randperm(200, dtype=dtype)
        assert p.dtype == dtype
        np.testing.assert_array_equal(np.sort(to_np(p)), np.arange(200))
    assert dtrain.randperm(256, dtype=dtrain.uint8).shape == (256,)


def test_bernoulli():
    dtrain.manual_seed(7)
    x = dtrain.empty(200_000).bernoulli_(0.3).numpy()
    assert set(np.unique(x)) <= {0.0, 1.0} and abs(x.mean() - 0.3) < 5e-3
    assert dtrain.empty(10).bernoulli_(0.0).tolist() == [0.0] * 10
    assert dtrain.empty(10).bernoulli_(1.0).tolist() == [1.0] * 10
    for dtype in (dtrain.int64, dtrain.bool, dtrain.uint8, dtrain.float16,
                  dtrain.bfloat16):
        y = dtrain.empty(1000, dtype=dtype).bernoulli_(0.5)
        v = to_np(y).astype(np.float64)
        assert set(np.unique(v)) == {0.0, 1.0}
    p = dtrain.tensor([[0.0, 1.0, 0.25]] * 20000, dtype=dtrain.float64)
    y = dtrain.bernoulli(p)
    assert y.dtype == dtrain.float64 and y.shape == (20000, 3)
    m = y.numpy().mean(0)
    assert m[0] == 0 and m[1] == 1 and abs(m[2] - 0.25) < 2e-2
    # probabilities from a strided view; bernoulli_ with a tensor p
    q = dtrain.full((4, 6), 1.0).as_strided((4, 3), (6, 2))
    assert dtrain.bernoulli(q).tolist() == [[1.0] * 3] * 4
    t = dtrain.zeros(2, 3).bernoulli_(dtrain.tensor([1.0, 0.0, 1.0]))
    assert t.tolist() == [[1.0, 0.0, 1.0]] * 2
    assert dtrain.bernoulli(dtrain.zeros(3), p=1.0).tolist() == [1.0] * 3


# ---------------------------------------------------------------------------
# bad input

@pytest.mark.parametrize("call,exc,op", [
    (lambda: dtrain.rand(2, dtype=dtrain.int64), NotImplementedError, "rand"),
    (lambda: dtrain.randn(2, dtype=dtrain.bool), NotImplementedError,
     "randn"),
    (lambda: dtrain.empty(2, dtype=dtrain.int64).uniform_(),
     NotImplementedError, "uniform_"),
    (lambda: dtrain.empty(2, dtype=dtrain.int32).normal_(),
     NotImplementedError, "normal_"),
    (lambda: dtrain.empty(2).uniform_(2, 1), RuntimeError, "uniform_"),
    (lambda: dtrain.empty(2).uniform_(0, math.inf), RuntimeError,
     "uniform_"),
    (lambda: dtrain.empty(2).normal_(0, -1), RuntimeError, "normal_"),
    (lambda: dtrain.empty(2).bernoulli_(2), RuntimeError, "bernoulli_"),
    (lambda: dtrain.empty(2).bernoulli_(-0.1), RuntimeError, "bernoulli_"),
    (lambda: dtrain.bernoulli(dtrain.tensor([0.5, 2.0])), RuntimeError,
     "bernoulli"),
    (lambda: dtrain.bernoulli(dtrain.tensor([1, 0])), NotImplementedError,
     "bernoulli"),
    (lambda: dtrain.randperm(3, dtype=dtrain.bool), NotImplementedError,
     "randperm"),
    (lambda: dtrain.randperm(2050, dtype=dtrain.float16), RuntimeError,
     "randperm"),
    (lambda: dtrain.randint(0, 2050, (2,), dtype=dtrain.float16),
     RuntimeError, "randint"),
    (lambda: dtrain.randint(0, 3, (2,), dtype=dtrain.bool), RuntimeError,
     "randint"),
    (lambda: dtrain.randint((2,)), TypeError, "randint"),
    (lambda: dtrain.randint(1, 2, 3, (2,)), TypeError, "randint"),
    (lambda: dtrain.empty(2).uniform_(0, 1, bogus=1), TypeError,
     "uniform_"),
])
def test_bad_input(call, exc, op):
    with pytest.raises(exc, match=op):
        call()
