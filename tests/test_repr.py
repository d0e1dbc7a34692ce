"""Tensor printing: string for string against torch's repr (with "torch."
read as "dtrain."), plus hand-written expectations that hold without
torch."""
import contextlib
import re

import numpy as np
import pytest

import dtrain
from helpers import needs_torch, torch

INF, NAN = float("inf"), float("nan")


def same_as_torch(tt, dt):
    """"dtrain." is one character longer than "torch.", which can push a
    dtype suffix across the 80-column limit on one side only; the suffix
    wrapping itself is checked by test_suffix_wraps."""
    def norm(s):
        return re.sub(r",\n +dtype=", ", dtype=", s)
    expected = repr(tt).replace("torch.", "dtrain.")
    assert norm(repr(dt)) == norm(expected)


@contextlib.contextmanager
def both_printoptions(**kw):
    dtrain.set_printoptions(**kw)
    torch.set_printoptions(**kw)
    try:
        yield
    finally:
        dtrain.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")


# ---------------------------------------------------------------------------
# without torch

@pytest.mark.parametrize("data,kw,expected", [
    ([1., 2., 3.], {}, "tensor([1., 2., 3.])"),
    ([1.5, 2.25], {}, "tensor([1.5000, 2.2500])"),
    ([1e-5, 1e3], {}, "tensor([1.0000e-05, 1.0000e+03])"),
    ([1, 2], {}, "tensor([1, 2])"),
    ([-10, 2], {}, "tensor([-10,   2])"),
    ([True, False], {}, "tensor([ True, False])"),
    (3., {}, "tensor(3.)"),
    (3, {}, "tensor(3)"),
    (2.5, {"dtype": dtrain.float64}, "tensor(2.5000, dtype=dtrain.float64)"),
    ([[1., 2.], [3., 4.]], {}, "tensor([[1., 2.],\n        [3., 4.]])"),
    ([NAN, INF, -INF, 1.5], {}, "tensor([   nan,    inf,   -inf, 1.5000])"),
    ([NAN, 1.], {}, "tensor([nan, 1.])"),
    ([0., 0.], {}, "tensor([0., 0.])"),
    ([0., -0.], {}, "tensor([0., -0.])"),
    ([1, 2], {"dtype": dtrain.int32}, "tensor([1, 2], dtype=dtrain.int32)"),
    ([1, 2], {"dtype": dtrain.uint8}, "tensor([1, 2], dtype=dtrain.uint8)"),
    ([0.5], {"dtype": dtrain.float16},
     "tensor([0.5000], dtype=dtrain.float16)"),
    ([1e10, 1.], {}, "tensor([1.0000e+10, 1.0000e+00])"),
    ([[[1, 2]], [[3, 4]]], {}, "tensor([[[1, 2]],\n\n        [[3, 4]]])"),
])
def test_repr_literal(data, kw, expected):
    assert repr(dtrain.tensor(data, **kw)) == expected
    assert str(dtrain.tensor(data, **kw)) == expected


def test_repr_empty():
    assert repr(dtrain.zeros(0)) == "tensor([])"
    assert repr(dtrain.zeros(0, 3)) == "tensor([], size=(0, 3))"
    assert repr(dtrain.zeros(0, dtype=dtrain.int64)) == \
        "tensor([], dtype=dtrain.int64)"
    assert repr(dtrain.zeros(2, 0, dtype=dtrain.bool)) == \
        "tensor([], size=(2, 0), dtype=dtrain.bool)"


def test_summarised():
    assert repr(dtrain.arange(2000)) == \
        "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])"
    assert repr(dtrain.arange(1000)).count("...") == 0
    assert repr(dtrain.arange(1001)).count("...") == 1
    s = repr(dtrain.arange(1000.0, 4000.0).reshape(30, 100))
    assert s == ("tensor([[1000., 1001., 1002.,  ..., 1097., 1098., 1099.],\n"
                 "        [1100., 1101., 1102.,  ..., 1197., 1198., 1199.],\n"
                 "        [1200., 1201., 1202.,  ..., 1297., 1298., 1299.],\n"
                 "        ...,\n"
                 "        [3700., 3701., 3702.,  ..., 3797., 3798., 3799.],\n"
                 "        [3800., 3801., 3802.,  ..., 3897., 3898., 3899.],\n"
                 "        [3900., 3901., 3902.,  ..., 3997., 3998., 3999.]])")
    # magnitudes spanning more than 1000x switch to scientific notation
    assert repr(dtrain.arange(1.0, 3001.0)).startswith(
        "tensor([1.0000e+00, 2.0000e+00, 3.0000e+00,  ..., 2.9980e+03")


def test_line_wrapping():
    s = repr(dtrain.arange(30))
    assert s == ("tensor([ 0,  1,  2,  3,  4,  5,  6,  7,  8,  9, 10, 11, 12, "
                 "13, 14, 15, 16, 17,\n        18, 19, 20, 21, 22, 23, 24, "
                 "25, 26, 27, 28, 29])")
    assert all(len(line) <= 80 for line in s.split("\n"))


def test_suffix_wraps():
    t = dtrain.tensor([i + 0.5 for i in range(9)], dtype=dtrain.float64)
    s = repr(t)
    assert s == ("tensor([0.5000, 1.5000, 2.5000, 3.5000, 4.5000, 5.5000, "
                 "6.5000, 7.5000, 8.5000],\n       dtype=dtrain.float64)")


