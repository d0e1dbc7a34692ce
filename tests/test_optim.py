"""dtrain.optim against torch.optim: SGD, Adam and AdamW over 20 steps of
the same gradients (params and state), param groups, add_param_group,
zero_grad, state_dict round trips through dtrain.save/load, argument
errors with torch's messages, and the fused kernels' own checks.

"Matches to 1e-6" means |dtrain - torch| <= 1e-6 * (|torch| + max|torch|)
elementwise: relative to each value and to the tensor's scale (values
that cancel to near zero carry their inputs' absolute rounding error).
"""
import numpy as np
import pytest

import dtrain
import dtrain.optim as optim
from helpers import make, needs_torch, to_np, torch

pytestmark = needs_torch

STEPS = 20
TOL = {dtrain.float32: 1e-6, dtrain.float64: 1e-12,
       dtrain.float16: 2e-2, dtrain.bfloat16: 5e-2}
NP = {dtrain.float32: np.float32, dtrain.float64: np.float64,
      dtrain.float16: np.float32, dtrain.bfloat16: np.float32}
# shapes with vector tails (37, 1003), a 0-dim, an empty parameter and one
# big enough to be stepped without the GIL
SHAPES = [(37,), (3, 5), (), (0,), (1003,), (200, 201)]

SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.5),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
    dict(lr=0.05, momentum=0.5, dampening=0.1, weight_decay=0.1,
         maximize=True),
    dict(lr=0.05, momentum=0.9, nesterov=True, maximize=True),
]
ADAM_CONFIGS = [
    dict(),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.01, weight_decay=0.05, amsgrad=True, maximize=True),
    dict(lr=0.02, betas=(0.3, 0.7), eps=1e-6),   # lerp's large-weight form
    dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
]
ADAMW_CONFIGS = [
    dict(),
    dict(lr=0.01, amsgrad=True),
    dict(lr=0.01, weight_decay=0.5, maximize=True),
    dict(lr=0.01, weight_decay=0, betas=(0.5, 0.9)),
]
ALL_CONFIGS = ([("SGD", c) for c in SGD_CONFIGS]
               + [("Adam", c) for c in ADAM_CONFIGS]
               + [("AdamW", c) for c in ADAMW_CONFIGS])


def tdtype(d):
    return getattr(torch, str(d).split(".")[-1])


def assert_matches(d, t, tol, what=""):
    """dtrain tensor d vs torch tensor t (see the module docstring)."""
    a = to_np(d).astype(np.float64)
    b = t.detach().double().numpy()
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    scale = np.abs(b).max() if b.size else 0.0
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol * scale,
                               err_msg=what)


class Pair:
    """The same parameters, fed the same gradients, in dtrain and torch."""

    def __init__(self, shapes=SHAPES, dtype=dtrain.float32, seed=0):
        self.dtype = dtype
        self.rng = np.random.default_rng(seed)
        self.d, self.t = [], []
        for s in shapes:
            a = self.rng.standard_normal(s).astype(NP[dtype])
            self.d.append(dtrain.tensor(a).to(dtype).requires_grad_())
            self.t.append(torch.tensor(a).to(tdtype(dtype)).requires_grad_())

    def grads(self, skip=()):
        """Sets fresh gradients (None for the indices in skip)."""
        for i, (d, t) in enumerate(zip(self.d, self.t)):
            if i in skip:
                d.grad = t.grad = None
                continue
            g = self.rng.standard_normal(d.shape).astype(NP[self.dtype])
            d.grad = dtrain.tensor(g).to(self.dtype)
            t.grad = torch.tensor(g).to(tdtype(self.dtype))

    def check(self, dopt, topt, tol=None):
        tol = TOL[self.dtype] if tol is None else tol
        for i, (d, t) in enumerate(zip(self.d, self.t)):
            assert_matches(d, t, tol, f"param {i}")
            ds, ts = dopt.state.get(d, {}), topt.state.get(t, {})
            assert sorted(ds) == sorted(ts), f"param {i} state keys"
            for k in ts:
                assert_matches(ds[k], ts[k], 0 if k == "step" else tol,
                               f"param {i} state {k}")


