"""Every collective of dtrain.distributed over Gloo, for world sizes 1-4,
checked against NumPy reductions of every rank's inputs.

One launch per world size: the parent starts N real processes on
127.0.0.1 (this file run as a script, `worker` below) that run every case
and report mismatches; inputs are generated from (case, rank), so every
rank can compute every expected result itself. Cases cover float32,
float64 and int64 (plus the other dtypes for all_reduce), sizes 0, 1 and
odd, sync and async calls, subgroups, point to point and the object
collectives; world size 2 also runs one 64 MiB all_reduce.
"""
import os
import sys
import warnings
from datetime import timedelta

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from helpers import launch_ranks  # noqa: E402

SIZES = [0, 1, 7, 1001]
MAIN_DTYPES = ["float32", "float64", "int64"]


def launch(n, args, timeout=60, env=None):
    """Runs this file as `n` ranks; returns [(returncode, stdout, stderr)]."""
    return launch_ranks(__file__, n, args, timeout, env)


# ---------------------------------------------------------------------------
# the worker (runs in each rank's process)


class Checker:
    def __init__(self, rank, world):
        self.rank, self.world = rank, world
        self.failures, self.count = [], 0
        self.case = 0

    def inputs(self, rank, n, dtype, kind="any"):
        """The deterministic input of `rank` for the current case."""
        rng = np.random.default_rng(self.case * 131 + rank)
        if dtype == "bool":
            return rng.integers(0, 2, n).astype(bool)
        if dtype in ("int64", "int32", "uint8"):
            lo, hi = (1, 4) if kind == "product" else (
                (0, 100) if dtype == "uint8" else (-100, 100))
            if dtype == "uint8" and kind != "product":
                hi = 60
            return rng.integers(lo, hi, n).astype(dtype)
        if dtype in ("float16", "bfloat16"):
            # quarters: exact in both, and so are their small sums
            return (rng.integers(-20, 20, n) / 4).astype("float32")
        if kind == "product":
            return rng.uniform(0.5, 1.5, n).astype(dtype)
        return rng.standard_normal(n).astype(dtype)

    def check(self, what, got, want, dtype):
        self.count += 1
        got, want = np.asarray(got), np.asarray(want)
        if dtype in ("float16", "bfloat16"):
            ok = got.shape == want.shape and np.allclose(got, want,
                                                         rtol=2e-2, atol=2e-2)
        elif dtype in ("float32", "float64"):
            tol = 1e-4 if dtype == "float32" else 1e-10
            ok = got.shape == want.shape and np.allclose(got, want, rtol=tol,
                                                         atol=tol)
        else:
            ok = got.shape == want.shape and np.array_equal(got, want)
        if not ok:
            self.failures.append(f"rank {self.rank}: {what}: got "
                                 f"{got.ravel()[:6]} want {want.ravel()[:6]}")


def _dt(name):
    import dtrain
    return getattr(dtrain, name)


def _tensor(arr, dtype):
    import dtrain
    if dtype == "bfloat16":
        return dtrain.from_numpy(arr.astype("float32")).to(dtrain.bfloat16)
    if dtype == "float16":
        return dtrain.from_numpy(arr.astype("float16"))
    return dtrain.from_numpy(np.ascontiguousarray(arr))


def _np(t):
    import dtrain
    if t.dtype == dtrain.bfloat16:
        return t.float().numpy()
    return t.numpy().copy()


NP_OPS = {"SUM": lambda xs: np.sum(xs, axis=0),
          "MAX": lambda xs: np.max(xs, axis=0),
          "MIN": lambda xs: np.min(xs, axis=0),
          "PRODUCT": lambda xs: np.prod(xs, axis=0),
          "AVG": lambda xs: np.mean(xs, axis=0),
          "BAND": lambda xs: np.bitwise_and.reduce(xs, axis=0),
          "BOR": lambda xs: np.bitwise_or.reduce(xs, axis=0),
          "BXOR": lambda xs: np.bitwise_xor.reduce(xs, axis=0)}


