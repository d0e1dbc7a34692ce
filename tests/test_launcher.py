"""Tests for the launcher (python -m dtrain.run) and the spawn API.

Workers are small Python scripts written into tmp_path that record their
environment and pid as JSON; every test has a hard timeout, stop grace
periods are short (DTRAIN_STOP_GRACE), and tests that stop workers check
that no worker (or worker child) survives.
"""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest

from dtrain._launch.config import parse_args
from dtrain._launch.logs import last_traceback
from dtrain._launch.slurm import expand_hostlist, slurm_layout
from dtrain._launch.spawn import (ProcessExitedException,
                                  ProcessRaisedException, launch, spawn,
                                  start_processes)

REPO = Path(__file__).resolve().parents[1]
ENV_KEYS = ["LOCAL_RANK", "RANK", "GROUP_RANK", "ROLE_RANK", "ROLE_NAME",
            "LOCAL_WORLD_SIZE", "WORLD_SIZE", "GROUP_WORLD_SIZE",
            "ROLE_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT",
            "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS",
            "TORCHELASTIC_RUN_ID", "OMP_NUM_THREADS"]

# Every worker script starts with this: it records env, argv and pid in
# <out>/rank<R>.<attempt>.json (atomically) and defines `rank`, `attempt`.
HEADER = textwrap.dedent("""\
    import json, os, signal, subprocess, sys, time
    out = os.environ["TEST_OUT"]
    rank = int(os.environ["RANK"])
    attempt = int(os.environ["TORCHELASTIC_RESTART_COUNT"])
    def record(**extra):
        keys = %r
        data = dict(env={k: os.environ.get(k) for k in keys},
                    argv=sys.argv[1:], pid=os.getpid(), name=__name__)
        data.update(extra)
        path = os.path.join(out, "rank%%d.%%d.json" %% (rank, attempt))
        with open(path + ".tmp", "w") as f:
            json.dump(data, f)
        os.replace(path + ".tmp", path)
    """ % (ENV_KEYS,))


def _clean_env(tmp_path, extra=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "PET_", "TORCHELASTIC_"))
           and k not in ("OMP_NUM_THREADS", "RANK", "WORLD_SIZE",
                         "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(tmp_path)])
    env["TEST_OUT"] = str(tmp_path)
    env["DTRAIN_STOP_GRACE"] = "2"
    env.update(extra or {})
    return env


def _script(tmp_path, body, name="worker.py"):
    path = tmp_path / name
    path.write_text(HEADER + textwrap.dedent(body))
    return str(path)


def _launch(tmp_path, args, env=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "dtrain.run", *args],
                          cwd=tmp_path, env=_clean_env(tmp_path, env),
                          capture_output=True, text=True, timeout=timeout)


def _records(tmp_path, attempt=0):
    out = {}
    for p in tmp_path.glob(f"rank*.{attempt}.json"):
        data = json.loads(p.read_text())
        out[int(data["env"]["RANK"])] = data
    return out


