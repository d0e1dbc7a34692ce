"""Process groups: torch.distributed's init_process_group, new_group and
friends, over the Gloo backend in C (csrc/dist/pg_gloo.c).

The collectives themselves are in _collectives.py and _objects.py, Work
and Future in _work.py; this module holds the state (the default group
and every subgroup) and the rendezvous for init_method env://, tcp:// and
file://.

Ranks: collectives take global ranks (src=, dst=), as in torch; each group
maps them to its own. Every rank must create groups (new_group) and issue
collectives in the same order. Debugging: DTRAIN_DISTRIBUTED_DEBUG=DETAIL
(or TORCH_DISTRIBUTED_DEBUG=DETAIL) makes every collective first compare
its signature (name, sequence number, dtype, size, op, root) across ranks
and raise "Detected mismatch between collectives on ranks" on all of them.
"""
import atexit
import enum
import os
import socket
import time
import warnings
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from .. import _C
from .._C import DistBackendError, DistError, DistNetworkError
from .file_store import FileStore
from ._work import Future, Work
from .store import PrefixStore, Store, TCPStore

__all__ = ["Backend", "ReduceOp", "ProcessGroup", "GroupMember", "group",
           "Work", "Future", "DistBackendError", "init_process_group",
           "destroy_process_group", "is_initialized", "is_available",
           "is_gloo_available", "is_nccl_available", "is_mpi_available",
           "is_torchelastic_launched", "get_rank", "get_world_size",
           "get_backend", "new_group", "get_process_group_ranks",
           "get_global_rank", "get_group_rank", "default_pg_timeout"]

default_pg_timeout = timedelta(minutes=30)


class ReduceOp(enum.IntEnum):
    """torch.distributed.ReduceOp (values match csrc/dist/pg.h)."""
    SUM = 0
    AVG = 1
    PRODUCT = 2
    MIN = 3
    MAX = 4
    BAND = 5
    BOR = 6
    BXOR = 7


class Backend(str):
    """Backend("gloo") -> "gloo"; only Gloo (CPU) is built in so far."""
    GLOO = "gloo"
    NCCL = "nccl"
    UNDEFINED = "undefined"

    def __new__(cls, name):
        if not isinstance(name, str):
            raise ValueError(f"Backend name must be a string, but got: "
                             f"{name!r}")
        value = name.lower()
        if value.startswith("cpu:"):           # "cpu:gloo,cuda:nccl"
            value = value.split(",")[0][4:]
        return super().__new__(cls, value)


class GroupMember:
    """GroupMember.WORLD is the default group; NON_GROUP_MEMBER is what
    new_group returns on ranks that are not in the group (as in torch)."""
    NON_GROUP_MEMBER = -100

    class _World:
        def __get__(self, obj, cls):
            return _world.default_pg

    WORLD = _World()


class group:                               # noqa: N801 (torch's name)
    WORLD = GroupMember._World()


class ProcessGroup:
    """A group of ranks running collectives together (one Gloo context
    and its comm threads)."""

    def __init__(self, c_pg, ranks, name, store):
        self._c = c_pg
        self._ranks = list(ranks)                 # global, sorted
        self._group_rank = {g: i for i, g in enumerate(self._ranks)}
        self._name = name
        self._store = store

    def rank(self):
        return self._c.rank

    def size(self):
        return self._c.size

    def name(self):
        return self._name

    def _get_backend_name(self):
        return Backend.GLOO

    def _group(self, global_rank, what):
        try:
            return self._group_rank[global_rank]
        except (KeyError, TypeError):
            raise ValueError(f"{what}: rank {global_rank} is not part of "
                             f"the process group (its ranks are "
                             f"{self._ranks})") from None

    def abort(self):
        self._c.abort("aborted by ProcessGroup.abort()")

    def __repr__(self):
        return (f"<ProcessGroup {self._name!r}: gloo, rank {self.rank()} of "
                f"{self.size()}, global ranks {self._ranks}>")


class _WorldState:
    def __init__(self):
        self.default_pg = None
        self.store = None                 # the default group's store
        self.groups = []                  # every live group, default first
        self.group_count = 0
        self.timeout = default_pg_timeout
        self.own_store = False            # made by the rendezvous: close it
        self.generation = 0               # this init's number on the store
        self.rank = self.world_size = 0