def _expected(c, op, n, dtype, kind):
    xs = np.stack([c.inputs(r, n, dtype, kind) for r in range(c.world)])
    if dtype == "bool":
        fn = {"SUM": np.any, "MAX": np.any, "MIN": np.all,
              "PRODUCT": np.all}[op]
        return fn(xs, axis=0)
    return NP_OPS[op](xs).astype(xs.dtype)


def _wait(work, async_op):
    if async_op:
        assert work is not None and work.wait() is True
    else:
        assert work is None


def case_all_reduce(c, dist):
    ops = {"float32": ["SUM", "AVG", "PRODUCT", "MIN", "MAX"],
           "float64": ["SUM", "AVG", "MAX"],
           "int64": ["SUM", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR"]}
    for dtype in MAIN_DTYPES:
        for n in SIZES:
            for op in ops[dtype]:
                c.case += 1
                kind = "product" if op == "PRODUCT" else "any"
                t = _tensor(c.inputs(c.rank, n, dtype, kind), dtype)
                async_op = c.case % 2 == 0
                _wait(dist.all_reduce(t, getattr(dist.ReduceOp, op),
                                      async_op=async_op), async_op)
                c.check(f"all_reduce {op} {dtype} n={n}", _np(t),
                        _expected(c, op, n, dtype, kind), dtype)
    for dtype in ["float16", "bfloat16", "int32", "uint8", "bool"]:
        for op in ["SUM", "MAX", "MIN"]:
            c.case += 1
            t = _tensor(c.inputs(c.rank, 9, dtype), dtype)
            dist.all_reduce(t, getattr(dist.ReduceOp, op))
            want = _expected(c, op, 9, dtype, "any")
            if dtype in ("float16", "bfloat16"):
                want = want.astype("float32")
            c.check(f"all_reduce {op} {dtype}", _np(t), want, dtype)


def case_broadcast_reduce(c, dist):
    for dtype in MAIN_DTYPES:
        for n in SIZES:
            c.case += 1
            root = c.case % c.world
            t = _tensor(c.inputs(c.rank, n, dtype), dtype)
            v0 = t._version
            async_op = c.case % 2 == 1
            _wait(dist.broadcast(t, src=root, async_op=async_op), async_op)
            c.check(f"broadcast {dtype} n={n} src={root}", _np(t),
                    c.inputs(root, n, dtype), dtype)
            if t._version == v0:
                c.failures.append("broadcast did not bump _version")
            for op in ["SUM", "MAX"]:
                c.case += 1
                root = c.case % c.world
                t = _tensor(c.inputs(c.rank, n, dtype), dtype)
                _wait(dist.reduce(t, dst=root, op=getattr(dist.ReduceOp, op),
                                  async_op=async_op), async_op)
                if c.rank == root:
                    c.check(f"reduce {op} {dtype} n={n}", _np(t),
                            _expected(c, op, n, dtype, "any"), dtype)


def case_gathers(c, dist):
    import dtrain
    w = c.world
    for dtype in MAIN_DTYPES:
        for n in SIZES:
            c.case += 1
            mine = _tensor(c.inputs(c.rank, n, dtype), dtype)
            want = np.concatenate([c.inputs(r, n, dtype) for r in range(w)])
            async_op = c.case % 2 == 0
            outs = [dtrain.zeros(n, dtype=_dt(dtype)) for _ in range(w)]
            _wait(dist.all_gather(outs, mine, async_op=async_op), async_op)
            c.check(f"all_gather {dtype} n={n}",
                    np.concatenate([_np(o) for o in outs]), want, dtype)
            flat = dtrain.zeros(w * n, dtype=_dt(dtype))
            _wait(dist.all_gather_into_tensor(flat, mine, async_op=async_op),
                  async_op)
            c.check(f"all_gather_into_tensor {dtype} n={n}", _np(flat), want,
                    dtype)
            # uneven sizes (allgatherv), zero-sized contributions included
            sizes = [(r * 3 + n) % 5 for r in range(w)]
            outs = [dtrain.zeros(k, dtype=_dt(dtype)) for k in sizes]
            mine_v = _tensor(c.inputs(c.rank, sizes[c.rank], dtype), dtype)
            _wait(dist.all_gather(outs, mine_v, async_op=async_op), async_op)
            c.check(f"all_gather uneven {dtype} {sizes}",
                    np.concatenate([_np(o) for o in outs]),
                    np.concatenate([c.inputs(r, k, dtype)
                                    for r, k in enumerate(sizes)]), dtype)
            root = c.case % w
            gl = ([dtrain.zeros(n, dtype=_dt(dtype)) for _ in range(w)]
                  if c.rank == root else None)
            _wait(dist.gather(mine, gl, dst=root, async_op=async_op),
                  async_op)
            if c.rank == root:
                c.check(f"gather {dtype} n={n}",
                        np.concatenate([_np(o) for o in gl]), want, dtype)
            parts = ([_tensor(c.inputs(root, n, dtype) + i, dtype)
                      for i in range(w)] if c.rank == root else None)
            out = dtrain.zeros(n, dtype=_dt(dtype))
            _wait(dist.scatter(out, parts, src=root, async_op=async_op),
                  async_op)
            c.check(f"scatter {dtype} n={n}", _np(out),
                    c.inputs(root, n, dtype) + c.rank, dtype)


def case_reduce_scatter(c, dist):
    import dtrain
    w = c.world
    for dtype in MAIN_DTYPES:
        for n in SIZES:
            for op in ["SUM", "MAX"]:
                c.case += 1
                full = [c.inputs(r, n * w, dtype) for r in range(w)]
                want = NP_OPS[op](np.stack(full)).astype(full[0].dtype)
                want = want[c.rank * n:(c.rank + 1) * n]
                async_op = c.case % 2 == 1
                out = dtrain.zeros(n, dtype=_dt(dtype))
                _wait(dist.reduce_scatter_tensor(
                    out, _tensor(full[c.rank], dtype),
                    getattr(dist.ReduceOp, op), async_op=async_op), async_op)
                c.check(f"reduce_scatter_tensor {op} {dtype} n={n}",
                        _np(out), want, dtype)
                out = dtrain.zeros(n, dtype=_dt(dtype))
                chunks = [_tensor(full[c.rank][i * n:(i + 1) * n], dtype)
                          for i in range(w)]
                _wait(dist.reduce_scatter(out, chunks,
                                          getattr(dist.ReduceOp, op),
                                          async_op=async_op), async_op)
                c.check(f"reduce_scatter {op} {dtype} n={n}", _np(out),
                        want, dtype)


def case_all_to_all(c, dist):
    import dtrain
    w, me = c.world, c.rank
    for dtype in MAIN_DTYPES:
        c.case += 1
        # rank s sends s + d + 1 elements to rank d (uneven on purpose)
        sent = {s: [c.inputs(s * 10 + d, s + d + 1, dtype) for d in range(w)]
                for s in range(w)}
        ins = [_tensor(x, dtype) for x in sent[me]]
        outs = [dtrain.zeros(s + me + 1, dtype=_dt(dtype)) for s in range(w)]
        dist.all_to_all(outs, ins)
        for s in range(w):
            c.check(f"all_to_all {dtype} from {s}", _np(outs[s]),
                    sent[s][me], dtype)
        for n in [0, 1, 5]:
            c.case += 1
            x = {r: c.inputs(r, n * w, dtype) for r in range(w)}
            out = dtrain.zeros(n * w, dtype=_dt(dtype))
            work = dist.all_to_all_single(out, _tensor(x[me], dtype),
                                          async_op=True)
            work.wait()
            want = np.concatenate([x[s][me * n:(me + 1) * n]
                                   for s in range(w)])
            c.check(f"all_to_all_single {dtype} n={n}", _np(out), want,
                    dtype)
        # rows of 3 with splits: rank s sends s + d rows to d
        c.case += 1
        rows_in = [me + d for d in range(w)]
        rows_out = [s + me for s in range(w)]
        x = {s: c.inputs(s, 3 * sum(s + d for d in range(w)), dtype)
             for s in range(w)}
        out = dtrain.zeros(sum(rows_out), 3, dtype=_dt(dtype))
        dist.all_to_all_single(out, _tensor(x[me].reshape(-1, 3), dtype),
                               rows_out, rows_in)
        want = []
        for s in range(w):
            start = 3 * sum(s + d for d in range(me))
            want.append(x[s][start:start + 3 * (s + me)])
        c.check(f"all_to_all_single splits {dtype}", _np(out).ravel(),
                np.concatenate(want), dtype)


def case_p2p_barrier(c, dist):
    import dtrain
    w, me = c.world, c.rank
    dist.barrier()
    work = dist.barrier(async_op=True)
    work.wait()
    if w == 1:
        return
    nxt, prv = (me + 1) % w, (me - 1) % w
    for dtype in MAIN_DTYPES:
        c.case += 1
        got = dtrain.zeros(5, dtype=_dt(dtype))
        rw = dist.irecv(got, src=prv, tag=3)
        sw = dist.isend(_tensor(c.inputs(me, 5, dtype), dtype), dst=nxt,
                        tag=3)
        sw.wait()
        rw.wait()
        c.check(f"isend/irecv {dtype}", _np(got), c.inputs(prv, 5, dtype),
                dtype)
    # recv from any source: every other rank sends its rank to rank 0
    if me == 0:
        seen = set()
        for _ in range(w - 1):
            t = dtrain.zeros(1, dtype=_dt("int64"))
            src = dist.recv(t)
            seen.add(src)
            c.check("recv any", _np(t), np.array([src]), "int64")
        c.check("recv any sources", np.array(sorted(seen)),
                np.arange(1, w), "int64")
    else:
        dist.send(dtrain.tensor([me]), dst=0)
    # a recv waiting for a later message must not hold up other sends
    if me in (0, 1):
        peer = 1 - me
        late, early = dtrain.zeros(1), dtrain.zeros(1)
        rw = dist.irecv(late, src=peer, tag=9)
        for step in ((0, 1) if me == 0 else (1, 0)):
            if step == 0:
                dist.send(dtrain.tensor([float(me)]), dst=peer, tag=8)
            else:
                dist.recv(early, src=peer, tag=8)
        dist.send(dtrain.tensor([10.0 + me]), dst=peer, tag=9)
        rw.wait()
        c.check("p2p out of order", np.array([_np(early)[0], _np(late)[0]]),
                np.array([peer, 10.0 + peer]), "float32")


def case_groups(c, dist):
    import dtrain
    w, me = c.world, c.rank
    evens = list(range(0, w, 2))
    odds = list(range(1, w, 2))
    g_even = dist.new_group(evens)
    g_odd = dist.new_group(odds) if odds else None
    mine = g_even if me in evens else g_odd
    other = g_odd if me in evens else g_even
    members = evens if me in evens else odds
    c.count += 1
    if other is not None and other != dist.GroupMember.NON_GROUP_MEMBER:
        c.failures.append(f"rank {me}: expected NON_GROUP_MEMBER")
    if dist.get_world_size(mine) != len(members) or \
            dist.get_rank(mine) != members.index(me):
        c.failures.append(f"rank {me}: wrong group rank/size")
    t = dtrain.tensor([float(me), 1.0])
    dist.all_reduce(t, group=mine)
    c.check("group all_reduce", _np(t),
            np.array([sum(members), len(members)], dtype="float32"),
            "float32")
    t = dtrain.tensor([float(me)])
    dist.broadcast(t, src=members[-1], group=mine)
    c.check("group broadcast (global src)", _np(t),
            np.array([members[-1]], dtype="float32"), "float32")
    if other is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = dist.all_reduce(dtrain.ones(2), group=other)
        if r is not None or not caught:
            c.failures.append("non-member all_reduce: no warning/None")
        if dist.get_rank(other) != -1:
            c.failures.append("get_rank(non-member) != -1")


def case_objects_concurrency(c, dist):
    import dtrain
    w, me = c.world, c.rank
    objs = [None] * w
    dist.all_gather_object(objs, {"rank": me, "name": "r" * me,
                                  "t": dtrain.tensor([me, me + 1])})
    for r, o in enumerate(objs):
        c.check("all_gather_object", np.array([o["rank"], len(o["name"])]),
                np.array([r, r]), "int64")
        c.check("all_gather_object tensor", _np(o["t"]),
                np.array([r, r + 1]), "int64")
    lst = [1, "two", (3.5, None), {"k": b"v"}] if me == 0 else [None] * 4
    dist.broadcast_object_list(lst, src=0)
    c.count += 1
    if lst != [1, "two", (3.5, None), {"k": b"v"}]:
        c.failures.append(f"broadcast_object_list: {lst}")
    got = [None] * w if me == 0 else None
    dist.gather_object([me] * me, got, dst=0)
    if me == 0 and got != [[r] * r for r in range(w)]:
        c.failures.append(f"gather_object: {got}")
    out = [None]
    dist.scatter_object_list(out, [f"x{r}" for r in range(w)]
                             if me == w - 1 else None, src=w - 1)
    if out != [f"x{me}"]:
        c.failures.append(f"scatter_object_list: {out}")
    # many collectives in flight at once: tags keep them apart
    ts = [dtrain.full((1000 + i,), float(me + i)) for i in range(24)]
    works = [dist.all_reduce(t, async_op=True) for t in ts]
    fut = works[0].get_future().then(lambda f: f.value()[0].sum().item())
    for i, (t, work) in enumerate(zip(ts, works)):
        work.wait()
        c.check(f"concurrent all_reduce {i}", _np(t),
                np.full(1000 + i, sum(r + i for r in range(w)),
                        dtype="float32"), "float32")
    c.check("future.then", np.array(fut.wait()),
            np.array(1000.0 * sum(range(w))), "float64")


def case_big(c, dist):
    import dtrain
    n = 16 * 1024 * 1024                      # 64 MiB of float32
    t = dtrain.full((n,), float(c.rank + 1))
    dist.all_reduce(t)
    arr = t.numpy()
    c.count += 1
    want = c.world * (c.world + 1) / 2
    if not (arr[0] == want and arr[-1] == want and (arr == want).all()):
        c.failures.append("64 MiB all_reduce: wrong values")


CASES = [case_all_reduce, case_broadcast_reduce, case_gathers,
         case_reduce_scatter, case_all_to_all, case_p2p_barrier, case_groups,
         case_objects_concurrency]


def worker(big):
    import dtrain.distributed as dist
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    c = Checker(dist.get_rank(), dist.get_world_size())
    for case in CASES + ([case_big] if big else []):
        case(c, dist)
    dist.destroy_process_group()
    if c.failures:
        print("\n".join(c.failures[:20]))
        sys.exit(1)
    print(f"OK {c.count}")


# ---------------------------------------------------------------------------
# the tests


@pytest.mark.timeout(90)
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_every_collective(world):
    results = launch(world, ["worker", "big" if world == 2 else "small"],
                     timeout=80)
    for r, (rc, out, err) in enumerate(results):
        assert rc == 0 and out.startswith("OK"), \
            f"rank {r} (rc {rc}):\n{out}\n{err[-3000:]}"
        assert int(out.split()[1]) > 100


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    worker(sys.argv[2] == "big")
