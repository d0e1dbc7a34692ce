"""Trains the digits CNN with DistributedDataParallel.

    python -m dtrain.run --nproc-per-node 2 examples/train_digits_ddp.py
    python examples/train_digits_ddp.py              # one process, same code
    ... train_digits_ddp.py --data-dir DIR           # MNIST IDX files
    ... train_digits_ddp.py --resume checkpoints/digits_ddp.dt

Each rank trains on its DistributedSampler share of every epoch
(--batch-size is per rank) and DDP averages the gradients across ranks
during backward. Evaluation splits the test set across ranks without
padding and sums the counts with all_reduce, so the accuracy covers every
test sample exactly once. Rank 0 prints one line per epoch (loss, test
accuracy, samples/s of all ranks together, how much of the gradient
communication was hidden behind backward) and writes the checkpoint after
every epoch; --resume continues after the saved epoch and ends with the
same weights as an uninterrupted run (the data order depends only on
--seed and the epoch; model, optimizer and schedule are restored).
Exits non-zero if the final test accuracy is below --min-accuracy.
DTRAIN_DDP_TRACE=DIR in the environment writes each rank's timeline of
backward and bucket allreduces as a Chrome trace into DIR.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dtrain  # noqa: E402
import dtrain.distributed as dist  # noqa: E402
import dtrain.nn.functional as F  # noqa: E402
from dtrain.nn.parallel import DistributedDataParallel as DDP  # noqa: E402
from dtrain.utils.data import (DataLoader, DistributedSampler,  # noqa: E402
                               TensorDataset)
from digits_data import load  # noqa: E402
from train_digits import CNN, evaluate_sums, make_optimizer, mlp  # noqa: E402


def init_distributed():
    """Joins the launcher's group (python -m dtrain.run sets RANK,
    WORLD_SIZE, MASTER_ADDR, ...); run as a plain script, makes a group of
    one over an in-process store, so the code below is the same."""
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        dist.init_process_group("gloo")
    else:
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0,
                                world_size=1)
    return dist.get_rank(), dist.get_world_size()


def summed(*values):
    """The values added up over all ranks (float64, exact for counts)."""
    t = dtrain.tensor(values, dtype=dtrain.float64)
    dist.all_reduce(t)
    return t.tolist()


def evaluate(model, test_set, batch_size):
    """Loss and accuracy over the whole test set: each rank scores its own
    samples (pad=False: no duplicates) and the sums are all-reduced. Runs
    the bare module: ranks may have different numbers of batches, so no
    collective (DDP's buffer broadcast) may run per batch."""
    sampler = DistributedSampler(test_set, shuffle=False, pad=False)
    loader = DataLoader(test_set, batch_size=batch_size, sampler=sampler)
    loss_sum, correct, total = summed(*evaluate_sums(model, loader))
    assert total == len(test_set)     # every sample once, none twice
    return loss_sum / total, correct / total


def save_checkpoint(path, model, opt, sched, epoch, acc, args):
    """Rank 0 only; dtrain.save writes a temporary file and renames it, so
    an interrupted save never leaves a broken checkpoint."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    dtrain.save({"model": model.module.state_dict(),
                 "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(),
                 "epoch": epoch, "accuracy": acc,
                 "world_size": dist.get_world_size(), "args": vars(args)},
                path)


def resume(path, model, opt, sched, world):
    """Loads a checkpoint into the (not yet wrapped) model, the optimizer
    and the schedule; returns the last finished epoch."""
    ck = dtrain.load(path)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    if dist.get_rank() == 0:
        note = ("" if ck["world_size"] == world else
                f" (saved with {ck['world_size']} processes: the data order "
                f"differs from an uninterrupted run)")
        print(f"resumed {path} after epoch {ck['epoch']}{note}", flush=True)
    return ck["epoch"]


def train_epoch(ddp, loader, opt):
    """One pass over this rank's share; returns (summed loss, samples)."""
    loss_sum, seen = 0.0, 0
    for x, y in loader:
        loss = F.cross_entropy(ddp(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_sum += loss.item() * len(y)
        seen += len(y)
    return loss_sum, seen


def build(args, rank, world):
    """Data, model, optimizer and schedule, restored from --resume when
    given; returns them with the first epoch to run."""
    x_tr, y_tr, x_te, y_te = load(args.data_dir)
    train_set = TensorDataset(dtrain.tensor(x_tr), dtrain.tensor(y_tr))
    test_set = TensorDataset(dtrain.tensor(x_te), dtrain.tensor(y_te))
    dtrain.manual_seed(args.seed)
    size = x_tr.shape[-1]
    model = CNN(size) if args.model == "cnn" else mlp(size)
    opt, sched = make_optimizer(model.parameters(), args)
    if rank == 0:
        print(f"[{args.model}] {sum(p.numel() for p in model.parameters())} "
              f"parameters, {len(y_tr)} train / {len(y_te)} test samples, "
              f"{world} process{'es' if world > 1 else ''} x batch "
              f"{args.batch_size}", flush=True)
    start = 1
    if args.resume:
        start = resume(args.resume, model, opt, sched, world) + 1
    return train_set, test_set, model, opt, sched, start


def run(args, rank, world):
    train_set, test_set, model, opt, sched, start = build(args, rank, world)
    sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed)
    loader = DataLoader(train_set, batch_size=args.batch_size,
                        sampler=sampler)
    # checks that every rank has the same parameters, then broadcasts
    # rank 0's values (and buffers) to all
    ddp = DDP(model, bucket_cap_mb=args.bucket_cap_mb)
    acc = None
    last = min(args.epochs, args.stop_after or args.epochs)
    for epoch in range(start, last + 1):
        sampler.set_epoch(epoch)      # a new order each epoch, same on all
        ddp.reset_stats()
        t0 = time.perf_counter()
        loss_sum, seen = summed(*train_epoch(ddp, loader, opt))
        rate = seen / (time.perf_counter() - t0)   # summed: slowest rank
        sched.step()
        st = ddp.stats()
        test_loss, acc = evaluate(model, test_set, args.eval_batch_size)
        if rank == 0:
            print(f"epoch {epoch:3d}  train loss {loss_sum / seen:.4f}  "
                  f"test loss {test_loss:.4f}  test acc {acc * 100:6.2f}%  "
                  f"{rate:7.0f} samples/s  overlap {st['overlap'] * 100:3.0f}%"
                  f" (comm {st['comm_s'] * 1e3:.2f} ms/step, exposed "
                  f"{st['exposed_comm_s'] * 1e3:.2f})", flush=True)
            save_checkpoint(args.checkpoint, ddp, opt, sched, epoch, acc,
                            args)
    if acc is None:                   # resumed a finished run
        acc = evaluate(model, test_set, args.eval_batch_size)[1]
    return acc, last < args.epochs


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["cnn", "mlp"], default="cnn")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32,
                   help="per process")
    p.add_argument("--eval-batch-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=None)
    # The CNN's 0.2 MB of gradients would fit in DDP's first bucket (1 MiB
    # by default), whose allreduce can only start when backward ends;
    # smaller buckets send the fc layers' gradients while the conv layers'
    # backward still runs.
    p.add_argument("--bucket-cap-mb", type=float, default=0.1,
                   help="DDP gradient bucket size in MB (default 0.1; "
                   "DDP's own default is 25)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="directory with MNIST IDX files")
    p.add_argument("--checkpoint", default="checkpoints/digits_ddp.dt",
                   help="written by rank 0 after every epoch")
    p.add_argument("--resume", metavar="PATH",
                   help="continue after the epoch saved in PATH")
    p.add_argument("--stop-after", type=int, metavar="EPOCH",
                   help="stop after this epoch as if interrupted (the "
                   "schedule still spans --epochs); for --resume")
    p.add_argument("--min-accuracy", type=float, default=0.95)
    args = p.parse_args()

    rank, world = init_distributed()
    try:
        acc, stopped = run(args, rank, world)
    finally:
        dist.destroy_process_group()
    if rank == 0:
        print(f"saved {args.checkpoint}; test accuracy {acc * 100:.2f}%"
              + (" (stopped early: continue with --resume)" if stopped
                 else ""), flush=True)
    if not stopped and acc < args.min_accuracy:
        raise SystemExit(f"test accuracy {acc * 100:.2f}% is below "
                         f"{args.min_accuracy * 100:.0f}%" if rank == 0 else 1)


if __name__ == "__main__":
    main()
