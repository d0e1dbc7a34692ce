"""DDP communication hooks (dtrain.distributed.algorithms.ddp_comm_hooks)
and GradBucket.

In-process: GradBucket, PowerSGDState's checks, the compression rule and
Gram-Schmidt (against torch's), DDPCommHookType. Multi-process: this file
run as a script on 2 and 3 real ranks over Gloo (`worker` below) calls the
hooks directly on GradBuckets built from per-rank inputs, which every rank
can compute for every rank from (case, rank): allreduce/fp16/bf16 give
the mean; PowerSGD matches a NumPy simulation of all the ranks (same
seeds, same Q draws), reproduces a mean of rank <= r exactly, keeps the
error-feedback identity, warm-starts Q, sends vectors uncompressed. With
torch installed, a 2-rank run also runs torch's own hooks over a torch
Gloo group on the same inputs (torch.randn patched to hand torch the
draws dtrain makes) and compares.
"""
import math
import os
import sys
from datetime import timedelta

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import dtrain  # noqa: E402
from dtrain.distributed import GradBucket  # noqa: E402
from dtrain.distributed.algorithms import ddp_comm_hooks  # noqa: E402
from dtrain.distributed.algorithms.ddp_comm_hooks import (  # noqa: E402
    default_hooks as default, powerSGD_hook as psgd)
from dtrain.nn import Parameter  # noqa: E402
from helpers import free_port, launch_ranks  # noqa: E402


def launch(n, args, timeout=60):
    """Runs this file as `n` ranks (a second port for torch's group);
    returns [(returncode, stdout, stderr)]."""
    return launch_ranks(__file__, n, args, timeout,
                        env={"TORCH_PORT": str(free_port())})


def make_bucket(index, flat, shapes, is_last=True, dtype=dtrain.float32):
    params = [Parameter(dtrain.zeros(s)) for s in shapes]
    return GradBucket(index, dtrain.tensor(np.asarray(flat), dtype=dtype),
                      params, is_last)


def np_of(t):
    return (t.float() if t.dtype == dtrain.bfloat16 else t).numpy().copy()


# ---------------------------------------------------------------------------
# NumPy simulations of PowerSGD over all the ranks at once


def np_orthogonalize(m, eps=0):
    """torch's _orthogonalize_gram_schmidt on a (batch, n, r) array."""
    for i in range(m.shape[2]):
        col = m[:, :, i:i + 1]
        norm = np.linalg.norm(col, axis=1, keepdims=True)
        col /= (norm + eps) if eps else norm
        if i + 1 < m.shape[2]:
            rest = m[:, :, i + 1:]
            rest -= np.sum(col * rest, axis=1, keepdims=True) * col


class RefPowerSGD:
    """powerSGD_hook (batched=False) or batched_powerSGD_hook
    (batched=True) for one bucket, every rank simulated; float64."""

    def __init__(self, world, shapes, r=1, start=2, rate=2, ef=True,
                 warm=True, eps=0, seed=0, same_shape=False, batched=False):
        self.world, self.shapes, self.r, self.start = world, shapes, r, start
        self.rate, self.ef, self.warm, self.eps = rate, ef, warm, eps
        self.same_shape, self.batched = same_shape, batched
        self.rng = np.random.RandomState(seed)
        self.it, self.err, self.q = 0, [None] * world, None

    def draw(self, shapes):
        seed = int(self.rng.randint(1_000_000_000))
        g = dtrain.Generator().manual_seed(seed)
        return [dtrain.randn(*s, generator=g, dtype=dtrain.float64).numpy()
                for s in shapes]

    def step(self, xs):
        xs = [np.array(x, dtype=np.float64) for x in xs]
        if self.it < self.start:
            self.it += 1
            mean = sum(xs) / self.world
            return [mean.copy() for _ in xs]
        if self.batched:
            length = xs[0].size
            side = math.ceil(math.sqrt(length))
            padded = []
            for x in xs:
                p = np.zeros(side * side)
                p[:length] = x
                padded.append(p)
            xs = padded
        if self.ef:
            xs = [x + e if e is not None else x for x, e in zip(xs, self.err)]
        outs = ([np.zeros_like(x) for x in xs] if self.batched
                else self.layerwise_uncompressed(xs))
        if self.batched:
            batches = [((side, side), [(0, side * side)])]
        else:
            batches = self.layerwise_batches()
        if self.q is None or not self.warm:
            self.q = self.draw([(len(sl), m, rr) for (n, m, rr), sl
                                in self.batch_dims(batches)])
        new_q = []
        for ((n, m, rr), slices), q in zip(self.batch_dims(batches), self.q):
            np_orthogonalize(q, self.eps)
            mats = [np.stack([x[a:a + n * m].reshape(n, m) for a, _ in slices])
                    for x in xs]
            p = sum(mm @ q for mm in mats)
            np_orthogonalize(p, self.eps)
            q = sum(np.swapaxes(mm, 1, 2) @ p for mm in mats) / self.world
            approx = p @ np.swapaxes(q, 1, 2)
            for o in outs:
                for (a, _), ap in zip(slices, approx):
                    o[a:a + n * m] = ap.reshape(-1)
            new_q.append(q)
        self.q = new_q if self.warm else None
        if self.ef:
            self.err = [x - o for x, o in zip(xs, outs)]
        self.it += 1
        if self.batched:
            outs = [o[:length] for o in outs]
        return outs

    def batch_dims(self, batches):
        for (n, m), slices in batches:
            yield (n, m, min(n, m, self.r)), slices

    def layerwise_split(self):
        comp, unc, off = [], [], 0
        for s in self.shapes:
            numel = int(np.prod(s))
            if len(s) == 0 or numel == 0:
                unc.append((off, numel))
            else:
                n, m = s[0], numel // s[0]
                rr = min(n, m, self.r)
                if (n + m) * rr * self.rate < n * m:
                    comp.append(((n, m), (off, numel)))
                else:
                    unc.append((off, numel))
            off += numel
        return comp, unc

    def layerwise_uncompressed(self, xs):
        _, unc = self.layerwise_split()
        outs = [x.copy() for x in xs]
        for a, k in unc:
            mean = sum(x[a:a + k] for x in xs) / self.world
            for o in outs:
                o[a:a + k] = mean
        return outs

    def layerwise_batches(self):
        comp, _ = self.layerwise_split()
        groups = {}
        for shape, sl in comp:
            groups.setdefault(shape, []).append(sl)
        out = []
        for shape, sls in groups.items():
            if self.same_shape and len(sls) > 1:
                out.append((shape, sls))
            else:
                out.extend((shape, [sl]) for sl in sls)
        return out


