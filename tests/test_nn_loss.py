"""softmax, log_softmax, the losses, layer_norm and batch_norm: forward and
every gradient against finite differences and torch (gradcheck.check_grad),
non-contiguous inputs, half dtypes, batch_norm's running statistics, and
bad input."""
import numpy as np
import pytest

import dtrain
import dtrain.nn.functional as F
from gradcheck import check_grad
from helpers import assert_close, needs_torch, torch

if torch is not None:
    import torch.nn.functional as TF

pytestmark = [needs_torch, pytest.mark.filterwarnings("ignore::UserWarning")]


def pair(name, **kw):
    """dtrain's and torch's functional `name` with the same kwargs."""
    return (lambda *a, **k: getattr(F, name)(*a, **kw, **k),
            lambda *a, **k: getattr(TF, name)(*a, **kw, **k))


def like(t, x):
    """A constant (torch) tensor in x's dtype: check_grad's float32 pass
    converts only the leaves, and torch refuses mixed dtypes."""
    return None if t is None else t.to(x.dtype)


def labels(shape, c, seed=0, ignore=None):
    t = np.random.default_rng(seed).integers(0, c, size=shape)
    if ignore is not None:
        t.reshape(-1)[::3] = ignore
    return dtrain.tensor(t)


def const(a):
    """A float64 tensor that does not require grad."""
    return dtrain.tensor(np.asarray(a, dtype=np.float64))


# --------------------------------------------------------------------------
# softmax, log_softmax

@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_grad(name, dim):
    fn, tf = pair(name, dim=dim)
    check_grad(fn, [(3, 4, 5)], torch_fn=tf)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_grad_noncontig_and_views(name):
    fn, tf = pair(name, dim=1)
    check_grad(fn, [(4, 6)], torch_fn=tf, noncontig=True)
    check_grad(fn, [(2, 3, 4)], torch_fn=tf, noncontig=True)
    check_grad(lambda x: getattr(F, name)(x.transpose(0, 1), 0),
               [(3, 5)],
               torch_fn=lambda x: getattr(TF, name)(x.transpose(0, 1), 0))
    check_grad(lambda x: getattr(F, name)(x, -1), [()],
               torch_fn=lambda x: getattr(TF, name)(x, -1))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [dtrain.float16, dtrain.bfloat16])
def test_softmax_half(name, dtype):
    x = dtrain.randn(5, 37).to(dtype)
    for dim in (0, 1):
        expected = getattr(TF, name)(torch.tensor(x.float().numpy()).to(
            getattr(torch, str(dtype).split(".")[-1])), dim)
        assert_close(getattr(F, name)(x, dim), expected)


def test_softmax_numerics():
    big = dtrain.tensor([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4]])
    t = torch.tensor(big.numpy())
    assert_close(F.softmax(big, 1), TF.softmax(t, 1))
    assert_close(F.log_softmax(big, 1), TF.log_softmax(t, 1))
    wide = dtrain.randn(3, 1000) * 30
    assert_close(F.log_softmax(wide, 1),
                 TF.log_softmax(torch.tensor(wide.numpy()), 1), rtol=1e-5,
                 atol=1e-4)
    empty = F.softmax(dtrain.zeros(0, 4), 1)
    assert tuple(empty.shape) == (0, 4)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        F.softmax(dtrain.zeros(2, 3))


# --------------------------------------------------------------------------
# cross_entropy, nll_loss

