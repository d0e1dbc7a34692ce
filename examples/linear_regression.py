"""Fits a linear model by full-batch gradient descent, with the gradient
written out by hand (autograd arrives in a later milestone).

    python examples/linear_regression.py [--steps 200] [--n 4096] [--d 64]

Everything runs on dtrain tensors: Philox-seeded data, matmul through
OpenBLAS, broadcasting, reductions. It prints the loss as it falls and how
close the recovered weights are to the true ones.
"""
import argparse
import time

import dtrain


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--n", type=int, default=4096, help="samples")
    p.add_argument("--d", type=int, default=64, help="features")
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    dtrain.manual_seed(args.seed)
    x = dtrain.randn(args.n, args.d)
    w_true = dtrain.randn(args.d, 1)
    b_true = 0.5
    y = x @ w_true + b_true + 0.01 * dtrain.randn(args.n, 1)

    w = dtrain.zeros(args.d, 1)
    b = dtrain.zeros(1)
    start = time.perf_counter()
    for step in range(args.steps + 1):
        err = x @ w + b - y                      # (n, 1)
        loss = (err * err).mean()
        if step % max(1, args.steps // 10) == 0:
            print(f"step {step:4d}  loss {loss.item():.6f}")
        # d(loss)/dw = 2/n X^T err, d(loss)/db = 2 mean(err)
        w -= args.lr * 2.0 * (x.T @ err) / args.n
        b -= args.lr * 2.0 * err.mean()
    elapsed = time.perf_counter() - start

    w_err = (w - w_true).abs().max().item()
    print(f"max |w - w_true| = {w_err:.4f}, b = {b.item():.4f} "
          f"(true {b_true}); {args.steps / elapsed:.0f} steps/s")
    if w_err > 0.05 or abs(b.item() - b_true) > 0.05:
        raise SystemExit("did not converge")


if __name__ == "__main__":
    main()
