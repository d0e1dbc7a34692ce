"""Faults end to end through the launcher: a rank killed with SIGKILL in
the middle of collectives is reported by the launcher (rank, signal), the
other rank is stopped promptly (no hang), and with --max-restarts 1 the
restarted group finishes. (That a survivor's collective raises within the
timeout when no launcher stops it is tested in test_process_group.py.)"""
import os
import subprocess
import sys
import textwrap
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = textwrap.dedent("""
    import datetime, os, signal, sys, time
    import dtrain
    import dtrain.distributed as dist
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=10))
    rank = dist.get_rank()
    attempt = int(os.environ["TORCHELASTIC_RESTART_COUNT"])
    kill_on = int(sys.argv[1])          # attempt on which rank 1 dies
    t = dtrain.ones(1 << 16)
    for step in range(40):
        if rank == 1 and attempt == kill_on and step == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        dist.all_reduce(t)
        t.fill_(1.0)
    dist.barrier()
    print(f"rank {rank} attempt {attempt} done", flush=True)
    dist.destroy_process_group()
""")


def launch(tmp_path, *flags, kill_on=0):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "dtrain.run", "--standalone",
                          "--nproc-per-node", "2", "--stop-grace", "3",
                          *flags, str(script), str(kill_on)],
                         env=env, capture_output=True, text=True, timeout=150)
    return res, time.monotonic() - start


@pytest.mark.timeout(180)
def test_killed_rank_is_reported_and_survivor_does_not_hang(tmp_path):
    res, elapsed = launch(tmp_path)
    out = res.stdout + res.stderr
    assert res.returncode == 1, out
    assert elapsed < 60, f"took {elapsed:.0f}s: something waited too long"
    root = out[out.index("Root Cause"):]
    assert "rank      : 1 (local_rank: 1)" in root, out
    assert "-9 (SIGKILL)" in root, out
    assert "done" not in out  # nothing finished after the failure


@pytest.mark.timeout(240)
def test_max_restarts_reruns_the_group(tmp_path):
    res, _ = launch(tmp_path, "--max-restarts", "1")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    assert "rank 0 attempt 1 done" in out and "rank 1 attempt 1 done" in out
