"""no_grad / enable_grad / set_grad_enabled: context managers and
decorators over the core's thread-local grad mode."""
import functools

from .. import _C


class _GradModeContext:
    """Base: a context manager that is also a decorator."""

    _mode = None

    def __enter__(self):
        self._prev = _C.is_grad_enabled()
        _C._set_grad_enabled(self._mode)
        return self

    def __exit__(self, *exc):
        _C._set_grad_enabled(self._prev)
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradModeContext):
    """Ops inside record no graph (inference, optimizer steps)."""
    _mode = False


class enable_grad(_GradModeContext):
    """Turns recording back on inside a no_grad region."""
    _mode = True


class set_grad_enabled(_GradModeContext):
    """set_grad_enabled(mode): as a call it sets the mode at once, as a
    context manager it restores the previous mode on exit."""

    def __init__(self, mode):
        self._prev = _C.is_grad_enabled()
        self._mode = bool(mode)
        _C._set_grad_enabled(self._mode)

    def __enter__(self):
        return self

    def __call__(self, fn):
        mode = self._mode
        _C._set_grad_enabled(self._prev)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper
