"""Work (what async_op=True returns) and Future (torch.futures.Future).

A Work wraps a _C._Work: the operation runs on the process group's comm
threads, and waiting releases the GIL. Outputs that the Python layer
packed into a flat buffer (all_gather with a list, ...) are unpacked by
the thread that first sees the work finished (wait() or is_completed()).
"""
import threading
from datetime import timedelta

__all__ = ["Work", "Future"]


class Work:
    """A pending operation (async_op=True): wait(), is_completed(),
    is_success(), exception(), get_future(). Outputs are valid after
    wait() (or once is_completed() returned True)."""

    def __init__(self, c_work, result, post=None, group=None):
        self._work = c_work
        self._result = result
        self._post = post                 # copies outputs after success
        self._group = group
        self._lock = threading.Lock()

    def _finish(self):
        with self._lock:
            post, self._post = self._post, None
        if post is not None:
            post()

    def wait(self, timeout=None):
        ms = 0
        if timeout is not None:
            seconds = (timeout.total_seconds()
                       if isinstance(timeout, timedelta) else timeout)
            ms = max(1, int(seconds * 1000))
        self._work.wait(ms)
        self._finish()
        return True

    def is_completed(self):
        done = self._work.is_completed()
        if done and self._work.is_success():
            self._finish()
        return done

    def is_success(self):
        return self._work.is_success()

    def exception(self):
        return self._work.exception()

    def source_rank(self):
        """The global rank a recv() from any source got its message from."""
        r = self._work.source_rank()
        return self._group._ranks[r] if self._group and r >= 0 else r

    def result(self):
        return self._result

    def get_future(self):
        return Future(_work=self)

    def __repr__(self):
        return repr(self._work)


class Future:
    """torch.futures.Future, enough for collectives and DDP hooks.

    A future made by Work.get_future() completes with the work's outputs
    (a list of tensors). Callbacks (then, add_done_callback) run in the
    thread that completes the future: the one calling set_result, or the
    one whose wait()/done()/value() first sees the work finished (the comm
    threads never run Python)."""

    def __init__(self, _work=None, _parent=None):
        self._work = _work
        self._parent = _parent
        self._cond = threading.Condition()
        self._done = False
        self._value = None
        self._exc = None
        self._callbacks = []

    def _poll(self, block):
        if self._done:
            return
        if self._work is not None:
            if not block and not self._work.is_completed():
                return
            try:
                self._work.wait()
            except BaseException as e:   # noqa: B036 (resolve, re-raise)
                self._complete(None, e)
            else:
                self._complete(self._work.result(), None)
        elif self._parent is not None:
            self._parent._poll(block)

    def done(self):
        self._poll(block=False)
        return self._done

    def wait(self):
        self._poll(block=True)
        with self._cond:
            while not self._done:
                self._cond.wait(0.1)
        if self._exc is not None:
            raise self._exc
        return self._value

    def value(self):
        if not self.done():
            raise RuntimeError("Future.value(): the future is not "
                               "completed yet; call wait() first")
        if self._exc is not None:
            raise self._exc
        return self._value

    def set_result(self, result):
        self._complete(result, None)

    def set_exception(self, result):
        self._complete(None, result)

    def _complete(self, value, exc):
        with self._cond:
            if self._done:
                if self._work is None and self._parent is None:
                    raise RuntimeError("Future: already completed")
                return
            self._value, self._exc, self._done = value, exc, True
            callbacks, self._callbacks = self._callbacks, []
            self._cond.notify_all()
        for cb in callbacks:
            cb(self)

    def add_done_callback(self, callback):
        with self._cond:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    def then(self, callback):
        """A new future holding callback(self)'s result (or exception)."""
        child = Future(_parent=self)

        def run(parent):
            try:
                child._complete(callback(parent), None)
            except Exception as e:       # the child carries the error
                child._complete(None, e)

        self.add_done_callback(run)
        return child
