"""Process groups: init_process_group (env://, tcp://, file://, store=),
new_group, destroy, Work/Future, argument errors, failures (a peer killed
with SIGKILL, a peer that never arrives, DETAIL-mode mismatches), Ctrl-C
during a wait, FileStore and the safe object encoding.

Multi-process tests run this file as a script in real processes on
127.0.0.1 (see `scenario_*`, dispatched at the bottom) with hard timeouts;
single-process ones use world size 1 through a HashStore.
"""
import os
import signal
import sys
import threading
import time
from datetime import timedelta

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import dtrain  # noqa: E402
import dtrain.distributed as dist  # noqa: E402
from dtrain.distributed import (DistBackendError, FileStore,  # noqa: E402
                                HashStore, ReduceOp)

from helpers import finish_ranks, start_ranks  # noqa: E402

pytestmark = pytest.mark.timeout(60)
ENV_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def start(n, scenario, *args, env=None):
    return start_ranks(__file__, n, (scenario, *args), env)


def finish(procs, timeout=45):
    return finish_ranks(procs, timeout)


def run(n, scenario, *args, env=None, timeout=45):
    return finish(start(n, scenario, *args, env=env), timeout)


def assert_ok(results):
    for r, (rc, out, err) in enumerate(results):
        assert rc == 0, f"rank {r} (rc {rc}):\n{out}\n{err[-3000:]}"


@pytest.fixture
def world1():
    dist.init_process_group("gloo", store=HashStore(), rank=0, world_size=1,
                            timeout=timedelta(seconds=10))
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


# ---------------------------------------------------------------------------
# scenarios (run in the ranks' processes)


def scenario_init(method, path=None):
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    port = os.environ["MASTER_PORT"]
    if method == "env":
        dist.init_process_group("gloo")
    elif method == "tcp":
        dist.init_process_group(init_method=f"tcp://127.0.0.1:{port}",
                                rank=rank, world_size=world)
    elif method == "tcpquery":
        dist.init_process_group(
            "gloo", f"tcp://127.0.0.1:{port}?rank={rank}&world_size={world}")
    else:
        dist.init_process_group("gloo", init_method=f"file://{path}",
                                rank=rank, world_size=world)
    assert dist.is_initialized()
    assert (dist.get_rank(), dist.get_world_size()) == (rank, world)
    assert dist.get_backend() == "gloo"
    try:
        dist.init_process_group("gloo")
        raise AssertionError("double init did not raise")
    except ValueError as e:
        assert "twice" in str(e)
    t = dtrain.tensor([float(rank + 1)])
    dist.all_reduce(t)
    assert t.tolist() == [world * (world + 1) / 2]
    g = dist.new_group([world - 1])
    if rank == world - 1:
        assert dist.get_process_group_ranks(g) == [world - 1]
        assert dist.get_rank(g) == 0 and dist.get_world_size(g) == 1
        assert dist.get_global_rank(g, 0) == world - 1
    else:
        assert g == dist.GroupMember.NON_GROUP_MEMBER
        assert dist.get_world_size(g) == -1
    dist.destroy_process_group(g)
    dist.barrier()
    dist.destroy_process_group()
    assert not dist.is_initialized()
    print("OK")


def scenario_reinit(method, path=None):
    """init/destroy three times in a row on the same port or file."""
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    for i in range(3):
        if method == "env":
            dist.init_process_group("gloo")
        else:
            dist.init_process_group("gloo", init_method=f"file://{path}",
                                    rank=rank, world_size=world)
        t = dtrain.tensor([float(i)])
        dist.all_reduce(t)
        assert t.tolist() == [i * world], t
        assert dist.group.WORLD._c.failure is None
        dist.destroy_process_group()
    print("OK")


def scenario_kill(victim):
    """`victim` starts a 64 MiB all_reduce and SIGKILLs itself mid-way."""
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    rank = dist.get_rank()
    t = dtrain.ones(16 * 1024 * 1024)
    dist.all_reduce(t)
    work = dist.all_reduce(t, async_op=True)
    if rank == int(victim):
        time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGKILL)
    start = time.monotonic()
    try:
        work.wait()
        print("NO ERROR")
    except DistBackendError as e:
        print(f"RAISED {time.monotonic() - start:.1f} {e}")
    try:
        dist.all_reduce(dtrain.ones(3))
        print("SECOND NO ERROR")
    except DistBackendError as e:
        print(f"SECOND {e}")
    print(f"FAILURE {dist.group.WORLD._c.failure}")
    sys.stdout.flush()
    dist.destroy_process_group()


