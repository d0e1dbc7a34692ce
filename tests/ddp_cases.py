"""The training cases tests/test_ddp.py runs: each builds a model and an
optimizer from a fixed seed and trains K steps on deterministic batches.

run_case(name, rank, world, ddp) trains either one DDP rank on its slice
of every global batch (ddp=True, inside an initialised process group) or
one process on the whole global batch (ddp=False, world = the number of
slices it stands for), and returns the losses and final parameters. The
equivalence tests compare the two.

Run as a script, it is one DDP rank: `python ddp_cases.py OUTDIR CASE...`
(RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from the environment) and
writes OUTDIR/<case>_rank<R>.npz.
"""
import os
import sys
from datetime import timedelta

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import dtrain  # noqa: E402
import dtrain.nn as nn  # noqa: E402
import dtrain.nn.functional as F  # noqa: E402

STEPS = 4
LOCAL_BATCH = 6


class MLP(nn.Module):
    def __init__(self, d_in=20, hidden=32, d_out=10):
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.fc3 = nn.Linear(hidden, d_out)

    def forward(self, x):
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Branchy(nn.Module):
    """`unused` never takes part; `maybe` only on some inputs."""

    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(20, 16)
        self.maybe = nn.Linear(16, 16)
        self.unused = nn.Linear(16, 16)
        self.head = nn.Linear(16, 10)

    def forward(self, x, use_maybe=True):
        h = F.relu(self.trunk(x))
        if use_maybe:
            h = h + F.relu(self.maybe(h))
        return self.head(h)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 2 * 2, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc(x.reshape(x.shape[0], -1))


def batch(step, world, kind):
    """The global batch of a step: LOCAL_BATCH rows per rank."""
    rng = np.random.default_rng(1000 + step)
    n = LOCAL_BATCH * world
    x = (rng.standard_normal((n, 1, 8, 8)) if kind == "cnn"
         else rng.standard_normal((n, 20))).astype(np.float32)
    y = rng.integers(0, 10, n)
    return x, y


CASES = {
    # name: (model, optimizer, ddp kwargs, options)
    "mlp_sgd": ("mlp", "sgd", {}, {}),
    "mlp_adamw": ("mlp", "adamw", {}, {}),
    "mlp_view": ("mlp", "sgd", {"gradient_as_bucket_view": True}, {}),
    "mlp_small_buckets": ("mlp", "sgd", {"bucket_cap_mb": 0.001}, {}),
    "mlp_view_small": ("mlp", "adamw", {"gradient_as_bucket_view": True,
                                        "bucket_cap_mb": 0.0005}, {}),
    "mlp_no_sync": ("mlp", "sgd", {}, {"micro": 4}),
    "mlp_no_sync_view": ("mlp", "sgd", {"gradient_as_bucket_view": True},
                         {"micro": 4}),
    "branchy_unused": ("branchy", "sgd", {"find_unused_parameters": True},
                       {}),
    "branchy_rank_dependent": ("branchy", "adamw",
                               {"find_unused_parameters": True},
                               {"maybe_on_rank0": True}),
    "branchy_static": ("branchy", "sgd", {"static_graph": True}, {}),
    "cnn_syncbn": ("cnn_syncbn", "sgd", {}, {}),
    "mlp_fp16_hook": ("mlp", "sgd", {}, {"hook": "fp16"}),
    "mlp_bf16_hook": ("mlp", "sgd", {}, {"hook": "bf16"}),
    "mlp_allreduce_hook": ("mlp", "sgd", {"bucket_cap_mb": 0.001},
                           {"hook": "allreduce"}),
    # low-rank approximation: checked for agreement across ranks only
    "mlp_powersgd": ("mlp", "sgd", {"bucket_cap_mb": 0.001},
                     {"hook": "powersgd"}),
}


def build(kind):
    dtrain.manual_seed(0)
    if kind == "mlp":
        return MLP()
    if kind == "branchy":
        return Branchy()
    model = CNN()
    if kind == "cnn_syncbn":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def optimizer(kind, params):
    if kind == "sgd":
        return dtrain.optim.SGD(params, lr=0.1, momentum=0.9)
    return dtrain.optim.AdamW(params, lr=0.01, weight_decay=0.01)


def _hook(name):
    """(state, hook) for DistributedDataParallel.register_comm_hook."""
    from dtrain.distributed.algorithms.ddp_comm_hooks import (default_hooks,
                                                             powerSGD_hook)
    if name == "powersgd":
        state = powerSGD_hook.PowerSGDState(None, start_powerSGD_iter=2,
                                            min_compression_rate=0.5)
        return state, powerSGD_hook.powerSGD_hook
    return None, {"fp16": default_hooks.fp16_compress_hook,
                  "bf16": default_hooks.bf16_compress_hook,
                  "allreduce": default_hooks.allreduce_hook}[name]


def _use_maybe(rank, opts):
    return rank == 0 if opts.get("maybe_on_rank0") else True


def run_case(name, rank, world, ddp):
    """Trains case `name`; returns (losses, {param name: array})."""
    model_kind, opt_kind, ddp_kwargs, opts = CASES[name]
    model = build(model_kind)
    net = model
    if ddp:
        net = nn.parallel.DistributedDataParallel(model, **ddp_kwargs)
        if "hook" in opts:
            net.register_comm_hook(*_hook(opts["hook"]))
    opt = optimizer(opt_kind, model.parameters())
    data_kind = "cnn" if model_kind.startswith("cnn") else "mlp"
    micro = opts.get("micro", 1)
    losses = []
    for step in range(STEPS):
        opt.zero_grad()
        total = 0.0
        for m in range(micro):
            x, y = batch(step * micro + m, world, data_kind)
            if ddp:
                sync = m == micro - 1
                with (_Null() if sync else net.no_sync()):
                    total += _loss_backward(net, model_kind, opts, x, y,
                                            rank, rank + 1)
            elif opts.get("maybe_on_rank0"):
                # the model's path depends on the rank: one slice at a time
                for r in range(world):
                    total += _loss_backward(net, model_kind, opts, x, y, r,
                                            r + 1, scale=1.0 / world)
            else:
                total += _loss_backward(net, model_kind, opts, x, y, 0,
                                        world)
        opt.step()
        losses.append(total)
    return losses, {n: p.detach().numpy().copy()
                    for n, p in model.named_parameters()}, model


def _loss_backward(net, model_kind, opts, x, y, r0, r1, scale=1.0):
    """Loss of rows [r0, r1) * LOCAL_BATCH, backpropagated; returns it."""
    lo, hi = r0 * LOCAL_BATCH, r1 * LOCAL_BATCH
    args = (_use_maybe(r0, opts),) if model_kind == "branchy" else ()
    out = net(dtrain.tensor(x[lo:hi]), *args)
    loss = F.cross_entropy(out, dtrain.tensor(y[lo:hi])) * scale
    loss.backward()
    return loss.item()


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main():
    out_dir, names = sys.argv[1], sys.argv[2:]
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    import dtrain.distributed as dist
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    for name in names:
        losses, params, model = run_case(name, rank, world, ddp=True)
        grads = {f"grad.{n}": (p.grad.numpy() if p.grad is not None
                               else np.array([]))
                 for n, p in model.named_parameters()}
        nones = [n for n, p in model.named_parameters() if p.grad is None]
        np.savez(os.path.join(out_dir, f"{name}_rank{rank}.npz"),
                 losses=np.array(losses), nones=np.array(nones, dtype=str),
                 **params, **grads)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
