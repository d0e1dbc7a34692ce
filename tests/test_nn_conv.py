"""nn layers in C (csrc/ops/nn_*.c): linear, conv2d, max/avg/adaptive-avg
pooling, embedding and dropout: forward and every input gradient against
finite differences and torch (tests/gradcheck.py), dtypes, larger shapes
against torch, dropout statistics and reproducibility, and bad inputs."""
import numpy as np
import pytest

import dtrain
import dtrain.nn.functional as F
import gradcheck
from gradcheck import check_grad
from helpers import assert_close, make, needs_torch, to_torch, torch

if torch is not None:
    import torch.nn.functional as TF
else:  # pragma: no cover
    TF = None


# --------------------------------------------------------------- harness

def _loss_records():
    a = dtrain.ones(2).requires_grad_()
    try:
        return (a * a).sum().requires_grad
    except Exception:  # pragma: no cover
        return False


class _DirectLoss:
    """sum(r * u) without recording mul/sum: backward() feeds each u to
    its output directly (the same gradient check_grad asks for)."""

    def __init__(self, pairs):
        self.pairs = pairs

    def backward(self):
        dtrain.autograd.backward([r for r, _ in self.pairs],
                                 [u for _, u in self.pairs])

    def item(self):
        return sum(float((r.detach().double().numpy() *
                          u.double().numpy()).sum()) for r, u in self.pairs)


@pytest.fixture(autouse=True)
def _loss_without_elementwise_grad(monkeypatch):
    """check_grad builds its loss as (r * u).sum(); where the elementwise
    and reduction backwards are not there yet, use _DirectLoss instead.
    Torch losses and everything else in check_grad stay as they are."""
    if _loss_records():
        yield
        return
    original = gradcheck._scalar_loss

    def scalar_loss(res, ups):
        pairs = [(r, u) for r, u in zip(gradcheck._outputs(res), ups)
                 if r is not None and r.dtype.is_floating_point]
        if pairs and isinstance(pairs[0][0], dtrain.Tensor):
            return _DirectLoss(pairs)
        return original(res, ups)

    monkeypatch.setattr(gradcheck, "_scalar_loss", scalar_loss)
    yield


def _t(fn_name, **kw):
    """The torch twin of a dtrain.nn.functional call."""
    return lambda *a: getattr(TF, fn_name)(*a, **kw)


def _d(fn_name, **kw):
    return lambda *a: getattr(F, fn_name)(*a, **kw)


# ---------------------------------------------------------------- linear

@pytest.mark.parametrize("shapes,noncontig", [
    ([(4, 3), (5, 3), (5,)], False),
    ([(2, 3, 4), (5, 4), (5,)], False),
    ([(4, 3), (5, 3), (5,)], True),
    ([(3,), (2, 3), (2,)], False),
    ([(4, 3), (5, 3), (1,)], False),
])
def test_linear_grad(shapes, noncontig):
    check_grad(F.linear, shapes, torch_fn=TF and TF.linear,
               noncontig=noncontig)


def test_linear_no_bias_and_transposed_weight():
    check_grad(lambda x, w: F.linear(x, w), [(4, 3), (5, 3)],
               torch_fn=lambda x, w: TF.linear(x, w))
    check_grad(lambda x, w: F.linear(x, w.t()), [(4, 3), (3, 5)],
               torch_fn=lambda x, w: TF.linear(x, w.t()))


@needs_torch
@pytest.mark.parametrize("dtype", [dtrain.float16, dtrain.bfloat16,
                                   dtrain.int32, dtrain.int64, dtrain.uint8])
def test_linear_dtypes(dtype):
    x, w, b = make((3, 4), dtype), make((2, 4), dtype, seed=1), \
        make((2,), dtype, seed=2)
    out = F.linear(x, w, b)
    assert out.dtype == dtype
    exp = TF.linear(to_torch(x).float(), to_torch(w).float(),
                    to_torch(b).float()).to(to_torch(x).dtype) \
        if dtype in (dtrain.float16, dtrain.bfloat16) else \
        TF.linear(to_torch(x), to_torch(w), to_torch(b))
    assert_close(out, exp, rtol=2e-2, atol=2e-2)