def build(pair, name, kw, groups=None):
    """The optimizer in both libraries, over pair's params or, with groups
    (a list of (indices, options)), over param groups."""
    if groups is None:
        return (getattr(optim, name)(pair.d, **kw),
                getattr(torch.optim, name)(pair.t, **kw))
    dg = [dict(params=[pair.d[i] for i in ix], **o) for ix, o in groups]
    tg = [dict(params=[pair.t[i] for i in ix], **o) for ix, o in groups]
    return (getattr(optim, name)(dg, **kw),
            getattr(torch.optim, name)(tg, **kw))


def run(pair, dopt, topt, steps=STEPS, skip=lambda step: ()):
    for step in range(steps):
        pair.grads(skip(step))
        dopt.step()
        topt.step()


@pytest.fixture
def plain_flavour():
    """Runs a test on the kernels non-FMA CPUs get."""
    dtrain._C._optim_fused(0)
    yield
    dtrain._C._optim_fused(-1)


# ------------------------------------------------------------ vs torch

@pytest.mark.parametrize("dtype", [dtrain.float32, dtrain.float64])
@pytest.mark.parametrize("name,kw", ALL_CONFIGS)
def test_matches_torch(name, kw, dtype):
    pair = Pair(dtype=dtype)
    dopt, topt = build(pair, name, kw)
    run(pair, dopt, topt)
    pair.check(dopt, topt)


@pytest.mark.parametrize("name,kw", [ALL_CONFIGS[i] for i in (4, 5, 9, 13)])
def test_plain_flavour_matches_torch(name, kw, plain_flavour):
    assert not dtrain._C._optim_fused()
    pair = Pair()
    dopt, topt = build(pair, name, kw)
    run(pair, dopt, topt)
    pair.check(dopt, topt)


def test_sgd_bit_exact_on_fma_cpus():
    """Same ops, same roundings, same fused multiply-adds as ATen."""
    cap = torch.backends.cpu.get_cpu_capability()
    if not dtrain._C._optim_fused() or cap not in ("AVX2", "AVX512"):
        pytest.skip("needs the fused flavour on both sides")
    for kw in SGD_CONFIGS:
        pair = Pair()
        dopt, topt = build(pair, "SGD", kw)
        run(pair, dopt, topt)
        pair.check(dopt, topt, tol=0)


def test_adam_moments_bit_exact_on_fma_cpus():
    """Without L2 decay the moments depend on the gradients alone, and only
    torch's sqrt (MKL's, not correctly rounded) stands between dtrain's
    params and torch's: the moments must agree bit for bit."""
    cap = torch.backends.cpu.get_cpu_capability()
    if not dtrain._C._optim_fused() or cap not in ("AVX2", "AVX512"):
        pytest.skip("needs the fused flavour on both sides")
    for name, kw in ALL_CONFIGS:
        if name == "SGD" or (name == "Adam" and kw.get("weight_decay") and
                             not kw.get("decoupled_weight_decay")):
            continue
        pair = Pair()
        dopt, topt = build(pair, name, kw)
        run(pair, dopt, topt)
        for d, t in zip(pair.d, pair.t):
            for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
                if k in topt.state[t]:
                    assert_matches(dopt.state[d][k], topt.state[t][k], 0, k)


@pytest.mark.parametrize("dtype", [dtrain.float16, dtrain.bfloat16])
@pytest.mark.parametrize("name,kw", [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.01)),
    ("Adam", dict(lr=0.01, eps=1e-3, amsgrad=True)),
    ("AdamW", dict(lr=0.01, eps=1e-3)),
])
def test_half_params(name, kw, dtype):
    """float32 math, state in the param's dtype; torch rounds after every
    op, so the two agree to a few half-precision ulps."""
    pair = Pair(shapes=[(37,), (4, 9)], dtype=dtype)
    dopt, topt = build(pair, name, kw)
    run(pair, dopt, topt)
    pair.check(dopt, topt)
    for p in pair.d:
        assert all(v.dtype == dtype for k, v in dopt.state[p].items()
                   if k != "step")


