"""Start N Python processes running fn(i, *args): torch.multiprocessing's
spawn/start_processes, plus launch(), which also gives every process
torchrun's environment so fn can call init_process_group("gloo") with the
default env:// directly (from a script or a notebook).

    # train_fn.py
    def train(rank, epochs):
        dist.init_process_group("gloo")     # RANK, WORLD_SIZE, MASTER_* set
        ...
        return final_loss

    # notebook cell
    from train_fn import train
    losses = launch(train, args=(3,), nprocs=2)   # [loss_rank0, loss_rank1]

fn must be picklable, as in torch: a top-level function of an importable
module. A function defined in a notebook cell or at the REPL lives in
__main__, which a "spawn" child cannot import; put it in a .py file beside
the notebook (%%writefile train_fn.py, then import it), or pass
start_method="fork" (Linux; only while the parent has no process group,
threads or CUDA context yet). Scripts need the usual
`if __name__ == "__main__":` guard around the call.

If a process fails, the others get SIGTERM, grace_period seconds (default
30 or $DTRAIN_STOP_GRACE), then SIGKILL, and the parent raises
ProcessRaisedException (with the child's traceback text and rank) or
ProcessExitedException (exit code or signal). Interrupting the parent
(Ctrl-C, the notebook's stop button) stops the children the same way.
"""
import contextlib
import ctypes
import multiprocessing
import multiprocessing.connection
import os
import pickle
import shutil
import signal
import sys
import tempfile
import time
import traceback

from .config import free_port

__all__ = ["spawn", "start_processes", "launch", "ProcessContext",
           "ProcessException", "ProcessRaisedException",
           "ProcessExitedException"]


class ProcessException(Exception):
    def __init__(self, msg, error_index, pid):
        super().__init__(msg)
        self.msg, self.error_index, self.pid = msg, error_index, pid

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid)


class ProcessRaisedException(ProcessException):
    """fn raised in process error_index; str() holds its traceback."""


class ProcessExitedException(ProcessException):
    """Process error_index exited non-zero or was killed by a signal."""

    def __init__(self, msg, error_index, error_pid, exit_code,
                 signal_name=None):
        super().__init__(msg, error_index, error_pid)
        self.exit_code, self.signal_name = exit_code, signal_name

    def __reduce__(self):
        return type(self), (self.msg, self.error_index, self.pid,
                            self.exit_code, self.signal_name)


