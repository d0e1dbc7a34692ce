"""all_reduce bandwidth: dtrain vs torch.distributed (gloo), side by side.

    python bench/allreduce_bench.py [--nproc 2] [--out bench/results/allreduce_bench.txt]

Both libraries run in the same worker processes (started by dtrain's
launch()), each with its own process group over loopback, alternating size
by size. Sizes are float32 buffers from 4 KiB to 64 MiB. Reported as
nccl-tests does: time per all_reduce (median), algbw = bytes / time and
busbw = algbw * 2 (n - 1) / n, and the ratio of busbw (dtrain / torch).
"""
import argparse
import os
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

SIZES = [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20,
         16 << 20, 64 << 20]


def _reps(nbytes):
    return max(15, min(200, (64 << 20) // nbytes // 2))


def _time_ops(fn, barrier, reps):
    fn()
    fn()
    times = []
    for _ in range(reps):
        barrier()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def worker(index, torch_port):
    import numpy as np
    import torch
    import torch.distributed as tdist

    import dtrain
    import dtrain.distributed as ddist
    rank = int(os.environ["RANK"])
    world = int(os.environ["WORLD_SIZE"])
    torch.set_num_threads(1)
    ddist.init_process_group("gloo")
    tdist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:"
                             f"{torch_port}", rank=rank, world_size=world)
    rows = []
    for nbytes in SIZES:
        n = nbytes // 4
        data = np.full(n, float(rank + 1), np.float32)
        dt, tt = dtrain.tensor(data), torch.from_numpy(data.copy())
        reps = _reps(nbytes)
        t_dt = _time_ops(lambda: ddist.all_reduce(dt), ddist.barrier, reps)
        t_t = _time_ops(lambda: tdist.all_reduce(tt), tdist.barrier, reps)
        rows.append((nbytes, t_dt, t_t))
    # correctness of the last buffer after all those sums is not the point
    # here; tests/test_collectives.py checks results.
    tdist.destroy_process_group()
    ddist.destroy_process_group()
    return rows if rank == 0 else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nproc", type=int, default=2)
    p.add_argument("--out")
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    from common import header, write_results
    from dtrain._launch.spawn import launch
    rows = launch(worker, args=(free_port(),), nprocs=args.nproc)[0]
    n = args.nproc
    factor = 2 * (n - 1) / n
    lines = header(f"allreduce_bench: {n} processes, float32, loopback",
                   torch)
    lines.append(f"{'size':>9} | {'dtrain us':>10}{'algbw':>8}{'busbw':>8}"
                 f" | {'torch us':>10}{'algbw':>8}{'busbw':>8} | "
                 f"{'busbw ratio':>11}")
    lines.append("# algbw/busbw in GB/s (1e9 bytes/s)")
    for nbytes, t_dt, t_t in rows:
        a_dt, a_t = nbytes / t_dt / 1e9, nbytes / t_t / 1e9
        size = (f"{nbytes >> 20} MiB" if nbytes >= 1 << 20
                else f"{nbytes >> 10} KiB")
        lines.append(f"{size:>9} | {t_dt * 1e6:>10.1f}{a_dt:>8.3f}"
                     f"{a_dt * factor:>8.3f} | {t_t * 1e6:>10.1f}{a_t:>8.3f}"
                     f"{a_t * factor:>8.3f} | {a_dt / a_t:>11.2f}")
    lines.append("# goal: busbw ratio >= 1.0 at every size, small-message "
                 "latency no higher")
    print("\n".join(lines))
    if args.out:
        write_results(args.out, lines)


if __name__ == "__main__":
    main()