def test_param_groups_and_skipped_grads():
    pair = Pair(shapes=[(5,), (3, 4), (7,), (2,)])
    groups = [([0, 1], dict(lr=0.1, momentum=0.5)),
              ([2, 3], dict(lr=0.01, nesterov=True, momentum=0.9))]
    dopt, topt = build(pair, "SGD", dict(lr=0.3), groups)
    # param 3 has no grad for the first 5 steps, param 1 never does
    run(pair, dopt, topt, skip=lambda s: (1, 3) if s < 5 else (1,))
    pair.check(dopt, topt)
    assert pair.d[1] not in dopt.state
    assert dopt.param_groups[0]["lr"] == 0.1
    assert dopt.param_groups[1]["dampening"] == 0


def test_adam_groups_with_own_options():
    pair = Pair(shapes=[(6,), (6,), (3, 3)])
    groups = [([0], dict(lr=0.05, amsgrad=True)),
              ([1, 2], dict(betas=(0.8, 0.99), weight_decay=0.1))]
    dopt, topt = build(pair, "Adam", dict(lr=0.01), groups)
    run(pair, dopt, topt)
    pair.check(dopt, topt)


def test_add_param_group():
    pair = Pair(shapes=[(8,), (5,), (3,)])
    dopt, topt = build(pair, "Adam", dict(lr=0.01), [([0], {})])
    run(pair, dopt, topt, steps=5, skip=lambda s: (1, 2))
    dopt.add_param_group({"params": [pair.d[1], pair.d[2]], "lr": 0.1,
                          "amsgrad": True})
    topt.add_param_group({"params": [pair.t[1], pair.t[2]], "lr": 0.1,
                          "amsgrad": True})
    assert dopt.param_groups[1]["betas"] == (0.9, 0.999)
    run(pair, dopt, topt, steps=15)
    pair.check(dopt, topt)


def test_add_param_group_errors():
    p, q = dtrain.zeros(2).requires_grad_(), dtrain.zeros(2).requires_grad_()
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="^some parameters appear in more "
                       "than one parameter group$"):
        opt.add_param_group({"params": [p]})
    with pytest.raises(TypeError, match="param_group must be a dict"):
        opt.add_param_group([q])
    with pytest.raises(TypeError, match="ordered collections"):
        opt.add_param_group({"params": {q}})
    with pytest.raises(TypeError, match="optimizer can only optimize "
                       "Tensors, but one of the params is builtins.int"):
        opt.add_param_group({"params": [q, 3]})
    with pytest.warns(UserWarning, match="duplicate parameters"):
        opt.add_param_group({"params": [q, q]})


def test_named_params():
    p, q = dtrain.zeros(2).requires_grad_(), dtrain.zeros(3).requires_grad_()
    opt = optim.Adam([("a", p), ("b", q)])
    assert opt.param_groups[0]["param_names"] == ["a", "b"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["a", "b"]


def test_constructor_errors():
    p = dtrain.zeros(2).requires_grad_()
    with pytest.raises(ValueError, match="^optimizer got an empty parameter "
                       "list$"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="should be an iterable of Tensors or "
                       "dicts, but got"):
        optim.Adam(p)
    with pytest.raises(ValueError, match="^can't optimize a non-leaf "
                       "Tensor$"):
        optim.SGD([p.view(2, 1)], lr=0.1)


# bad arguments: (class, args, kwargs); dtrain must raise what torch raises
BAD_ARGS = [
    ("SGD", dict(lr=-0.1)),
    ("SGD", dict(lr=0.1, momentum=-0.5)),
    ("SGD", dict(lr=0.1, weight_decay=-1e-4)),
    ("SGD", dict(lr=0.1, nesterov=True)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True)),
    ("SGD", dict(lr=0.1, foreach=True, fused=True)),
    ("Adam", dict(lr=-1e-3)),
    ("Adam", dict(eps=-1e-8)),
    ("Adam", dict(betas=(1.0, 0.999))),
    ("Adam", dict(betas=(0.9, -0.1))),
    ("Adam", dict(betas=(0.9, 1.5))),
    ("Adam", dict(weight_decay=-0.1)),
    ("Adam", dict(betas=(0, 0.9))),
    ("AdamW", dict(lr=-1.0)),
    ("AdamW", dict(betas=(0.9, 1.0))),
    ("AdamW", dict(weight_decay=-0.01)),
]