# ---------------------------------------------------------------------------
# in-process tests


def test_grad_bucket_views_and_accessors():
    shapes = [(2, 3), (), (5, 0), (4,)]
    params = [Parameter(dtrain.zeros(s)) for s in shapes]
    buf = dtrain.arange(11.0)
    b = GradBucket(3, buf, params, False)
    assert b.index() == 3 and b.is_last() is False and b.buffer() is buf
    assert all(p is q for p, q in zip(b.parameters(), params))
    grads = b.gradients()
    assert [tuple(g.shape) for g in grads] == shapes
    np.testing.assert_array_equal(grads[0].numpy(), np.arange(6.0).reshape(
        2, 3))
    assert grads[1].item() == 6.0
    np.testing.assert_array_equal(grads[3].numpy(), [7, 8, 9, 10])
    grads[3].fill_(-1.0)                       # views of the buffer
    assert buf[7:].tolist() == [-1.0] * 4
    assert "GradBucket 3" in repr(b)


def test_grad_bucket_set_buffer():
    params = [Parameter(dtrain.zeros(2, 2)), Parameter(dtrain.zeros(2))]
    buf = dtrain.zeros(6)
    b = GradBucket(0, buf, params, True)
    new = dtrain.arange(6.0).half()
    b.set_buffer(new)
    assert b.buffer() is new
    g = b.gradients()
    assert g[0].dtype == dtrain.float16 and g[0].tolist() == [[0, 1], [2, 3]]
    g[1].fill_(9)
    assert new.tolist()[4:] == [9, 9] and buf.tolist() == [0] * 6


def test_grad_bucket_bad_input():
    p = [Parameter(dtrain.zeros(2, 3))]
    with pytest.raises(ValueError, match="GradBucket.*6 elements.*7"):
        GradBucket(0, dtrain.zeros(7), p, True)
    with pytest.raises(ValueError, match="GradBucket.*1-D"):
        GradBucket(0, dtrain.zeros(2, 3), p, True)
    with pytest.raises(ValueError, match="GradBucket.*contiguous"):
        GradBucket(0, dtrain.zeros(12)[::2], p, True)
    with pytest.raises(TypeError, match="GradBucket"):
        GradBucket(0, [0.0] * 6, p, True)
    with pytest.raises(TypeError, match="GradBucket: parameter 0"):
        GradBucket(0, dtrain.zeros(6), [np.zeros(6)], True)
    b = GradBucket(0, dtrain.zeros(6), p, True)
    with pytest.raises(ValueError, match="set_buffer"):
        b.set_buffer(dtrain.zeros(5))
    with pytest.raises(TypeError, match="set_buffer"):
        b.set_buffer(None)