def scenario_late():
    """Rank 1 arrives after the timeout: rank 0 must report it."""
    dist.init_process_group("gloo", timeout=timedelta(seconds=1.5))
    rank = dist.get_rank()
    if rank == 1:
        time.sleep(4)
    start = time.monotonic()
    try:
        dist.all_reduce(dtrain.ones(10))
        print("NO ERROR")
    except DistBackendError as e:
        print(f"RAISED {time.monotonic() - start:.1f} {e}")
    sys.stdout.flush()
    dist.destroy_process_group()


def scenario_mismatch():
    dist.init_process_group("gloo", timeout=timedelta(seconds=10))
    rank = dist.get_rank()
    t = dtrain.ones(4, dtype=dtrain.int64 if rank == 1 else dtrain.float32)
    try:
        dist.all_reduce(t)
        print("NO ERROR")
    except DistBackendError as e:
        print(f"RAISED {e}")
    t = dtrain.ones(4)                 # the group is still usable
    dist.all_reduce(t)
    assert t.tolist() == [dist.get_world_size()] * 4
    dist.destroy_process_group()


def scenario_interrupt():
    """Rank 0 waits for rank 1 (asleep); a Python thread keeps running
    (the GIL is released) and SIGINT stops the wait."""
    dist.init_process_group("gloo", timeout=timedelta(seconds=30))
    if dist.get_rank() == 1:
        time.sleep(3.5)
        os._exit(0)
    ticks = [0]
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0.01)

    threading.Thread(target=tick, daemon=True).start()
    print("WAITING", flush=True)
    start = time.monotonic()
    try:
        dist.all_reduce(dtrain.ones(10))
        print("NO ERROR")
    except KeyboardInterrupt:
        stop.set()
        print(f"INTERRUPTED {time.monotonic() - start:.1f} {ticks[0]}")
    sys.stdout.flush()
    os._exit(0)


# ---------------------------------------------------------------------------
# init and groups


@pytest.mark.parametrize("method", ["env", "tcp", "tcpquery", "file"])
def test_init_methods(method, tmp_path):
    path = tmp_path / "store"
    assert_ok(run(2, "scenario_init", method, path))
    if method == "file":
        assert not path.exists(), "the last user should delete the file"


@pytest.mark.parametrize("method", ["env", "file"])
def test_init_again_after_destroy(method, tmp_path):
    assert_ok(run(2, "scenario_reinit", method, tmp_path / "store"))


def test_init_three_ranks():
    assert_ok(run(3, "scenario_init", "env"))


@pytest.mark.parametrize("missing", ENV_VARS)
def test_env_missing(monkeypatch, missing):
    for var, value in zip(ENV_VARS, ["0", "1", "127.0.0.1", "1"]):
        monkeypatch.setenv(var, value)
    monkeypatch.delenv(missing)
    with pytest.raises(ValueError, match=f"environment variable {missing} "
                                         f"expected, but not set"):
        dist.init_process_group("gloo")
    assert not dist.is_initialized()


@pytest.mark.parametrize("url,rank,world,err,match", [
    ("tcp://127.0.0.1", 0, 1, ValueError, "port number missing"),
    ("tcp://127.0.0.1:1234", -1, 1, ValueError, "rank parameter missing"),
    ("tcp://127.0.0.1:1234", 0, -1, ValueError,
     "world size parameter missing"),
    ("file:///tmp/x", -1, 2, ValueError, "rank parameter missing"),
    ("bogus://x", 0, 1, RuntimeError, "No rendezvous handler for bogus://"),
])
def test_bad_urls(url, rank, world, err, match):
    with pytest.raises(err, match=match):
        dist.init_process_group("gloo", init_method=url, rank=rank,
                                world_size=world)


def test_bad_arguments():
    with pytest.raises(ValueError, match="has not been initialized"):
        dist.get_rank()
    with pytest.raises(ValueError, match="has not been initialized"):
        dist.all_reduce(dtrain.ones(2))
    with pytest.raises(RuntimeError, match="NCCL"):
        dist.init_process_group("nccl", store=HashStore(), rank=0,
                                world_size=1)
    with pytest.raises(ValueError, match="world_size must be positive"):
        dist.init_process_group("gloo", store=HashStore(), rank=0)
    with pytest.raises(ValueError, match="Cannot specify both"):
        dist.init_process_group("gloo", "env://", store=HashStore(), rank=0,
                                world_size=1)
    with pytest.raises(TypeError, match="timedelta"):
        dist.init_process_group("gloo", store=HashStore(), rank=0,
                                world_size=1, timeout=5)
    assert dist.is_available() and dist.is_gloo_available()
    assert not dist.is_nccl_available()