# ---- child side ---------------------------------------------------------
def _die_with_parent():
    """PR_SET_PDEATHSIG: SIGINT when the parent dies, so no child is left
    behind by a parent killed with SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)


def _write(path, record):
    with open(path, "wb") as fh:
        pickle.dump(record, fh)


def _wrap(fn, i, args, result_path, env, want_result):
    _die_with_parent()
    os.environ.update(_rank_env(env, i))
    try:
        value = fn(i, *args)
    except KeyboardInterrupt:
        return  # the parent is stopping us
    except Exception:
        _write(result_path, ("error", traceback.format_exc()))
        sys.exit(1)
    if want_result:
        try:
            _write(result_path, ("ok", value))
        except Exception:
            _write(result_path, ("error", "the return value of fn could not "
                                 "be pickled:\n" + traceback.format_exc()))
            sys.exit(1)


def _rank_env(env, i):
    if not env:
        return {}
    return dict(env, RANK=str(i), LOCAL_RANK=str(i), ROLE_RANK=str(i))


# ---- parent side --------------------------------------------------------
def _grace(grace_period):
    if grace_period is not None:
        return grace_period
    return float(os.environ.get("DTRAIN_STOP_GRACE") or 30)


class ProcessContext:
    """The running processes of one start_processes call."""

    def __init__(self, processes, result_dir):
        self.processes = processes
        self.sentinels = {p.sentinel: i for i, p in enumerate(processes)}
        self._dir = result_dir
        self.results = [None] * len(processes)

    def pids(self):
        return [p.pid for p in self.processes]

    def _path(self, i):
        return os.path.join(self._dir, f"{i}.pickle")

    def _read(self, i):
        try:
            with open(self._path(i), "rb") as fh:
                return pickle.load(fh)
        except (OSError, EOFError, pickle.UnpicklingError):
            return None

    def terminate(self, grace_period=None):
        """SIGTERM to every live process, grace_period s, then SIGKILL."""
        for p in self.processes:
            if p.is_alive():
                p.terminate()
        end = time.monotonic() + _grace(grace_period)
        for p in self.processes:
            p.join(max(0.0, end - time.monotonic()))
        for p in self.processes:
            if p.is_alive():
                p.kill()
            p.join()
        shutil.rmtree(self._dir, ignore_errors=True)

    def join(self, timeout=None, grace_period=None):
        """Wait up to timeout s for a process to exit. True when all exited
        successfully, False while some still run; raises (after stopping the
        others) when one failed."""
        if not self.sentinels:
            return True
        ready = multiprocessing.connection.wait(list(self.sentinels),
                                                timeout=timeout)
        failed = None
        for sentinel in ready:
            i = self.sentinels.pop(sentinel)
            self.processes[i].join()
            if self.processes[i].exitcode != 0:
                failed = i
                break
            record = self._read(i)
            if record is not None:
                self.results[i] = record[1]
        if failed is None:
            if not self.sentinels:
                shutil.rmtree(self._dir, ignore_errors=True)
            return not self.sentinels
        record = self._read(failed)
        self.terminate(grace_period)
        raise self._error(failed, record)

    def _error(self, i, record):
        p = self.processes[i]
        if record is not None and record[0] == "error":
            return ProcessRaisedException(
                f"\n\n-- Process {i} terminated with the following error:\n"
                + record[1], i, p.pid)
        code = p.exitcode
        if code < 0:
            name = signal.Signals(-code).name
            return ProcessExitedException(
                f"process {i} terminated with signal {name}", i, p.pid,
                code, name)
        return ProcessExitedException(
            f"process {i} terminated with exit code {code}", i, p.pid, code)


def _check_fn(fn, start_method):
    """Fail in the parent, clearly, where the child would fail obscurely."""
    if start_method == "fork":
        return
    main = sys.modules.get("__main__")
    if (getattr(fn, "__module__", None) == "__main__"
            and not getattr(main, "__file__", None)):
        raise ValueError(
            f"spawn: {getattr(fn, '__qualname__', fn)!r} is defined in the "
            f"__main__ of an interactive session (notebook or REPL), which a "
            f"'{start_method}' child cannot import. Put it in a .py file and "
            f"import it (%%writefile train_fn.py, then `from train_fn import "
            f"train`), or pass start_method='fork'")
    try:
        pickle.dumps(fn)
    except Exception as e:
        raise TypeError(f"spawn: fn must be picklable (a top-level function "
                        f"of an importable module), got {fn!r}: {e}") from e


def _start(fn, args, nprocs, daemon, start_method, env, want_result):
    _check_fn(fn, start_method)
    ctx = multiprocessing.get_context(start_method)
    result_dir = tempfile.mkdtemp(prefix="dtrain-spawn-")
    processes = []
    try:
        for i in range(nprocs):
            path = os.path.join(result_dir, f"{i}.pickle")
            p = ctx.Process(target=_wrap, daemon=daemon,
                            args=(fn, i, args, path, env, want_result))
            with _patched_environ(_rank_env(env, i)):
                p.start()  # the child's environment is ours at start()
            processes.append(p)
    except BaseException:
        ProcessContext(processes, result_dir).terminate(0)
        raise
    return ProcessContext(processes, result_dir)


@contextlib.contextmanager
def _patched_environ(extra):
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _join_all(context):
    try:
        while not context.join():
            pass
    except KeyboardInterrupt:
        context.terminate()
        raise


def start_processes(fn, args=(), nprocs=1, join=True, daemon=False,
                    start_method="spawn"):
    """fn(i, *args) in nprocs processes; None, or the ProcessContext when
    join=False (call .join(timeout) until it returns True)."""
    context = _start(fn, args, nprocs, daemon, start_method, None, False)
    if not join:
        return context
    _join_all(context)


def spawn(fn, args=(), nprocs=1, join=True, daemon=False,
          start_method="spawn"):
    """torch.multiprocessing.spawn: start_processes with a start method."""
    return start_processes(fn, args, nprocs, join, daemon, start_method)


def launch(fn, args=(), nprocs=1, *, master_addr="127.0.0.1",
           master_port=None, join=True, daemon=False, start_method="spawn",
           env=None):
    """spawn() that also sets, in process i, RANK=LOCAL_RANK=i,
    WORLD_SIZE=LOCAL_WORLD_SIZE=nprocs, MASTER_ADDR, MASTER_PORT (a free
    port unless given) and OMP_NUM_THREADS=1 when unset, plus `env`, so fn
    can call init_process_group(backend) with env://. Returns the list of
    fn's return values by rank (they must pickle), or the ProcessContext
    when join=False (its .results fill in as processes finish)."""
    base = {"MASTER_ADDR": master_addr,
            "MASTER_PORT": str(master_port or free_port(master_addr)),
            "WORLD_SIZE": str(nprocs), "LOCAL_WORLD_SIZE": str(nprocs),
            "GROUP_RANK": "0", "GROUP_WORLD_SIZE": "1",
            "ROLE_NAME": "default", "ROLE_WORLD_SIZE": str(nprocs)}
    if nprocs > 1 and "OMP_NUM_THREADS" not in os.environ:
        base["OMP_NUM_THREADS"] = "1"
    base.update({k: str(v) for k, v in (env or {}).items()})
    context = _start(fn, args, nprocs, daemon, start_method, base, True)
    if not join:
        return context
    _join_all(context)
    return context.results
