"""Leak test: running each public op many times, including the failing
calls, leaves the core's live tensor/storage/byte counts, the inputs'
Python refcounts and the process's resident memory flat."""
import gc
import os
import sys

import numpy as np
import pytest

import dtrain
from test_fuzz import BINARY, UNARY


def live():
    gc.collect()
    return dtrain._C._live_counts()


def rss_kib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4


A = dtrain.tensor(np.random.default_rng(0).uniform(0.1, 2, (16, 8)).astype(np.float32))
B = dtrain.tensor(np.random.default_rng(1).uniform(0.1, 2, (8,)).astype(np.float32))
IDX = dtrain.tensor([0, 3, 1])
MASK = A > 1

OPS = dict(
    **{f"unary_{k}": (lambda f: lambda: f(A))(f) for k, f in UNARY.items()},
    **{f"binary_{k}": (lambda f: lambda: f(A, B))(f) for k, f in BINARY.items()},
    gelu=lambda: dtrain.gelu(A),
    inplace=lambda: A.clone().add_(B).mul_(2),
    where=lambda: dtrain.where(MASK, A, B),
    sum=lambda: A.sum(1), mean=lambda: A.mean(), max=lambda: A.max(0),
    argmax=lambda: A.argmax(), var=lambda: A.var(1), norm=lambda: A.norm(),
    matmul=lambda: A @ A.T, matvec=lambda: A @ B,
    cat=lambda: dtrain.cat([A, A], 1), stack=lambda: dtrain.stack([A, A]),
    split=lambda: A.split(3), chunk=lambda: A.chunk(2, 1),
    getitem=lambda: (A[1:5, ::2], A[IDX], A[MASK], A[None, ..., 0]),
    setitem=lambda: A.clone().__setitem__(IDX, 0.5),
    gather=lambda: A.gather(0, IDX.unsqueeze(1).expand(3, 8)),
    scatter_add=lambda: A.clone().scatter_add_(0, IDX.unsqueeze(1).expand(3, 8),
                                               A[:3]),
    one_hot=lambda: dtrain.one_hot(IDX, 5),
    views=lambda: (A.view(8, 16), A.t(), A.unsqueeze(0).expand(2, 16, 8),
                   A.reshape(-1), A.permute(1, 0), A.narrow(0, 2, 3)),
    casts=lambda: (A.double(), A.half(), A.bfloat16().float(), A.long()),
    creation=lambda: (dtrain.zeros(5, 5), dtrain.arange(10), dtrain.rand(3),
                      dtrain.randn(2, 2), dtrain.randperm(7), dtrain.eye(3)),
    numpy=lambda: (A.numpy(), dtrain.from_numpy(np.ones(4)), A.tolist()),
    repr=lambda: repr(A),
    errors=lambda: _all_raise([lambda: A + dtrain.zeros(3),
                               lambda: A @ dtrain.zeros(3),
                               lambda: A[100], lambda: A.sum(5),
                               lambda: A.view(7), lambda: dtrain.cat([A, B])]),
)


def _all_raise(calls):
    for c in calls:
        try:
            c()
        except (RuntimeError, IndexError, ValueError, TypeError):
            continue
        raise AssertionError("expected an error")


@pytest.mark.parametrize("name", sorted(OPS))
def test_op_does_not_leak(name):
    op = OPS[name]
    op()  # first call may create caches
    refs = [sys.getrefcount(x) for x in (A, B, IDX, MASK)]
    before = live()
    for _ in range(200):
        op()
    assert live() == before, f"{name}: live (tensors, storages, bytes) grew"
    assert [sys.getrefcount(x) for x in (A, B, IDX, MASK)] == refs


@pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                    reason="ASan's quarantine holds freed memory on purpose")
def test_resident_memory_stays_flat():
    big = dtrain.tensor(np.zeros((512, 512), np.float32))
    for _ in range(20):
        (big + big).sum()
    start = rss_kib()
    for _ in range(500):
        (big @ big + big).exp().sum(0)
        big[1:100].clone()
    grown = rss_kib() - start
    assert grown < 16 * 1024, f"RSS grew by {grown} KiB"