@needs_torch
def test_linear_large_vs_torch():
    x, w, b = make((128, 784), seed=3), make((256, 784), seed=4), \
        make((256,), seed=5)
    for t in (x, w, b):
        t.requires_grad_()
    tx, tw, tb = [to_torch(t).requires_grad_() for t in (x, w, b)]
    y, ty = F.linear(x, w, b), TF.linear(tx, tw, tb)
    g = make((128, 256), seed=6)
    y.backward(g)
    ty.backward(to_torch(g))
    assert_close(y, ty.detach(), rtol=1e-4, atol=1e-4)
    for a, e in ((x, tx), (w, tw), (b, tb)):
        assert_close(a.grad, e.grad, rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------- conv2d

CONV_CASES = [
    # x shape, w shape, kwargs
    ((2, 2, 5, 5), (3, 2, 3, 3), {}),
    ((2, 2, 5, 5), (3, 2, 3, 3), dict(stride=2, padding=1)),
    ((1, 2, 6, 5), (2, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0),
                                      dilation=(1, 2))),
    ((2, 4, 5, 5), (4, 2, 3, 3), dict(padding=1, groups=2)),
    ((1, 4, 4, 4), (8, 1, 2, 2), dict(groups=4, dilation=2, padding=1)),
    ((2, 3, 4, 4), (2, 3, 1, 1), {}),                     # direct 1x1
    ((2, 3, 4, 4), (2, 3, 1, 1), dict(stride=2)),
    ((2, 5, 5), (3, 2, 3, 3), dict(padding=1)),           # unbatched
    ((1, 1, 7, 7), (2, 1, 3, 3), dict(padding=2, dilation=2, stride=3)),
    # 3x3 stride 1 with >= 16 channels each way: the Winograd path
    ((2, 16, 4, 5), (16, 16, 3, 3), dict(padding=1)),
    ((1, 16, 5, 3), (17, 16, 3, 3), dict(padding=2)),
    ((1, 16, 4, 4), (16, 16, 3, 3), {}),
]


@pytest.mark.parametrize("xs,ws,kw", CONV_CASES)
def test_conv2d_grad(xs, ws, kw):
    check_grad(lambda x, w, b: F.conv2d(x, w, b, **kw),
               [xs, ws, (ws[0],)],
               torch_fn=lambda x, w, b: TF.conv2d(x, w, b, **kw))


def test_conv2d_grad_noncontig_and_no_bias():
    kw = dict(padding=1, stride=(1, 2))
    check_grad(lambda x, w, b: F.conv2d(x, w, b, **kw),
               [(2, 2, 4, 5), (3, 2, 3, 3), (3,)], noncontig=True,
               torch_fn=lambda x, w, b: TF.conv2d(x, w, b, **kw))
    check_grad(lambda x, w: F.conv2d(x, w, padding="same"),
               [(1, 2, 4, 4), (2, 2, 3, 3)],
               torch_fn=lambda x, w: TF.conv2d(x, w, padding="same"))


def test_conv2d_grad_through_view():
    check_grad(lambda x, w: F.conv2d(x.transpose(2, 3), w),
               [(1, 2, 5, 4), (2, 2, 2, 2)],
               torch_fn=lambda x, w: TF.conv2d(x.transpose(2, 3), w))


