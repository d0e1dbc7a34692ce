"""One DDP rank of a scenario that tests/test_ddp.py checks from outside:
overlap (the recorded timeline), errors (mismatched models, an unused
parameter, a parameter marked ready twice, a rank that dies), join with
uneven inputs, and parity with torch's DDP.

`python ddp_scenarios.py OUTDIR SCENARIO` with torchrun's environment;
writes OUTDIR/<scenario>_rank<R>.json: {"ok": ..., "error": [type, text],
"elapsed": seconds, ...scenario data}.
"""
import json
import os
import sys
import time
import traceback
from datetime import timedelta

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import dtrain  # noqa: E402
import dtrain.distributed as dist  # noqa: E402
import dtrain.nn as nn  # noqa: E402
import dtrain.nn.functional as F  # noqa: E402
from dtrain.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

from ddp_cases import CNN, MLP, Branchy, batch  # noqa: E402


def _step(net, opt, x, y, *args):
    opt.zero_grad()
    loss = F.cross_entropy(net(dtrain.tensor(x), *args), dtrain.tensor(y))
    loss.backward()
    opt.step()
    return loss.item()


def overlap(rank, world, out):
    """Several buckets, and a wide first layer whose weight gradient (a
    GEMM of ~1 GFLOP, computed after bucket 0 is ready) keeps the
    backward going well after the first bucket's allreduce begins."""
    dtrain.manual_seed(0)
    model = nn.Sequential(nn.Linear(4096, 1024), nn.ReLU(),
                          nn.Linear(1024, 1024), nn.ReLU(),
                          nn.Linear(1024, 10))
    net = DDP(model, bucket_cap_mb=1)
    opt = dtrain.optim.SGD(model.parameters(), lr=0.01)
    rng = np.random.default_rng(rank)
    for step in range(4):
        x = rng.standard_normal((128, 4096)).astype(np.float32)
        y = rng.integers(0, 10, 128)
        _step(net, opt, x, y)
        if step == 0:
            out["first_step"] = net.stats()
            net.reset_stats()
    out["stats"] = net.stats()
    trace = os.path.join(out["dir"], f"trace_rank{rank}.json")
    net.write_trace(trace)
    out["trace"] = trace


def mismatch(rank, world, out):
    dtrain.manual_seed(0)
    model = MLP(hidden=32 if rank == 0 else 33) if out["shape"] else (
        nn.Sequential(MLP(), nn.Linear(10, 10)) if rank == 1 else
        nn.Sequential(MLP()))
    DDP(model)


def mismatch_shape(rank, world, out):
    out["shape"] = True
    mismatch(rank, world, out)


def mismatch_count(rank, world, out):
    out["shape"] = False
    mismatch(rank, world, out)


def unused(rank, world, out):
    """`unused` gets no gradient and find_unused_parameters is off: the
    second forward raises, naming it."""
    dtrain.manual_seed(0)
    net = DDP(Branchy())
    opt = dtrain.optim.SGD(net.parameters(), lr=0.1)
    x, y = batch(0, 1, "mlp")
    _step(net, opt, x, y)
    out["first_step_ok"] = True
    _step(net, opt, x, y)


class TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk = nn.Linear(20, 16)
        self.head1 = nn.Linear(16, 10)
        self.head2 = nn.Linear(16, 10)

    def forward(self, x):
        h = F.relu(self.trunk(x))
        return self.head1(h), self.head2(h)


def twice(rank, world, out):
    """Two backward passes over parts of one graph before the next
    forward: the trunk's parameters are marked ready twice."""
    dtrain.manual_seed(0)
    net = DDP(TwoHeads())
    x, _ = batch(0, 1, "mlp")
    a, b = net(dtrain.tensor(x))
    a.sum().backward(retain_graph=True)
    b.sum().backward()


def dead_rank(rank, world, out):
    """Rank 1 dies after the forward of step 2; the others' backward
    must fail within the group's timeout."""
    dtrain.manual_seed(0)
    model = MLP()
    net = DDP(model)
    opt = dtrain.optim.SGD(model.parameters(), lr=0.1)
    x, y = batch(0, 1, "mlp")
    _step(net, opt, x, y)
    if rank == 1:
        net(dtrain.tensor(x))
        os._exit(3)
    time.sleep(0.5)
    out["t0"] = time.monotonic()
    try:
        _step(net, opt, x, y)
    finally:
        out["fail_after"] = time.monotonic() - out["t0"]


def join(rank, world, out):
    """Rank r has 2 + r batches; the others shadow it; every rank ends
    with the same parameters, equal to a single process that averages
    over the world size with zeros for the finished ranks."""
    dtrain.manual_seed(0)
    model = MLP()
    net = DDP(model)
    opt = dtrain.optim.SGD(model.parameters(), lr=0.1)
    with net.join():
        for step in range(2 + rank):
            x, y = batch(step, world, "mlp")
            lo = rank * 6
            _step(net, opt, x[lo:lo + 6], y[lo:lo + 6])
    out["params"] = {n: p.detach().numpy().tolist()
                     for n, p in model.named_parameters()}


