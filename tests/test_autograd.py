"""The autograd engine itself (csrc/autograd/): graph bookkeeping, hooks,
end-of-backward callbacks, grad mode, the errors PyTorch users know, and
that graphs are freed. Op gradients are tested per family with
tests/gradcheck.py."""
import gc

import pytest

import dtrain
from helpers import needs_torch, torch


def leaf(*values):
    return dtrain.tensor(list(values)).requires_grad_()


def test_leaf_and_graph_attributes():
    x = leaf(1.0, 2.0)
    y = (x * 3).sum()
    assert x.is_leaf and x.grad_fn is None and x.requires_grad
    assert not y.is_leaf and y.grad_fn.name() == "SumBackward0"
    (fn, nr), = y.grad_fn.next_functions
    assert fn.name() == "MulBackward0" and nr == 0
    assert fn.next_functions[0][0].name() == "AccumulateGrad"
    assert not dtrain.tensor([1.0]).requires_grad


def test_accumulates_across_backward_calls():
    x = leaf(1.0, 2.0)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    assert x.grad.tolist() == [2 + 3, 4 + 3]
    x.grad = None
    (x * 2).sum().backward()
    assert x.grad.tolist() == [2, 2]


def test_backward_with_gradient_and_shared_subgraph():
    x = leaf(1.0, 2.0, 3.0)
    y = x * 2
    z = y * y + y          # y used twice: gradients add up
    z.backward(dtrain.tensor([1.0, 0.0, 2.0]))
    assert x.grad.tolist() == [(8 * 1 + 2) * 1, 0.0, (8 * 3 + 2) * 2]


def test_errors_pytorch_users_know():
    x = leaf(1.0, 2.0)
    with pytest.raises(RuntimeError, match="implicitly created only for "
                       "scalar outputs"):
        (x * 2).backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        dtrain.tensor([1.0]).sum().backward()
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a "
                       "second time"):
        y.backward()
    y = (x.exp() * 2).sum()
    y.backward(retain_graph=True)
    y.backward()  # retained: a second pass works
    with pytest.raises(RuntimeError, match="Mismatch in shape"):
        (x * 2).backward(dtrain.ones(3))
    with pytest.raises(RuntimeError, match="leaf variables"):
        (x * 2).requires_grad_(False)
    with pytest.raises(RuntimeError, match="floating point"):
        dtrain.tensor([1, 2]).requires_grad_()


def test_inplace_version_check():
    x = leaf(1.0, 2.0)
    y = x.exp()
    y.add_(1)  # exp saved its output
    with pytest.raises(RuntimeError, match="modified by an inplace "
                       "operation"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="leaf Variable that requires "
                       "grad"):
        x.mul_(2)


def test_autograd_grad_leaves_dot_grad_alone():
    x, w = leaf(1.0, 2.0), leaf(3.0, 4.0)
    loss = (x * w).sum()
    gx, gw = dtrain.autograd.grad(loss, (x, w))
    assert gx.tolist() == [3, 4] and gw.tolist() == [1, 2]
    assert x.grad is None and w.grad is None
    unused = leaf(0.0)
    with pytest.raises(RuntimeError, match="not have been used"):
        dtrain.autograd.grad((x * 2).sum(), (x, unused))
    g = dtrain.autograd.grad((x * 2).sum(), (x, unused), allow_unused=True)
    assert g[1] is None
    h = (x * x).sum()
    (gh,) = dtrain.autograd.grad(h, x)
    assert gh.tolist() == [2, 4]


def test_grad_mode_context_and_decorator():
    x = leaf(1.0)
    with dtrain.no_grad():
        assert not (x * 2).requires_grad
        with dtrain.enable_grad():
            assert (x * 2).requires_grad
    assert dtrain.is_grad_enabled()

    @dtrain.no_grad()
    def f(t):
        return t * 2
    assert not f(x).requires_grad
    dtrain.set_grad_enabled(False)
    try:
        assert not (x * 2).requires_grad
    finally:
        dtrain.set_grad_enabled(True)
    with dtrain.set_grad_enabled(False):
        assert not (x + 1).requires_grad
    assert (x + 1).requires_grad


def test_detach_shares_memory_and_cuts_history():
    x = leaf(1.0, 2.0)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    d.zero_()
    assert y.tolist() == [0, 0]       # same memory
    y2 = (x * 2)
    y2.detach_()
    assert y2.is_leaf and not y2.requires_grad


def test_tensor_hooks_modify_gradients():
    x = leaf(1.0, 2.0)
    seen = []
    h = x.register_hook(lambda g: seen.append(g.tolist()) or g * 10)
    y = x * 1
    y.register_hook(lambda g: g + 1)
    y.sum().backward()
    assert seen == [[2.0, 2.0]] and x.grad.tolist() == [20, 20]
    h.remove()
    x.grad = None
    (x * 1).sum().backward()
    assert x.grad.tolist() == [1, 1]


def test_post_accumulate_hooks_fire_after_grad_is_written_in_order():
    a, b = leaf(1.0), leaf(2.0)
    order = []
    a.register_post_accumulate_grad_hook(
        lambda p: order.append(("a", p.grad.tolist())))
    b.register_post_accumulate_grad_hook(
        lambda p: order.append(("b", p.grad.tolist())))
    # b's gradient is ready first (it is used last in the forward)
    loss = ((a * 2).exp() * b).sum()
    loss.backward()
    assert [name for name, _ in order] == ["b", "a"]
    assert order[1][1] == a.grad.tolist()
    with pytest.raises(RuntimeError, match="non-leaf"):
        (a * 2).register_post_accumulate_grad_hook(lambda p: None)


def test_end_of_backward_callback_runs_once_after_everything():
    x = leaf(1.0, 2.0)
    events = []

    def hook(p):
        events.append("acc")
        dtrain.autograd.queue_callback(lambda: events.append(
            ("end", x.grad.tolist())))
    x.register_post_accumulate_grad_hook(hook)
    (x * 3).sum().backward()
    assert events == ["acc", ("end", [3.0, 3.0])]
    with pytest.raises(RuntimeError, match="during backward"):
        dtrain.autograd.queue_callback(lambda: None)


def test_hook_exception_propagates_unchanged():
    x = leaf(1.0)

    def bad(g):
        raise ValueError("from the hook")
    x.register_hook(bad)
    with pytest.raises(ValueError, match="from the hook"):
        (x * 2).sum().backward()


def test_deep_chain_does_not_overflow_the_stack():
    x = leaf(1.0)
    y = x
    for _ in range(20000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]
    del y
    gc.collect()


def test_graph_is_freed():
    gc.collect()
    base = dtrain._C._live_counts()[0]
    for _ in range(50):
        x = leaf(1.0, 2.0)
        loss = ((x * 2).exp().sum() + x.sum()) * 3
        loss.backward()
        del x, loss
    gc.collect()
    assert dtrain._C._live_counts()[0] == base


@needs_torch
def test_mixed_dtype_gradients_have_the_input_dtype():
    x = dtrain.tensor([1.0, 2.0], dtype=dtrain.float16).requires_grad_()
    w = dtrain.tensor([3.0, 4.0]).requires_grad_()
    (x * w).sum().backward()
    assert x.grad.dtype == dtrain.float16 and w.grad.dtype == dtrain.float32
    tx = torch.tensor([1.0, 2.0], dtype=torch.float16, requires_grad=True)
    tw = torch.tensor([3.0, 4.0], requires_grad=True)
    (tx * tw).sum().backward()
    assert x.grad.tolist() == tx.grad.tolist()