@needs_torch
@pytest.mark.parametrize("n,c,o,h,kw", [
    (8, 1, 32, 28, dict(padding=1)),
    (4, 32, 64, 14, dict(padding=1)),                   # Winograd
    (3, 24, 16, 13, dict(padding=(0, 2))),              # Winograd, odd
    (70, 16, 16, 9, dict(padding=1)),                   # several blocks
    (3, 6, 8, 11, dict(stride=2, dilation=2, groups=2, padding=(2, 1))),
])
def test_conv2d_large_vs_torch(n, c, o, h, kw):
    g = kw.get("groups", 1)
    x, w, b = make((n, c, h, h), seed=1), make((o, c // g, 3, 3), seed=2), \
        make((o,), seed=3)
    for t in (x, w, b):
        t.requires_grad_()
    tx, tw, tb = [to_torch(t).requires_grad_() for t in (x, w, b)]
    y, ty = F.conv2d(x, w, b, **kw), TF.conv2d(tx, tw, tb, **kw)
    assert_close(y, ty.detach(), rtol=1e-4, atol=1e-3)
    gy = make(tuple(y.shape), seed=4)
    y.backward(gy)
    ty.backward(to_torch(gy))
    for a, e in ((x, tx), (w, tw), (b, tb)):
        assert_close(a.grad, e.grad, rtol=1e-4, atol=2e-3)


@needs_torch
@pytest.mark.parametrize("dtype", [dtrain.float16, dtrain.bfloat16,
                                   dtrain.int32, dtrain.int64, dtrain.uint8])
def test_conv2d_dtypes(dtype):
    x, w, b = make((2, 2, 5, 5), dtype), make((3, 2, 3, 3), dtype, seed=1), \
        make((3,), dtype, seed=2)
    out = F.conv2d(x, w, b, padding=1)
    assert out.dtype == dtype
    if dtype in (dtrain.float16, dtrain.bfloat16):
        exp = TF.conv2d(to_torch(x).float(), to_torch(w).float(),
                        to_torch(b).float(), padding=1)
        assert_close(out, exp.to(to_torch(x).dtype), check_dtype=False,
                     rtol=2e-2, atol=5e-2)
    else:
        exp = TF.conv2d(to_torch(x), to_torch(w), to_torch(b), padding=1)
        assert_close(out, exp)


def test_conv2d_empty_batch_and_float64_grad_dtype():
    out = F.conv2d(dtrain.zeros(0, 3, 4, 4), dtrain.zeros(2, 3, 3, 3))
    assert tuple(out.shape) == (0, 2, 2, 2)
    x = dtrain.zeros(1, 1, 3, 3, dtype=dtrain.float16).requires_grad_()
    w = dtrain.ones(1, 1, 2, 2, dtype=dtrain.float16)
    y = F.conv2d(x, w)
    y.backward(dtrain.ones(1, 1, 2, 2, dtype=dtrain.float16))
    assert x.grad.dtype == dtrain.float16
    assert x.grad.float().numpy()[0, 0, 1, 1] == 4.0


def test_conv2d_saved_input_modified_in_place():
    x = dtrain.ones(1, 1, 4, 4)
    w = dtrain.ones(1, 1, 2, 2).requires_grad_()
    y = F.conv2d(x, w)
    x.fill_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace"):
        y.backward(dtrain.ones(1, 1, 3, 3))


# ---------------------------------------------------------------- pools

MAXPOOL_CASES = [
    ((2, 2, 6, 6), dict(kernel_size=2)),
    ((1, 2, 7, 5), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 1, 7, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 2, 8, 7), dict(kernel_size=(3, 2), stride=(1, 2), dilation=2)),
    ((1, 1, 5, 5), dict(kernel_size=2, ceil_mode=True)),
    ((2, 5, 6), dict(kernel_size=2, stride=1)),            # unbatched
    ((1, 2, 7, 5), dict(kernel_size=2)),                   # tiled, leftover
    ((1, 1, 7, 8), dict(kernel_size=(3, 2))),
]


@pytest.mark.parametrize("xs,kw", MAXPOOL_CASES)
def test_max_pool2d_grad(xs, kw):
    check_grad(_d("max_pool2d", **kw), [xs],
               torch_fn=_t("max_pool2d", **kw))


def test_max_pool2d_noncontig_and_indices():
    kw = dict(kernel_size=2, stride=1, return_indices=True)
    res, _ = check_grad(_d("max_pool2d", **kw), [(1, 2, 4, 5)],
                        noncontig=True, torch_fn=_t("max_pool2d", **kw))
    assert res[1].dtype == dtrain.int64


@needs_torch
@pytest.mark.parametrize("dtype", [dtrain.float32, dtrain.float64,
                                   dtrain.float16, dtrain.bfloat16,
                                   dtrain.int32, dtrain.int64, dtrain.uint8])
def test_max_pool2d_dtypes_and_indices(dtype):
    x = make((2, 3, 9, 8), dtype, low=-50, high=50)
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1,
                                         ceil_mode=True)):
        out, idx = F.max_pool2d(x, return_indices=True, **kw)
        eo, ei = TF.max_pool2d(to_torch(x), return_indices=True, **kw)
        assert_close(out, eo)
        if dtype not in (dtrain.float16, dtrain.bfloat16, dtrain.uint8):
            np.testing.assert_array_equal(idx.numpy(), ei.numpy())


