"""dtrain.autograd.Function: custom Python ops in the C graph. Gradients
checked by finite differences and torch (gradcheck.py), PyTorch's error
texts for bad backwards, exceptions propagating unchanged, saved-tensor
checks, and no leaks."""
import gc
import sys

import numpy as np
import pytest

import dtrain
from dtrain.autograd import Function
from gradcheck import check_grad
from helpers import torch


class Exp(Function):
    @staticmethod
    def forward(ctx, x):
        y = x.exp()
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        y, = ctx.saved_tensors
        return grad * y


class MulAdd(Function):
    """Two inputs, two outputs: (a * b, a + b)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b, a + b

    @staticmethod
    def backward(ctx, g_prod, g_sum):
        a, b = ctx.saved_tensors
        return g_prod * b + g_sum, g_prod * a + g_sum


class ScalePow(Function):
    """Non-tensor arguments: x ** p * scale; gradient None for p, scale."""

    @staticmethod
    def forward(ctx, x, p, scale=1.0):
        ctx.p, ctx.scale = p, scale
        ctx.save_for_backward(x)
        return x.pow(p) * scale

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return grad * ctx.p * x.pow(ctx.p - 1) * ctx.scale, None, None


class Boom(Exception):
    pass


class Raises(Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, grad):
        raise Boom("from backward")


def _leaf(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return dtrain.tensor(rng.uniform(-1, 1, shape)).requires_grad_()


def test_exp_gradcheck():
    check_grad(Exp.apply, [(3, 4)], torch_fn=lambda x: x.exp())
    check_grad(Exp.apply, [(2, 5)], torch_fn=lambda x: x.exp(),
               noncontig=True)
    check_grad(lambda x: Exp.apply(x * 2).sum(0), [(3, 2)],
               torch_fn=lambda x: (x * 2).exp().sum(0))


def test_two_inputs_two_outputs_gradcheck():
    check_grad(MulAdd.apply, [(3, 4), (3, 4)],
               torch_fn=lambda a, b: (a * b, a + b))
    # only one of the outputs used: the other's gradient is zeros
    check_grad(lambda a, b: MulAdd.apply(a, b)[0], [(5,), (5,)],
               torch_fn=lambda a, b: a * b)
    # broadcasting: backward returns the output shape, the engine sums it
    check_grad(MulAdd.apply, [(3, 4), (4,)],
               torch_fn=lambda a, b: (a * b, a + b))


def test_non_tensor_arguments_and_keywords():
    check_grad(lambda x: ScalePow.apply(x, 3, 0.5), [(4,)],
               torch_fn=lambda x: x.pow(3) * 0.5)
    x = _leaf(4)
    ScalePow.apply(x, p=2, scale=3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.detach().numpy())


def test_node_name_edges_and_needs_input_grad():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, x, y, k):
            seen["needs"] = ctx.needs_input_grad
            seen["grad_mode"] = dtrain.is_grad_enabled()
            return x * y * k

        @staticmethod
        def backward(ctx, grad):
            seen["backward_grad_mode"] = dtrain.is_grad_enabled()
            return grad, grad, None

    x, y = _leaf(3), dtrain.ones(3)
    out = Probe.apply(x, y, 2.0)
    assert seen["needs"] == (True, False, False)
    assert seen["grad_mode"] is False           # forward runs under no_grad
    assert out.grad_fn.name() == "ProbeBackward"
    assert repr(out.grad_fn).startswith("<ProbeBackward object")
    (acc, _), (none_y, _), (none_k, _) = out.grad_fn.next_functions
    assert acc.name() == "AccumulateGrad" and none_y is none_k is None
    out.sum().backward()
    assert seen["backward_grad_mode"] is False
    assert y.grad is None


def test_none_gradients_and_materialize():
    got = {}

    class Pair(Function):
        @staticmethod
        def forward(ctx, x, y, materialize):
            ctx.set_materialize_grads(materialize)
            return x * 2, y * 3

        @staticmethod
        def backward(ctx, g0, g1):
            got["g1"] = g1
            return g0 * 2, None, None

    x, y = _leaf(3), _leaf(3, seed=1)
    a, _ = Pair.apply(x, y, True)
    a.sum().backward()
    assert got["g1"] is not None and got["g1"].shape == (3,)
    assert not got["g1"].numpy().any()      # materialized zeros
    np.testing.assert_allclose(x.grad.numpy(), [2.0] * 3)
    assert y.grad is None                      # None gradient: nothing flows
    a, _ = Pair.apply(x, y, False)
    a.sum().backward()
    assert got["g1"] is None


def test_backward_exception_propagates_unchanged():
    x = _leaf(3)
    with pytest.raises(Boom, match="from backward"):
        Raises.apply(x).sum().backward()
    # the engine is usable afterwards and the pending error was consumed
    Exp.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp(x.detach().numpy()))


def test_wrong_number_of_gradients():
    class TooFew(Function):
        @staticmethod
        def forward(ctx, x, k):
            return x * k

        @staticmethod
        def backward(ctx, grad):
            return grad

    class TooMany(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad, grad

    class ExtraNone(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2, None      # trailing Nones are allowed

    x = _leaf(3)
    with pytest.raises(RuntimeError, match=r"function TooFewBackward "
                       r"returned an incorrect number of gradients "
                       r"\(expected 2, got 1\)"):
        TooFew.apply(x, 2.0).sum().backward()
    with pytest.raises(RuntimeError, match=r"expected 1, got 2"):
        TooMany.apply(x).sum().backward()
    ExtraNone.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0] * 3)


def test_bad_gradient_values():
    def fn(result):
        class Bad(Function):
            @staticmethod
            def forward(ctx, x, k):
                return x * k

            @staticmethod
            def backward(ctx, grad):
                return result(grad)
        return Bad

    x = _leaf(3)
    with pytest.raises(RuntimeError, match="different than None at "
                       "position 2, but the corresponding forward input was "
                       "not a Variable"):
        fn(lambda g: (g, g)).apply(x, 2.0).sum().backward()
    with pytest.raises(TypeError, match="BadBackward returned int"):
        fn(lambda g: (3, None)).apply(x, 2.0).sum().backward()
    with pytest.raises(RuntimeError, match="BadBackward returned an invalid "
                       "gradient at index 0"):
        fn(lambda g: (dtrain.ones(4), None)).apply(x, 2.0).sum().backward()


def test_saved_tensor_checks():
    x = _leaf(3)
    y = Exp.apply(x)
    with dtrain.no_grad():
        y.mul_(2)          # modifies the saved output in place
    with pytest.raises(RuntimeError, match="modified by an inplace "
                       "operation.*ExpBackward"):
        y.sum().backward()
    y = Exp.apply(x)
    y.sum().backward(retain_graph=True)
    y.sum().backward()     # retained: a second backward works
    np.testing.assert_allclose(x.grad.numpy(),
                               2 * np.exp(x.detach().numpy()))
    with pytest.raises(RuntimeError, match="backward through the graph a "
                       "second time"):
        y.sum().backward()
    with pytest.raises(TypeError, match="save_for_backward"):
        class SavesInt(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(3)
                return x
        SavesInt.apply(x)


def test_input_returned_unchanged_is_a_view():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 3

    x = _leaf(3)
    y = Identity.apply(x)
    assert y is not x and x.is_leaf and x.grad_fn is None
    assert y.grad_fn.name() == "IdentityBackward"
    with pytest.raises(NotImplementedError, match="view"):
        y.add_(1)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0] * 3)

    class PassSecond(Function):
        @staticmethod
        def forward(ctx, x, w):
            return x * 2, w

        @staticmethod
        def backward(ctx, gx, gw):
            return gx * 2, gw

    w = dtrain.ones(3)          # returned as is, needs no gradient itself
    a, b = PassSecond.apply(x, w)
    assert b is not w and b.requires_grad and b.grad_fn == a.grad_fn
    assert w.grad_fn is None and not w.requires_grad and w.is_leaf


def test_non_differentiable_outputs():
    got = {}

    class SortLike(Function):
        @staticmethod
        def forward(ctx, x):
            idx = x.argmax()
            doubled = x * 2
            flag = x > 0
            ctx.mark_non_differentiable(doubled)
            return x * 3, doubled, idx, flag, "label"

        @staticmethod
        def backward(ctx, g, g_doubled, g_idx, g_flag, g_label):
            got.update(doubled=g_doubled, idx=g_idx, flag=g_flag,
                       label=g_label)
            return g * 3

    x = _leaf(4)
    y, doubled, idx, flag, label = SortLike.apply(x)
    assert y.requires_grad and not doubled.requires_grad
    assert not idx.requires_grad and not flag.requires_grad
    assert label == "label"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [3.0] * 4)
    assert not got["doubled"].numpy().any() and got["label"] is None
    assert got["flag"].dtype == dtrain.bool


def test_no_record_without_grad():
    x = _leaf(3)
    with dtrain.no_grad():
        y = Exp.apply(x)
    assert y.grad_fn is None and not y.requires_grad
    y = Exp.apply(dtrain.ones(3))
    assert y.grad_fn is None


def test_autograd_grad_and_reuse_in_graph():
    x = _leaf(2, 3)
    y = Exp.apply(x)
    z = (Exp.apply(y) + y).sum()
    gx, = dtrain.autograd.grad(z, x)
    e = np.exp(x.detach().numpy())
    np.testing.assert_allclose(gx.numpy(), np.exp(e) * e + e, rtol=1e-12)
    assert x.grad is None


def test_setup_context_style_and_misuse():
    class Square(Function):
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        def backward(ctx, grad):
            x, = ctx.saved_tensors
            return 2 * x * grad

    check_grad(Square.apply, [(3,)], torch_fn=lambda x: x * x)

    class Dirty(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            return x

    class Twice(Function):             # vjp: torch's other spelling
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def vjp(ctx, grad):
            return grad * 2

    x = _leaf(2)
    Twice.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])

    class NoBackward(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

    with pytest.raises(NotImplementedError, match="backward"):
        NoBackward.apply(x).sum().backward()
    with pytest.raises(NotImplementedError, match="mark_dirty"):
        Dirty.apply(_leaf(2))
    with pytest.raises(NotImplementedError, match="forward"):
        Function.apply(_leaf(2))
    with pytest.raises(RuntimeError, match="apply"):
        Exp()


def test_exceptions_and_hooks_interleave():
    """A tensor hook's error and a Function's error use the same channel."""
    x = _leaf(3)
    y = Exp.apply(x)

    def hook(g):
        raise Boom("hook")
    y.register_hook(hook)
    with pytest.raises(Boom, match="hook"):
        y.sum().backward()


@pytest.mark.skipif(torch is None, reason="torch not installed")
def test_same_as_torch_function():
    class TExp(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            y, = ctx.saved_tensors
            return grad * y

    a = np.random.default_rng(3).uniform(-1, 1, (4, 5))
    x = dtrain.tensor(a).requires_grad_()
    tx = torch.tensor(a).requires_grad_()
    (Exp.apply(x) * dtrain.tensor(a)).sum().backward()
    (TExp.apply(tx) * torch.tensor(a)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-12)


def _live():
    gc.collect()
    return dtrain._C._live_counts()


def test_function_graphs_do_not_leak():
    x = _leaf(16, 8)
    w = _leaf(8, seed=1)

    def step():
        a, b = MulAdd.apply(x, w)
        y = Exp.apply(a) + ScalePow.apply(b, 2, 0.5)
        y.sum().backward()
        x.grad = None
        w.grad = None
        # graphs dropped without backward, retained graphs, and failures
        Exp.apply(x)
        z = Exp.apply(x).sum()
        z.backward(retain_graph=True)
        with pytest.raises(Boom):
            Raises.apply(Exp.apply(x)).sum().backward()
        x.grad = None

    step()
    refs = [sys.getrefcount(t) for t in (x, w)]
    before = _live()
    for _ in range(100):
        step()
    assert _live() == before
    assert [sys.getrefcount(t) for t in (x, w)] == refs
