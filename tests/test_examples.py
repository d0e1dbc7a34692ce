"""The examples run for real: the digits trainer reaches 95% test accuracy
(it exits non-zero below that) and writes a checkpoint that loads."""
import os
import subprocess
import sys

import numpy as np
import pytest

import dtrain

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, timeout):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(300)
def test_train_digits_reaches_95_percent(tmp_path):
    pytest.importorskip("sklearn", reason="the 8x8 digits ship with "
                        "scikit-learn")
    ck = tmp_path / "digits.dt"
    res = run(["examples/train_digits.py", "--model", "both", "--epochs",
               "6", "--checkpoint", str(ck)], timeout=280)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "samples/s" in res.stdout and "test acc" in res.stdout
    saved = dtrain.load(ck)
    assert min(saved["accuracy"].values()) >= 0.95
    assert "fc1.weight" in saved["models"]["cnn"]


@pytest.mark.timeout(120)
def test_linear_regression_converges():
    res = run(["examples/linear_regression.py", "--steps", "100"], timeout=100)
    assert res.returncode == 0, res.stdout + res.stderr


# ---------------------------------------------------- the DDP main job

LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                "MASTER_PORT", "LOCAL_WORLD_SIZE", "GROUP_RANK")


def run_ddp(nproc, args, timeout=120):
    """examples/train_digits_ddp.py under the launcher (nproc > 0) or as a
    plain script (nproc == 0), outside any launcher's environment."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_ENV}
    env.update(PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    cmd = [sys.executable]
    if nproc:
        cmd += ["-m", "dtrain.run", "--standalone", "--nproc-per-node",
                str(nproc)]
    cmd += ["examples/train_digits_ddp.py", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def epoch_lines(stdout):
    return [line for line in stdout.splitlines() if line.startswith("epoch")]


@pytest.mark.timeout(150)
def test_train_digits_ddp_two_processes(tmp_path):
    pytest.importorskip("sklearn", reason="the 8x8 digits ship with "
                        "scikit-learn")
    ck = tmp_path / "ddp.dt"
    res = run_ddp(2, ["--checkpoint", str(ck)])
    assert res.returncode == 0, res.stdout + res.stderr
    lines = epoch_lines(res.stdout)
    assert len(lines) == 10, res.stdout      # rank 0 only prints
    assert all("samples/s" in ln and "overlap" in ln for ln in lines)
    assert "2 processes" in res.stdout
    saved = dtrain.load(ck)
    assert saved["epoch"] == 10 and saved["world_size"] == 2
    assert saved["accuracy"] >= 0.95
    assert "conv1.weight" in saved["model"]          # the bare module's keys
    assert saved["optimizer"]["state"]


@pytest.mark.timeout(120)
def test_train_digits_ddp_one_plain_process(tmp_path):
    pytest.importorskip("sklearn", reason="the 8x8 digits ship with "
                        "scikit-learn")
    ck = tmp_path / "one.dt"
    res = run_ddp(0, ["--checkpoint", str(ck)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 process x" in res.stdout and len(epoch_lines(res.stdout)) == 10
    assert dtrain.load(ck)["accuracy"] >= 0.95


@pytest.mark.timeout(120)
def test_train_digits_ddp_below_threshold_fails(tmp_path):
    pytest.importorskip("sklearn", reason="the 8x8 digits ship with "
                        "scikit-learn")
    res = run_ddp(0, ["--epochs", "1", "--min-accuracy", "0.999",
                      "--checkpoint", str(tmp_path / "x.dt")])
    assert res.returncode != 0
    assert "below" in res.stderr


@pytest.mark.timeout(200)
def test_train_digits_ddp_resume_matches_uninterrupted_run(tmp_path):
    """2 epochs, stop, --resume to 3 == 3 epochs straight, bit for bit
    (weights, optimizer state, schedule), over 2 processes."""
    pytest.importorskip("sklearn", reason="the 8x8 digits ship with "
                        "scikit-learn")
    common = ["--epochs", "3", "--min-accuracy", "0"]
    part, straight = tmp_path / "part.dt", tmp_path / "straight.dt"
    res = run_ddp(2, [*common, "--stop-after", "2", "--checkpoint",
                      str(part)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(epoch_lines(res.stdout)) == 2
    assert dtrain.load(part)["epoch"] == 2
    res = run_ddp(2, [*common, "--resume", str(part), "--checkpoint",
                      str(part)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "resumed" in res.stdout
    assert [ln.split()[1] for ln in epoch_lines(res.stdout)] == ["3"]
    res = run_ddp(2, [*common, "--checkpoint", str(straight)])
    assert res.returncode == 0, res.stdout + res.stderr
    a, b = dtrain.load(part), dtrain.load(straight)
    assert a["epoch"] == b["epoch"] == 3
    assert a["accuracy"] == b["accuracy"]
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert np.array_equal(a["model"][k].numpy(), b["model"][k].numpy()), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for i in sa:
        for k, v in sa[i].items():
            w = sb[i][k]
            if hasattr(v, "numpy"):
                assert np.array_equal(v.numpy(), w.numpy()), (i, k)
            else:
                assert v == w, (i, k)
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 3
