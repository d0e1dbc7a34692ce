"""One helper checks an op's forward and every input gradient:

    check_grad(lambda x, w: x @ w, [(4, 3), (3, 5)])
    check_grad(lambda x: x.sum(1), [(2, 3)], torch_fn=lambda x: x.sum(1))

- inputs are float64 by default (shapes, or ready tensors for index args);
- `noncontig=True` makes every float input a transposed/strided view;
- gradients are compared with central finite differences of
  sum(fn(x) * upstream) for a random upstream gradient;
- when torch is importable, forward and gradients are also compared with
  torch_fn (default: fn itself, called on torch tensors), in float64 and,
  with `check_float32=True`, in float32.
"""
import numpy as np

import dtrain
from helpers import torch, torch_dtype


def _make_leaf(shape, rng, dtype, noncontig, low, high):
    a = rng.uniform(low, high, size=shape)
    if noncontig and len(shape) >= 1:
        # a leaf whose memory is laid out reversed: every dim strided
        big = np.ascontiguousarray(np.transpose(a))
        t = dtrain.tensor(big, dtype=dtype).permute(
            *reversed(range(len(shape))))
        t = t.detach()
    else:
        t = dtrain.tensor(a, dtype=dtype)
    return t.requires_grad_()


def _to_torch(t, requires_grad):
    if not isinstance(t, dtrain.Tensor):
        return t
    out = torch.tensor(t.detach().double().numpy() if t.dtype != dtrain.bfloat16
                       else t.detach().float().numpy()).to(torch_dtype(t.dtype))
    return out.requires_grad_(requires_grad and t.requires_grad)


def _outputs(res):
    return list(res) if isinstance(res, (tuple, list)) else [res]


def _scalar_loss(res, ups):
    total = None
    for r, u in zip(_outputs(res), ups):
        if r is None or not r.dtype.is_floating_point:
            continue
        term = (r * u).sum()
        total = term if total is None else total + term
    return total


def check_grad(fn, specs, torch_fn=None, dtype=dtrain.float64, seed=0,
               noncontig=False, eps=1e-6, rtol=1e-5, atol=1e-7, low=-2.0,
               high=2.0, check_float32=True):
    """specs: a shape tuple (a random leaf requiring grad) or anything else
    (passed through: index tensors, ints...)."""
    rng = np.random.default_rng(seed)
    inputs = [(_make_leaf(s, rng, dtype, noncontig, low, high)
               if isinstance(s, tuple) else s) for s in specs]
    leaves = [x for x in inputs if isinstance(x, dtrain.Tensor) and
              x.requires_grad]
    res = fn(*inputs)
    ups = [dtrain.tensor(rng.standard_normal(tuple(r.shape)), dtype=r.dtype)
           if r is not None and r.dtype.is_floating_point else None
           for r in _outputs(res)]
    loss = _scalar_loss(res, ups)
    loss.backward()
    grads = [x.grad for x in leaves]
    _check_fd(fn, inputs, leaves, grads, ups, eps, rtol, atol)
    if torch is not None:
        tf = torch_fn or fn
        _check_torch(tf, inputs, res, grads, ups, rtol, atol)
        if check_float32 and dtype == dtrain.float64:
            _check_float32(fn, tf, inputs, rng)
    return res, grads


def _check_fd(fn, inputs, leaves, grads, ups, eps, rtol, atol):
    with dtrain.no_grad():
        for x, g in zip(leaves, grads):
            assert g is not None, "leaf got no gradient"
            assert tuple(g.shape) == tuple(x.shape), (g.shape, x.shape)
            num = np.zeros(x.numel())
            base = x.detach().contiguous().numpy().reshape(-1).copy()
            for i in range(x.numel()):
                vals = []
                for d in (eps, -eps):
                    p = base.copy()
                    p[i] += d
                    x.detach().copy_(dtrain.tensor(p.reshape(tuple(x.shape))))
                    vals.append(_scalar_loss(fn(*inputs), ups).item())
                num[i] = (vals[0] - vals[1]) / (2 * eps)
            x.detach().copy_(dtrain.tensor(base.reshape(tuple(x.shape))))
            np.testing.assert_allclose(
                g.double().numpy().reshape(-1), num, rtol=1e-4,
                atol=max(atol, 1e-6), err_msg="gradient vs finite differences")


def _check_torch(tf, inputs, res, grads, ups, rtol, atol):
    tin = [_to_torch(x, True) for x in inputs]
    tres = tf(*tin)
    for r, t in zip(_outputs(res), _outputs(tres)):
        if r is None:
            continue
        np.testing.assert_allclose(r.detach().double().numpy(),
                                   t.detach().double().numpy(), rtol=rtol,
                                   atol=atol, err_msg="forward vs torch")
    tups = [_to_torch(u, False) for u in ups]
    _scalar_loss(tres, tups).backward()
    tleaves = [t for t, x in zip(tin, inputs) if isinstance(x, dtrain.Tensor)
               and x.requires_grad]
    for g, t in zip(grads, tleaves):
        np.testing.assert_allclose(g.double().numpy(),
                                   t.grad.double().numpy(), rtol=rtol,
                                   atol=atol, err_msg="gradient vs torch")


def _check_float32(fn, tf, inputs, rng):
    """The same op in float32 against torch float32 (default tolerance)."""
    ins = [x.detach().float().requires_grad_() if isinstance(x, dtrain.Tensor)
           and x.requires_grad else x for x in inputs]
    res = fn(*ins)
    ups = [dtrain.tensor(rng.standard_normal(tuple(r.shape)).astype(np.float32))
           if r is not None and r.dtype.is_floating_point else None
           for r in _outputs(res)]
    _scalar_loss(res, ups).backward()
    tin = [_to_torch(x, True) for x in ins]
    tres = tf(*tin)
    _scalar_loss(tres, [_to_torch(u, False) for u in ups]).backward()
    tleaves = [t for t, x in zip(tin, ins) if isinstance(x, dtrain.Tensor)
               and x.requires_grad]
    leaves = [x for x in ins if isinstance(x, dtrain.Tensor) and x.requires_grad]
    for x, t in zip(leaves, tleaves):
        np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-4,
                                   atol=1e-5, err_msg="float32 gradient vs torch")
