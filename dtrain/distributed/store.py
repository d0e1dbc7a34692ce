"""Key-value stores for rendezvous, shaped like torch.distributed's.

TCPStore is a client of a TCP server written in C (csrc/dist/); the master
runs that server on a background thread of its own process. The wire
protocol is documented in docs/store_protocol.md. PrefixStore namespaces
any store; HashStore is an in-process store for tests and single-process
use.

Errors: DistStoreError (a RuntimeError, as in torch) when the store fails
or refuses, DistNetworkError when it cannot be reached, and
DistStoreTimeoutError, a subclass of both DistStoreError and TimeoutError,
when a call times out ("wait timeout after 300ms, keys: a, b").

Timeouts are datetime.timedelta or a number of seconds; zero means no
timeout (as in torch).
"""
import threading
import time
from datetime import timedelta

from .. import _C
from .._C import (DistError, DistNetworkError, DistStoreError,
                  DistStoreTimeoutError)

__all__ = ["Store", "TCPStore", "PrefixStore", "HashStore", "DistError",
           "DistStoreError", "DistNetworkError", "DistStoreTimeoutError"]

# torch's default for a directly constructed store
_DEFAULT_TIMEOUT = timedelta(seconds=300)
# Every process that joins with a world_size adds 1 here (torch's key).
_INIT_KEY = "init/"


def _seconds(timeout, op):
    if isinstance(timeout, timedelta):
        seconds = timeout.total_seconds()
    elif isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        seconds = float(timeout)
    else:
        raise TypeError(f"{op}: timeout must be a datetime.timedelta or a "
                        f"number of seconds, got {type(timeout).__name__}")
    if not seconds >= 0:
        raise ValueError(f"{op}: timeout must not be negative, got {timeout}")
    return seconds


def _keys(keys, op):
    if isinstance(keys, (str, bytes)):
        raise TypeError(f"{op}: keys must be a list of str, got "
                        f"{type(keys).__name__}")
    return list(keys)


def _as_bytes(value, op):
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{op}: value must be str or bytes, got "
                    f"{type(value).__name__}")


class Store:
    """The interface every store implements (torch.distributed.Store)."""

    def __init__(self, timeout=_DEFAULT_TIMEOUT):
        self._timeout = timedelta(seconds=_seconds(timeout, "Store"))

    def set(self, key, value):
        raise NotImplementedError

    def get(self, key):
        raise NotImplementedError

    def add(self, key, amount):
        raise NotImplementedError

    def compare_set(self, key, expected_value, desired_value):
        raise NotImplementedError

    def wait(self, keys, timeout=None):
        raise NotImplementedError

    def check(self, keys):
        raise NotImplementedError

    def delete_key(self, key):
        raise NotImplementedError

    def num_keys(self):
        raise NotImplementedError

    @property
    def timeout(self):
        return self._timeout

    def set_timeout(self, timeout):
        self._timeout = timedelta(seconds=_seconds(timeout, "set_timeout"))


class TCPStore(Store):
    """TCPStore(host_name, port, world_size=None, is_master=False,
    timeout=timedelta(seconds=300), wait_for_workers=True)

    The master (is_master=True) starts the server on `port` (0 picks a
    free one; see .port), listening on every interface as torch does, and
    connects to it like everyone else. Clients retry connecting until the
    timeout, so they may start before the master.

    With world_size and wait_for_workers, every process adds 1 to the key
    "init/" when it joins, and the master's constructor returns only once
    world_size processes have joined (torch's scheme: the master checks the
    counter every 10 ms, for at most the timeout).
    """

    def __init__(self, host_name, port, world_size=None, is_master=False,
                 timeout=_DEFAULT_TIMEOUT, wait_for_workers=True):
        seconds = _seconds(timeout, "TCPStore")
        super().__init__(timedelta(seconds=seconds))
        if world_size is not None and world_size < 1:
            raise ValueError(f"TCPStore: world_size must be positive, got "
                             f"{world_size}")
        if not 0 <= port <= 65535 or (port == 0 and not is_master):
            raise ValueError(f"TCPStore: port must be in [1, 65535] (or 0 "
                             f"for the master), got {port}")
        self._host = host_name
        self._server = _C._StoreServer(None, port) if is_master else None
        self._port = self._server.port if is_master else port
        try:
            self._client = _C._StoreClient(host_name, self._port, seconds)
            if world_size is not None and wait_for_workers:
                self._wait_for_workers(world_size, seconds)
        except BaseException:
            self.close()
            raise

    def _wait_for_workers(self, world_size, seconds):
        self._client.add(_INIT_KEY, 1)
        if self._server is None:
            return
        start = time.monotonic()
        while True:
            joined = self._client.add(_INIT_KEY, 0)
            if joined >= world_size:
                return
            if seconds and time.monotonic() - start > seconds:
                raise DistStoreTimeoutError(
                    f"Timed out after {seconds:g} seconds waiting for "
                    f"clients. {joined}/{world_size} clients joined.")
            time.sleep(0.01)

    @property
    def host(self):
        return self._host

    @property
    def port(self):
        return self._port

    def set(self, key, value):
        self._client.set(key, _as_bytes(value, "TCPStore.set()"))

    def get(self, key):
        return self._client.get(key)

    def add(self, key, amount):
        return self._client.add(key, amount)

    def compare_set(self, key, expected_value, desired_value):
        op = "TCPStore.compare_set()"
        return self._client.compare_set(key, _as_bytes(expected_value, op),
                                        _as_bytes(desired_value, op))

    def wait(self, keys, timeout=None):
        keys = _keys(keys, "TCPStore.wait()")
        if timeout is None:
            self._client.wait(keys)
        else:
            self._client.wait(keys, _seconds(timeout, "TCPStore.wait()"))

    def check(self, keys):
        return self._client.check(_keys(keys, "TCPStore.check()"))

    def delete_key(self, key):
        return self._client.delete_key(key)

    def num_keys(self):
        return self._client.num_keys()

    def set_timeout(self, timeout):
        super().set_timeout(timeout)
        self._client.set_timeout(self._timeout.total_seconds())

    def close(self):
        """Closes the connection and, on the master, stops the server."""
        client = getattr(self, "_client", None)
        if client is not None:
            client.close()
        if self._server is not None:
            self._server.close()
            self._server = None

    def __repr__(self):
        role = "master" if self._server is not None else "client"
        return f"TCPStore({self._host}:{self._port}, {role})"


