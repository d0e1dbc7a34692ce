"""Shared benchmark plumbing: interleaved timing of dtrain and torch, and a
results table. Absolute times on shared 2-core machines are noise; the
ratio of two interleaved measurements taken in one run is what we report."""
import os
import platform
import statistics
import subprocess
import sys
import time


def pin_threads(n=1):
    """Both libraries single-threaded (must run before importing them)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def time_pair(fn_a, fn_b, min_time=0.4, min_reps=5, max_reps=200):
    """Times fn_a and fn_b alternately (so drifts in machine load hit both)
    and returns their median times in seconds."""
    for _ in range(2):  # warm-up: page faults, lazy init
        fn_a()
        fn_b()
    ta, tb = [], []
    start = time.perf_counter()
    while len(ta) < max_reps and (len(ta) < min_reps or
                                  time.perf_counter() - start < 2 * min_time):
        t0 = time.perf_counter()
        fn_a()
        t1 = time.perf_counter()
        fn_b()
        t2 = time.perf_counter()
        ta.append(t1 - t0)
        tb.append(t2 - t1)
    return statistics.median(ta), statistics.median(tb)


def machine_line():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def git_rev():
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True,
                              cwd=os.path.dirname(__file__)).stdout.strip()
    except OSError:
        return "unknown"


def header(title, torch):
    return [f"# {title}",
            f"# command: python {' '.join(sys.argv)}",
            f"# machine: {machine_line()}",
            f"# dtrain commit {git_rev()}, torch {torch.__version__}",
            f"# date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"]


def write_results(path, lines):
    """Writes a results file atomically (a temporary file, renamed)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)