@pytest.mark.parametrize("name,kw", BAD_ARGS)
def test_bad_arguments_raise_like_torch(name, kw):
    with pytest.raises(Exception) as texc:
        getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)], **kw)
    with pytest.raises(Exception) as dexc:
        getattr(optim, name)([dtrain.zeros(2).requires_grad_()], **kw)
    assert dexc.type is texc.type
    assert str(dexc.value) == str(texc.value)


def test_unsupported_modes():
    p = dtrain.zeros(2).requires_grad_()
    with pytest.raises(NotImplementedError, match="differentiable"):
        optim.SGD([p], differentiable=True)
    with pytest.raises(NotImplementedError, match="capturable"):
        optim.AdamW([p], capturable=True)
    # foreach/fused are accepted: the kernel is fused already
    optim.Adam([p], fused=True).step()
    optim.SGD([p], foreach=True).step()


# ------------------------------------------------------------ zero_grad, step

def test_zero_grad():
    pair = Pair(shapes=[(3,), (2, 2)])
    opt = optim.SGD(pair.d, lr=0.1)
    pair.grads()
    g0 = pair.d[0].grad
    opt.zero_grad(set_to_none=False)
    assert pair.d[0].grad.data_ptr() == g0.data_ptr()   # zeroed in place
    assert to_np(g0).tolist() == [0, 0, 0]
    opt.zero_grad()
    assert all(p.grad is None for p in pair.d)
    before = [to_np(p) for p in pair.d]
    opt.step()   # every grad None: nothing moves, no state
    assert all(np.array_equal(b, to_np(p)) for b, p in zip(before, pair.d))
    assert len(opt.state) == 0


def test_step_closure_and_grad_mode():
    p = dtrain.tensor([1.0, -2.0]).requires_grad_()
    opt = optim.SGD([p], lr=0.5)
    seen = []

    def closure():
        seen.append(dtrain.is_grad_enabled())
        p.grad = dtrain.tensor([1.0, 1.0])
        return 3.5

    assert opt.step(closure) == 3.5
    assert seen == [True]
    assert to_np(p).tolist() == [0.5, -2.5]
    assert p.is_leaf and p.requires_grad and p.grad_fn is None
    assert opt.step() is None


def test_step_bumps_versions():
    p = dtrain.zeros(4).requires_grad_()
    p.grad = dtrain.ones(4)
    opt = optim.Adam([p], amsgrad=True)
    v0 = p._version
    opt.step()
    st = opt.state[p]
    opt.step()
    assert p._version >= v0 + 2
    assert st["exp_avg"]._version >= 1 and st["max_exp_avg_sq"]._version >= 1
    assert st["step"].item() == 2.0


def test_parameter_subclass():
    from dtrain.nn.parameter import Parameter
    w = Parameter(dtrain.ones(3))
    w.grad = dtrain.full((3,), 2.0)
    optim.SGD([w], lr=0.25).step()
    assert to_np(w).tolist() == [0.5, 0.5, 0.5]


def test_tensor_lr():
    pair = Pair(shapes=[(6,)])
    dopt = optim.SGD(pair.d, lr=dtrain.tensor(0.1), momentum=0.9)
    topt = torch.optim.SGD(pair.t, lr=torch.tensor(0.1), momentum=0.9)
    run(pair, dopt, topt, steps=5)
    pair.check(dopt, topt)


# ------------------------------------------------------------ kernel checks

def test_noncontiguous_grad_is_read_through_a_copy():
    p = dtrain.tensor(np.arange(6, dtype=np.float32)).requires_grad_()
    g = make((6,), noncontig=True)
    p.grad = g
    optim.SGD([p], lr=0.5).step()
    np.testing.assert_array_equal(
        to_np(p), np.arange(6, dtype=np.float32) - np.float32(0.5) * to_np(g))


def test_noncontiguous_param_is_refused():
    q = make((4, 6), noncontig=True).requires_grad_()
    q.grad = dtrain.ones(4, 6)
    with pytest.raises(RuntimeError, match="sgd: .*contiguous"):
        optim.SGD([q], lr=0.1).step()
    with pytest.raises(RuntimeError, match="adamw: .*contiguous"):
        optim.AdamW([q]).step()


