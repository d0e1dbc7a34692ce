"""dtrain vs torch, one thread each, on the ops the foundation issue names.

    python bench/ops_bench.py [--out bench/results/ops_bench.txt]

Each case is timed interleaved (dtrain, torch, dtrain, ...) and reported as
median milliseconds and the ratio dtrain/torch (below 1.0: dtrain faster).
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

torch.set_num_threads(1)
dtrain.set_num_threads(1)


def pair(shape, seed):
    a = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return dtrain.tensor(a), torch.from_numpy(a.copy())


def cases():
    n4m = 4 * 1024 * 1024
    for n in (512, 1024, 2048):
        (a, ta), (b, tb) = pair((n, n), 1), pair((n, n), 2)
        yield f"matmul {n}x{n} f32", (lambda a=a, b=b: a @ b,
                                       lambda a=ta, b=tb: a @ b)
    (x, tx), (y, ty) = pair(n4m, 3), pair(n4m, 4)
    yield "add 4M f32", (lambda: x + y, lambda: tx + ty)
    yield "mul 4M f32", (lambda: x * y, lambda: tx * ty)
    yield "gelu 4M f32", (lambda: dtrain.gelu(x),
                          lambda: torch.nn.functional.gelu(tx))
    yield "sum 4M f32", (lambda: x.sum(), lambda: tx.sum())
    (m, tm) = pair((4096, 1024), 5)
    yield "sum(-1) 4096x1024 f32", (lambda: m.sum(-1), lambda: tm.sum(-1))
    (r, tr) = pair(1024, 6)
    yield "add (4096,1024)+(1024,)", (lambda: m + r, lambda: tm + tr)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", help="also write the table to this file")
    args = p.parse_args()
    lines = header("ops_bench: dtrain vs torch, 1 thread each", torch)
    lines.append(f"{'case':<26}{'dtrain ms':>11}{'torch ms':>11}"
                 f"{'ratio':>8}")
    print("\n".join(lines), flush=True)
    worst = 0.0
    for name, (fd, ft) in cases():
        td, tt = time_pair(fd, ft)
        worst = max(worst, td / tt)
        line = f"{name:<26}{td * 1e3:>11.3f}{tt * 1e3:>11.3f}{td / tt:>8.2f}"
        print(line, flush=True)
        lines.append(line)
    lines.append(f"# worst ratio {worst:.2f} (goal <= 1.10)")
    print(lines[-1])
    if args.out:
        write_results(args.out, lines)


if __name__ == "__main__":
    main()
