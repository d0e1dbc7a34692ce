"""The failure report the launcher prints before exiting with status 1,
laid out like torchrun's ChildFailedError report:

    ============================================================
    train.py FAILED
    ------------------------------------------------------------
    Failures:
      <NO_OTHER_FAILURES>
    ------------------------------------------------------------
    Root Cause (first observed failure):
    [0]:
      time      : 2025-01-01_12:00:00
      host      : node01
      rank      : 1 (local_rank: 1)
      exitcode  : 1 (pid: 4242)
      error_file: <N/A>
      traceback : Traceback (most recent call last):
                    ...
                  ValueError: boom
    ============================================================

Unlike torchrun the traceback needs no @record in the user's script: it is
the tail of the worker's stderr. A worker killed by a signal shows
"exitcode  : -9 (SIGKILL) (pid: ...)".
"""
import dataclasses
import signal
import socket
import time as _time

__all__ = ["WorkerFailure", "format_summary", "exitcode_text"]

_WIDTH = 60


@dataclasses.dataclass
class WorkerFailure:
    local_rank: int
    rank: int
    pid: int
    exitcode: int
    time: float            # when the worker exited (time.time())
    tail: list             # traceback lines, or the last stderr lines
    host: str = dataclasses.field(default_factory=socket.gethostname)


def _signame(signum):
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def exitcode_text(code):
    """1 -> "1"; -9 -> "-9 (SIGKILL)"."""
    return f"{code} ({_signame(-code)})" if code < 0 else str(code)


def _traceback_lines(f):
    """The signal (torchrun's line) then the stderr tail, which for a crash
    may hold faulthandler's stack."""
    lines = []
    if f.exitcode < 0:
        lines.append(f"Signal {-f.exitcode} ({_signame(-f.exitcode)}) "
                     f"received by PID {f.pid}")
    lines += f.tail
    return lines or ["<N/A> (the worker wrote nothing to stderr)"]


def _entry(index, f):
    stamp = _time.strftime("%Y-%m-%d_%H:%M:%S", _time.localtime(f.time))
    tb = _traceback_lines(f)
    lines = [f"[{index}]:",
             f"  time      : {stamp}",
             f"  host      : {f.host}",
             f"  rank      : {f.rank} (local_rank: {f.local_rank})",
             f"  exitcode  : {exitcode_text(f.exitcode)} (pid: {f.pid})",
             "  error_file: <N/A>",
             f"  traceback : {tb[0]}"]
    lines += ["              " + line for line in tb[1:]]
    return lines


def format_summary(script, failures):
    """The report for `failures` (non-empty); the earliest exit is the root
    cause, ties go to the lowest rank."""
    failures = sorted(failures, key=lambda f: (f.time, f.rank))
    root, others = failures[0], failures[1:]
    out = ["=" * _WIDTH, f"{script} FAILED", "-" * _WIDTH, "Failures:"]
    if others:
        for i, f in enumerate(others, 1):
            out += _entry(i, f)
    else:
        out.append("  <NO_OTHER_FAILURES>")
    out += ["-" * _WIDTH, "Root Cause (first observed failure):"]
    out += _entry(0, root)
    out.append("=" * _WIDTH)
    return "\n".join(out) + "\n"