def test_integer_param_is_refused():
    q = dtrain.tensor([1, 2])
    q.grad = dtrain.tensor([1, 1])
    with pytest.raises(TypeError, match="sgd: parameters must be floating "
                       "point, got a int64 parameter"):
        optim.SGD([q], lr=0.1).step()


def test_corrupt_state_is_refused():
    p = dtrain.zeros(2).requires_grad_()
    p.grad = dtrain.ones(2)
    opt = optim.Adam([p])
    opt.step()
    opt.state[p]["exp_avg"] = dtrain.zeros(3)
    with pytest.raises(RuntimeError, match=r"adam: exp_avg has shape \(3,\) "
                       r"but the param has shape \(2,\)"):
        opt.step()
    opt.state[p]["exp_avg"] = dtrain.zeros(2, dtype=dtrain.float64)
    with pytest.raises(RuntimeError, match="adam: exp_avg has dtype float64"):
        opt.step()
    opt.state[p]["exp_avg"] = dtrain.zeros(2)
    opt.state[p]["step"] = dtrain.zeros(2)
    with pytest.raises(RuntimeError, match="adam: state 'step' must be a "
                       "one-element"):
        opt.step()
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.step()
    opt.state[p]["momentum_buffer"] = dtrain.zeros(2, 2)
    with pytest.raises(RuntimeError, match="sgd: momentum_buffer has shape"):
        opt.step()


def test_glue_argument_errors():
    p = dtrain.zeros(2).requires_grad_()
    with pytest.raises(ValueError, match="'grads' has 0 entries"):
        dtrain._C._sgd_step([p], [], None, 0.1, 0.0, 0.0, 0.0, False, False)
    with pytest.raises(TypeError, match=r"grads\[0\] must be a Tensor"):
        dtrain._C._sgd_step([p], [1.0], None, 0.1, 0.0, 0.0, 0.0, False,
                            False)
    with pytest.raises(TypeError, match="'momentum_buffers' must be a list"):
        dtrain._C._sgd_step([p], [p], None, 0.1, 0.9, 0.0, 0.0, False, False)


# ------------------------------------------------------------ state_dict

def test_state_dict_mirrors_torch():
    pair = Pair(shapes=[(3,), (2, 2), (4,)])
    groups = [([0], dict(lr=0.1)), ([1, 2], dict(amsgrad=True))]
    dopt, topt = build(pair, "Adam", dict(lr=0.01), groups)
    run(pair, dopt, topt, steps=3, skip=lambda s: (2,))
    dsd, tsd = dopt.state_dict(), topt.state_dict()
    assert list(dsd) == ["state", "param_groups"]
    assert dsd["param_groups"] == tsd["param_groups"]
    assert sorted(dsd["state"]) == sorted(tsd["state"]) == [0, 1]
    for i, ts in tsd["state"].items():
        ds = dsd["state"][i]
        assert list(ds) == list(ts)
        assert ds["step"].shape == () and ds["step"].dtype == dtrain.float32
        assert ds["step"].item() == ts["step"].item() == 3.0
    sgd_d, sgd_t = build(Pair(shapes=[(2,)]), "SGD",
                         dict(lr=0.1, momentum=0.9))
    assert sgd_d.state_dict()["param_groups"] == \
        sgd_t.state_dict()["param_groups"]