_world = _WorldState()


# ---------------------------------------------------------------------------
# availability and state


def is_available():
    return True


def is_gloo_available():
    return True


def is_nccl_available():
    return False


def is_mpi_available():
    return False


def is_torchelastic_launched():
    return os.environ.get("TORCHELASTIC_RUN_ID") is not None


def is_initialized():
    return _world.default_pg is not None


def _default_pg(what="this call"):
    if _world.default_pg is None:
        raise ValueError("Default process group has not been initialized, "
                         "please make sure to call init_process_group.")
    return _world.default_pg


def _resolve(group, what):
    """The ProcessGroup for `group`, or None (with torch's warning) on a
    rank that is not a member."""
    if group is None or group is GroupMember.WORLD:
        return _default_pg(what)
    if group == GroupMember.NON_GROUP_MEMBER:
        warnings.warn(f"Running {what} on global rank {get_rank()} which "
                      f"does not belong to the given group.", stacklevel=3)
        return None
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"{what}: group must be a ProcessGroup, got "
                        f"{type(group).__name__}")
    if group not in _world.groups:
        raise ValueError(f"{what}: the process group has been destroyed")
    return group


def get_rank(group=None):
    if group == GroupMember.NON_GROUP_MEMBER:
        return -1
    return _resolve(group, "get_rank").rank()


def get_world_size(group=None):
    if group == GroupMember.NON_GROUP_MEMBER:
        return -1
    return _resolve(group, "get_world_size").size()


def get_backend(group=None):
    if group == GroupMember.NON_GROUP_MEMBER:
        raise ValueError("Invalid process group specified")
    return _resolve(group, "get_backend")._get_backend_name()


def get_process_group_ranks(group):
    return list(_resolve(group, "get_process_group_ranks")._ranks)


def get_global_rank(group, group_rank):
    pg = _resolve(group, "get_global_rank")
    if not 0 <= group_rank < pg.size():
        raise ValueError(f"Group rank {group_rank} is not part of group "
                         f"{pg.name()!r}")
    return pg._ranks[group_rank]


def get_group_rank(group, global_rank):
    return _resolve(group, "get_group_rank")._group(global_rank,
                                                    "get_group_rank")


# ---------------------------------------------------------------------------
# rendezvous


def _url_error(scheme, msg):
    return ValueError(f"Error initializing dtrain.distributed using "
                      f"{scheme}:// rendezvous: {msg}")


def _query_int(query, name, given, scheme, what):
    if name in query:
        return int(query[name][-1])
    if given is not None and given >= 0:
        return given
    raise _url_error(scheme, f"{what} parameter missing")


def _env(name, scheme="env"):
    value = os.environ.get(name)
    if value is None:
        raise _url_error(scheme, f"environment variable {name} expected, "
                         f"but not set")
    return value


def _rendezvous(url, rank, world_size, timeout):
    """(store, rank, world_size) for init_method `url`."""
    parsed = urlparse(url)
    query = parse_qs(parsed.query)
    if parsed.scheme == "env":
        rank = int(query["rank"][-1]) if "rank" in query else (
            rank if rank >= 0 else int(_env("RANK")))
        world_size = int(query["world_size"][-1]) if "world_size" in query \
            else (world_size if world_size >= 0 else int(_env("WORLD_SIZE")))
        host, port = _env("MASTER_ADDR"), int(_env("MASTER_PORT"))
        return (_tcp_store(host, port, rank, world_size, timeout), rank,
                world_size)
    if parsed.scheme == "tcp":
        if not parsed.hostname:
            raise _url_error("tcp", "hostname missing")
        if parsed.port is None:
            raise _url_error("tcp", "port number missing")
        rank = _query_int(query, "rank", rank, "tcp", "rank")
        world_size = _query_int(query, "world_size", world_size, "tcp",
                                "world size")
        return (_tcp_store(parsed.hostname, parsed.port, rank, world_size,
                           timeout), rank, world_size)
    if parsed.scheme == "file":
        path = parsed.path
        if not path:
            raise _url_error("file", "path missing")
        rank = _query_int(query, "rank", rank, "file", "rank")
        world_size = _query_int(query, "world_size", world_size, "file",
                                "world size")
        return FileStore(path, world_size, timeout), rank, world_size
    raise RuntimeError(f"No rendezvous handler for {parsed.scheme}://")