REDUCTIONS = ["none", "mean", "sum"]
C = 5


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.3])
def test_cross_entropy_class_targets(reduction, weighted, smoothing):
    w = const(np.linspace(0.5, 2.0, C)) if weighted else None
    target = labels((6,), C, ignore=-100)
    fn, tf = pair("cross_entropy", reduction=reduction, label_smoothing=smoothing)
    check_grad(lambda x, t, w: fn(x, t, w), [(6, C), target, w],
               torch_fn=lambda x, t, w: tf(x, t, like(w, x)))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_cross_entropy_spatial_and_ignore_index(reduction, smoothing):
    w = const(np.linspace(1.5, 0.5, C))
    target = labels((2, 3, 2), C, seed=1, ignore=2)   # ignores a real class
    fn, tf = pair("cross_entropy", reduction=reduction, ignore_index=2,
                  label_smoothing=smoothing)
    check_grad(lambda x, t, w: fn(x, t, w), [(2, C, 3, 2), target, w],
               torch_fn=lambda x, t, w: tf(x, t, like(w, x)))
    check_grad(lambda x, t: fn(x, t), [(2, C, 3), labels((2, 3), C)],
               torch_fn=lambda x, t: tf(x, t), noncontig=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_unbatched_and_noncontig(reduction):
    fn, tf = pair("cross_entropy", reduction=reduction)
    check_grad(fn, [(C,), dtrain.tensor(3)], torch_fn=tf)
    check_grad(fn, [(4, C), labels((4,), C)], torch_fn=tf, noncontig=True)
    t8 = labels((4,), C).to(dtrain.uint8)
    check_grad(fn, [(4, C), t8], torch_fn=tf)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_cross_entropy_probability_targets(reduction, weighted, smoothing):
    """Both input and target get gradients; with weights, weight too."""
    fn, tf = pair("cross_entropy", reduction=reduction,
                  label_smoothing=smoothing)
    specs = [(4, C), (4, C)] + ([(C,)] if weighted else [None])
    check_grad(lambda x, t, w: fn(x, t, w), specs,
               torch_fn=lambda x, t, w: tf(x, t, w), low=0.0, high=1.0)
    check_grad(lambda x, t: fn(x, t), [(2, C, 3), (2, C, 3)],
               torch_fn=lambda x, t: tf(x, t), noncontig=True)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss(reduction, weighted):
    w = const(np.linspace(0.5, 2.0, C)) if weighted else None
    fn, tf = pair("nll_loss", reduction=reduction)
    check_grad(lambda x, t, w: fn(x, t, w),
               [(6, C), labels((6,), C, ignore=-100), w],
               torch_fn=lambda x, t, w: tf(x, t, like(w, x)))
    fn, tf = pair("nll_loss", reduction=reduction, ignore_index=1)
    # (torch's 4-d nll_loss backward refuses a non-contiguous input)
    check_grad(fn, [(2, C, 2, 2), labels((2, 2, 2), C, seed=3)], torch_fn=tf)
    check_grad(fn, [(2, C, 3), labels((2, 3), C, seed=4)], torch_fn=tf,
               noncontig=True)
    check_grad(fn, [(C,), dtrain.tensor(2)], torch_fn=tf)


def test_cross_entropy_edge_values():
    x = dtrain.randn(4, C)
    ignored = dtrain.tensor([-100] * 4)
    assert np.isnan(F.cross_entropy(x, ignored).item())
    assert F.cross_entropy(x, ignored, reduction="sum").item() == 0
    assert np.isnan(F.cross_entropy(dtrain.zeros(0, C),
                                    dtrain.zeros(0, dtype=dtrain.int64)).item())
    big = dtrain.tensor([[1e4, 0.0, -1e4]])
    assert_close(F.cross_entropy(big, dtrain.tensor([2])),
                 TF.cross_entropy(torch.tensor(big.numpy()),
                                  torch.tensor([2])))
    for dtype in (dtrain.float16, dtrain.bfloat16):
        xh = x.to(dtype)
        tt = torch.tensor(xh.float().numpy()).to(
            getattr(torch, str(dtype).split(".")[-1]))
        assert_close(F.cross_entropy(xh, dtrain.tensor([0, 1, 2, 3])),
                     TF.cross_entropy(tt, torch.tensor([0, 1, 2, 3])))


def test_cross_entropy_legacy_reduce_argument():
    x, t = dtrain.randn(3, C), labels((3,), C)
    tx, tt = torch.tensor(x.numpy()), torch.tensor(t.numpy())
    assert_close(F.cross_entropy(x, t, reduce=False),
                 TF.cross_entropy(tx, tt, reduction="none"))


# --------------------------------------------------------------------------
# mse_loss, binary_cross_entropy_with_logits

@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    fn, tf = pair("mse_loss", reduction=reduction)
    check_grad(fn, [(3, 4), (3, 4)], torch_fn=tf)
    check_grad(fn, [(3, 4), (3, 4)], torch_fn=tf, noncontig=True)
    with pytest.warns(UserWarning, match="target size"):
        check_grad(fn, [(4, 1), (3,)], torch_fn=tf)   # broadcasts both ways
    check_grad(fn, [(3, 4), const(np.ones((3, 4)))], torch_fn=tf)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("pos", [False, True])
def test_bce_with_logits(reduction, weighted, pos):
    w = const(np.linspace(0.5, 1.5, 4)) if weighted else None
    pw = const(np.linspace(0.5, 3.0, 4)) if pos else None   # along last dim
    fn, tf = pair("binary_cross_entropy_with_logits", reduction=reduction)
    check_grad(lambda x, t, w, pw: fn(x, t, weight=w, pos_weight=pw),
               [(3, 4), (3, 4), w, pw],
               torch_fn=lambda x, t, w, pw: tf(x, t, weight=like(w, x),
                                               pos_weight=like(pw, x)),
               low=-4.0, high=4.0)
    check_grad(lambda x, t, pw: fn(x, t, pos_weight=pw),
               [(2, 3, 4), (2, 3, 4), pw],
               torch_fn=lambda x, t, pw: tf(x, t, pos_weight=like(pw, x)),
               noncontig=True)


def test_elementwise_losses_dtypes():
    a, b = dtrain.randn(3, 4), dtrain.rand(3, 4)
    ta, tb = torch.tensor(a.numpy()), torch.tensor(b.numpy())
    for dtype in (dtrain.float16, dtrain.bfloat16):
        tdt = getattr(torch, str(dtype).split(".")[-1])
        assert_close(F.mse_loss(a.to(dtype), b.to(dtype)),
                     TF.mse_loss(ta.to(tdt), tb.to(tdt)))
        assert_close(F.binary_cross_entropy_with_logits(a.to(dtype),
                                                        b.to(dtype)),
                     TF.binary_cross_entropy_with_logits(ta.to(tdt),
                                                         tb.to(tdt)))
    # promotion as in torch: float32 with float64 gives float64
    assert_close(F.mse_loss(a, b.double()), TF.mse_loss(ta, tb.double()))
    # (torch takes log_sigmoid of the float32 input in float32 first)
    assert_close(F.binary_cross_entropy_with_logits(a, b.double()),
                 TF.binary_cross_entropy_with_logits(ta, tb.double()),
                 rtol=1e-6)


def test_bce_with_logits_is_stable():
    x = dtrain.tensor([-200.0, -30.0, 0.0, 30.0, 200.0])
    t = dtrain.tensor([1.0, 0.0, 0.5, 1.0, 0.0])
    out = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    assert np.isfinite(out.numpy()).all()
    assert_close(out, TF.binary_cross_entropy_with_logits(
        torch.tensor(x.numpy()), torch.tensor(t.numpy()), reduction="none"))


# --------------------------------------------------------------------------
# layer_norm

@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
def test_layer_norm(affine):
    w = (5,) if affine in ("weight", "both") else None
    b = (5,) if affine in ("bias", "both") else None
    fn, tf = pair("layer_norm", normalized_shape=(5,))
    check_grad(lambda x, w, b: fn(x, weight=w, bias=b), [(4, 5), w, b],
               torch_fn=lambda x, w, b: tf(x, weight=w, bias=b))
    check_grad(lambda x, w, b: fn(x, weight=w, bias=b), [(2, 3, 5), w, b],
               torch_fn=lambda x, w, b: tf(x, weight=w, bias=b),
               noncontig=True)


def test_layer_norm_multi_dim_and_half():
    fn, tf = pair("layer_norm", normalized_shape=(3, 4), eps=1e-3)
    check_grad(lambda x, w, b: fn(x, weight=w, bias=b),
               [(2, 3, 4), (3, 4), (3, 4)],
               torch_fn=lambda x, w, b: tf(x, weight=w, bias=b))
    x = dtrain.randn(4, 64) * 3 + 100    # a large mean must not cancel
    w = dtrain.randn(64)
    for dtype in (dtrain.float32, dtrain.float16, dtrain.bfloat16):
        xx = x.to(dtype)
        tx = torch.tensor(xx.float().numpy()).to(
            getattr(torch, str(dtype).split(".")[-1]))
        assert_close(F.layer_norm(xx, (64,), w),
                     TF.layer_norm(tx, (64,), torch.tensor(w.numpy())),
                     atol=1e-4 if dtype == dtrain.float32 else None)


# --------------------------------------------------------------------------
# batch_norm

@pytest.mark.parametrize("shape", [(6, 3), (3, 3, 4), (2, 3, 2, 3)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [False, True])
def test_batch_norm_grad(shape, training, affine):
    rng = np.random.default_rng(1)
    rm, rv = rng.standard_normal(3), rng.random(3) + 0.5
    dt_stats = [const(rm), const(rv)]
    t_stats = [torch.tensor(rm), torch.tensor(rv)]
    wb = [(3,), (3,)] if affine else [None, None]
    check_grad(lambda x, w, b: F.batch_norm(x, *dt_stats, w, b, training),
               [shape] + wb,
               torch_fn=lambda x, w, b: TF.batch_norm(
                   x, *[like(s, x) for s in t_stats], w, b, training),
               noncontig=len(shape) > 2)


def test_batch_norm_without_running_stats():
    fn = lambda x, w, b: F.batch_norm(x, None, None, w, b, True)  # noqa: E731
    check_grad(fn, [(4, 3, 2), (3,), (3,)],
               torch_fn=lambda x, w, b: TF.batch_norm(x, None, None, w, b,
                                                      True))


@pytest.mark.parametrize("dtype", [dtrain.float32, dtrain.float64])
@pytest.mark.parametrize("shape", [(8, 4), (4, 4, 5), (2, 4, 3, 3)])
def test_batch_norm_running_stats_three_steps(dtype, shape):
    tdtype = getattr(torch, str(dtype).split(".")[-1])
    rm, rv = dtrain.zeros(4).to(dtype), dtrain.ones(4).to(dtype)
    trm, trv = torch.zeros(4, dtype=tdtype), torch.ones(4, dtype=tdtype)
    for step, momentum in enumerate([0.1, 0.5, 1.0]):
        x = (dtrain.randn(*shape) * (step + 1) + step).to(dtype)
        tx = torch.tensor(x.numpy())
        out = F.batch_norm(x, rm, rv, training=True, momentum=momentum)
        tout = TF.batch_norm(tx, trm, trv, training=True, momentum=momentum)
        assert_close(out, tout, atol=1e-5)
        assert_close(rm, trm, atol=1e-6)
        assert_close(rv, trv, atol=1e-6)
    x = dtrain.randn(*shape).to(dtype)
    assert_close(F.batch_norm(x, rm, rv, training=False),
                 TF.batch_norm(torch.tensor(x.numpy()), trm, trv,
                               training=False), atol=1e-5)


def test_batch_norm_half_and_strided_running_stats():
    x = dtrain.randn(4, 3, 5).to(dtrain.float16)
    rm, rv = dtrain.zeros(3), dtrain.ones(3)
    tx = torch.tensor(x.float().numpy()).half()
    trm, trv = torch.zeros(3), torch.ones(3)
    assert_close(F.batch_norm(x, rm, rv, training=True),
                 TF.batch_norm(tx, trm, trv, training=True))
    assert_close(rm, trm, rtol=1e-3, atol=1e-3)
    stats = dtrain.zeros(3, 2)
    srm, srv = stats[:, 0], stats[:, 1]          # strided views, in place
    srv.fill_(1.0)
    F.batch_norm(x.float(), srm, srv, training=True)
    assert_close(srm, trm, rtol=1e-3, atol=1e-3)
    assert_close(srv, trv, rtol=1e-3, atol=1e-3)


# --------------------------------------------------------------------------
# autograd rules

def test_modified_saved_output_is_an_error():
    x = dtrain.randn(3, 4).requires_grad_()
    y = F.softmax(x, 1)
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace"):
        y.backward(dtrain.ones(3, 4))


def test_grad_fn_names_and_no_record_without_grad():
    x = dtrain.randn(3, C).requires_grad_()
    assert F.log_softmax(x, 1).grad_fn.name() == "LogSoftmaxBackward0"
    assert F.nll_loss(x, labels((3,), C)).grad_fn is not None
    assert F.cross_entropy(x.detach(), labels((3,), C)).grad_fn is None
    with dtrain.no_grad():
        assert F.layer_norm(x, (C,)).grad_fn is None


def test_non_differentiable_arguments_are_refused():
    x = dtrain.randn(3, C)
    w = dtrain.ones(C).requires_grad_()
    with pytest.raises(RuntimeError, match="nll_loss_forward.*weight"):
        F.cross_entropy(x, labels((3,), C), weight=w)
    with pytest.raises(RuntimeError, match="pos_weight"):
        F.binary_cross_entropy_with_logits(x, dtrain.rand(3, C), pos_weight=w)


# --------------------------------------------------------------------------
# bad input

def raises(exc, match, fn, *args, **kw):
    with pytest.raises(exc, match=match):
        fn(*args, **kw)


def test_bad_targets():
    x = dtrain.randn(4, C)
    ce = F.cross_entropy
    raises(RuntimeError, "cross_entropy.*Long or Byte, but got Float", ce, x,
           dtrain.tensor([1.0, 2.0, 3.0, 4.0]))
    raises(RuntimeError, "nll_loss.*but got Int", F.nll_loss, x,
           dtrain.tensor([1, 2, 3, 4], dtype=dtrain.int32))
    raises(IndexError, "cross_entropy: Target 12 is out of bounds", ce, x,
           dtrain.tensor([1, 2, 3, 12]))
    raises(IndexError, "Target -1 is out of bounds", ce, x,
           dtrain.tensor([1, 2, 3, -1]))
    raises(ValueError, r"cross_entropy: Expected input batch_size \(4\) to "
           r"match target batch_size \(3\)", ce, x, dtrain.tensor([1, 2, 3]))
    raises(RuntimeError, r"Expected target size \[2, 4\], got \[2, 5\]", ce,
           dtrain.randn(2, C, 4), dtrain.zeros(2, 5, dtype=dtrain.int64))
    raises(RuntimeError, "multi-target not supported", ce, x,
           dtrain.zeros(4, 2, dtype=dtrain.int64))
    raises(RuntimeError, "floating point type for target with class "
           "probabilities, got Long", ce, x,
           dtrain.zeros(4, C, dtype=dtrain.int64))
    raises(RuntimeError, "ignore_index is not supported", ce, x,
           dtrain.rand(4, C), ignore_index=1)
    raises(RuntimeError, r"weight tensor should be defined either for all 5 "
           r"classes or no classes but got weight tensor of shape: \[4\]", ce,
           x, dtrain.tensor([0, 1, 2, 3]), weight=dtrain.ones(4))
    raises(ValueError, r"nll_loss: Expected 1 or more dimensions \(got 0\)",
           F.nll_loss, dtrain.tensor(1.0), dtrain.tensor(0))
    raises(NotImplementedError, "cross_entropy.*int64", ce,
           dtrain.zeros(4, C, dtype=dtrain.int64), dtrain.tensor([0, 1, 2, 3]))
    raises(ValueError, "reduction", ce, x, dtrain.tensor([0, 1, 2, 3]),
           reduction="avg")


def test_bad_shapes_and_dtypes():
    x = dtrain.randn(4, C)
    raises(NotImplementedError, "softmax: not implemented for 'int64'",
           F.softmax, dtrain.tensor([1, 2]), 0)
    raises(IndexError, "log_softmax.*out of range", F.log_softmax, x, 2)
    raises(RuntimeError, "mse_loss.*must match", F.mse_loss, dtrain.ones(3),
           dtrain.ones(4))
    raises(NotImplementedError, "mse_loss", F.mse_loss,
           dtrain.ones(3, dtype=dtrain.int64), dtrain.ones(3, dtype=dtrain.int64))
    raises(ValueError, "Target size", F.binary_cross_entropy_with_logits, x,
           dtrain.rand(4, 4))
    raises(RuntimeError, "binary_cross_entropy_with_logits.*must match",
           F.binary_cross_entropy_with_logits, x, dtrain.rand(4, C),
           pos_weight=dtrain.ones(4))
    raises(RuntimeError, r"output with shape \[4\] doesn't match the "
           r"broadcast shape \[3, 4\]", F.binary_cross_entropy_with_logits,
           dtrain.zeros(4), dtrain.zeros(4), weight=dtrain.ones(3, 4))
    raises(RuntimeError, r"layer_norm: Given normalized_shape=\[4\], expected "
           r"input with shape \[\*, 4\], but got input of size\[4, 5\]",
           F.layer_norm, x, (4,))
    raises(RuntimeError, r"layer_norm: Expected weight to be of same shape as "
           r"normalized_shape, but got weight of shape \[4\]", F.layer_norm,
           x, (C,), dtrain.ones(4))
    raises(RuntimeError, "at least 1-dimensional", F.layer_norm, x, ())
    raises(RuntimeError, "batch_norm: running_mean should contain 5 elements "
           "not 4", F.batch_norm, x, dtrain.zeros(4), dtrain.ones(C))
    raises(RuntimeError, "batch_norm: weight should contain 5", F.batch_norm,
           x, dtrain.zeros(C), dtrain.ones(C), dtrain.ones(3))
    raises(RuntimeError, "batch_norm: running_mean must be defined",
           F.batch_norm, x, None, None)
    raises(ValueError, "batch_norm: running_mean and running_var",
           F.batch_norm, x, dtrain.zeros(C), None, training=True)
    raises(ValueError, "Expected more than 1 value per channel", F.batch_norm,
           dtrain.ones(1, C), None, None, training=True)
    raises(NotImplementedError, "batch_norm", F.batch_norm,
           dtrain.ones(4, C, dtype=dtrain.int64), dtrain.zeros(C),
           dtrain.ones(C))
    raises(TypeError, "weight", F.cross_entropy, x,
           dtrain.tensor([0, 1, 2, 3]), weight=[1.0] * C)