@pytest.mark.parametrize("name,kw", [
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01)),
])
def test_state_dict_round_trip(name, kw, tmp_path):
    """save at step 10, load into a new optimizer over copies of the
    params, continue: identical to the uninterrupted run."""
    shapes = [(7,), (3, 3)]
    ref, other = Pair(shapes, seed=1), Pair(shapes, seed=1)
    groups = [([0], dict(lr=0.02)), ([1], {})]
    ref_opt = build(ref, name, kw, groups)[0]
    opt = build(other, name, kw, groups)[0]
    for _ in range(10):
        ref.grads()
        ref_opt.step()
        other.grads()
        opt.step()
    path = tmp_path / "optim.ckpt"
    dtrain.save(opt.state_dict(), path)
    params = [p.detach().clone().requires_grad_() for p in other.d]
    other.d = params
    resumed = getattr(optim, name)(
        [{"params": [params[0]], "lr": 0.5}, {"params": [params[1]]}],
        lr=0.3)
    resumed.load_state_dict(dtrain.load(path))
    assert resumed.param_groups[0]["lr"] == 0.02
    assert resumed.param_groups[0]["params"][0] is params[0]
    for _ in range(10):
        ref.grads()
        ref_opt.step()
        other.grads()
        resumed.step()
    for a, b in zip(ref.d, params):
        np.testing.assert_array_equal(to_np(a), to_np(b))
        for k, v in ref_opt.state[a].items():
            np.testing.assert_array_equal(to_np(v),
                                          to_np(resumed.state[b][k]))


def test_load_state_dict_errors_match_torch():
    p, q = dtrain.zeros(2).requires_grad_(), dtrain.zeros(3).requires_grad_()
    tp, tq = torch.zeros(2, requires_grad=True), torch.zeros(3,
                                                            requires_grad=True)
    sd = optim.SGD([p, q], lr=0.1).state_dict()
    tsd = torch.optim.SGD([tp, tq], lr=0.1).state_dict()
    cases = [(lambda: optim.SGD([{"params": [p]}, {"params": [q]}], lr=0.1),
              lambda: torch.optim.SGD([{"params": [tp]}, {"params": [tq]}],
                                      lr=0.1)),
             (lambda: optim.SGD([p], lr=0.1),
              lambda: torch.optim.SGD([tp], lr=0.1))]
    for make_d, make_t in cases:
        with pytest.raises(ValueError) as texc:
            make_t().load_state_dict(tsd)
        with pytest.raises(ValueError) as dexc:
            make_d().load_state_dict(sd)
        assert str(dexc.value) == str(texc.value)


def test_load_casts_state_to_param_dtype():
    p64 = dtrain.zeros(3, dtype=dtrain.float64).requires_grad_()
    p64.grad = dtrain.ones(3, dtype=dtrain.float64)
    src = optim.Adam([p64])
    src.step()
    p32 = dtrain.zeros(3).requires_grad_()
    dst = optim.Adam([p32])
    dst.load_state_dict(src.state_dict())
    st = dst.state[p32]
    assert st["exp_avg"].dtype == dtrain.float32
    assert st["step"].dtype == dtrain.float32   # "step" is never cast
    p32.grad = dtrain.ones(3)
    dst.step()
    assert st["step"].item() == 2.0


def test_python_number_step_is_upgraded():
    """Old checkpoints kept "step" as a number; torch turns it into a
    tensor on load, and so does dtrain."""
    p = dtrain.zeros(2).requires_grad_()
    p.grad = dtrain.ones(2)
    opt = optim.Adam([p])
    opt.step()
    sd = opt.state_dict()
    sd["state"][0]["step"] = 1
    fresh = optim.Adam([p])
    fresh.load_state_dict(sd)
    assert fresh.state[p]["step"].dtype == dtrain.float32
    fresh.step()
    assert fresh.state[p]["step"].item() == 2.0


def test_steps_do_not_leak():
    import gc

    def live():
        gc.collect()
        return dtrain._C._live_counts()

    p = dtrain.zeros(6).requires_grad_()
    q = dtrain.zeros(2, 3).requires_grad_()
    q.grad = dtrain.ones(3, 2).t()            # non-contiguous: copied
    opts = [optim.SGD([p, q], lr=0.1, momentum=0.9, nesterov=True),
            optim.Adam([p, q], amsgrad=True), optim.AdamW([p, q])]
    p.grad = dtrain.ones(6)
    bad = optim.Adam([dtrain.zeros(2).requires_grad_()])
    bad.param_groups[0]["params"][0].grad = dtrain.ones(2)
    bad.step()
    bad.state[bad.param_groups[0]["params"][0]]["exp_avg"] = dtrain.zeros(3)

    def once():
        for o in opts:
            o.step()
        with pytest.raises(RuntimeError):
            bad.step()

    once()
    before = live()
    for _ in range(100):
        once()
    assert live() == before