def test_exported_names():
    import dtrain.distributed as dist
    assert dist.GradBucket is GradBucket and "GradBucket" in dist.__all__
    assert set(default.__all__) == {
        "allreduce_hook", "fp16_compress_hook", "bf16_compress_hook",
        "fp16_compress_wrapper", "bf16_compress_wrapper"}
    assert ddp_comm_hooks.powerSGD is psgd and ddp_comm_hooks.default is \
        default
    names = {t.name for t in ddp_comm_hooks.DDPCommHookType}
    assert {"ALLREDUCE", "FP16_COMPRESS", "BF16_COMPRESS", "POWER_SGD",
            "POWER_SGD_RANK2", "BATCHED_POWER_SGD", "NOOP"} <= names


def test_register_ddp_comm_hook():
    class Model:
        def register_comm_hook(self, state, hook):
            self.state, self.hook = state, hook
    T = ddp_comm_hooks.DDPCommHookType
    m = Model()
    ddp_comm_hooks.register_ddp_comm_hook(T.FP16_COMPRESS, m, "pg")
    assert m.state == "pg" and m.hook is default.fp16_compress_hook
    ddp_comm_hooks.register_ddp_comm_hook(T.POWER_SGD_RANK2, m, None)
    assert isinstance(m.state, psgd.PowerSGDState)
    assert m.hook is psgd.powerSGD_hook
    assert m.state.matrix_approximation_rank == 2
    assert m.state.start_powerSGD_iter == 1_000


def test_powersgd_state_defaults_and_checks():
    s = psgd.PowerSGDState(None)
    assert (s.matrix_approximation_rank, s.start_powerSGD_iter,
            s.min_compression_rate, s.use_error_feedback, s.warm_start,
            s.orthogonalization_epsilon, s.batch_tensors_with_same_shape,
            s.iter) == (1, 1000, 2, True, True, 0, False, 0)
    assert s.compression_stats() == (0, 0, 0)
    for kw in [{}, {"use_error_feedback": False},
               {"warm_start": False}]:
        with pytest.raises(ValueError, match="start_powerSGD_iter` > 1"):
            psgd.PowerSGDState(None, start_powerSGD_iter=1, **kw)
    psgd.PowerSGDState(None, start_powerSGD_iter=0, use_error_feedback=False,
                       warm_start=False)
    s = psgd.PowerSGDState(None, compression_stats_logging_frequency=0)
    assert s.compression_stats_logging_frequency == 1
    with pytest.raises(AttributeError):
        s.not_a_field = 1                        # __slots__, as torch


def test_powersgd_state_pickles_without_group():
    import pickle
    s = psgd.PowerSGDState("a group", start_powerSGD_iter=5,
                           matrix_approximation_rank=3)
    s.error_dict[0] = dtrain.arange(3.0)
    s.rng.randint(10)
    t = pickle.loads(pickle.dumps(s))
    assert t.process_group is None               # no default group here
    assert t.matrix_approximation_rank == 3 and t.start_powerSGD_iter == 5
    assert t.error_dict[0].tolist() == [0, 1, 2]
    assert t.rng.randint(1 << 30) == s.rng.randint(1 << 30)


def test_hooks_need_a_process_group():
    b = make_bucket(0, np.ones(4), [(4,)])
    for hook, state in [(default.allreduce_hook, None),
                        (default.fp16_compress_hook, None),
                        (psgd.powerSGD_hook, psgd.PowerSGDState(None))]:
        with pytest.raises(ValueError, match="init_process_group"):
            hook(state, b)


def test_should_compress_rule():
    assert psgd._should_compress(10, 10, 1, 2) == (True, 100, 20)
    assert psgd._should_compress(4, 4, 1, 2) == (False, 16, 8)  # 16 < 16
    assert psgd._should_compress(5, 4, 1, 2) == (True, 20, 9)
    assert psgd._should_compress(100, 1, 1, 2)[0] is False       # vectors
    from helpers import torch
    if torch is not None:
        from torch.distributed.algorithms.ddp_comm_hooks import \
            powerSGD_hook as tp
        for args in [(10, 10, 1, 2), (4, 4, 1, 2), (7, 3, 2, 0.5),
                     (64, 9, 4, 3)]:
            assert psgd._should_compress(*args) == tp._should_compress(*args)


@pytest.mark.parametrize("r", [1, 2, 4])
@pytest.mark.parametrize("eps", [0, 1e-8])
def test_orthogonalize_against_numpy_and_torch(r, eps):
    a = np.random.default_rng(r).standard_normal((3, 9, r))
    t = dtrain.tensor(a)
    psgd._orthogonalize(t, eps)
    want = a.copy()
    np_orthogonalize(want, eps)
    np.testing.assert_allclose(t.numpy(), want, atol=1e-12)
    got = t.numpy()
    np.testing.assert_allclose(np.swapaxes(got, 1, 2) @ got,
                               np.broadcast_to(np.eye(r), (3, r, r)),
                               atol=1e-6 if eps else 1e-12)
    from helpers import torch
    if torch is None:
        return
    from torch.distributed.algorithms.ddp_comm_hooks import \
        powerSGD_hook as tp
    tt = torch.from_numpy(a.copy())
    tp._orthogonalize(tt, eps)                   # QR when r > 2
    if r <= 2:
        np.testing.assert_allclose(got, tt.numpy(), atol=1e-12)
    else:    # QR (which ignores eps) and Gram-Schmidt agree up to signs
        signs = np.sign(np.sum(got * tt.numpy(), axis=1, keepdims=True))
        np.testing.assert_allclose(got * signs, tt.numpy(),
                                   atol=1e-7 if eps else 1e-10)


