"""DistributedDataParallel: dtrain vs torch DDP (gloo), side by side.

    python bench/ddp_bench.py [--nprocs 1 2] [--models mlp cnn]
                              [--steps 8] [--repeats 9]
                              [--out bench/results/ddp_bench.txt]

The models are bench/train_bench.py's (MLP 784-1024-1024-10 at batch 128
per rank, the CNN at batch 64 per rank), trained with SGD-momentum on
random data, one compute thread per process in both libraries. For each
process count, the worker processes (started with dtrain's launch()) hold
both libraries, each with its own gloo process group over loopback, and
both DDP models with their default buckets (25 MB, first bucket 1 MiB).
They alternate blocks of --steps steps, --repeats times: dtrain, torch,
dtrain under no_sync(), torch under no_sync(), and a torch copy
instrumented with timing hooks, so drifts in machine load hit both
libraries alike; the figures are medians over blocks (a block's time is
its slowest rank's). The column header in the output says exactly what
each column is.
"""
import argparse
import contextlib
import os
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from common import header, pin_threads, write_results  # noqa: E402

pin_threads(1)

from train_bench import make_batch, make_model  # noqa: E402

LIBS = ("dtrain", "torch")


class Runner:
    """One library's DDP model, optimizer and batch on this rank."""

    def __init__(self, lib, ddp_cls, arch, rank):
        model, self.batch = make_model(lib, arch)
        self.ddp = ddp_cls(model)
        self.opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.x, self.y = make_batch(lib, self.batch, seed=rank)
        self.loss_fn = lib.nn.functional.cross_entropy
        self.params = list(model.parameters())
        self.on_backward = None       # (start, end) callback, for timelines

    def step(self):
        loss = self.loss_fn(self.ddp(self.x), self.y)
        self.opt.zero_grad()
        t0 = time.perf_counter()
        loss.backward()
        if self.on_backward is not None:
            self.on_backward(t0, time.perf_counter())
        self.opt.step()

    def block(self, steps, sync=True):
        """Mean step time over `steps` steps (with no_sync() if not sync)."""
        ctx = contextlib.nullcontext() if sync else self.ddp.no_sync()
        with ctx:
            t0 = time.perf_counter()
            for _ in range(steps):
                self.step()
            return (time.perf_counter() - t0) / steps


class TorchTimeline:
    """What torch DDP's step spent on communication, measured from
    outside: a comm hook that runs torch's own allreduce_hook and records
    when each bucket's allreduce was launched and when it completed, and
    post-accumulate-grad hooks that record when the last gradient was
    computed. Exposed = backward's return - last gradient; overlap =
    1 - exposed / (time some bucket was in flight)."""

    def __init__(self, runner):
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks \
            import allreduce_hook
        self.allreduce_hook = allreduce_hook
        self.grads, self.comm = [], []
        self.exposed, self.busy = [], []
        for p in runner.params:
            p.register_post_accumulate_grad_hook(
                lambda p: self.grads.append(time.perf_counter()))
        runner.ddp.register_comm_hook(self, TorchTimeline.hook)
        runner.on_backward = self.step_done

    @staticmethod
    def hook(state, bucket):
        launched = time.perf_counter()

        def done(fut):
            state.comm.append((launched, time.perf_counter()))
            return fut.value()
        return state.allreduce_hook(None, bucket).then(done)

    def step_done(self, start, end):
        grads_done = max(t for t in self.grads if t >= start)
        self.exposed.append(max(0.0, end - grads_done))
        self.busy.append(_union(iv for iv in self.comm if iv[0] >= start))
        self.grads.clear()
        self.comm.clear()

    def summary(self):
        exposed, busy = sum(self.exposed), sum(self.busy)
        return {"exposed_s": exposed / len(self.exposed),
                "overlap": max(0.0, 1 - exposed / busy) if busy else 0.0}


def _union(intervals):
    total, end = 0.0, None
    for a, b in sorted(intervals):
        if end is None or a > end:
            total += b - a
            end = b
        elif b > end:
            total += b - end
            end = b
    return total


def bench_model(arch, libs, rank, steps, repeats, barrier):
    dtrain, torch = libs
    from dtrain.nn.parallel import DistributedDataParallel as DtrainDDP
    from torch.nn.parallel import DistributedDataParallel as TorchDDP
    run = {"dtrain": Runner(dtrain, DtrainDDP, arch, rank),
           "torch": Runner(torch, TorchDDP, arch, rank)}
    hooked = Runner(torch, TorchDDP, arch, rank)
    timeline = TorchTimeline(hooked)
    for r in list(run.values()) + [hooked]:   # warm-up, bucket rebuilds
        barrier()
        r.block(3)
        r.block(2, sync=False)
    run["dtrain"].ddp.reset_stats()
    timeline.exposed.clear()
    timeline.busy.clear()
    times = {(lib, sync): [] for lib in LIBS for sync in (True, False)}
    for _ in range(repeats):
        for sync in (True, False):
            for lib in LIBS:
                barrier()
                times[lib, sync].append(run[lib].block(steps, sync))
        barrier()
        hooked.block(steps)
    st = run["dtrain"].ddp.stats()
    return {"times": times, "batch": run["dtrain"].batch,
            "dtrain_comm": {"exposed_s": st["exposed_comm_s"],
                            "overlap": st["overlap"],
                            "buckets": st["num_buckets"]},
            "torch_comm": timeline.summary()}


