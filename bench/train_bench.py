"""dtrain vs torch training step, one thread each.

    python bench/train_bench.py [--steps 30] [--out bench/results/train_bench.txt]

A step is forward, cross-entropy, backward and an SGD-momentum update, for
  mlp: 784-1024-1024-10, batch 128
  cnn: conv 1->32 3x3, pool, conv 32->64 3x3, pool, linear 3136->128, linear
       128->10, on 28x28 inputs, batch 64.
Step times are medians of interleaved steps (dtrain, torch, dtrain, ...)
in this process. Peak memory is measured in a fresh child process per
library and model: the rise of resident memory (VmHWM) during training
steps over the resident memory just before the first step.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import header, pin_threads, time_pair, write_results  # noqa: E402

pin_threads(1)


def make_model(lib, arch):
    """The benchmark's model for lib (dtrain or torch) and its batch size."""
    nn = lib.nn
    if arch == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(),
                              nn.Linear(1024, 1024), nn.ReLU(),
                              nn.Linear(1024, 10))
        return model, 128
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(64 * 7 * 7, 128), nn.ReLU(),
                          nn.Linear(128, 10))
    return model, 64


def make_batch(lib, batch, seed=0):
    """Random 28x28 inputs and labels as lib tensors."""
    import numpy as np
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, batch)
    if lib.__name__ == "torch":
        return lib.from_numpy(x), lib.from_numpy(y)
    return lib.tensor(x), lib.tensor(y)


def build(lib, arch):
    model, batch = make_model(lib, arch)
    opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    xs, ys = make_batch(lib, batch)
    loss_fn = lib.nn.functional.cross_entropy

    def step():
        loss = loss_fn(model(xs), ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def _rss_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def child(libname, arch, steps):
    """Runs in a fresh process: reports the memory a training run adds."""
    if libname == "torch":
        import torch as lib
        lib.set_num_threads(1)
    else:
        import dtrain as lib
        lib.set_num_threads(1)
    step = build(lib, arch)
    before = _rss_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:  # reset VmHWM to now
        f.write("5")
    for _ in range(steps):
        step()
    print(json.dumps({"peak_kib": _rss_kib("VmHWM") - before}))


def peak_memory(libname, arch, steps):
    out = subprocess.run([sys.executable, __file__, "--child", libname, arch,
                          str(steps)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_kib"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10,
                   help="steps per child process for the memory figure")
    p.add_argument("--out")
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return
    import torch

    import dtrain
    torch.set_num_threads(1)
    dtrain.set_num_threads(1)
    lines = header("train_bench: training step, dtrain vs torch, 1 thread "
                   "each", torch)
    lines.append(f"{'model':<6}{'dtrain ms':>11}{'torch ms':>11}{'ratio':>8}"
                 f"{'dtrain MiB':>12}{'torch MiB':>11}{'mem ratio':>10}")
    print("\n".join(lines), flush=True)
    for arch in ("mlp", "cnn"):
        td, tt = time_pair(build(dtrain, arch), build(torch, arch),
                           min_time=2.0, min_reps=10)
        md = peak_memory("dtrain", arch, args.steps) / 1024
        mt = peak_memory("torch", arch, args.steps) / 1024
        line = (f"{arch:<6}{td * 1e3:>11.2f}{tt * 1e3:>11.2f}{td / tt:>8.2f}"
                f"{md:>12.1f}{mt:>11.1f}{md / mt:>10.2f}")
        print(line, flush=True)
        lines.append(line)
    lines.append("# goal: step-time ratio <= 1.0, memory ratio <= 1.0")
    if args.out:
        write_results(args.out, lines)


if __name__ == "__main__":
    main()