def _tcp_store(host, port, rank, world_size, timeout):
    # rank 0 hosts the store, as with torch's env:// (the launcher does not)
    if rank == 0:
        return TCPStore(host, port, world_size, is_master=True,
                        timeout=timeout)
    # A client may reach the previous init's server as it shuts down (it
    # closes its connections just before its listening socket): retry.
    deadline = time.monotonic() + timeout.total_seconds()
    while True:
        try:
            return TCPStore(host, port, world_size, timeout=timeout)
        except DistNetworkError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# ---------------------------------------------------------------------------
# creating and destroying groups


def _debug_detail():
    for var in ("DTRAIN_DISTRIBUTED_DEBUG", "TORCH_DISTRIBUTED_DEBUG"):
        if os.environ.get(var, "").upper() == "DETAIL":
            return True
    return False


def _c_store(store):
    """What the C group rendezvouses through: ("tcp", host, port), a
    _C._FileStore, or the Python store itself; plus the key prefix that
    PrefixStores in front of a C store add."""
    prefix, inner = "", store
    while isinstance(inner, PrefixStore):
        prefix = prefix + inner._prefix + "/"
        inner = inner.underlying_store
    if isinstance(inner, TCPStore):
        return ("tcp", inner.host, inner.port), prefix
    if isinstance(inner, FileStore):
        return inner._c, prefix
    return store, ""


def _bind_host(store):
    """The address Gloo listens on: loopback when the store is local, else
    the local address this host uses to reach the store's host (so each
    node picks the interface that faces the master, with no hostname
    lookups). DTRAIN_GLOO_HOST (a hostname or IPv4 address) overrides it,
    and GLOO_SOCKET_IFNAME (an interface) both."""
    override = os.environ.get("DTRAIN_GLOO_HOST")
    if override:
        return override
    spec, _ = _c_store(store)
    if isinstance(spec, tuple):
        host, port = spec[1], spec[2] if len(spec) > 2 else 0
        if host in ("localhost", "::1") or host.startswith("127."):
            return "127.0.0.1"
        return _route_source(host, port) or socket.gethostname()
    return "127.0.0.1"