def test_noncontiguous_and_views():
    t = dtrain.tensor([[1, 2, 3], [4, 5, 6]]).t()
    assert repr(t) == "tensor([[1, 4],\n        [2, 5],\n        [3, 6]])"
    assert repr(t.select(0, 1)) == "tensor([2, 5])"


def test_printoptions():
    try:
        dtrain.set_printoptions(precision=2)
        assert repr(dtrain.tensor([1.12345])) == "tensor([1.12])"
        dtrain.set_printoptions(threshold=5)
        assert repr(dtrain.arange(10)) == \
            "tensor([0, 1, 2,  ..., 7, 8, 9])"
        dtrain.set_printoptions(sci_mode=True)
        assert repr(dtrain.tensor([1.5])) == "tensor([1.50e+00])"
    finally:
        dtrain.set_printoptions(profile="default")
    assert repr(dtrain.tensor([1.12345])) == "tensor([1.1235])"


# ---------------------------------------------------------------------------
# against torch

CASES = [
    [1., 2., 3.], [1.5, 2.25], [1e-5, 1e3], [1, 2], [True, False], 3., 3,
    True, 2.5, -0.0, [[1., 2.], [3., 4.]], [NAN, INF, -INF, 1.5], [NAN, 1.],
    [0., -0.], [0., 0.], [1e10, 1.], [123456789., 1.], [1e-5], [-1.5, 2.],
    [1e-4, 1.], [1e8, 1.], [1e9], [1e-4, 0.1], [999.5, 1.], [1000.5, 1.],
    [[[1, 2], [3, 4]], [[5, 6], [7, 8]]], [[True, False], [False, True]],
    [-1e-7, 5.], [INF], [NAN], [3.14159e20, -2.5e-10, 0.],
    [list(range(40))], [[0.1 * i for i in range(25)]] * 3,
]


@needs_torch
@pytest.mark.parametrize("data", CASES)
def test_vs_torch_literals(data):
    same_as_torch(torch.tensor(data), dtrain.tensor(data))


@needs_torch
@pytest.mark.parametrize("dtype", ["float64", "float16", "bfloat16",
                                   "int32", "uint8", "bool", "int64"])
def test_vs_torch_dtypes(dtype):
    for data in ([1., 2.], [1.5, 2.25], [1e-3, 1e2], [[1., 0.], [3., 4.]],
                 7., [0., 1.]):
        same_as_torch(torch.tensor(data, dtype=getattr(torch, dtype)),
                      dtrain.tensor(data, dtype=getattr(dtrain, dtype)))


RANDOM_SHAPES = [(2000,), (40, 50), (5, 300), (3, 4, 100), (10, 10, 11),
                 (7, 20), (30,), (100,), (1, 1, 1, 1001), (2, 3, 4, 5),
                 (1,), (1, 1), (6, 1000)]


@needs_torch
@pytest.mark.parametrize("shape", RANDOM_SHAPES)
def test_vs_torch_random(shape):
    rng = np.random.default_rng(sum(shape))
    for scale in (1.0, 1e-6, 1e9, 123.0):
        a = (rng.standard_normal(shape) * scale).astype(np.float32)
        same_as_torch(torch.from_numpy(a), dtrain.tensor(a))
    b = rng.integers(-1000, 1000, shape)
    same_as_torch(torch.from_numpy(b), dtrain.tensor(b))
    same_as_torch(torch.from_numpy(b).double(), dtrain.tensor(b).double())
    c = rng.random(shape) > 0.5
    same_as_torch(torch.from_numpy(c), dtrain.tensor(c))
    h = rng.standard_normal(shape).astype(np.float16)
    same_as_torch(torch.from_numpy(h), dtrain.tensor(h))


@needs_torch
@pytest.mark.parametrize("make", [
    lambda m: m.arange(0), lambda m: m.arange(5), lambda m: m.arange(1001),
    lambda m: m.arange(3000, dtype=m.float64),
    lambda m: m.zeros(0, 3), lambda m: m.zeros(0, dtype=m.int64),
    lambda m: m.zeros(2, 0, 4, dtype=m.float16), lambda m: m.ones(3, 3),
    lambda m: m.eye(4, dtype=m.bool), lambda m: m.full((2, 2), 7),
    lambda m: m.linspace(-1, 1, 9), lambda m: m.zeros(()),
    lambda m: m.full((), -2, dtype=m.int32),
])
def test_vs_torch_constructors(make):
    same_as_torch(make(torch), make(dtrain))


@needs_torch
def test_vs_torch_printoptions():
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((12, 12)) * 50).astype(np.float32)
    cases = [a, np.arange(30, dtype=np.int64), np.array([1.123456789]),
             a[:2], np.array([1e-6, 1.0], dtype=np.float32)]
    for kw in ({"precision": 2}, {"precision": 6}, {"threshold": 5},
               {"edgeitems": 1, "threshold": 10}, {"linewidth": 40},
               {"sci_mode": True}, {"sci_mode": False}, {"profile": "short"},
               {"profile": "full"}, {"edgeitems": 0, "threshold": 3}):
        with both_printoptions(**kw):
            for x in cases:
                same_as_torch(torch.from_numpy(x), dtrain.tensor(x))