def test_orthogonalize_zero_column():
    z = dtrain.zeros(1, 4, 1)
    psgd._orthogonalize(z, 0)                    # NaNs, as torch
    assert np.isnan(z.numpy()).all()
    z = dtrain.zeros(1, 4, 1)
    psgd._orthogonalize(z, 1e-8)
    assert z.tolist() == [[[0.0]] * 4]


# ---------------------------------------------------------------------------
# the worker (runs in each rank's process)


class Checker:
    def __init__(self, rank, world):
        self.rank, self.world = rank, world
        self.failures, self.count = [], 0

    def true(self, what, cond):
        self.count += 1
        if not cond:
            self.failures.append(f"rank {self.rank}: {what}")

    def close(self, what, got, want, atol, rtol=0.0):
        got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
        self.count += 1
        if got.shape != want.shape:
            self.failures.append(f"rank {self.rank}: {what}: shape "
                                 f"{got.shape} vs {want.shape}")
        elif not np.allclose(got, want, atol=atol, rtol=rtol):
            err = np.max(np.abs(got - want)) if got.size else 0
            self.failures.append(f"rank {self.rank}: {what}: max error "
                                 f"{err:.3g} > {atol:.3g}")

    def inputs(self, case, n, it=0):
        """Every rank's flat input for (case, iteration)."""
        return [np.random.default_rng([case, it, k]).uniform(-3, 3, n)
                for k in range(self.world)]


def case_allreduce(c, dist):
    for case, (n, dtype, atol) in enumerate([
            (0, dtrain.float32, 0), (1, dtrain.float32, 1e-6),
            (1001, dtrain.float32, 1e-6), (1001, dtrain.float64, 1e-12),
            (33, dtrain.float16, 4e-3)]):
        xs = c.inputs(case, n)
        b = make_bucket(0, xs[c.rank], [(n,)], dtype=dtype)
        res = default.allreduce_hook(None, b).wait()
        c.true(f"allreduce_hook n={n}: returns the buffer",
               res is b.buffer())
        c.close(f"allreduce_hook n={n} {dtype}", np_of(res),
                sum(xs) / c.world, atol)


def case_compress(c, dist):
    xs = c.inputs(10, 1001)
    mean = sum(xs) / c.world
    for name, hook, wrapper, atol in [
            ("fp16", default.fp16_compress_hook,
             default.fp16_compress_wrapper, 4e-3),
            ("bf16", default.bf16_compress_hook,
             default.bf16_compress_wrapper, 4e-2)]:
        b = make_bucket(0, xs[c.rank], [(1001,)])
        res = hook(dist.group.WORLD, b).wait()
        c.true(f"{name}_compress_hook: decompressed into the buffer",
               res is b.buffer() and res.dtype == dtrain.float32)
        c.close(f"{name}_compress_hook mean", res.numpy(), mean, atol)
        c.true(f"{name}_compress_hook: not the float32 mean",
               not np.allclose(res.numpy(), mean, atol=1e-6))
        b2 = make_bucket(0, xs[c.rank], [(1001,)])
        buf = b2.buffer()
        res2 = wrapper(default.allreduce_hook)(None, b2).wait()
        c.true(f"{name}_compress_wrapper: into the bucket's buffer",
               res2 is buf and b2.buffer() is buf)
        c.close(f"{name}_compress_wrapper(allreduce_hook) == hook",
                res2.numpy(), res.numpy(), 0)
    b = make_bucket(0, xs[c.rank], [(1001,)])
    res = ddp_comm_hooks.debugging.noop_hook(None, b).wait()
    c.true("noop_hook returns the buffer", res is b.buffer())
    c.close("noop_hook leaves it", res.numpy(),
            xs[c.rank].astype(np.float32), 0)


def run_hook(hook, state, xs_rank, shapes, dtype=dtrain.float64, index=0):
    b = make_bucket(index, xs_rank, shapes, dtype=dtype)
    res = hook(state, b).wait()
    return np_of(res), b