def test_world_of_one(world1):
    t = dtrain.arange(5, dtype=dtrain.float32)
    dist.all_reduce(t, op=ReduceOp.AVG)
    assert t.tolist() == [0, 1, 2, 3, 4]
    z = dtrain.zeros(0)
    dist.all_reduce(z)
    dist.broadcast(z, src=0)
    out = [dtrain.zeros(3)]
    dist.all_gather(out, dtrain.ones(3))
    assert out[0].tolist() == [1, 1, 1]
    g = dist.new_group()
    assert dist.get_world_size(g) == 1
    assert dist.get_backend(g) == "gloo"
    dist.destroy_process_group(g)
    with pytest.raises(ValueError, match="destroyed"):
        dist.all_reduce(t, group=g)
    with pytest.raises(ValueError, match="not part of the process group"):
        dist.broadcast(t, src=3)


def test_argument_errors(world1):
    t = dtrain.ones(4, 4).t()
    with pytest.raises(ValueError, match="all_reduce: Tensors must be "
                                         "contiguous"):
        dist.all_reduce(t)
    with pytest.raises(TypeError, match="Expected parameter `tensor`"):
        dist.all_reduce([1, 2])
    with pytest.raises(RuntimeError, match="AVG.*int64"):
        dist.all_reduce(dtrain.ones(3, dtype=dtrain.int64), op=ReduceOp.AVG)
    with pytest.raises(RuntimeError, match="Cannot use ReduceOp.BAND"):
        dist.all_reduce(dtrain.ones(3), op=ReduceOp.BAND)
    with pytest.raises(ValueError, match="all_gather: .output. must have 3 "
                                         "elements, got 8"):
        dist.all_gather_into_tensor(dtrain.zeros(8), dtrain.ones(3))
    with pytest.raises(TypeError, match="same dtype"):
        dist.all_gather_into_tensor(dtrain.zeros(3, dtype=dtrain.int64),
                                    dtrain.ones(3))
    with pytest.raises(ValueError, match="gather_list.*must be specified"):
        dist.gather(dtrain.ones(3), None, dst=0)
    with pytest.raises(ValueError, match="scatter_list.*must be specified"):
        dist.scatter(dtrain.ones(3), None, src=0)
    with pytest.raises(ValueError, match="one tensor per rank"):
        dist.all_gather([dtrain.zeros(3)] * 2, dtrain.ones(3))
    with pytest.raises(ValueError, match="should not be the same"):
        dist.send(dtrain.ones(3), dst=0)