def worker(index, torch_port, models, steps, repeats):
    import torch
    import torch.distributed as tdist

    import dtrain
    import dtrain.distributed as ddist
    torch.set_num_threads(1)
    dtrain.set_num_threads(1)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    ddist.init_process_group("gloo")
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:"
                             f"{torch_port}", rank=rank, world_size=world)
    try:
        return {arch: bench_model(arch, (dtrain, torch), rank, steps,
                                  repeats, ddist.barrier)
                for arch in models}
    finally:
        tdist.destroy_process_group()
        ddist.destroy_process_group()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def combine(per_rank, arch, nproc):
    """Per-library figures for one model and process count: block times
    are the slowest rank's, then the median over blocks."""
    r0 = per_rank[0][arch]
    out = {}
    for lib in LIBS:
        step, nosync = (statistics.median(max(rank[arch]["times"][lib, s][i]
                                              for rank in per_rank)
                                          for i in range(len(
                                              r0["times"][lib, s])))
                        for s in (True, False))
        comm = r0[f"{lib}_comm"]
        out[lib] = {"rate": r0["batch"] * nproc / step, "step": step,
                    "nosync": nosync, "exposed": comm["exposed_s"],
                    "overlap": comm["overlap"]}
    return out


COLUMNS = """\
# columns, per model, process count and library:
#   samples/s  batch per rank x processes / step ms
#   step ms    one training step (forward, cross-entropy, backward with DDP's
#              gradient averaging, SGD-momentum update): a block's mean step
#              time on its slowest rank, median over the blocks
#   nosync ms  the same step inside ddp.no_sync() (no communication at all)
#   comm ms    step ms - nosync ms: what gradient communication adds to a step
#   exposed ms mean time per step that backward waited for communication
#              after the last gradient was computed, on rank 0. dtrain: from
#              ddp.stats() of the timed steps. torch: from a third DDP model
#              (instrumented: torch's allreduce_hook wrapped in a timing comm
#              hook, post-accumulate-grad hooks; their Python callbacks
#              add a little to it), timed in the same blocks
#   overlap    1 - exposed / time some bucket's allreduce was in flight
#              (0..1; same sources as exposed; "-" for 1 process, where
#              the allreduce is a local no-op)"""


def table(results, models, nprocs):
    lines = [COLUMNS,
             f"{'model':<6}{'procs':>6}  {'library':<8}{'samples/s':>10}"
             f"{'step ms':>9}{'nosync ms':>10}{'comm ms':>9}"
             f"{'exposed ms':>11}{'overlap':>8}"]
    for arch in models:
        for n in nprocs:
            for lib in LIBS:
                r = results[n][arch][lib]
                overlap = f"{r['overlap']:.2f}" if n > 1 else "-"
                lines.append(
                    f"{arch:<6}{n:>6}  {lib:<8}{r['rate']:>10.0f}"
                    f"{r['step'] * 1e3:>9.2f}{r['nosync'] * 1e3:>10.2f}"
                    f"{(r['step'] - r['nosync']) * 1e3:>9.2f}"
                    f"{r['exposed'] * 1e3:>11.2f}{overlap:>8}")
    return lines + summary(results, models, nprocs)


def summary(results, models, nprocs):
    """dtrain/torch samples/s per process count; scaling efficiency."""
    scaling = 1 in nprocs and 2 in nprocs
    lines = ["# summary: dtrain/torch = ratio of samples/s (goal >= 1.0); "
             "scaling = 2-process samples/s / (2 x 1-process samples/s)",
             f"{'model':<6}" + "".join(f"{f'dtrain/torch {n}p':>17}"
                                       for n in nprocs)
             + (f"{'scaling dtrain':>16}{'scaling torch':>15}"
                if scaling else "")]
    for arch in models:
        rate = {(n, lib): results[n][arch][lib]["rate"] for n in nprocs
                for lib in LIBS}
        line = f"{arch:<6}" + "".join(
            f"{rate[n, 'dtrain'] / rate[n, 'torch']:>17.2f}" for n in nprocs)
        if scaling:
            line += (f"{rate[2, 'dtrain'] / (2 * rate[1, 'dtrain']):>16.2f}"
                     f"{rate[2, 'torch'] / (2 * rate[1, 'torch']):>15.2f}")
        lines.append(line)
    return lines


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nprocs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--models", nargs="+", default=["mlp", "cnn"],
                   choices=["mlp", "cnn"])
    p.add_argument("--steps", type=int, default=8, help="steps per block")
    p.add_argument("--repeats", type=int, default=9,
                   help="blocks per library and mode")
    p.add_argument("--out")
    args = p.parse_args()
    import torch

    from dtrain._launch.spawn import launch
    results = {}
    for n in args.nprocs:
        per_rank = launch(worker, args=(free_port(), args.models, args.steps,
                                        args.repeats), nprocs=n)
        results[n] = {arch: combine(per_rank, arch, n)
                      for arch in args.models}
    lines = header("ddp_bench: DistributedDataParallel, dtrain vs torch "
                   "(gloo, loopback), 1 thread per process", torch)
    lines += table(results, args.models, args.nprocs)
    lines.append("# goal: dtrain/torch >= 1.0 for both models")
    print("\n".join(lines))
    if args.out:
        write_results(args.out, lines)


if __name__ == "__main__":
    main()
