"""The local agent: starts this node's workers, watches them, stops them.

Lifecycle (torchrun's LocalElasticAgent, static rendezvous):
  start    one process per local rank, each in its own session
           (start_new_session) so that a signal to its process group also
           reaches anything it forked;
  monitor  every monitor_interval: all exited 0 -> done; any non-zero ->
           failed; a signal to the launcher -> forward it;
  stop     the signal (SIGTERM on failure) to every worker group, up to
           stop_grace seconds for the workers to exit, then SIGKILL to every
           group, so no worker or worker child outlives the launcher;
  restart  while restarts remain, the whole local group starts again with
           TORCHELASTIC_RESTART_COUNT + 1; else the failure summary and
           exit status 1. A signal to the launcher exits with 128 + signum.
The agent hosts no store: workers meet through MASTER_ADDR/MASTER_PORT.
"""
import os
import signal
import subprocess
import sys
import threading
import time

from .config import free_port
from .errors import WorkerFailure, format_summary
from .logs import CONSOLE_LOCK, StreamPump, last_traceback, log

__all__ = ["LocalAgent", "run"]

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


class _SignalCatcher:
    """Records signals sent to the launcher instead of dying of them, so the
    agent can forward them and clean up. Only the main thread may install
    handlers; elsewhere this is a no-op."""

    def __init__(self):
        self.received = []
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in _SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum, frame):
        self.received.append(signum)


class _Worker:
    def __init__(self, local_rank, rank, proc, pumps):
        self.local_rank, self.rank = local_rank, rank
        self.proc, self.pumps = proc, pumps
        self.exit_time = None
        self._waiter = threading.Thread(target=self._wait, daemon=True,
                                        name=f"dtrun-wait-{rank}")
        self._waiter.start()

    def _wait(self):
        self.proc.wait()
        self.exit_time = time.time()  # exact, for the root cause order

    @property
    def exitcode(self):
        """None while running (or not yet seen by the waiter thread)."""
        return self.proc.returncode if self.exit_time is not None else None

    def signal_group(self, sig):
        """sig to the worker's process group, which also holds whatever it
        forked. After the worker is reaped its pid is free: a live process
        with that pid is someone else's, so leave it alone."""
        if self.proc.returncode is not None:
            try:
                os.kill(self.proc.pid, 0)
                return
            except ProcessLookupError:
                pass  # no such pid: only our orphans can hold the group id
            except PermissionError:
                return
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass  # the group is empty already


