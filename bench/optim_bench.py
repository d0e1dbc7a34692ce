"""dtrain.optim vs torch.optim, one thread each: one optimizer step on a
1M-element float32 parameter (torch's default single-tensor "for-loop"
implementation on CPU, which is what torch picks for CPU tensors).

    python bench/optim_bench.py [--n 1048576] [--out FILE]

Each case is timed interleaved (dtrain, torch, dtrain, ...) and reported as
median milliseconds and the ratio dtrain/torch (below 1.0: dtrain faster),
plus the effective memory traffic of dtrain's fused step in GB/s.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import header, pin_threads, time_pair, write_results  # noqa: E402

pin_threads(1)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import dtrain  # noqa: E402
import dtrain.optim  # noqa: E402

torch.set_num_threads(1)

# name, constructor kwargs, tensors a fused step reads + writes (x n x 4 B)
CASES = [
    ("SGD", "SGD", dict(lr=0.01), 3),
    ("SGD momentum", "SGD", dict(lr=0.01, momentum=0.9), 5),
    ("SGD nesterov+wd", "SGD",
     dict(lr=0.01, momentum=0.9, nesterov=True, weight_decay=1e-4), 5),
    ("Adam", "Adam", dict(lr=1e-3), 7),
    ("Adam amsgrad+wd", "Adam",
     dict(lr=1e-3, amsgrad=True, weight_decay=1e-2), 9),
    ("AdamW", "AdamW", dict(lr=1e-3), 7),
    ("AdamW amsgrad maximize", "AdamW",
     dict(lr=1e-3, amsgrad=True, maximize=True), 9),
]


def make(n, cls, kw):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(n).astype(np.float32)
    g0 = rng.standard_normal(n).astype(np.float32)
    dp = dtrain.tensor(p0).requires_grad_()
    dp.grad = dtrain.tensor(g0)
    tp = torch.tensor(p0, requires_grad=True)
    tp.grad = torch.tensor(g0)
    return (getattr(dtrain.optim, cls)([dp], **kw),
            getattr(torch.optim, cls)([tp], **kw))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1 << 20)
    p.add_argument("--out", help="also write the table to this file")
    args = p.parse_args()
    lines = header(f"optim_bench: one step, {args.n} float32 elements, "
                   f"1 thread each", torch)
    lines.append(f"{'case':<24}{'dtrain ms':>11}{'torch ms':>11}"
                 f"{'ratio':>8}{'dtrain GB/s':>13}")
    print("\n".join(lines), flush=True)
    for name, cls, kw, ntensors in CASES:
        do, to = make(args.n, cls, kw)
        td, tt = time_pair(do.step, to.step)
        gbs = ntensors * 4 * args.n / td / 1e9
        line = (f"{name:<24}{td * 1e3:>11.3f}{tt * 1e3:>11.3f}"
                f"{td / tt:>8.2f}{gbs:>13.1f}")
        print(line, flush=True)
        lines.append(line)
    if args.out:
        write_results(args.out, lines)


if __name__ == "__main__":
    main()