def test_work_and_future(world1):
    t = dtrain.ones(3)
    v = t._version
    work = dist.all_reduce(t, async_op=True)
    assert work.wait() is True
    assert t._version > v
    assert work.is_completed() and work.is_success()
    assert work.exception() is None
    fut = work.get_future()
    assert fut.wait()[0] is t and fut.done()
    assert fut.value()[0] is t
    chained = fut.then(lambda f: f.value()[0].sum().item() * 2)
    assert chained.wait() == 6.0
    bad = fut.then(lambda f: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        bad.wait()
    plain = dist.Future()
    later = plain.then(lambda f: f.value() + 1)
    assert not later.done()
    plain.set_result(41)
    assert later.wait() == 42
    with pytest.raises(RuntimeError, match="not completed"):
        dist.Future().value()


# ---------------------------------------------------------------------------
# failures


def test_peer_killed_mid_collective():
    results = run(3, "scenario_kill", 1, timeout=50)
    assert results[1][0] == -signal.SIGKILL
    for r in (0, 2):
        out = results[r][1]
        assert "RAISED" in out, results[r]
        line = out.split("RAISED ", 1)[1].splitlines()[0]
        seconds, msg = float(line.split()[0]), line.split(" ", 1)[1]
        assert seconds < 20, line            # well within the 30 s timeout
        assert "all_reduce #2 (float32, 16777216 elements" in msg
        assert f"on rank {r}" in msg
        assert "SECOND" in out and "no longer usable" in out, out
        assert "FAILURE all_reduce #2" in out, out
        assert results[r][0] == 0, results[r][2][-2000:]


def test_peer_late_times_out():
    results = run(2, "scenario_late", timeout=40)
    out0 = results[0][1]
    assert "RAISED" in out0, results[0]
    line = out0.split("RAISED ", 1)[1]
    assert float(line.split()[0]) < 6
    assert "all_reduce #1 (float32, 10 elements, op=SUM) on rank 0" in line
    assert "timed out after 1500 ms" in line
    assert "ranks that did not arrive: [1]" in line
    assert "RAISED" in results[1][1]     # its peer is gone by then
    assert_ok(results)


def test_detail_mode_mismatch_raises_everywhere():
    for var in ("DTRAIN_DISTRIBUTED_DEBUG", "TORCH_DISTRIBUTED_DEBUG"):
        results = run(2, "scenario_mismatch", env={var: "DETAIL"})
        assert_ok(results)
        for rc, out, err in results:
            assert "RAISED Detected mismatch between collectives on ranks" \
                in out, out
            assert "all_reduce #1 (float32, 4 elements, op=SUM)" in out
            assert "all_reduce #1 (int64, 4 elements, op=SUM)" in out


def test_ctrl_c_interrupts_a_wait():
    procs = start(2, "scenario_interrupt")
    try:
        line = procs[0].stdout.readline()
        assert "WAITING" in line, procs[0].stderr.read()
        time.sleep(1.0)
        procs[0].send_signal(signal.SIGINT)
    finally:
        results = finish(procs)
    out = line + results[0][1]
    assert "INTERRUPTED" in out, results[0]
    seconds, ticks = out.split("INTERRUPTED ", 1)[1].split()[:2]
    assert float(seconds) < 3
    assert int(ticks) > 20, "a Python thread should run during the wait"


# ---------------------------------------------------------------------------
# FileStore and the object encoding


def test_file_store(tmp_path):
    path = str(tmp_path / "fs")
    a = FileStore(path, 2, timeout=timedelta(seconds=5))
    b = FileStore(path, 2, timeout=timedelta(seconds=5))
    a.set("k", "v")
    assert b.get("k") == b"v"
    assert a.add("n", 3) == 3 and b.add("n", 4) == 7
    assert b.check(["k", "n"]) and not b.check(["k", "zz"])
    assert a.compare_set("k", "v", "w") == b"w"
    assert b.compare_set("k", "nope", "x") == b"w"
    assert a.num_keys() == 2
    assert b.delete_key("k") and not a.check(["k"])
    start = time.monotonic()
    with pytest.raises(dist.DistStoreTimeoutError, match="zz"):
        a.wait(["zz"], timedelta(seconds=0.3))
    assert time.monotonic() - start < 2
    threading.Timer(0.2, lambda: b.set("late", b"x" * 100000)).start()
    assert a.get("late") == b"x" * 100000
    a.close()
    assert os.path.exists(path)
    b.close()
    assert not os.path.exists(path)


def test_object_encoding():
    obj = {"a": [1, 2.5, None, True, "é", b"\x00\xff", (1, (2,))],
           7: {"big": 2**100, "neg": -3}, "t": dtrain.arange(6).view(2, 3),
           "h": dtrain.ones(3, dtype=dtrain.bfloat16)}
    back = dist.decode_object(dist.encode_object(obj))
    assert back["a"] == obj["a"] and back[7] == obj[7]
    assert back["t"].shape == (2, 3) and back["t"].tolist() == \
        obj["t"].tolist()
    assert back["h"].dtype == dtrain.bfloat16
    for bad in [object(), {1, 2}, lambda: 0, np.float32(1.0)]:
        with pytest.raises(TypeError, match="cannot send an object of type"):
            dist.encode_object(bad)
    data = dist.encode_object([1, "abc"])
    with pytest.raises(ValueError, match="corrupt|trailing|unknown"):
        dist.decode_object(data[:-1])
    with pytest.raises(ValueError):
        dist.decode_object(b"Q")


SCENARIOS = {name: fn for name, fn in globals().items()
             if name.startswith("scenario_")}

if __name__ == "__main__" and sys.argv[1:2] and sys.argv[1] in SCENARIOS:
    SCENARIOS[sys.argv[1]](*sys.argv[2:])
