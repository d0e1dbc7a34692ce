"""FileStore: torch.distributed.FileStore, a key-value store in a file that
every process opens (csrc/dist/file_store.c); what init_method="file://"
uses.

The file is an append-only log guarded by flock; a blocking get polls it
every 10 ms. Every process that opens it adds itself to a counter in the
file, and the last one to close it deletes it. As in torch, start each job
with a path that does not exist yet: keys left by an earlier job that
crashed would be read as if they were new.
"""
from .. import _C
from .store import _DEFAULT_TIMEOUT, Store, _as_bytes, _keys, _seconds

__all__ = ["FileStore"]


class FileStore(Store):
    """FileStore(file_name, world_size=-1, timeout=timedelta(seconds=300))

    world_size is accepted for torch compatibility (the file tracks its
    users itself)."""

    def __init__(self, file_name, world_size=-1, timeout=_DEFAULT_TIMEOUT):
        seconds = _seconds(timeout, "FileStore")
        super().__init__(timeout)
        if not isinstance(file_name, str) or not file_name:
            raise ValueError(f"FileStore: file_name must be a non-empty "
                             f"path, got {file_name!r}")
        self._world_size = world_size
        self._c = _C._FileStore(file_name, seconds)

    @property
    def path(self):
        return self._c.path

    def set(self, key, value):
        self._c.set(key, _as_bytes(value, "FileStore.set()"))

    def get(self, key):
        return self._c.get(key)

    def add(self, key, amount):
        return self._c.add(key, amount)

    def compare_set(self, key, expected_value, desired_value):
        op = "FileStore.compare_set()"
        return self._c.compare_set(key, _as_bytes(expected_value, op),
                                   _as_bytes(desired_value, op))

    def wait(self, keys, timeout=None):
        keys = _keys(keys, "FileStore.wait()")
        if timeout is None:
            self._c.wait(keys)
        else:
            self._c.wait(keys, _seconds(timeout, "FileStore.wait()"))

    def check(self, keys):
        return self._c.check(_keys(keys, "FileStore.check()"))

    def delete_key(self, key):
        return self._c.delete_key(key)

    def num_keys(self):
        return self._c.num_keys()

    def set_timeout(self, timeout):
        super().set_timeout(timeout)
        self._c.set_timeout(self._timeout.total_seconds())

    def close(self):
        """Closes the file; the last process to close it deletes it."""
        self._c.close()

    def __repr__(self):
        return f"FileStore({self._c.path!r})"