def case_powersgd_before_start(c, dist):
    shapes = [(12, 8), (8,)]
    st = psgd.PowerSGDState(None, start_powerSGD_iter=3)
    for it in range(4):
        xs = c.inputs(20, 104, it)
        res, b = run_hook(psgd.powerSGD_hook, st, xs[c.rank], shapes)
        mean = sum(xs) / c.world
        if it < 3:
            c.close(f"PowerSGD iteration {it} < start: the mean", res, mean,
                    1e-12)
        else:
            c.true("PowerSGD after start: compressed",
                   not np.allclose(res, mean, atol=1e-3))
            c.close("PowerSGD after start: the vector's exact mean",
                    res[96:], mean[96:], 1e-12)
        c.true(f"iteration counter {st.iter} == {it + 1}", st.iter == it + 1)
    c.true("compression stats", st.compression_stats() == (
        (96 + 8) / (20 + 8), 104, 28))


def low_rank_inputs(c, case, shape, r):
    """Per-rank matrices that differ by full-rank noise summing to 0 over
    the ranks, around a mean of rank r."""
    g = np.random.default_rng([case, 99])
    n, m = shape[0], int(np.prod(shape[1:]))
    mean = g.standard_normal((n, r)) @ g.standard_normal((r, m))
    noise = [g.standard_normal((n, m)) for _ in range(c.world - 1)]
    noise.append(-sum(noise))
    return [(mean + d).reshape(-1) for d in noise], mean.reshape(-1)


def case_powersgd_low_rank_mean(c, dist):
    for case, (shape, r, ef, warm) in enumerate([
            ((12, 8), 1, True, True), ((8, 3, 5), 2, True, True),
            ((16, 10), 2, False, False)]):
        xs, mean = low_rank_inputs(c, 30 + case, shape, r)
        start = 2 if ef or warm else 0
        st = psgd.PowerSGDState(None, matrix_approximation_rank=r,
                                start_powerSGD_iter=start,
                                use_error_feedback=ef, warm_start=warm)
        for it in range(start + 2):
            res, _ = run_hook(psgd.powerSGD_hook, st, xs[c.rank], [shape])
            c.close(f"PowerSGD rank-{r} mean of {shape}, iteration {it}",
                    res, mean, 1e-9)
        c.true("rank-r mean: the P memory (n*r elements) kept with warm "
               "start only", (st.p_memory_dict[0].numel() == shape[0] * r)
               if warm else not st.p_memory_dict)


def case_powersgd_reference(c, dist):
    shapes = [(10, 6), (6,), (13, 7), (3, 3), (10, 6), (4, 2, 3), (), (5, 0),
              (13, 7)]
    n = sum(int(np.prod(s)) for s in shapes)
    configs = [
        dict(r=1), dict(r=2, warm=False), dict(r=1, ef=False,
                                               same_shape=True),
        dict(r=3, rate=1, eps=1e-8, seed=5), dict(r=2, same_shape=True)]
    for k, cfg in enumerate(configs):
        st = psgd.PowerSGDState(
            None, matrix_approximation_rank=cfg.get("r", 1),
            start_powerSGD_iter=2, min_compression_rate=cfg.get("rate", 2),
            use_error_feedback=cfg.get("ef", True),
            warm_start=cfg.get("warm", True),
            orthogonalization_epsilon=cfg.get("eps", 0),
            random_seed=cfg.get("seed", 0),
            batch_tensors_with_same_shape=cfg.get("same_shape", False))
        ref = RefPowerSGD(c.world, shapes, start=2, **cfg)
        for it in range(5):
            xs = c.inputs(40 + k, n, it)
            res, _ = run_hook(psgd.powerSGD_hook, st, xs[c.rank], shapes)
            want = ref.step(xs)[c.rank]
            c.close(f"PowerSGD {cfg} iteration {it} vs NumPy", res, want,
                    1e-10)
            if it >= 2 and cfg.get("ef", True):
                c.close(f"PowerSGD {cfg} iteration {it}: residual",
                        st.error_dict[0].numpy(), ref.err[c.rank], 1e-10)


def case_batched_reference(c, dist):
    for k, (n, cfg) in enumerate([(10, dict(r=1)), (16, dict(r=2)),
                                  (30, dict(r=1, warm=False, seed=3)),
                                  (3, dict(r=2, ef=False))]):
        st = psgd.PowerSGDState(
            None, matrix_approximation_rank=cfg["r"], start_powerSGD_iter=2,
            use_error_feedback=cfg.get("ef", True),
            warm_start=cfg.get("warm", True), random_seed=cfg.get("seed", 0))
        ref = RefPowerSGD(c.world, [(n,)], start=2, batched=True, **cfg)
        for it in range(5):
            xs = c.inputs(50 + k, n, it)
            res, _ = run_hook(psgd.batched_powerSGD_hook, st, xs[c.rank],
                              [(n,)])
            c.close(f"batched PowerSGD n={n} {cfg} iteration {it}", res,
                    ref.step(xs)[c.rank], 1e-10)


