"""Chrome-trace timelines of DDP steps (chrome://tracing, Perfetto).

Each synchronised backward becomes a "backward" span on the compute
track, and each bucket a "ready" instant there plus an "allreduce" span
on the communication track (from when the comm thread began it to when
it finished; "queued" shows the wait for a free comm thread). Set
DTRAIN_DDP_TRACE=<directory> to record every step and write
<directory>/ddp_trace_rank<R>.json when the model is freed, or call
DistributedDataParallel.write_trace(path).
"""
import json
import os

_MAX_STEPS = 10000


def from_env(rank):
    d = os.environ.get("DTRAIN_DDP_TRACE")
    if not d:
        return None
    t = Tracer(rank)
    t.path = os.path.join(d, f"ddp_trace_rank{rank}.json")
    return t


class Tracer:
    def __init__(self, rank):
        self.rank = rank
        self.path = None
        self.events = []
        self._last_step = 0

    def record(self, st):
        """Adds the last step of reducer.stats() if it is a new one."""
        if st["steps"] == 0 or st["last_backward_end"] == self._last_step:
            return
        self._last_step = st["last_backward_end"]
        if len(self.events) > _MAX_STEPS * 8:
            return
        us = 1e6
        pid, t0 = self.rank, st["last_backward_start"]
        ev = self.events
        ev.append(_span("backward", pid, 0, t0 * us,
                        (st["last_backward_end"] - t0) * us))
        ev.append(_span("wait for buckets", pid, 0,
                        st["last_backward_end"] * us,
                        (st["last_done"] - st["last_backward_end"]) * us))
        for b in st["buckets"]:
            args = {"bucket": b["index"], "bytes": b["bytes"]}
            ev.append({"name": f"bucket {b['index']} ready", "ph": "i",
                       "s": "t", "pid": pid, "tid": 0, "ts": b["ready"] * us,
                       "args": args})
            start = b["start"] if b["start"] is not None else b["launch"]
            if start > b["launch"]:
                ev.append(_span(f"bucket {b['index']} queued", pid, 1,
                                b["launch"] * us,
                                (start - b["launch"]) * us, args))
            ev.append(_span(f"allreduce bucket {b['index']}", pid, 1,
                            start * us, (b["end"] - start) * us, args))

    def write(self, path):
        """Atomically: a temporary file in the same directory, renamed."""
        meta = [{"name": "process_name", "ph": "M", "pid": self.rank,
                 "args": {"name": f"rank {self.rank}"}},
                {"name": "thread_name", "ph": "M", "pid": self.rank, "tid": 0,
                 "args": {"name": "backward (compute)"}},
                {"name": "thread_name", "ph": "M", "pid": self.rank, "tid": 1,
                 "args": {"name": "allreduce (comm)"}}]
        d = os.path.dirname(os.path.abspath(path))
        os.makedirs(d, exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"traceEvents": meta + self.events,
                       "displayTimeUnit": "ms"}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)


def _span(name, pid, tid, ts, dur, args=None):
    e = {"name": name, "ph": "X", "pid": pid, "tid": tid, "ts": ts,
         "dur": max(dur, 0.0)}
    if args:
        e["args"] = args
    return e