def leaks(rank, world, out):
    """Building, training and dropping a DDP model returns the core's live
    tensors and bytes to where they were (buckets, views, hooks freed)."""
    import gc
    x, y = batch(0, world, "mlp")

    def train():
        dtrain.manual_seed(0)
        model = MLP()
        net = DDP(model, bucket_cap_mb=0.001, gradient_as_bucket_view=True)
        opt = dtrain.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            _step(net, opt, x[:6], y[:6])

    train()                     # warm up caches
    gc.collect()
    before = dtrain._C._live_counts()
    for _ in range(3):
        train()
    gc.collect()
    out["before"], out["after"] = before, dtrain._C._live_counts()


def _torch_twin(model, torch_model):
    import torch
    with torch.no_grad():
        for (n, p), (tn, tp) in zip(model.state_dict().items(),
                                    torch_model.state_dict().items()):
            assert n == tn, (n, tn)
            tp.copy_(torch.from_numpy(p.numpy().copy()))


def torch_parity(rank, world, out):
    """dtrain DDP and torch DDP (gloo) on the same weights and batches:
    the MLP with SGD-momentum and the CNN with plain BatchNorm (whose
    per-rank statistics only torch's DDP can serve as reference for)."""
    import torch
    import torch.distributed as tdist
    import torch.nn as tnn
    import torch.nn.functional as tF
    torch.set_num_threads(1)
    port = int(os.environ["MASTER_PORT"]) + 1
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}",
                             rank=rank, world_size=world,
                             timeout=timedelta(seconds=60))
    for kind in ("mlp", "cnn"):
        dtrain.manual_seed(0)
        model = MLP() if kind == "mlp" else CNN()
        tmodel = _torch_model(kind, tnn, tF)
        _torch_twin(model, tmodel)
        net, tnet = DDP(model), tnn.parallel.DistributedDataParallel(tmodel)
        opt = dtrain.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        topt = torch.optim.SGD(tmodel.parameters(), lr=0.1, momentum=0.9)
        losses, tlosses = [], []
        for step in range(4):
            x, y = batch(step, world, kind)
            lo = rank * 6
            x, y = x[lo:lo + 6], y[lo:lo + 6]
            losses.append(_step(net, opt, x, y))
            topt.zero_grad()
            tl = tF.cross_entropy(tnet(torch.from_numpy(x)),
                                  torch.from_numpy(y))
            tl.backward()
            topt.step()
            tlosses.append(tl.item())
        out[kind] = {"losses": losses, "torch_losses": tlosses,
                     "params": {n: v.numpy().tolist() for n, v in
                                model.state_dict().items()},
                     "torch_params": {n: v.numpy().tolist() for n, v in
                                      tmodel.state_dict().items()}}
    tdist.destroy_process_group()


def _torch_model(kind, tnn, tF):
    class TMLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = tnn.Linear(20, 32)
            self.fc2 = tnn.Linear(32, 32)
            self.fc3 = tnn.Linear(32, 10)

        def forward(self, x):
            return self.fc3(tF.relu(self.fc2(tF.relu(self.fc1(x)))))

    class TCNN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(1, 4, 3, padding=1)
            self.bn1 = tnn.BatchNorm2d(4)
            self.conv2 = tnn.Conv2d(4, 8, 3, padding=1)
            self.fc = tnn.Linear(8 * 2 * 2, 10)

        def forward(self, x):
            x = tF.max_pool2d(tF.relu(self.bn1(self.conv1(x))), 2)
            x = tF.max_pool2d(tF.relu(self.conv2(x)), 2)
            return self.fc(x.reshape(x.shape[0], -1))

    return TMLP() if kind == "mlp" else TCNN()


def main():
    out_dir, scenario = sys.argv[1], sys.argv[2]
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    timeout = float(os.environ.get("DDP_TEST_TIMEOUT", "60"))
    dist.init_process_group("gloo", timeout=timedelta(seconds=timeout))
    out = {"dir": out_dir}
    t0 = time.monotonic()
    try:
        globals()[scenario](rank, world, out)
        out["ok"] = True
    except Exception as e:                       # noqa: BLE001 (reported)
        out["ok"] = False
        out["error"] = [type(e).__name__, str(e)]
        out["traceback"] = traceback.format_exc()
    out["elapsed"] = time.monotonic() - t0
    path = os.path.join(out_dir, f"{scenario}_rank{rank}.json")
    with open(path, "w") as f:
        json.dump(out, f)
    os._exit(0)      # a dead peer must not hang the group's teardown


if __name__ == "__main__":
    main()