def case_error_feedback(c, dist):
    """Per rank: sum of outputs + final residual == sum of its inputs; so
    over the ranks, sum of outputs + mean residual == sum of means."""
    shapes = [(20, 12), (12,), (6, 4, 2)]
    n = 240 + 12 + 48
    for hook in (psgd.powerSGD_hook, psgd.batched_powerSGD_hook):
        st = psgd.PowerSGDState(None, start_powerSGD_iter=2)
        outs, ins, means = 0, 0, 0
        for it in range(7):
            xs = c.inputs(60, n, it)
            res, _ = run_hook(hook, st, xs[c.rank], shapes,
                              dtype=dtrain.float32)
            if it >= 2:                   # compressed from iteration 2
                outs, ins, means = (outs + res, ins + xs[c.rank],
                                    means + sum(xs) / c.world)
        e = st.error_dict[0]
        residual = e.numpy()[:n]
        c.close(f"{hook.__name__}: outputs + residual == inputs",
                outs + residual, ins, 1e-4)
        dist.all_reduce(e)
        c.close(f"{hook.__name__}: outputs + mean residual == means",
                outs + e.numpy()[:n] / c.world, means, 1e-4)
        c.true(f"{hook.__name__}: outputs alone are not the means",
               not np.allclose(outs, means, atol=1e-2))


def case_converges(c, dist):
    """Constant gradients with a full-rank mean: the running average of
    what rank-1 PowerSGD with error feedback applies tends to the mean."""
    shape = (8, 6)
    xs = c.inputs(70, 48)
    mean = sum(xs) / c.world
    st = psgd.PowerSGDState(None, start_powerSGD_iter=2)
    total, errs = 0, []
    for it in range(1, 61):
        res, _ = run_hook(psgd.powerSGD_hook, st, xs[c.rank], [shape])
        total = total + res
        errs.append(np.linalg.norm(total / it - mean) / np.linalg.norm(mean))
    c.true(f"error feedback converges: relative errors {errs[9]:.3f} at "
           f"10, {errs[-1]:.3f} at 60", errs[-1] < 0.1 and
           errs[-1] < errs[9] / 2)


def case_warm_start(c, dist):
    shapes = [(12, 8)]
    for warm in (True, False):
        st = psgd.PowerSGDState(None, start_powerSGD_iter=2,
                                warm_start=warm, use_error_feedback=False)
        seeds = []
        qs = []
        for it in range(5):
            seeds.append(st.rng.get_state()[2])       # position: draws
            run_hook(psgd.powerSGD_hook, st, c.inputs(80, 96, it)[c.rank],
                     shapes)
            qs.append(st.q_memory_dict.get(0))
        draws = [b - a for a, b in zip(seeds, seeds[1:])]
        if warm:
            c.true("warm start: one seed drawn, then none",
                   st.rng.get_state()[2] != seeds[0] and
                   st.rng.get_state()[2] == seeds[3])
            c.true("warm start: Q memory kept across iterations",
                   qs[2] is not None and qs[2] is qs[3] is qs[4])
        else:
            c.true(f"no warm start: a seed every iteration ({draws})",
                   st.rng.get_state()[2] != seeds[4] and
                   not st.q_memory_dict and not st.p_memory_dict)


def case_two_buckets(c, dist):
    """Two buckets hooked before either is waited on, one state (one seed
    stream, bucket 0 draws first); the iteration counts once per is_last
    bucket."""
    st = psgd.PowerSGDState(None, start_powerSGD_iter=2)
    ref0 = RefPowerSGD(c.world, [(9, 7), (7,)])
    ref1 = RefPowerSGD(c.world, [(5, 11)])
    ref1.rng = ref0.rng
    for it in range(4):
        xs0, xs1 = c.inputs(90, 70, it), c.inputs(91, 55, it)
        b0 = make_bucket(0, xs0[c.rank], [(9, 7), (7,)], False,
                         dtrain.float64)
        b1 = make_bucket(1, xs1[c.rank], [(5, 11)], True, dtrain.float64)
        f0, f1 = psgd.powerSGD_hook(st, b0), psgd.powerSGD_hook(st, b1)
        r0, r1 = f0.wait().numpy(), f1.wait().numpy()
        c.true(f"two buckets: iteration {st.iter} == {it + 1}",
               st.iter == it + 1)
        c.close(f"two buckets, bucket 0, iteration {it}", r0,
                ref0.step(xs0)[c.rank], 1e-10)
        c.close(f"two buckets, bucket 1, iteration {it}", r1,
                ref1.step(xs1)[c.rank], 1e-10)


