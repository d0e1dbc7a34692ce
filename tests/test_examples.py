"""The examples run for real: the digits trainer reaches 95% test accuracy
(it exits non-zero below that) and writes a checkpoint that loads."""
import os
import subprocess
import sys

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