class PrefixStore(Store):
    """PrefixStore(prefix, store): every key becomes "<prefix>/<key>"."""

    def __init__(self, prefix, store):
        if not isinstance(store, Store):
            raise TypeError(f"PrefixStore: store must be a Store, got "
                            f"{type(store).__name__}")
        self._prefix = prefix
        self._store = store

    def _k(self, key):
        return f"{self._prefix}/{key}"

    @property
    def underlying_store(self):
        return self._store

    @property
    def timeout(self):
        return self._store.timeout

    def set_timeout(self, timeout):
        self._store.set_timeout(timeout)

    def set(self, key, value):
        self._store.set(self._k(key), value)

    def get(self, key):
        return self._store.get(self._k(key))

    def add(self, key, amount):
        return self._store.add(self._k(key), amount)

    def compare_set(self, key, expected_value, desired_value):
        return self._store.compare_set(self._k(key), expected_value,
                                       desired_value)

    def wait(self, keys, timeout=None):
        keys = [self._k(k) for k in _keys(keys, "PrefixStore.wait()")]
        self._store.wait(keys, timeout)

    def check(self, keys):
        return self._store.check(
            [self._k(k) for k in _keys(keys, "PrefixStore.check()")])

    def delete_key(self, key):
        return self._store.delete_key(self._k(key))

    def num_keys(self):
        return self._store.num_keys()    # torch counts the whole store too


class HashStore(Store):
    """An in-process store (a dict and a condition variable)."""

    def __init__(self, timeout=_DEFAULT_TIMEOUT):
        super().__init__(timeout)
        self._data = {}
        self._cond = threading.Condition()

    def _wait_locked(self, keys, seconds):
        deadline = time.monotonic() + seconds if seconds else None
        while not all(k in self._data for k in keys):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise DistStoreTimeoutError(
                    f"wait timeout after {round(seconds * 1000)}ms, keys: "
                    f"{', '.join(keys)}")
            self._cond.wait(0.1 if left is None else min(left, 0.1))

    def set(self, key, value):
        with self._cond:
            self._data[key] = _as_bytes(value, "HashStore.set()")
            self._cond.notify_all()

    def get(self, key):
        with self._cond:
            self._wait_locked([key], self._timeout.total_seconds())
            return self._data[key]

    def add(self, key, amount):
        with self._cond:
            value = int(self._data.get(key, b"0")) + amount
            self._data[key] = str(value).encode()
            self._cond.notify_all()
            return value

    def compare_set(self, key, expected_value, desired_value):
        op = "HashStore.compare_set()"
        expected = _as_bytes(expected_value, op)
        desired = _as_bytes(desired_value, op)
        with self._cond:
            if key not in self._data:
                if expected:
                    return expected
                self._data[key] = desired
                self._cond.notify_all()
            elif self._data[key] == expected:
                self._data[key] = desired
            return self._data[key]

    def wait(self, keys, timeout=None):
        keys = _keys(keys, "HashStore.wait()")
        seconds = (self._timeout.total_seconds() if timeout is None
                   else _seconds(timeout, "HashStore.wait()"))
        with self._cond:
            self._wait_locked(keys, seconds)

    def check(self, keys):
        with self._cond:
            return all(k in self._data
                       for k in _keys(keys, "HashStore.check()"))

    def delete_key(self, key):
        with self._cond:
            return self._data.pop(key, None) is not None

    def num_keys(self):
        with self._cond:
            return len(self._data)