def case_wrapped_powersgd(c, dist):
    """fp16_compress_wrapper(powerSGD_hook): float32 in and out, close to
    PowerSGD in float32."""
    shapes = [(16, 12), (12,)]
    st16 = psgd.PowerSGDState(None, start_powerSGD_iter=2)
    st32 = psgd.PowerSGDState(None, start_powerSGD_iter=2)
    hook16 = default.fp16_compress_wrapper(psgd.powerSGD_hook)
    for it in range(4):
        xs = c.inputs(100, 204, it)
        b = make_bucket(0, xs[c.rank], shapes)
        res = hook16(st16, b).wait()
        c.true("wrapped PowerSGD: float32 result in the buffer",
               res.dtype == dtrain.float32 and res is b.buffer())
        want, _ = run_hook(psgd.powerSGD_hook, st32, xs[c.rank], shapes,
                           dtype=dtrain.float32)
        c.close(f"fp16-wrapped PowerSGD iteration {it}", res.numpy(), want,
                0.05, 0.02)


def case_subgroup(c, dist):
    if c.world < 3:
        return
    g = dist.new_group([0, 1])
    if c.rank > 1:
        return
    xs = c.inputs(110, 50)
    res, _ = run_hook(default.allreduce_hook, g, xs[c.rank], [(50,)])
    c.close("allreduce_hook over a subgroup", res, (xs[0] + xs[1]) / 2,
            1e-12)
    xs, mean = low_rank_inputs(c, 111, (10, 8), 1)
    xs = [xs[0], 2 * mean - xs[0]]            # 2-rank noise, same mean
    st = psgd.PowerSGDState(g, start_powerSGD_iter=2)
    for it in range(3):
        res, _ = run_hook(psgd.powerSGD_hook, st, xs[c.rank], [(10, 8)])
        c.close(f"PowerSGD over a subgroup, iteration {it}", res, mean,
                1e-9)


CASES = [case_allreduce, case_compress, case_powersgd_before_start,
         case_powersgd_low_rank_mean, case_powersgd_reference,
         case_batched_reference, case_error_feedback, case_converges,
         case_warm_start, case_two_buckets, case_wrapped_powersgd,
         case_subgroup]


def worker():
    import dtrain.distributed as dist
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    c = Checker(dist.get_rank(), dist.get_world_size())
    for case in CASES:
        case(c, dist)
    dist.destroy_process_group()
    finish(c)


def finish(c):
    if c.failures:
        print("\n".join(c.failures[:30]))
        sys.exit(1)
    print(f"OK {c.count}")


# ---------------------------------------------------------------------------
# the torch comparison worker: torch's own hooks over a torch Gloo group


class TorchBucket:
    """What torch's Python hooks call of a GradBucket (torch's cannot be
    built from Python)."""

    def __init__(self, index, buf, shapes, is_last=True):
        self._index, self._buf, self._last = index, buf, is_last
        self._shapes = shapes

    def index(self):
        return self._index

    def buffer(self):
        return self._buf

    def set_buffer(self, buf):
        self._buf = buf

    def is_last(self):
        return self._last

    def parameters(self):
        return []

    def gradients(self):
        out, off = [], 0
        for s in self._shapes:
            n = int(np.prod(s))
            out.append(self._buf[off:off + n].view(s))
            off += n
        return out


class DtrainDraws:
    """Within it, torch.manual_seed/torch.randn give torch the normal
    draws dtrain's hook makes from the same seed (its Philox generator),
    so both start from the same Q."""

    def __init__(self, torch):
        self.torch = torch

    def __enter__(self):
        torch = self.torch
        self.real = torch.manual_seed, torch.randn
        gen = {}

        def manual_seed(seed):
            gen["g"] = dtrain.Generator().manual_seed(int(seed))
            return self.real[0](seed)

        def randn(*size, dtype=None, device=None, **kw):
            d = getattr(dtrain, str(dtype).split(".")[-1])
            t = dtrain.randn(*size, generator=gen["g"], dtype=d)
            return torch.from_numpy(np_of(t)).to(dtype)

        torch.manual_seed, torch.randn = manual_seed, randn
        return self

    def __exit__(self, *exc):
        self.torch.manual_seed, self.torch.randn = self.real


def torch_default_hooks(c, torch, tdef):
    xs = c.inputs(200, 1001)
    for name in ["allreduce_hook", "fp16_compress_hook",
                 "bf16_compress_hook"]:
        b = make_bucket(0, xs[c.rank], [(1001,)])
        got = getattr(default, name)(None, b).wait().numpy()
        tb = TorchBucket(0, torch.tensor(xs[c.rank], dtype=torch.float32),
                         [(1001,)])
        want = getattr(tdef, name)(None, tb).wait().numpy()
        c.close(f"{name} vs torch", got, want, 0)