class LocalAgent:
    def __init__(self, cfg):
        self.cfg = cfg
        self.workers = []
        self.restart_count = 0

    # ---- start -------------------------------------------------------
    def _worker_env(self, local_rank, port):
        c = self.cfg
        rank = c.node_rank * c.nproc_per_node + local_rank
        world = c.nnodes * c.nproc_per_node
        env = dict(os.environ)
        env.update(c.env)
        env.update({
            "LOCAL_RANK": local_rank, "RANK": rank,
            "GROUP_RANK": c.node_rank, "ROLE_RANK": rank,
            "ROLE_NAME": c.role, "LOCAL_WORLD_SIZE": c.nproc_per_node,
            "WORLD_SIZE": world, "GROUP_WORLD_SIZE": c.nnodes,
            "ROLE_WORLD_SIZE": world, "MASTER_ADDR": c.master_addr,
            "MASTER_PORT": port,
            "TORCHELASTIC_RESTART_COUNT": self.restart_count,
            "TORCHELASTIC_MAX_RESTARTS": c.max_restarts,
            "TORCHELASTIC_RUN_ID": c.run_id,
            # no agent store: rank 0 hosts the store, as with plain env://
            "TORCHELASTIC_USE_AGENT_STORE": "False",
        })
        return {k: str(v) for k, v in env.items()}

    def _log_path(self, local_rank, stream):
        c = self.cfg
        d = os.path.join(c.log_dir, c.run_id, f"attempt_{self.restart_count}",
                         str(local_rank))
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, f"{stream}.log")

    def _spawn(self, local_rank, port):
        """Start one worker with its stdout/stderr plumbing."""
        c = self.cfg
        env = self._worker_env(local_rank, port)
        bits = c.redirects.get(local_rank, 0) | c.tee.get(local_rank, 0)
        redirect = c.redirects.get(local_rank, 0) & ~c.tee.get(local_rank, 0)
        out_path = self._log_path(local_rank, "stdout") if bits & 1 else None
        err_path = self._log_path(local_rank, "stderr") if bits & 2 else None
        stdout = subprocess.PIPE if out_path else None
        proc = subprocess.Popen(c.cmd, env=env, stdout=stdout,
                                stderr=subprocess.PIPE, start_new_session=True)
        rank = int(env["RANK"])
        pumps = [StreamPump(proc.stderr, f"[rank{rank}]: ",
                            None if redirect & 2 else _binary(sys.stderr),
                            err_path, f"dtrun-stderr-{rank}")]
        if out_path:
            pumps.append(StreamPump(proc.stdout, "",
                                    None if redirect & 1 else
                                    _binary(sys.stdout),
                                    out_path, f"dtrun-stdout-{rank}"))
        return _Worker(local_rank, rank, proc, pumps)

    def _start(self):
        port = self.cfg.master_port or free_port()
        self.workers = []
        for local_rank in range(self.cfg.nproc_per_node):
            self.workers.append(self._spawn(local_rank, port))

    # ---- monitor -----------------------------------------------------
    def _monitor(self, sigs):
        """-> ("succeeded" | "failed" | "signal", failed workers)."""
        while True:
            if sigs.received:
                return "signal", []
            codes = [w.exitcode for w in self.workers]
            failed = [w for w, code in zip(self.workers, codes)
                      if code not in (None, 0)]
            if failed:
                return "failed", failed
            if all(code == 0 for code in codes):
                return "succeeded", []
            time.sleep(self.cfg.monitor_interval)

    # ---- stop --------------------------------------------------------
    def _stop(self, sig, sigs):
        """sig to every worker group, stop_grace seconds, then SIGKILL.
        A further signal to the launcher cuts the grace period short."""
        seen = len(sigs.received)
        for w in self.workers:
            if w.proc.poll() is None:
                log(f"Sending process {w.proc.pid} closing signal "
                    f"{signal.Signals(sig).name}")
            w.signal_group(sig)
        deadline = time.monotonic() + self.cfg.stop_grace
        while any(w.proc.poll() is None for w in self.workers):
            if time.monotonic() >= deadline or len(sigs.received) > seen:
                break
            time.sleep(0.02)
        why = ("a second signal cut the grace period short"
               if len(sigs.received) > seen else
               f"still running after {self.cfg.stop_grace:g} s")
        for w in self.workers:
            if w.proc.poll() is None:
                log(f"Process {w.proc.pid} (rank {w.rank}) {why}; "
                    "sending SIGKILL")
            w.signal_group(signal.SIGKILL)
        for w in self.workers:
            try:
                w.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log(f"Process {w.proc.pid} survived SIGKILL (stuck in the "
                    "kernel?); giving up on it")
            for pump in w.pumps:
                pump.join(timeout=2)

    # ---- run ---------------------------------------------------------
    def _failures(self, failed):
        return [WorkerFailure(
            local_rank=w.local_rank, rank=w.rank, pid=w.proc.pid,
            exitcode=w.proc.returncode, time=w.exit_time,
            tail=last_traceback(w.pumps[0].tail)) for w in failed]

    def run(self):
        """Run the workers to completion; returns the exit status."""
        c = self.cfg
        with _SignalCatcher() as sigs:
            while True:
                try:
                    self._start()
                except OSError as e:
                    self._stop(signal.SIGTERM, sigs)
                    log(f"failed to start {c.cmd[0]!r}: {e}")
                    return 1
                state, failed = self._monitor(sigs)
                if state == "failed":
                    for w in failed:
                        log(f"failed (exitcode: {w.proc.returncode}) "
                            f"local_rank: {w.local_rank} (pid: "
                            f"{w.proc.pid}) of binary: {c.cmd[0]}")
                sig = sigs.received[0] if state == "signal" else signal.SIGTERM
                if state == "signal":
                    log(f"Received {signal.Signals(sig).name} death signal, "
                        "shutting down workers")
                self._stop(sig, sigs)
                if sigs.received:
                    return 128 + sigs.received[0]
                if state == "succeeded":
                    return 0
                failures = self._failures(failed)
                if self.restart_count < c.max_restarts:
                    self.restart_count += 1
                    log(f"[{c.role}] Worker group FAILED. Restarting the "
                        f"worker group (restart {self.restart_count} of "
                        f"{c.max_restarts})")
                    continue
                with CONSOLE_LOCK:
                    sys.stderr.write(format_summary(c.script, failures))
                    sys.stderr.flush()
                return 1


def _binary(stream):
    """The byte stream under a text stream (tests may swap in StringIO)."""
    return getattr(stream, "buffer", None)


def run(cfg):
    return LocalAgent(cfg).run()