@needs_torch
def test_max_pool2d_nan_and_large_vs_torch():
    x = make((4, 32, 28, 28), seed=7)
    x[0, 0, 0, 1] = float("nan")
    x.requires_grad_()
    tx = to_torch(x.detach()).requires_grad_()
    y, ty = F.max_pool2d(x, 2), TF.max_pool2d(tx, 2)
    assert_close(y, ty.detach())
    g = make(tuple(y.shape), seed=8)
    y.backward(g)
    ty.backward(to_torch(g))
    assert_close(x.grad, tx.grad)


AVGPOOL_CASES = [
    ((2, 2, 6, 6), dict(kernel_size=2)),
    ((1, 2, 7, 5), dict(kernel_size=3, stride=2, padding=1)),
    ((1, 2, 7, 5), dict(kernel_size=3, stride=2, padding=1,
                        count_include_pad=False)),
    ((1, 1, 7, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ((1, 1, 6, 6), dict(kernel_size=(3, 2), stride=2, padding=1,
                        ceil_mode=True, count_include_pad=False)),
    ((1, 2, 5, 5), dict(kernel_size=3, padding=1, divisor_override=4)),
    ((2, 5, 6), dict(kernel_size=2, stride=1)),            # unbatched
]


@pytest.mark.parametrize("xs,kw", AVGPOOL_CASES)
def test_avg_pool2d_grad(xs, kw):
    check_grad(_d("avg_pool2d", **kw), [xs],
               torch_fn=_t("avg_pool2d", **kw))


def test_avg_pool2d_noncontig():
    kw = dict(kernel_size=2, padding=1)
    check_grad(_d("avg_pool2d", **kw), [(2, 2, 4, 5)], noncontig=True,
               torch_fn=_t("avg_pool2d", **kw))


@needs_torch
@pytest.mark.parametrize("dtype", [dtrain.float16, dtrain.bfloat16,
                                   dtrain.int64])
def test_avg_pool2d_dtypes(dtype):
    x = make((2, 3, 7, 6), dtype, low=-50, high=50)
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    assert_close(F.avg_pool2d(x, **kw), TF.avg_pool2d(to_torch(x), **kw),
                 rtol=1e-2, atol=1e-2)


ADAPTIVE_CASES = [((2, 2, 7, 5), (3, 2)), ((1, 3, 6, 6), 1),
                  ((1, 2, 5, 7), (None, 3)), ((1, 1, 3, 4), (5, 6)),
                  ((2, 5, 6), (2, 4))]


@pytest.mark.parametrize("xs,size", ADAPTIVE_CASES)
def test_adaptive_avg_pool2d_grad(xs, size):
    check_grad(lambda x: F.adaptive_avg_pool2d(x, size), [xs],
               torch_fn=lambda x: TF.adaptive_avg_pool2d(x, size))


def test_adaptive_avg_pool2d_noncontig():
    check_grad(lambda x: F.adaptive_avg_pool2d(x, 3), [(2, 2, 5, 7)],
               noncontig=True,
               torch_fn=lambda x: TF.adaptive_avg_pool2d(x, 3))


# ---------------------------------------------------------------- embedding

@pytest.mark.parametrize("idx", [[[0, 2, 2], [4, 1, 2]], [3, 3, 3, 0], 1])
def test_embedding_grad(idx):
    i = dtrain.tensor(idx)
    check_grad(F.embedding, [i, (5, 3)], torch_fn=TF and TF.embedding)


@needs_torch
@pytest.mark.parametrize("pad", [2, -2])
def test_embedding_padding_idx_grad(pad):
    """The padding row gets no gradient (so not finite differences)."""
    i = dtrain.tensor([[0, 2, 2], [4, 1, 3]])
    w = make((5, 3), seed=3).requires_grad_()
    tw = to_torch(w.detach()).requires_grad_()
    y = F.embedding(i, w, padding_idx=pad)
    ty = TF.embedding(to_torch(i), tw, padding_idx=pad)
    assert_close(y, ty.detach())
    g = make(tuple(y.shape), seed=4)
    y.backward(g)
    ty.backward(to_torch(g))
    assert_close(w.grad, tw.grad)
    assert (w.grad.numpy()[pad] == 0).all()


def test_embedding_grad_noncontig_int32():
    i = dtrain.tensor([[1, 0], [4, 1], [1, 3]], dtype=dtrain.int32).t()
    check_grad(lambda i, w: F.embedding(i, w), [i, (5, 4)], noncontig=True,
               torch_fn=lambda i, w: TF.embedding(i.long(), w))


def test_embedding_any_weight_dtype():
    w = dtrain.tensor([[True, False], [False, True]])
    out = F.embedding(dtrain.tensor([1, 1, 0]), w)
    assert out.dtype == dtrain.bool
    np.testing.assert_array_equal(out.numpy(),
                                  [[False, True], [False, True],
                                   [True, False]])


# ---------------------------------------------------------------- dropout

def test_dropout_statistics_and_grad():
    dtrain.manual_seed(123)
    x = dtrain.ones(200, 500).requires_grad_()
    y = F.dropout(x, 0.3)
    yn = y.detach().numpy()
    zero = yn == 0
    assert abs(zero.mean() - 0.3) < 0.01
    np.testing.assert_allclose(yn[~zero], 1 / 0.7, rtol=1e-6)
    g = make((200, 500), seed=9)
    y.backward(g)
    np.testing.assert_allclose(x.grad.numpy(),
                               g.numpy() * (~zero) / 0.7, rtol=1e-6)


def test_dropout_reproducible_and_matches_bernoulli():
    x = make((7, 33), dtype=dtrain.float64)
    dtrain.manual_seed(5)
    a = F.dropout(x, 0.4).numpy()
    b = F.dropout(x, 0.4).numpy()
    dtrain.manual_seed(5)
    c = F.dropout(x, 0.4).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)
    dtrain.manual_seed(5)
    keep = dtrain.empty(7, 33).bernoulli_(0.6).numpy() != 0
    np.testing.assert_allclose(a, np.where(keep, x.numpy() / 0.6, 0.0))


def test_dropout_edges():
    x = make((3, 4), seed=2).requires_grad_()
    y = F.dropout(x, 1.0)
    assert (y.detach().numpy() == 0).all()
    y.backward(dtrain.ones(3, 4))
    assert (x.grad.numpy() == 0).all()
    assert F.dropout(x, 0.5, training=False) is x
    h = F.dropout(make((4, 64), dtype=dtrain.float16), 0.5)
    assert h.dtype == dtrain.float16
    nc = make((6, 8), noncontig=True)
    dtrain.manual_seed(1)
    a = F.dropout(nc, 0.5).numpy()
    dtrain.manual_seed(1)
    np.testing.assert_array_equal(a, F.dropout(nc.contiguous(), 0.5).numpy())


# ---------------------------------------------------------------- bad input

def _raises(exc, match, fn, *args, **kw):
    with pytest.raises(exc, match=match):
        fn(*args, **kw)


def test_bad_inputs():
    r = dtrain.randn
    _raises(RuntimeError, r"Given groups=1, weight of size \[8, 3, 3, 3\], "
            r"expected input\[2, 4, 10, 10\] to have 3 channels, but got 4 "
            r"channels instead", F.conv2d, r(2, 4, 10, 10), r(8, 3, 3, 3))
    _raises(RuntimeError, "divisible by 2", F.conv2d, r(2, 4, 5, 5),
            r(3, 2, 3, 3), groups=2)
    _raises(RuntimeError, "non-positive groups", F.conv2d, r(2, 4, 5, 5),
            r(3, 2, 3, 3), groups=0)
    _raises(RuntimeError, "non-positive stride", F.conv2d, r(1, 1, 5, 5),
            r(1, 1, 3, 3), stride=0)
    _raises(RuntimeError, "negative padding", F.conv2d, r(1, 1, 5, 5),
            r(1, 1, 3, 3), padding=-1)
    _raises(RuntimeError, "expected bias to be 1-dimensional with 8",
            F.conv2d, r(2, 3, 5, 5), r(8, 3, 3, 3), r(7))
    _raises(RuntimeError, r"conv2d: Calculated padded input size per "
            r"channel: \(4 x 4\). Kernel size: \(5 x 5\)", F.conv2d,
            r(2, 3, 4, 4), r(8, 3, 5, 5))
    _raises(RuntimeError, r"conv2d: Expected 3D \(unbatched\) or 4D",
            F.conv2d, r(3, 4), r(8, 3, 5, 5))
    _raises(RuntimeError, "conv2d: expected a 4D weight", F.conv2d,
            r(1, 3, 4, 4), r(8, 3, 3))
    _raises(RuntimeError, r"conv2d: Input type \(float64\) and weight type",
            F.conv2d, r(1, 3, 4, 4).double(), r(8, 3, 3, 3))
    _raises(NotImplementedError, "conv2d.*bool", F.conv2d,
            dtrain.ones(1, 1, 3, 3, dtype=dtrain.bool),
            dtrain.ones(1, 1, 3, 3, dtype=dtrain.bool))
    _raises(TypeError, "Tensor", F.conv2d, [[1.0]], r(1, 1, 1, 1))
    _raises(RuntimeError, r"linear: mat1 and mat2 shapes cannot be "
            r"multiplied \(4x3 and 5x4\)", F.linear, r(2, 2, 3), r(4, 5))
    _raises(RuntimeError, "linear: expected m1 and m2 to have the same "
            "dtype", F.linear, r(2, 3).double(), r(4, 3))
    _raises(RuntimeError, "linear: both arguments", F.linear,
            dtrain.tensor(1.0), r(4, 5))
    _raises(RuntimeError, "linear: bias", F.linear, r(2, 3), r(4, 3), r(5))
    _raises(RuntimeError, "max_pool2d: pad should be at most half",
            F.max_pool2d, r(1, 1, 4, 4), 2, padding=2)
    _raises(RuntimeError, r"max_pool2d: Given input size: \(1x2x2\). "
            r"Calculated output size: \(1x0x0\)", F.max_pool2d,
            r(1, 1, 2, 2), 3)
    _raises(RuntimeError, "max_pool2d: Expected 3D or 4D", F.max_pool2d,
            r(4, 4), 2)
    _raises(RuntimeError, "max_pool2d: Expected 3D or 4D", F.max_pool2d,
            r(2, 0, 4, 4), 2)
    _raises(RuntimeError, "stride should not be zero", F.max_pool2d,
            r(1, 1, 4, 4), 0)
    _raises(RuntimeError, "kernel size should be greater than zero",
            F.max_pool2d, r(1, 1, 4, 4), 0, 1)
    _raises(RuntimeError, "dilation should be greater than zero",
            F.max_pool2d, r(1, 1, 4, 4), 2, dilation=0)
    _raises(NotImplementedError, "max_pool2d.*bool", F.max_pool2d,
            dtrain.ones(1, 1, 4, 4, dtype=dtrain.bool), 2)
    _raises(RuntimeError, "avg_pool2d: pad should be at most half",
            F.avg_pool2d, r(1, 1, 4, 4), 2, padding=2)
    _raises(NotImplementedError, "avg_pool2d.*int32", F.avg_pool2d,
            dtrain.ones(1, 1, 4, 4, dtype=dtrain.int32), 2)
    _raises(RuntimeError, r"adaptive_avg_pool2d\(\): Expected 3D or 4D",
            F.adaptive_avg_pool2d, r(4, 4), 2)
    _raises(RuntimeError, "dimension 2 being empty", F.adaptive_avg_pool2d,
            r(1, 3, 0, 4), 2)
    _raises(RuntimeError, "greater than or equal to 0",
            F.adaptive_avg_pool2d, r(1, 1, 4, 4), -1)
    _raises(IndexError, "index out of range in self", F.embedding,
            dtrain.tensor([5]), r(3, 4))
    _raises(IndexError, "index out of range in self", F.embedding,
            dtrain.tensor([-1]), r(3, 4))
    _raises(RuntimeError, "'weight' must be 2-D", F.embedding,
            dtrain.tensor([1]), r(3))
    _raises(RuntimeError, "embedding: Expected tensor for argument #1 "
            "'indices'", F.embedding, dtrain.tensor([1.0]), r(3, 4))
    _raises(ValueError, "Padding_idx must be within num_embeddings",
            F.embedding, dtrain.tensor([1]), r(3, 4), padding_idx=3)
    _raises(RuntimeError, "dropout: result type Float can't be cast",
            F.dropout, dtrain.ones(3, dtype=dtrain.int64), 0.5)
    _raises(ValueError, "dropout probability", F.dropout, r(3), 1.5)


# ---------------------------------------------------------------- leaks

def _forward_backward(fn, *shapes):
    leaves = [make(s, seed=i).requires_grad_() for i, s in enumerate(shapes)]
    out = fn(*leaves)
    out = out[0] if isinstance(out, tuple) else out
    out.backward(dtrain.ones(*out.shape))
    return [x.grad for x in leaves]


def _all_fail():
    r = dtrain.randn
    for call in (lambda: F.conv2d(r(2, 4, 5, 5), r(8, 3, 3, 3)),
                 lambda: F.linear(r(2, 3), r(4, 5)),
                 lambda: F.max_pool2d(r(1, 1, 2, 2), 3),
                 lambda: F.embedding(dtrain.tensor([9]), r(3, 4))):
        with pytest.raises((RuntimeError, IndexError)):
            call()


LEAK_OPS = dict(
    linear=lambda: _forward_backward(F.linear, (4, 3), (5, 3), (5,)),
    conv=lambda: _forward_backward(
        lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
        (2, 3, 6, 6), (4, 3, 3, 3), (4,)),
    winograd=lambda: _forward_backward(
        lambda x, w, b: F.conv2d(x, w, b, padding=1),
        (2, 16, 5, 5), (16, 16, 3, 3), (16,)),
    pools=lambda: (
        _forward_backward(lambda x: F.max_pool2d(x, 2), (2, 3, 6, 6)),
        _forward_backward(lambda x: F.max_pool2d(x, 3, 1, 1), (2, 3, 6, 6)),
        _forward_backward(lambda x: F.avg_pool2d(x, 3, 2, 1), (2, 3, 6, 6)),
        _forward_backward(lambda x: F.adaptive_avg_pool2d(x, 2),
                          (2, 3, 6, 6))),
    embedding=lambda: _forward_backward(
        lambda w: F.embedding(dtrain.tensor([[0, 2], [2, 1]]), w,
                              padding_idx=1), (3, 4)),
    dropout=lambda: _forward_backward(lambda x: F.dropout(x, 0.3), (5, 7)),
    errors=_all_fail,
)


@pytest.mark.parametrize("name", sorted(LEAK_OPS))
def test_no_leaks(name):
    import gc
    op = LEAK_OPS[name]
    op()
    gc.collect()
    before = dtrain._C._live_counts()
    for _ in range(30):
        op()
    gc.collect()
    assert dtrain._C._live_counts() == before, name