def torch_powersgd(c, torch, tps):
    shapes = [(10, 6), (6,), (3, 3), (10, 6), (4, 2, 3), (7, 5)]
    n = sum(int(np.prod(s)) for s in shapes)
    configs = [dict(), dict(matrix_approximation_rank=2, warm_start=False),
               dict(use_error_feedback=False,
                    batch_tensors_with_same_shape=True),
               dict(matrix_approximation_rank=3, min_compression_rate=1,
                    random_seed=5),
               dict(matrix_approximation_rank=2,
                    batch_tensors_with_same_shape=True,
                    orthogonalization_epsilon=1e-6)]
    for k, cfg in enumerate(configs):
        st = psgd.PowerSGDState(None, start_powerSGD_iter=2, **cfg)
        tst = tps.PowerSGDState(None, start_powerSGD_iter=2, **cfg)
        for it in range(5):
            xs = c.inputs(210 + k, n, it)
            got, _ = run_hook(psgd.powerSGD_hook, st, xs[c.rank], shapes,
                              dtype=dtrain.float32)
            tb = TorchBucket(0, torch.tensor(xs[c.rank],
                                             dtype=torch.float32), shapes)
            with DtrainDraws(torch):
                want = tps.powerSGD_hook(tst, tb).wait().numpy()
            c.close(f"powerSGD_hook {cfg} iteration {it} vs torch", got,
                    want, 2e-5, 1e-5)
            if it < 2:
                continue
            if st.use_error_feedback:
                c.close(f"powerSGD_hook {cfg} iteration {it}: residual vs "
                        f"torch", st.error_dict[0].numpy(),
                        tst.error_dict[0].numpy(), 2e-5, 1e-5)
            if st.warm_start and st.matrix_approximation_rank <= 2:
                c.close(f"powerSGD_hook {cfg} iteration {it}: Q memory vs "
                        f"torch", st.q_memory_dict[0].numpy(),
                        tst.q_memory_dict[0].numpy(), 2e-5, 1e-5)
        c.true(f"compression stats {cfg} vs torch",
               st.compression_stats() == tst.compression_stats())


def torch_batched(c, torch, tps):
    """torch 2.13's batched_powerSGD_hook hands its 3-D-only _orthogonalize
    2-D matrices (an AssertionError); run it with them unsqueezed."""
    real = tps._orthogonalize

    def orthogonalize(m, epsilon=0):
        return real(m.unsqueeze(0) if m.dim() == 2 else m, epsilon)

    tps._orthogonalize = orthogonalize
    try:
        for k, (n, cfg) in enumerate([
                (10, dict()), (50, dict(matrix_approximation_rank=2)),
                (30, dict(warm_start=False, random_seed=3))]):
            st = psgd.PowerSGDState(None, start_powerSGD_iter=2, **cfg)
            tst = tps.PowerSGDState(None, start_powerSGD_iter=2, **cfg)
            for it in range(4):
                xs = c.inputs(230 + k, n, it)
                got, _ = run_hook(psgd.batched_powerSGD_hook, st,
                                  xs[c.rank], [(n,)], dtype=dtrain.float32)
                tb = TorchBucket(0, torch.tensor(xs[c.rank],
                                                 dtype=torch.float32), [(n,)])
                with DtrainDraws(torch):
                    want = tps.batched_powerSGD_hook(tst, tb).wait().numpy()
                c.close(f"batched_powerSGD_hook n={n} {cfg} iteration {it} "
                        f"vs torch", got, want, 2e-5, 1e-5)
    finally:
        tps._orthogonalize = real


def torch_worker():
    import torch
    import torch.distributed as tdist
    from torch.distributed.algorithms.ddp_comm_hooks import (
        default_hooks as tdef, powerSGD_hook as tps)

    import dtrain.distributed as dist
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    tdist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{os.environ['TORCH_PORT']}",
        rank=rank, world_size=world, timeout=timedelta(seconds=30))
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    c = Checker(rank, world)
    torch_default_hooks(c, torch, tdef)
    torch_powersgd(c, torch, tps)
    torch_batched(c, torch, tps)
    dist.destroy_process_group()
    tdist.destroy_process_group()
    finish(c)


# ---------------------------------------------------------------------------
# the multi-process tests


def check_ranks(results, at_least):
    for r, (rc, out, err) in enumerate(results):
        assert rc == 0 and out.startswith("OK"), \
            f"rank {r} (rc {rc}):\n{out}\n{err[-3000:]}"
        assert int(out.split()[1]) >= at_least


@pytest.mark.timeout(120)
@pytest.mark.parametrize("world", [2, 3])
def test_hooks_on_real_ranks(world):
    check_ranks(launch(world, ["worker"], timeout=110), 120)


def test_torch_comparison(request):
    from helpers import torch
    if torch is None:
        pytest.skip("torch not installed")
    request.applymarker(pytest.mark.timeout(120))
    check_ranks(launch(2, ["torch"], timeout=110), 60)


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    worker()
elif __name__ == "__main__" and sys.argv[1:2] == ["torch"]:
    torch_worker()
