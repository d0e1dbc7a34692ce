"""nn.SyncBatchNorm over Gloo with real processes (2 and 3 ranks, uneven
and empty slices of one global batch) against single-process BatchNorm on
the concatenated batch (and torch's batch_norm when installed):
forward output, input gradient, the sum over ranks of the per-rank
weight/bias gradients, running statistics. Also world size 1, eval mode,
a subgroup, and convert_sync_batchnorm on a small CNN.

Each rank runs this file as a script (`worker` below) and saves what it
computed to an .npz file; the parent process compares.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import dtrain  # noqa: E402
import dtrain.nn.functional as F  # noqa: E402
from dtrain import nn  # noqa: E402

if __name__ == "__main__":   # a worker: no torch (slow to import, unused)
    torch = None
else:
    from helpers import torch

RTOL, ATOL = 1e-5, 1e-6

# (per-sample shape (C, ...), slice sizes by world size, dtype, affine,
#  momentum, steps): the global batch is cut into the slices in order
CASES = [
    ((3, 4, 5), {1: [8], 2: [5, 3], 3: [3, 1, 4]}, "float32", True, 0.1, 2),
    ((4,), {1: [7], 2: [2, 5], 3: [3, 0, 4]}, "float32", True, 0.1, 1),
    ((2, 6), {1: [5], 2: [1, 4], 3: [2, 2, 1]}, "float64", False, None, 3),
    ((2, 3, 2, 2), {1: [4], 2: [3, 1], 3: [1, 1, 2]}, "float64", True, 0.3,
     1),
]


def case_data(i, step):
    """The global input and upstream gradient of case i at a step."""
    shape, _, dtype, _, _, _ = CASES[i]
    rng = np.random.default_rng(100 * i + step)
    n = sum(CASES[i][1][1])
    x = rng.normal(1.5, 2.0, (n,) + shape).astype(dtype)
    up = rng.normal(0.0, 1.0, (n,) + shape).astype(dtype)
    return x, up


def case_params(i):
    c = CASES[i][0][0]
    rng = np.random.default_rng(7 + i)
    return (rng.uniform(0.5, 1.5, c).astype(CASES[i][2]),
            rng.uniform(-0.5, 0.5, c).astype(CASES[i][2]))


def make_bn(cls, i, **kw):
    shape, _, dtype, affine, momentum, _ = CASES[i]
    m = cls(shape[0], momentum=momentum, affine=affine, **kw)
    m = m.double() if dtype == "float64" else m
    if affine:
        w, b = case_params(i)
        with dtrain.no_grad():
            m.weight.copy_(dtrain.tensor(w))
            m.bias.copy_(dtrain.tensor(b))
    return m


def run_steps(m, i, lo, hi, n_total=None):
    """Trains m on rows [lo, hi) of case i's batches; returns per step
    (out, x.grad, weight.grad, bias.grad) and the final buffers."""
    steps = []
    for step in range(CASES[i][5]):
        x, up = case_data(i, step)
        if n_total is not None:
            x, up = x[:n_total], up[:n_total]
        xs = dtrain.tensor(x[lo:hi]).requires_grad_()
        out = m(xs)
        (out * dtrain.tensor(up[lo:hi])).sum().backward()
        grads = [p.grad.numpy().copy() if p is not None and p.grad is not None
                 else None for p in (m.weight, m.bias)]
        steps.append([out.detach().numpy().copy(), xs.grad.numpy().copy()]
                     + grads)
        m.zero_grad()
    return steps, m.running_mean.numpy().copy(), m.running_var.numpy().copy()


# ---------------------------------------------------------------------------
# the worker (one per rank)


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.body = nn.Sequential(nn.Conv2d(4, 3, 3), nn.BatchNorm2d(3),
                                  nn.ReLU())
        self.head = nn.Linear(3 * 4 * 4, 2)
        self.norm = nn.BatchNorm1d(2)

    def forward(self, x):
        x = self.body(self.bn1(self.conv1(x)).relu())
        return self.norm(self.head(x.flatten(1)))


def cnn_data():
    """Input and upstream gradient (float64: the gradients reaching the
    first conv through three batch norms are small differences)."""
    rng = np.random.default_rng(99)
    return rng.normal(0, 1, (7, 2, 6, 6)), rng.normal(0, 1, (7, 2))


def cnn_grads(model, x, up):
    out = model.double()(dtrain.tensor(x))
    (out * dtrain.tensor(up)).sum().backward()
    return {k: p.grad.numpy().copy() for k, p in model.named_parameters()}


def worker(outdir):
    from datetime import timedelta
    import dtrain.distributed as dist
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    rank, world = dist.get_rank(), dist.get_world_size()
    res = {}
    for i, case in enumerate(CASES):
        sizes = case[1][world]
        lo, hi = sum(sizes[:rank]), sum(sizes[:rank + 1])
        m = make_bn(nn.SyncBatchNorm, i)
        steps, rm, rv = run_steps(m, i, lo, hi)
        for s, vals in enumerate(steps):
            for name, v in zip(("out", "gx", "gw", "gb"), vals):
                if v is not None:
                    res[f"c{i}_s{s}_{name}"] = v
        res[f"c{i}_rm"], res[f"c{i}_rv"] = rm, rv
        res[f"c{i}_nbt"] = np.array(m.num_batches_tracked.item())
        m.eval()                  # eval: running statistics, no collective
        x, _ = case_data(i, 0)
        res[f"c{i}_eval"] = m(dtrain.tensor(x[lo:hi])).detach().numpy()
    # a subgroup: ranks 0 and 1 normalise over their two slices only
    if world == 3:
        sub = dist.new_group([0, 1])
        if rank < 2:
            sizes = CASES[0][1][2]
            lo, hi = sum(sizes[:rank]), sum(sizes[:rank + 1])
            m = make_bn(nn.SyncBatchNorm, 0, process_group=sub)
            steps, rm, rv = run_steps(m, 0, lo, hi, n_total=sum(sizes))
            res["sub_out"], res["sub_gx"] = steps[0][0], steps[0][1]
            res["sub_gw"], res["sub_rm"] = steps[0][2], rm
    # a converted CNN: each rank takes a slice of one batch
    dtrain.manual_seed(5)
    model = nn.SyncBatchNorm.convert_sync_batchnorm(TinyCNN())
    x, up = cnn_data()
    lo, hi = np.linspace(0, len(x), world + 1).astype(int)[rank:rank + 2]
    for k, g in cnn_grads(model, x[lo:hi], up[lo:hi]).items():
        res[f"cnn_{k}"] = g
    np.savez(os.path.join(outdir, f"rank{rank}.npz"), **res)
    dist.destroy_process_group()


# ---------------------------------------------------------------------------
# the parent


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(world, outdir, timeout=50):
    port = free_port()
    procs = []
    for r in range(world):
        env = dict(os.environ, PYTHONPATH=ROOT, RANK=str(r),
                   WORLD_SIZE=str(world), LOCAL_RANK=str(r),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                   OMP_NUM_THREADS="1")
        procs.append(subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "worker",
             str(outdir)], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    try:
        for r, p in enumerate(procs):
            _, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, f"rank {r} failed:\n{err}"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return [dict(np.load(os.path.join(outdir, f"rank{r}.npz")))
            for r in range(world)]


def close(got, want, what):
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)


def reference(i, n_total=None):
    """Single-process BatchNorm (no process group: plain batch_norm) on the
    concatenated batch."""
    m = make_bn(nn.SyncBatchNorm, i)
    n = n_total or sum(CASES[i][1][1])
    return run_steps(m, i, 0, n, n_total=n_total), m


def check_case(results, i, world):
    (steps, rm, rv), ref_m = reference(i)
    sizes = CASES[i][1][world]
    for s, (out, gx, gw, gb) in enumerate(steps):
        tag = f"case {i} step {s}"
        close(np.concatenate([r[f"c{i}_s{s}_out"] for r in results]), out,
              f"{tag}: output")
        close(np.concatenate([r[f"c{i}_s{s}_gx"] for r in results]), gx,
              f"{tag}: input gradient")
        if gw is not None:
            close(sum(r[f"c{i}_s{s}_gw"] for r in results), gw,
                  f"{tag}: weight gradient summed over ranks")
            close(sum(r[f"c{i}_s{s}_gb"] for r in results), gb,
                  f"{tag}: bias gradient summed over ranks")
    for r, res in enumerate(results):
        close(res[f"c{i}_rm"], rm, f"case {i} rank {r}: running_mean")
        close(res[f"c{i}_rv"], rv, f"case {i} rank {r}: running_var")
        assert res[f"c{i}_nbt"] == CASES[i][5]
        # eval mode: BatchNorm eval with the (identical) running stats
        x, _ = case_data(i, 0)
        lo, hi = sum(sizes[:r]), sum(sizes[:r + 1])
        ref_m.eval()
        close(res[f"c{i}_eval"],
              ref_m(dtrain.tensor(x[lo:hi])).detach().numpy(),
              f"case {i} rank {r}: eval output")


def check_cnn(results, world):
    dtrain.manual_seed(5)
    ref = cnn_grads(TinyCNN(), *cnn_data())
    for k, g in ref.items():
        close(sum(r[f"cnn_{k}"] for r in results), g, f"cnn grad {k}")


@pytest.mark.timeout(90)
@pytest.mark.parametrize("world", [1, 2, 3])
def test_sync_batchnorm_matches_batchnorm_on_the_whole_batch(world,
                                                             tmp_path):
    results = launch(world, tmp_path)
    for i in range(len(CASES)):
        check_case(results, i, world)
    check_cnn(results, world)
    if world == 3:
        sizes = CASES[0][1][3]
        (steps, rm, _), _ = reference(0, n_total=sum(sizes))
        out, gx, gw = steps[0][:3]
        close(np.concatenate([results[0]["sub_out"], results[1]["sub_out"]]),
              out, "subgroup output")
        close(np.concatenate([results[0]["sub_gx"], results[1]["sub_gx"]]),
              gx, "subgroup input gradient")
        close(results[0]["sub_gw"] + results[1]["sub_gw"], gw,
              "subgroup weight gradient")
        close(results[1]["sub_rm"], rm, "subgroup running_mean")
        assert "sub_out" not in results[2]


def test_reference_is_batchnorm():
    """The single-process reference really is BatchNorm1d/2d (and torch's
    batch_norm when installed)."""
    for i in range(len(CASES)):
        (steps, rm, rv), _ = reference(i)
        ndim = len(CASES[i][0]) + 1
        cls = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d}.get(
            ndim)
        if cls is not None:
            want, wrm, wrv = run_steps(make_bn(cls, i), i, 0,
                                       len(case_data(i, 0)[0]))
            for a, b in zip(steps, want):
                for u, v in zip(a, b):
                    if u is not None:
                        close(u, v, f"case {i} vs {cls.__name__}")
            close(rm, wrm, "running_mean")
            close(rv, wrv, "running_var")
        if torch is not None:
            check_torch(i, steps, rm, rv)


def check_torch(i, steps, rm, rv):
    shape, _, dtype, affine, momentum, nsteps = CASES[i]
    tdt = getattr(torch, dtype)
    w, b = case_params(i)
    tw = torch.tensor(w, requires_grad=True) if affine else None
    tb = torch.tensor(b, requires_grad=True) if affine else None
    trm = torch.zeros(shape[0], dtype=tdt)
    trv = torch.ones(shape[0], dtype=tdt)
    for s in range(nsteps):
        x, up = case_data(i, s)
        tx = torch.tensor(x, requires_grad=True)
        factor = momentum if momentum is not None else 1.0 / (s + 1)
        out = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, True,
                                             factor, 1e-5)
        (out * torch.tensor(up)).sum().backward()
        want = [out.detach().numpy(), tx.grad.numpy()]
        if affine:
            want += [tw.grad.numpy(), tb.grad.numpy()]
            tw.grad = tb.grad = None
        for u, v in zip(steps[s], want):
            close(u, v, f"case {i} step {s} vs torch")
    close(rm, trm.numpy(), "running_mean vs torch")
    close(rv, trv.numpy(), "running_var vs torch")


def test_world_size_one_and_eval_equal_batchnorm():
    x = dtrain.tensor(case_data(0, 0)[0])
    sync, plain = make_bn(nn.SyncBatchNorm, 0), make_bn(nn.BatchNorm2d, 0)
    for _ in range(2):
        close(sync(x).detach().numpy(), plain(x).detach().numpy(), "train")
    sync.eval()
    plain.eval()
    close(sync(x).detach().numpy(), plain(x).detach().numpy(), "eval")
    assert sync.state_dict().keys() == plain.state_dict().keys()
    for k, v in plain.state_dict().items():
        close(sync.state_dict()[k].numpy(), v.numpy(), k)
    # no running stats: batch statistics even in eval, as BatchNorm
    a = nn.SyncBatchNorm(3, track_running_stats=False).eval()
    b = nn.BatchNorm2d(3, track_running_stats=False).eval()
    assert a.running_mean is None and a.num_batches_tracked is None
    close(a(x).detach().numpy(), b(x).detach().numpy(), "no running stats")


def test_convert_sync_batchnorm_copies_structure_and_state():
    dtrain.manual_seed(1)
    model = TinyCNN()
    model.bn1.weight.requires_grad_(False)
    with dtrain.no_grad():
        model.bn1.running_mean.fill_(0.25)
        model.norm.num_batches_tracked.fill_(4)
    model.body.eval()
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    bn_weight = model.bn1.weight
    conv = model.conv1
    pg = object()
    conv_model = nn.SyncBatchNorm.convert_sync_batchnorm(model, pg)
    for name in ("bn1", "body.1", "norm"):
        m = conv_model.get_submodule(name)
        assert type(m) is nn.SyncBatchNorm, name
        assert m.process_group is pg
    assert conv_model.conv1 is conv and type(conv_model.head) is nn.Linear
    assert conv_model.bn1.weight is bn_weight
    assert not conv_model.bn1.weight.requires_grad
    assert conv_model.norm.weight.requires_grad
    assert not conv_model.body[1].training and conv_model.bn1.training
    assert conv_model.norm.num_features == 2
    after = conv_model.state_dict()
    assert list(after) == list(before)
    for k, v in before.items():
        np.testing.assert_array_equal(after[k].numpy(), v, err_msg=k)
    # a BatchNorm at the top is replaced too
    top = nn.SyncBatchNorm.convert_sync_batchnorm(nn.BatchNorm1d(5,
                                                                 affine=False))
    assert type(top) is nn.SyncBatchNorm and top.weight is None
    assert repr(top) == ("SyncBatchNorm(5, eps=1e-05, momentum=0.1, "
                         "affine=False, track_running_stats=True)")


def test_input_checks():
    m = nn.SyncBatchNorm(3)
    with pytest.raises(ValueError, match="expected at least 2D input"):
        m(dtrain.ones(3))
    with pytest.raises(ValueError, match="channels should be non-zero"):
        nn.SyncBatchNorm(0)(dtrain.ones(2, 0))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        m(dtrain.ones(1, 3))


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    worker(sys.argv[2])