def _route_source(host, port):
    """The local IPv4 address the kernel would send from toward host; a
    UDP connect() only consults the routing table, nothing is sent."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((socket.gethostbyname(host), port or 9))
            return s.getsockname()[0]
    except OSError:
        return None


def _seconds(timeout):
    if timeout is None:
        return default_pg_timeout.total_seconds()
    if isinstance(timeout, timedelta):
        return timeout.total_seconds()
    raise TypeError(f"Expected timeout argument to be of type "
                    f"datetime.timedelta, got {type(timeout).__name__}")


def _make_group(store, rank, ranks, timeout, name):
    spec, prefix = _c_store(store)
    iface = os.environ.get("GLOO_SOCKET_IFNAME", "").split(",")[0]
    keys = f"{prefix}gen{_world.generation}/{name}/"
    c_pg = _C._ProcessGroupGloo(spec, rank, len(ranks), _seconds(timeout),
                                keys, group_name=name,
                                global_ranks=ranks, debug=_debug_detail(),
                                hostname=_bind_host(store), iface=iface)
    pg = ProcessGroup(c_pg, ranks, name, store)
    _world.groups.append(pg)
    return pg


def _check_backend(backend):
    b = Backend(backend if backend is not None else "gloo")
    if b == Backend.NCCL:
        raise RuntimeError("Distributed package doesn't have NCCL built in")
    if b != Backend.GLOO:
        raise ValueError(f"Invalid backend: {backend!r} (dtrain supports "
                         f"'gloo')")
    return b


def init_process_group(backend=None, init_method=None, timeout=None,
                       world_size=-1, rank=-1, store=None, group_name="",
                       pg_options=None, device_id=None):
    """Joins the default process group (torch's signature). init_method:
    "env://" (default; RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT),
    "tcp://host:port" or "file:///path" (with rank and world_size), or a
    ready store= with rank and world_size. Rank 0 hosts the TCP store."""
    if _world.default_pg is not None:
        raise ValueError("trying to initialize the default process group "
                         "twice!")
    _check_backend(backend)
    _seconds(timeout)
    timeout = timeout if timeout is not None else default_pg_timeout
    if store is not None:
        if init_method is not None:
            raise ValueError("Cannot specify both init_method and store.")
        if world_size <= 0:
            raise ValueError("world_size must be positive if using store")
        if rank < 0:
            raise ValueError("rank must be non-negative if using store")
        if not isinstance(store, Store):
            raise TypeError(f"store must be a dtrain.distributed.Store, got "
                            f"{type(store).__name__}")
    owned = store is None
    if owned:
        store, rank, world_size = _rendezvous(init_method or "env://", rank,
                                              world_size, timeout)
    if not 0 <= rank < world_size:
        raise ValueError(f"Invalid rank {rank} for world size {world_size}")
    name = group_name or "default_pg"
    _world.group_count = 0
    try:
        # Every init on a store gets fresh keys: a store reused after
        # destroy_process_group (a FileStore path, store=) must not hand
        # out the last generation's addresses.
        _world.generation = (store.add(_GENERATION_KEY, 1) - 1) // world_size
        pg = _make_group(store, rank, list(range(world_size)), timeout, name)
    except BaseException:
        if owned:
            _close_quietly(store)
        raise
    _world.default_pg, _world.store, _world.timeout = pg, store, timeout
    _world.own_store, _world.rank = owned, rank
    _world.world_size = world_size


def _close_quietly(store):
    try:
        store.close()
    except Exception:
        pass


_GENERATION_KEY = "dtrain/generation"
_LEFT_KEY = "dtrain/left"
_LEAVE_SECONDS = 5.0


def _leave(store, rank, world, generation):
    """Before closing a store the rendezvous made, wait (at most 5 s) for
    every rank to leave. TCP: rank 0 closes the server only then, and the
    others return only once it is gone (their parked wait sees the
    connection close), so an init_process_group right after this on the
    same port cannot meet the old server. FileStore: nobody reopens the
    file while a slower rank still has it open from this generation."""
    try:
        store.add(_LEFT_KEY, 1)
        everyone = world * (generation + 1)
        if isinstance(store, TCPStore) and rank != 0:
            store.wait(["dtrain/never"], timedelta(seconds=_LEAVE_SECONDS))
            return
        deadline = time.monotonic() + _LEAVE_SECONDS
        while store.add(_LEFT_KEY, 0) < everyone and \
                time.monotonic() < deadline:
            time.sleep(0.002)
    except DistError:
        pass      # the server is gone (what the wait above waits for)


def new_group(ranks=None, timeout=None, backend=None, pg_options=None,
              use_local_synchronization=False, group_desc=None):
    """A group of some ranks; every rank must call it, in the same order.
    Ranks not in it get GroupMember.NON_GROUP_MEMBER."""
    default = _default_pg("new_group")
    _check_backend(backend)
    world = default.size()
    ranks = sorted(set(range(world) if ranks is None else ranks))
    for r in ranks:
        if not 0 <= r < world:
            raise ValueError(f"new_group: rank {r} is out of range for "
                             f"world size {world}")
    _world.group_count += 1
    name = f"group{_world.group_count}"
    me = default.rank()
    if me not in ranks:
        return GroupMember.NON_GROUP_MEMBER
    timeout = timeout if timeout is not None else _world.timeout
    return _make_group(_world.store, ranks.index(me), ranks, timeout, name)


@atexit.register
def _shutdown_at_exit():
    """Stops the comm threads while the interpreter is still whole."""
    for pg in reversed(_world.groups):
        try:
            pg._c.shutdown()
        except Exception:
            pass


def destroy_process_group(group=None):
    """Shuts down `group`, or every group and the default one (None)."""
    if group == GroupMember.NON_GROUP_MEMBER:
        return
    if group is None or group is GroupMember.WORLD:
        _default_pg("destroy_process_group")
        w = _world
        store, owned = w.store, w.own_store
        leave = (store, w.rank, w.world_size, w.generation)
        healthy = w.default_pg._c.failure is None
        for pg in reversed(w.groups):
            pg._c.shutdown()
        _world.__init__()
        if owned:
            if healthy:            # after a failure, peers may be gone
                _leave(*leave)
            _close_quietly(store)
        return
    pg = _resolve(group, "destroy_process_group")
    pg._c.shutdown()
    _world.groups.remove(pg)