def _gone(pid, timeout=3.0):
    """True once pid no longer runs (missing or a zombie)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _root_cause(stderr):
    assert "Root Cause (first observed failure):" in stderr, stderr
    return stderr.split("Root Cause (first observed failure):", 1)[1]


# ---- environment, arguments, modes --------------------------------------
@pytest.mark.timeout(60)
def test_worker_env_multi_node_layout(tmp_path):
    script = _script(tmp_path, "record()\n")
    r = _launch(tmp_path, ["--nproc_per_node", "3", "--nnodes", "2",
                           "--node-rank", "1", "--master_addr", "127.0.0.1",
                           "--master-port", "23456", script])
    assert r.returncode == 0, r.stderr
    recs = _records(tmp_path)
    assert sorted(recs) == [3, 4, 5]
    for rank, rec in recs.items():
        assert rec["env"] == {
            "LOCAL_RANK": str(rank - 3), "RANK": str(rank),
            "GROUP_RANK": "1", "ROLE_RANK": str(rank), "ROLE_NAME": "default",
            "LOCAL_WORLD_SIZE": "3", "WORLD_SIZE": "6",
            "GROUP_WORLD_SIZE": "2", "ROLE_WORLD_SIZE": "6",
            "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "23456",
            "TORCHELASTIC_RESTART_COUNT": "0",
            "TORCHELASTIC_MAX_RESTARTS": "0", "TORCHELASTIC_RUN_ID": "none",
            "OMP_NUM_THREADS": "1"}
    assert "Setting OMP_NUM_THREADS environment variable" in r.stderr


@pytest.mark.timeout(60)
def test_script_args_pass_through_untouched(tmp_path):
    script = _script(tmp_path, "record()\n")
    args = ["--nproc-per-node", "7", "-m", "--x=1", "--", "plain",
            "--standalone", "--max-restarts", "3"]
    r = _launch(tmp_path, ["--nproc-per-node", "2", script] + args,
                env={"OMP_NUM_THREADS": "3"})
    assert r.returncode == 0, r.stderr
    recs = _records(tmp_path)
    assert sorted(recs) == [0, 1]
    assert all(rec["argv"] == args for rec in recs.values())
    assert recs[0]["env"]["OMP_NUM_THREADS"] == "3"  # user's value kept
    assert "Setting OMP_NUM_THREADS" not in r.stderr


@pytest.mark.timeout(60)
def test_module_mode(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    _script(pkg, "record()\n", name="mod.py")
    r = _launch(tmp_path, ["--nproc-per-node", "2", "-m", "pkg.mod",
                           "a", "--b"])
    assert r.returncode == 0, r.stderr
    recs = _records(tmp_path)
    assert sorted(recs) == [0, 1]
    assert all(rec["argv"] == ["a", "--b"] and rec["name"] == "__main__"
               for rec in recs.values())


@pytest.mark.timeout(60)
def test_no_python_runs_an_executable(tmp_path):
    r = _launch(tmp_path, ["--nproc-per-node", "2", "--no-python", "sh",
                           "-c", 'echo "$RANK/$WORLD_SIZE" > "$0/$RANK.txt"',
                           str(tmp_path)])
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "0.txt").read_text() == "0/2\n"
    assert (tmp_path / "1.txt").read_text() == "1/2\n"


@pytest.mark.timeout(60)
def test_standalone_picks_a_free_port(tmp_path):
    script = _script(tmp_path, "record()\n")
    r = _launch(tmp_path, ["--standalone", "--nproc-per-node", "2", script])
    assert r.returncode == 0, r.stderr
    recs = _records(tmp_path)
    ports = {rec["env"]["MASTER_PORT"] for rec in recs.values()}
    assert len(ports) == 1
    port = int(ports.pop())
    assert port != 29500 and 0 < port < 65536
    assert recs[0]["env"]["MASTER_ADDR"] == "127.0.0.1"
    assert len(recs[0]["env"]["TORCHELASTIC_RUN_ID"]) == 32  # a uuid


@pytest.mark.timeout(60)
def test_log_dir_per_rank_files(tmp_path):
    script = _script(tmp_path, """\
        print("out of rank", rank)
        print("err of rank", rank, file=sys.stderr)
        """)
    logs = tmp_path / "logs"
    r = _launch(tmp_path, ["--nproc-per-node", "2", "--log-dir", str(logs),
                           "--rdzv-id", "job7", script])
    assert r.returncode == 0, r.stderr
    for rank in (0, 1):
        d = logs / "job7" / "attempt_0" / str(rank)
        assert (d / "stdout.log").read_text() == f"out of rank {rank}\n"
        assert (d / "stderr.log").read_text() == f"err of rank {rank}\n"
        assert f"out of rank {rank}" in r.stdout  # tee: console keeps it
        assert f"[rank{rank}]: err of rank {rank}" in r.stderr
    r = _launch(tmp_path, ["--nproc-per-node", "1", "--log-dir", str(logs),
                           "--redirects", "3", script])
    assert r.returncode == 0, r.stderr
    assert "of rank" not in r.stdout + r.stderr
    assert (logs / "none" / "attempt_0" / "0" / "stderr.log").exists()


# ---- failures --------------------------------------------------------------
SLEEPERS = """\
    record()
    if rank == %d:
        time.sleep(0.3)
        %s
    time.sleep(60)
    """


@pytest.mark.timeout(60)
def test_worker_exception_fails_the_launch(tmp_path):
    script = _script(tmp_path, SLEEPERS % (
        1, 'raise ValueError("boom from rank 1")'))
    t0 = time.monotonic()
    r = _launch(tmp_path, ["--nproc-per-node", "3", script])
    elapsed = time.monotonic() - t0
    assert r.returncode == 1, r.stderr
    recs = _records(tmp_path)
    assert sorted(recs) == [0, 1, 2]
    root = _root_cause(r.stderr)
    assert "rank      : 1 (local_rank: 1)" in root
    assert f"exitcode  : 1 (pid: {recs[1]['pid']})" in root
    assert "ValueError: boom from rank 1" in root
    assert "Traceback (most recent call last):" in root
    assert "[rank1]: ValueError: boom from rank 1" in r.stderr  # live echo
    assert "<NO_OTHER_FAILURES>" in r.stderr  # SIGTERMed sleepers don't count
    assert elapsed < 15  # the sleepers were stopped, not waited for
    assert all(_gone(rec["pid"]) for rec in recs.values())


@pytest.mark.timeout(60)
def test_worker_sigkill_reports_signal(tmp_path):
    script = _script(tmp_path, SLEEPERS % (
        0, "os.kill(os.getpid(), signal.SIGKILL)"))
    r = _launch(tmp_path, ["--nproc-per-node", "2", script])
    assert r.returncode == 1, r.stderr
    recs = _records(tmp_path)
    root = _root_cause(r.stderr)
    assert "rank      : 0 (local_rank: 0)" in root
    assert f"exitcode  : -9 (SIGKILL) (pid: {recs[0]['pid']})" in root
    assert f"Signal 9 (SIGKILL) received by PID {recs[0]['pid']}" in root
    assert all(_gone(rec["pid"]) for rec in recs.values())


@pytest.mark.timeout(60)
def test_restart_after_first_attempt_failure(tmp_path):
    script = _script(tmp_path, """\
        record()
        if rank == 1 and attempt == 0:
            sys.exit(3)
        """)
    r = _launch(tmp_path, ["--nproc-per-node", "2", "--max-restarts", "1",
                           script])
    assert r.returncode == 0, r.stderr
    assert "Restarting the worker group (restart 1 of 1)" in r.stderr
    recs = _records(tmp_path, attempt=1)
    assert sorted(recs) == [0, 1]
    for rec in recs.values():
        assert rec["env"]["TORCHELASTIC_RESTART_COUNT"] == "1"
        assert rec["env"]["TORCHELASTIC_MAX_RESTARTS"] == "1"
    # failing on every attempt uses up the restarts, then exits 1
    script = _script(tmp_path, "record()\nsys.exit(3 if rank == 1 else 0)\n")
    r = _launch(tmp_path, ["--nproc-per-node", "2", "--max-restarts", "1",
                           script])
    assert r.returncode == 1
    assert "exitcode  : 3 (pid:" in _root_cause(r.stderr)


@pytest.mark.timeout(60)
def test_sigint_stops_every_worker_and_child(tmp_path):
    # rank 0 ignores SIGINT/SIGTERM (needs the SIGKILL after the grace);
    # rank 1 has a child process of its own.
    script = _script(tmp_path, """\
        child = None
        if rank == 0:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if rank == 1:
            child = subprocess.Popen(["sleep", "60"]).pid
        record(child=child)
        time.sleep(60)
        """)
    launcher = subprocess.Popen(
        [sys.executable, "-m", "dtrain.run", "--nproc-per-node", "3", script],
        cwd=tmp_path, env=_clean_env(tmp_path, {"DTRAIN_STOP_GRACE": "1"}),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while len(_records(tmp_path)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        recs = _records(tmp_path)
        assert len(recs) == 3
        t0 = time.monotonic()
        launcher.send_signal(signal.SIGINT)
        _, err = launcher.communicate(timeout=20)
    finally:
        launcher.kill()
    assert launcher.returncode == 128 + signal.SIGINT, err
    assert time.monotonic() - t0 < 10
    assert "Received SIGINT death signal" in err
    pids = [rec["pid"] for rec in recs.values()] + [recs[1]["child"]]
    assert all(_gone(pid) for pid in pids), pids


# ---- parsing, Slurm -------------------------------------------------------
def test_hostlist_expansion():
    assert expand_hostlist("node[01-03,07]") == [
        "node01", "node02", "node03", "node07"]
    assert expand_hostlist("a[1-2],b3, c[9-10]-ib") == [
        "a1", "a2", "b3", "c9-ib", "c10-ib"]
    assert expand_hostlist("r[1-2]-n[1,3]") == [
        "r1-n1", "r1-n3", "r2-n1", "r2-n3"]
    assert expand_hostlist("gpu-node") == ["gpu-node"]
    for bad in ("node[1-", "node]1[", "node[a-b]", "node[3-1]"):
        with pytest.raises(ValueError, match="hostlist"):
            expand_hostlist(bad)


SRUN_ENV = {"SLURM_PROCID": "2", "SLURM_NTASKS": "4", "SLURM_NNODES": "4",
            "SLURM_STEP_NUM_TASKS": "4", "SLURM_STEP_NUM_NODES": "4",
            "SLURM_NODEID": "2", "SLURM_LOCALID": "0", "SLURM_JOB_ID": "777",
            "SLURM_STEP_NODELIST": "gpu[07-08,11],gpu20",
            "SLURM_JOB_NODELIST": "gpu[01-20]"}


def test_slurm_layout():
    lay = slurm_layout(SRUN_ENV)
    assert (lay["nnodes"], lay["node_rank"], lay["master_addr"],
            lay["run_id"], lay["warning"]) == (4, 2, "gpu07", "777", None)
    batch = {k: v for k, v in SRUN_ENV.items() if "STEP" not in k}
    assert slurm_layout(batch) is None  # batch script / salloc: not a step
    assert slurm_layout(dict(SRUN_ENV, DTRAIN_SLURM="0")) is None
    two_per_node = dict(SRUN_ENV, SLURM_STEP_NUM_NODES="2")
    assert "one launcher per node" in slurm_layout(two_per_node)["warning"]


@pytest.fixture
def clean_environ(monkeypatch):
    for k in list(os.environ):
        if k.startswith(("SLURM_", "PET_")) or k == "DTRAIN_STOP_GRACE":
            monkeypatch.delenv(k)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return monkeypatch


def test_slurm_precedence(clean_environ):
    for k, v in SRUN_ENV.items():
        clean_environ.setenv(k, v)
    cfg = parse_args(["--nproc-per-node", "2", "train.py"])
    assert (cfg.nnodes, cfg.node_rank, cfg.master_addr, cfg.master_port,
            cfg.run_id) == (4, 2, "gpu07", 29500, "777")
    clean_environ.setenv("PET_NODE_RANK", "3")   # PET_* beats Slurm
    cfg = parse_args(["--master-addr", "10.1.1.1", "train.py"])
    assert (cfg.nnodes, cfg.node_rank, cfg.master_addr) == (4, 3, "10.1.1.1")
    cfg = parse_args(["--nnodes", "1", "--node_rank", "0", "train.py"])
    assert (cfg.nnodes, cfg.node_rank) == (1, 0)  # the command line wins


def test_parse_args(clean_environ, capsys):
    cfg = parse_args(["--nproc_per_node=cpu", "--monitor-interval", "0.5",
                      "--rdzv-endpoint", "10.0.0.5:1234", "--rdzv-backend",
                      "static", "--start-method", "fork", "--stop-grace",
                      "4", "x.py", "--nproc-per-node", "9"])
    assert cfg.nproc_per_node == os.cpu_count()
    assert (cfg.master_addr, cfg.master_port) == ("10.0.0.5", 1234)
    assert (cfg.monitor_interval, cfg.stop_grace) == (0.5, 4.0)
    assert cfg.cmd == [sys.executable, "-u", "x.py", "--nproc-per-node", "9"]
    clean_environ.setenv("CUDA_VISIBLE_DEVICES", "")
    assert parse_args(["--nproc-per-node", "auto", "x.py"]).nproc_per_node \
        == os.cpu_count()
    clean_environ.setenv("PET_NPROC_PER_NODE", "5")
    assert parse_args(["x.py"]).nproc_per_node == 5
    cfg = parse_args(["--rdzv-backend", "c10d", "--rdzv-endpoint", "hostA",
                      "x.py"])
    assert (cfg.master_addr, cfg.master_port) == ("hostA", 29400)
    assert parse_args(["--max_restarts", "2", "x.py"]).max_restarts == 2
    for bad, msg in [
            (["--nnodes", "1:4", "x.py"], "elastic node ranges"),
            (["--nnodes", "2", "--node-rank", "2", "x.py"], "out of range"),
            (["--rdzv-endpoint", "hostA", "x.py"], "port is missing"),
            (["--no-python", "-m", "x"], "cannot be used together"),
            (["--nproc-per-node", "many", "x.py"], "expected an int"),
            (["--rdzv-backend", "etcd", "x.py"], "only 'static' and 'c10d'"),
            (["--nproc-per-node", "2"], "training script"),
            (["--bogus", "x.py"], "unrecognized")]:
        with pytest.raises(SystemExit) as ei:
            parse_args(bad)
        assert ei.value.code == 2
        assert msg in capsys.readouterr().err, bad


def test_last_traceback_keeps_chained_exceptions():
    lines = ["noise", "Traceback (most recent call last):", '  File "a"',
             "KeyError: 1", "",
             "During handling of the above exception, another exception "
             "occurred:", "", "Traceback (most recent call last):",
             '  File "b"', "ValueError: 2"]
    assert last_traceback(lines) == lines[1:]
    # torch prefixes "[rankN]: " itself once a process group exists
    assert last_traceback(["[rank1]: " + s for s in lines]) == lines[1:]
    assert last_traceback(["a", "", "b"]) == ["a", "b"]


# ---- spawn API (functions must be importable: they live in this module) ----
def _spawn_ok(i, out_dir):
    Path(out_dir, f"{i}.txt").write_text(f"{i} {os.getpid()}")


def _spawn_fail(i, out_dir):
    Path(out_dir, f"{i}.pid").write_text(str(os.getpid()))
    if i == 1:
        time.sleep(0.3)
        raise RuntimeError("spawn boom in 1")
    time.sleep(60)


def _spawn_exit(i):
    if i == 0:
        os._exit(7)
    time.sleep(60)


def _launch_env(i):
    return {k: os.environ.get(k) for k in ENV_KEYS}


@pytest.mark.timeout(60)
def test_spawn_success_and_join_context(tmp_path):
    assert spawn(_spawn_ok, args=(str(tmp_path),), nprocs=2) is None
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == ["0.txt", "1.txt"]
    ctx = start_processes(_spawn_ok, args=(str(tmp_path),), nprocs=2,
                          join=False)
    deadline = time.monotonic() + 30
    while not ctx.join(timeout=1):
        assert time.monotonic() < deadline
    assert all(p.exitcode == 0 for p in ctx.processes)


@pytest.mark.timeout(60)
def test_spawn_failure_carries_child_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("DTRAIN_STOP_GRACE", "2")
    t0 = time.monotonic()
    with pytest.raises(ProcessRaisedException) as ei:
        spawn(_spawn_fail, args=(str(tmp_path),), nprocs=3)
    assert time.monotonic() - t0 < 20
    assert ei.value.error_index == 1
    msg = str(ei.value)
    assert "-- Process 1 terminated with the following error:" in msg
    assert "Traceback (most recent call last):" in msg
    assert "RuntimeError: spawn boom in 1" in msg
    pids = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    assert len(pids) == 3 and all(_gone(pid) for pid in pids)
    with pytest.raises(ProcessExitedException) as ei:
        spawn(_spawn_exit, nprocs=2)
    assert (ei.value.error_index, ei.value.exit_code) == (0, 7)
    assert "terminated with exit code 7" in str(ei.value)


@pytest.mark.timeout(60)
def test_launch_sets_env_and_returns_results():
    before = os.environ.get("RANK")
    results = launch(_launch_env, nprocs=2)
    assert [r["RANK"] for r in results] == ["0", "1"]
    assert [r["LOCAL_RANK"] for r in results] == ["0", "1"]
    assert {r["WORLD_SIZE"] for r in results} == {"2"}
    assert {r["MASTER_ADDR"] for r in results} == {"127.0.0.1"}
    ports = {r["MASTER_PORT"] for r in results}
    assert len(ports) == 1 and int(ports.pop()) > 0
    assert os.environ.get("RANK") == before  # the parent is untouched


def test_spawn_rejects_notebook_functions(monkeypatch):
    def fn(i):
        pass
    fn.__module__ = "__main__"
    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
    with pytest.raises(ValueError, match="notebook"):
        spawn(fn, nprocs=1)
    with pytest.raises(TypeError, match="picklable"):
        spawn(lambda i: None, nprocs=1)
