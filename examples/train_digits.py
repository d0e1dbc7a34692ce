"""Trains a small CNN and an MLP on handwritten digits, single process.

    python examples/train_digits.py                  # 8x8 digits (offline)
    python examples/train_digits.py --data-dir DIR   # MNIST IDX files
    python examples/train_digits.py --model mlp --optimizer sgd --epochs 30

A plain PyTorch-style loop: DataLoader, model, loss, optimizer, scheduler,
with a per-epoch line (loss, accuracy, samples/s) and a final checkpoint.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dtrain  # noqa: E402
import dtrain.nn as nn  # noqa: E402
import dtrain.nn.functional as F  # noqa: E402
from dtrain.utils.data import DataLoader, TensorDataset  # noqa: E402
from digits_data import load  # noqa: E402


class CNN(nn.Module):
    """conv(1->32) -> pool -> conv(32->64) -> pool -> linear -> linear."""

    def __init__(self, image_size, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        side = image_size // 4
        self.fc1 = nn.Linear(64 * side * side, 128)
        self.fc2 = nn.Linear(128, classes)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def mlp(image_size, classes=10, hidden=256):
    return nn.Sequential(nn.Flatten(), nn.Linear(image_size ** 2, hidden),
                         nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, classes))


def evaluate_sums(model, loader):
    """(summed loss, correct predictions, samples) over the loader."""
    model.eval()
    correct = total = 0
    loss_sum = 0.0
    with dtrain.no_grad():
        for x, y in loader:
            out = model(x)
            loss_sum += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
            total += len(y)
    model.train()
    return loss_sum, correct, total


def evaluate(model, loader):
    loss_sum, correct, total = evaluate_sums(model, loader)
    return loss_sum / total, correct / total


def make_optimizer(params, args):
    """The optimizer (--optimizer, --lr) and a cosine schedule over
    --epochs, stepped once per epoch."""
    if args.optimizer == "sgd":
        opt = dtrain.optim.SGD(params, lr=args.lr or 0.05, momentum=0.9,
                               weight_decay=1e-4)
    else:
        opt = dtrain.optim.AdamW(params, lr=args.lr or 2e-3)
    sched = dtrain.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    return opt, sched


def train(name, model, data, args):
    x_tr, y_tr, x_te, y_te = data
    gen = dtrain.Generator().manual_seed(args.seed)
    train_loader = DataLoader(TensorDataset(dtrain.tensor(x_tr),
                                            dtrain.tensor(y_tr)),
                              batch_size=args.batch_size, shuffle=True,
                              generator=gen)
    test_loader = DataLoader(TensorDataset(dtrain.tensor(x_te),
                                           dtrain.tensor(y_te)),
                             batch_size=512)
    opt, sched = make_optimizer(model.parameters(), args)
    print(f"[{name}] {sum(p.numel() for p in model.parameters())} "
          f"parameters, {len(y_tr)} train / {len(y_te)} test samples")
    for epoch in range(1, args.epochs + 1):
        start, seen, loss_sum = time.perf_counter(), 0, 0.0
        for x, y in train_loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(y)
            seen += len(y)
        sched.step()
        rate = seen / (time.perf_counter() - start)
        test_loss, acc = evaluate(model, test_loader)
        print(f"[{name}] epoch {epoch:3d}  train loss {loss_sum / seen:.4f}"
              f"  test loss {test_loss:.4f}  test acc {acc * 100:6.2f}%"
              f"  {rate:8.0f} samples/s", flush=True)
    return acc


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=["cnn", "mlp", "both"], default="both")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", help="directory with MNIST IDX files")
    p.add_argument("--checkpoint", default="checkpoints/digits.dt")
    p.add_argument("--min-accuracy", type=float, default=0.95)
    args = p.parse_args()

    dtrain.manual_seed(args.seed)
    data = load(args.data_dir)
    size = data[0].shape[-1]
    models = {"cnn": lambda: CNN(size), "mlp": lambda: mlp(size)}
    names = ["cnn", "mlp"] if args.model == "both" else [args.model]
    results, states = {}, {}
    for name in names:
        model = models[name]()
        results[name] = train(name, model, data, args)
        states[name] = model.state_dict()
    os.makedirs(os.path.dirname(args.checkpoint) or ".", exist_ok=True)
    dtrain.save({"models": states, "accuracy": results, "args": vars(args)},
                args.checkpoint)
    print(f"saved {args.checkpoint}; test accuracy: " +
          ", ".join(f"{k} {v * 100:.2f}%" for k, v in results.items()))
    if min(results.values()) < args.min_accuracy:
        raise SystemExit(f"accuracy below {args.min_accuracy * 100:.0f}%")


if __name__ == "__main__":
    main()
