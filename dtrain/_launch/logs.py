"""Worker output for the launcher: the console lock, launcher log lines,
and the pumps that copy a worker's pipe to the console and its log file.

A worker's stderr always goes through a pipe read by a StreamPump thread:
each line is echoed to the launcher's stderr prefixed "[rankN]: " (N is the
global rank, as torchrun does), written to the worker's log file when
--log-dir/--redirects/--tee ask for one, and kept in a ring of the last
TAIL_LINES lines so the failure summary can show the worker's traceback
without any decorator in the user's script. stdout is inherited untouched
unless a log file asks for it. "\r"-terminated pieces (progress bars) are
echoed as they come but not kept in the ring.
"""
import collections
import re
import sys
import threading

__all__ = ["CONSOLE_LOCK", "TAIL_LINES", "StreamPump", "last_traceback",
           "log"]

TAIL_LINES = 50
CONSOLE_LOCK = threading.Lock()  # one writer at a time on our stderr/stdout


def log(msg):
    """A launcher message on stderr, never torn by worker lines."""
    with CONSOLE_LOCK:
        sys.stderr.write(f"[dtrain.run] {msg}\n")
        sys.stderr.flush()


def _pieces(buf):
    """Split bytes after each "\n" or "\r": (complete pieces, the rest)."""
    out, start = [], 0
    for i, b in enumerate(buf):
        if b in (10, 13):
            out.append(buf[start:i + 1])
            start = i + 1
    return out, buf[start:]


class StreamPump:
    """Reads one worker pipe until EOF on its own thread."""

    def __init__(self, pipe, prefix, console, log_path, name):
        self.tail = collections.deque(maxlen=TAIL_LINES)
        self._pipe = pipe            # a binary file object (Popen's pipe)
        self._prefix = prefix.encode()
        self._console = console      # binary stream or None
        self._log = open(log_path, "ab") if log_path else None
        self._thread = threading.Thread(target=self._run, name=name,
                                        daemon=True)
        self._thread.start()

    def join(self, timeout=None):
        self._thread.join(timeout)

    def _run(self):
        pending = b""
        try:
            while True:
                chunk = self._pipe.read1(65536)
                if not chunk:
                    break
                pieces, pending = _pieces(pending + chunk)
                self._emit(pieces)
            if pending:
                self._emit([pending + b"\n"])
        except (OSError, ValueError):
            pass  # pipe closed under us while stopping: nothing to save
        finally:
            self._pipe.close()
            if self._log:
                self._log.close()

    def _emit(self, pieces):
        if self._log:
            self._log.write(b"".join(pieces))
            self._log.flush()
        if self._console is not None:
            # torch (and maybe the user) already prefix "[rankN]:"
            mark = self._prefix.rstrip()
            data = b"".join(p if mark and p.startswith(mark)
                            else self._prefix + p for p in pieces)
            with CONSOLE_LOCK:
                try:
                    self._console.write(data)
                    self._console.flush()
                except (OSError, ValueError):
                    pass  # our own stderr is gone; keep draining the pipe
        for p in pieces:
            if p.endswith(b"\n"):
                self.tail.append(p.decode("utf-8", "replace").rstrip("\r\n"))


_CHAIN = ("During handling of the above exception, another exception "
          "occurred:",
          "The above exception was the direct cause of the following "
          "exception:")


_RANK_PREFIX = re.compile(r"^\[rank\d+\]: ?")


def last_traceback(lines, fallback=10):
    """The last Python traceback in `lines` (with the exceptions chained
    to it), to the end of the tail; else the last `fallback` lines. A
    "[rankN]: " prefix (torch adds one) is dropped: the report names the
    rank."""
    lines = [_RANK_PREFIX.sub("", s) for s in lines]
    starts = [i for i, s in enumerate(lines)
              if s.startswith("Traceback (most recent call last):")]
    if not starts:
        return [s for s in lines if s.strip()][-fallback:]
    begin = starts[-1]
    # walk back over chained exceptions: <traceback> <blank> <chain> <blank>
    for s in reversed(starts[:-1]):
        between = [x for x in lines[s:begin] if x.strip()]
        if any(x.strip() in _CHAIN for x in between[-1:]):
            begin = s
        else:
            break
    return lines[begin:]
