"""Tests of the TCP key-value store (csrc/dist/store_*.c) and its Python
surface (dtrain.distributed.TCPStore, PrefixStore, HashStore).

Everything runs on 127.0.0.1 with ports the kernel picks. Multi-process
tests start real interpreters with subprocess and kill them on the way out;
every test has a hard timeout.
"""
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest

from dtrain import _C
from dtrain.distributed import (DistError, DistNetworkError, DistStoreError,
                                DistStoreTimeoutError, HashStore,
                                PrefixStore, Store, TCPStore)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
MAGIC = 0x54537464
VERSION = 1
OP_SET, OP_GET, OP_ADD, OP_CAS, OP_WAIT, OP_CHECK, OP_DEL, OP_NUM = range(
    1, 9)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def master():
    store = TCPStore(HOST, 0, is_master=True, timeout=timedelta(seconds=10))
    yield store
    store.close()


@pytest.fixture(params=["tcp", "hash", "prefix"])
def any_store(request, master):
    """The key-value semantics hold for every store."""
    if request.param == "tcp":
        return master
    if request.param == "hash":
        return HashStore(timeout=timedelta(seconds=10))
    return PrefixStore("job0", master)


def client(master, timeout=10):
    return TCPStore(HOST, master.port, timeout=timedelta(seconds=timeout))


def spawn(code, *args):
    """A Python child running `code` (with sys.argv[1:] = args)."""
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def finish(procs, timeout=30):
    """Waits for every child; kills all of them if one hangs."""
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err
            outs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return outs


def wait_for_line(proc, text, timeout=20):
    """Reads the child's stdout until a line equals `text`."""
    box = []
    reader = threading.Thread(
        target=lambda: box.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert box and box[0].strip() == text, (box, proc.poll())


def until(cond, timeout=5.0):
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition never became true"
        time.sleep(0.01)


def raw_connect(port, hello=True, magic=MAGIC, version=VERSION):
    s = socket.create_connection((HOST, port), timeout=5)
    if hello:
        s.sendall(struct.pack("<II", magic, version))
        assert recv_exact(s, 9) == struct.pack("<IIB", MAGIC, VERSION, 0)
    return s


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def key(k):
    return struct.pack("<I", len(k)) + k


def value(v):
    return struct.pack("<Q", len(v)) + v


# ---------------------------------------------------------------------------
# single process: semantics


def test_set_get(any_store):
    s = any_store
    s.set("a", "hello")
    s.set("b", b"\x00\xffbin")
    s.set("empty", b"")
    s.set("a", "again")            # overwrite
    assert s.get("a") == b"again"
    assert s.get("b") == b"\x00\xffbin"
    assert s.get("empty") == b""
    assert isinstance(s.get("a"), bytes)


def test_add(any_store):
    s = any_store
    assert s.add("n", 5) == 5      # a missing key counts as 0
    assert s.add("n", -7) == -2
    assert s.add("n", 0) == -2
    assert s.get("n") == b"-2"     # stored as decimal text, as torch does
    s.set("m", "40")
    assert s.add("m", 2) == 42


def test_add_errors(master):
    master.set("text", "abc")
    with pytest.raises(DistStoreError, match="'text' is not an integer"):
        master.add("text", 1)
    master.set("big", str(2**63 - 1))
    with pytest.raises(DistStoreError, match="overflows"):
        master.add("big", 1)
    assert master.add("ok", 1) == 1     # the connection survived


# (existing value or None, expected, desired) -> (reply, value afterwards)
COMPARE_SET = [
    (None, b"", b"new", b"new", b"new"),       # missing + empty: set
    (None, b"x", b"new", b"x", None),          # missing + non-empty: echo
    (b"old", b"old", b"new", b"new", b"new"),  # equal: swap
    (b"old", b"bad", b"new", b"old", b"old"),  # differs: current value
    (b"", b"", b"new", b"new", b"new"),        # empty value equals ""
    (b"old", b"", b"new", b"old", b"old"),
]


@pytest.mark.parametrize("before,expected,desired,reply,after", COMPARE_SET)
def test_compare_set(any_store, before, expected, desired, reply, after):
    s = any_store
    if before is not None:
        s.set("k", before)
    assert s.compare_set("k", expected, desired) == reply
    assert s.check(["k"]) == (after is not None)
    if after is not None:
        assert s.get("k") == after


def test_check_delete_num_keys(any_store):
    s = any_store
    base = s.num_keys()
    s.set("x", "1")
    s.set("y", "2")
    assert s.num_keys() == base + 2
    assert s.check(["x", "y"])
    assert not s.check(["x", "nope"])
    assert s.check([])
    assert s.delete_key("x") is True
    assert s.delete_key("x") is False
    assert not s.check(["x"])
    assert s.num_keys() == base + 1


def test_torch_compatible_surface(master):
    assert isinstance(master, Store)
    assert master.timeout == timedelta(seconds=10)
    master.set_timeout(timedelta(seconds=3))
    assert master.timeout == timedelta(seconds=3)
    assert issubclass(DistStoreError, DistError)
    assert issubclass(DistError, RuntimeError)
    assert issubclass(DistNetworkError, DistError)
    assert issubclass(DistStoreTimeoutError, DistStoreError)
    assert issubclass(DistStoreTimeoutError, TimeoutError)
    with pytest.raises(TypeError, match="list of str"):
        master.wait("abc")
    with pytest.raises(TypeError):
        master.set("k", 3)
    with pytest.raises(TypeError):
        master.add("k", 1.5)
    with pytest.raises(ValueError, match="negative"):
        master.set_timeout(-1)


def test_prefix_store_namespaces(master):
    p = PrefixStore("pg0", master)
    p.set("a", "1")
    assert master.get("pg0/a") == b"1"
    assert p.underlying_store is master
    nested = PrefixStore("dev0", p)
    nested.set("b", "2")
    assert master.get("pg0/dev0/b") == b"2"
    assert nested.check(["b"]) and not p.check(["b"])


def test_limits(master):
    with pytest.raises(ValueError, match="key is 65537 bytes"):
        master.set("k" * 65537, "v")
    with pytest.raises(ValueError, match="65537 keys"):
        master.check([str(i) for i in range(65537)])
    master.set("k" * 65536, "v")                  # the limit itself is fine
    assert master.get("k" * 65536) == b"v"


def test_large_value(master):
    blob = os.urandom(1 << 20) * 64                # 64 MiB
    other = client(master)
    start = time.monotonic()
    master.set("blob", blob)
    assert other.get("blob") == blob
    assert time.monotonic() - start < 10


# ---------------------------------------------------------------------------
# blocking and timeouts


def test_get_blocks_until_another_client_sets(master):
    other = client(master)
    timer = threading.Timer(0.3, lambda: other.set("late", "here"))
    start = time.monotonic()
    timer.start()
    assert master.get("late") == b"here"      # GIL released while parked
    assert time.monotonic() - start >= 0.25
    timer.join()


def test_wait_until_all_keys(master):
    other = client(master)

    def setter():
        for k in ("a", "b", "c"):
            time.sleep(0.05)
            other.set(k, k)

    t = threading.Thread(target=setter)
    t.start()
    master.wait(["a", "b", "c", "a"])          # a repeated key is fine
    assert master.check(["a", "b", "c"])
    t.join()


def test_many_parked_clients(master):
    clients = [client(master) for _ in range(40)]
    results = []
    threads = [threading.Thread(target=lambda c=c: results.append(
        c.get("go"))) for c in clients]
    for t in threads:
        t.start()
    time.sleep(0.2)
    assert master._server.stats()["clients"] == 41
    master.set("go", "now")
    for t in threads:
        t.join(10)
    assert results == [b"now"] * 40


def test_wait_timeout(master):
    start = time.monotonic()
    with pytest.raises(DistStoreTimeoutError) as info:
        master.wait(["a", "b"], timedelta(milliseconds=300))
    elapsed = time.monotonic() - start
    assert 0.28 <= elapsed < 1.5
    assert str(info.value) == "wait timeout after 300ms, keys: a, b"
    assert isinstance(info.value, TimeoutError)
    master.set("a", "1")                        # still usable
    assert master.get("a") == b"1"


def test_get_timeout_uses_store_timeout(master):
    master.set_timeout(timedelta(milliseconds=200))
    start = time.monotonic()
    with pytest.raises(DistStoreError, match=r"200ms, keys: missing"):
        master.get("missing")
    assert 0.18 <= time.monotonic() - start < 1.5


def test_zero_timeout_means_none(master):
    master.set_timeout(0)
    threading.Timer(0.3, lambda: client(master).set("k", "v")).start()
    assert master.get("k") == b"v"


def test_server_close_fails_parked_client(master):
    other = client(master)
    box = []

    def parked():
        try:
            other.get("never")
        except DistError as e:
            box.append(e)

    t = threading.Thread(target=parked)
    t.start()
    time.sleep(0.2)
    start = time.monotonic()
    master.close()
    t.join(5)
    assert time.monotonic() - start < 2
    assert isinstance(box[0], DistNetworkError)
    assert "closed the connection" in str(box[0])


def test_connect_retries_until_server_starts():
    probe = socket.socket()
    probe.bind((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()
    box = []
    t = threading.Timer(0.5, lambda: box.append(
        TCPStore(HOST, port, is_master=True, timeout=timedelta(seconds=10))))
    t.start()
    start = time.monotonic()
    store = TCPStore(HOST, port, timeout=timedelta(seconds=10))
    assert time.monotonic() - start >= 0.4
    store.set("k", "v")
    t.join()
    assert box[0].get("k") == b"v"
    box[0].close()


def test_connect_timeout_names_address(master):
    port = master.port
    master.close()
    start = time.monotonic()
    with pytest.raises(DistNetworkError,
                       match=rf"127\.0\.0\.1:{port} within 300ms"):
        TCPStore(HOST, port, timeout=timedelta(milliseconds=300))
    assert 0.25 <= time.monotonic() - start < 2


def test_wait_for_workers():
    probe = socket.socket()
    probe.bind((HOST, 0))
    port = probe.getsockname()[1]
    probe.close()
    box = []
    t = threading.Thread(target=lambda: box.append(TCPStore(
        HOST, port, world_size=3, is_master=True,
        timeout=timedelta(seconds=10))))
    t.start()
    workers = [TCPStore(HOST, port, world_size=3,
                        timeout=timedelta(seconds=10)) for _ in range(2)]
    t.join(10)
    assert box and box[0].get("init/") == b"3"
    for w in workers:
        w.close()
    box[0].close()
    start = time.monotonic()
    with pytest.raises(DistStoreTimeoutError, match="1/2 clients joined"):
        TCPStore(HOST, 0, world_size=2, is_master=True,
                 timeout=timedelta(milliseconds=300))
    assert time.monotonic() - start < 2


# ---------------------------------------------------------------------------
# handshake and hostile clients


@pytest.mark.parametrize("magic,version,verdict", [
    (0xDEADBEEF, VERSION, 1), (MAGIC, VERSION + 1, 2), (MAGIC, 0, 2)])
def test_handshake_rejected(master, magic, version, verdict):
    s = socket.create_connection((HOST, master.port), timeout=5)
    s.sendall(struct.pack("<II", magic, version))
    assert recv_exact(s, 9) == struct.pack("<IIB", MAGIC, VERSION, verdict)
    assert recv_exact(s, 1) == b""            # and then closed
    s.close()
    assert master._server.stats()["rejected"] == 1
    assert master.add("still", 1) == 1


@pytest.mark.parametrize("reply,match", [
    (struct.pack("<IIB", MAGIC, VERSION + 1, 2), "another protocol version"),
    (struct.pack("<IIB", 0x3C85F7CE, 1, 0), "not a dtrain TCPStore"),
])
def test_client_rejects_foreign_server(reply, match):
    listener = socket.socket()
    listener.bind((HOST, 0))
    listener.listen()

    def serve():
        conn, _ = listener.accept()
        recv_exact(conn, 8)
        conn.sendall(reply)
        time.sleep(0.5)
        conn.close()

    t = threading.Thread(target=serve)
    t.start()
    with pytest.raises(DistStoreError, match=match):
        TCPStore(HOST, listener.getsockname()[1],
                 timeout=timedelta(seconds=5))
    t.join()
    listener.close()


def test_raw_protocol_byte_by_byte(master):
    """Requests split at every byte, and several in one packet."""
    master.set("k", "v")
    s = socket.create_connection((HOST, master.port), timeout=5)
    for b in struct.pack("<II", MAGIC, VERSION):
        s.sendall(bytes([b]))
        time.sleep(0.002)
    assert recv_exact(s, 9) == struct.pack("<IIB", MAGIC, VERSION, 0)
    s.sendall(bytes([OP_NUM]))                  # a one-byte request
    assert recv_exact(s, 9) == b"\x00" + struct.pack("<q", 1)
    for b in bytes([OP_GET]) + key(b"k") + struct.pack("<Q", 1000):
        s.sendall(bytes([b]))
        time.sleep(0.002)
    assert recv_exact(s, 10) == b"\x00" + value(b"v")
    s.sendall(bytes([OP_ADD]) + key(b"n") + struct.pack("<q", -3) +
              bytes([OP_DEL]) + key(b"k") + bytes([OP_CHECK]) +
              struct.pack("<I", 1) + key(b"k"))  # pipelined
    assert recv_exact(s, 13) == (b"\x00" + struct.pack("<q", -3) +
                                 b"\x00\x01" + b"\x00\x00")
    s.sendall(bytes([OP_WAIT]) + struct.pack("<I", 1) + key(b"w") +
              struct.pack("<Q", 50))            # the server's timeout
    assert recv_exact(s, 1) == b"\x01"
    s.close()


def fuzz_message(rng):
    """A hostile message: garbage, truncated, oversize or unknown."""
    hello = struct.pack("<II", MAGIC, VERSION)
    k = rng.randbytes(rng.randrange(8))
    kind = rng.randrange(9)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 64))       # no handshake
    if kind == 1:
        return hello + rng.randbytes(rng.randrange(1, 64))
    if kind == 2:                                         # key too long
        return hello + bytes([rng.choice([OP_SET, OP_GET, OP_ADD])]) + \
            struct.pack("<I", rng.randrange(65537, 2**32))
    if kind == 3:                                         # value too long
        return hello + bytes([OP_SET]) + key(k) + \
            struct.pack("<Q", rng.randrange(2**28 + 1, 2**64))
    if kind == 4:                                         # too many keys
        return hello + bytes([rng.choice([OP_WAIT, OP_CHECK])]) + \
            struct.pack("<I", rng.randrange(65537, 2**32))
    if kind == 5:                                         # unknown op
        return hello + bytes([rng.choice([0] + list(range(9, 256)))]) + \
            rng.randbytes(rng.randrange(16))
    if kind == 6:                                         # truncated
        full = bytes([OP_CAS]) + key(k) + value(b"x" * 50) + value(b"y")
        return hello + full[:rng.randrange(1, len(full))]
    if kind == 7:                                         # parked, then gone
        return hello + bytes([OP_WAIT]) + struct.pack("<I", 2) + \
            key(b"fz" + k) + key(b"never") + struct.pack("<Q", 0)
    # a valid request followed by garbage
    return hello + bytes([OP_SET]) + key(b"fz") + value(k) + \
        rng.randbytes(rng.randrange(1, 32))


def test_fuzz_garbage_does_not_hurt_server(master):
    rng = random.Random(1234)
    idle = raw_connect(master.port)                # a slow client: half a
    idle.sendall(bytes([OP_SET]) + key(b"slow") + struct.pack("<Q", 1 << 27)
                 + b"x" * 1000)                     # request, then silence
    for i in range(600):
        s = socket.create_connection((HOST, master.port), timeout=5)
        try:
            s.sendall(fuzz_message(rng))
        except OSError:
            pass                                    # server hung up first
        if i % 3 == 0:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        s.close()
        if i % 100 == 0:                            # served all along
            assert master.add("alive", 1) == i // 100 + 1
    until(lambda: master._server.stats()["accepted"] == 602)
    until(lambda: master._server.stats()["clients"] == 2)
    assert master._server.stats()["dropped"] > 100
    other = client(master)
    other.set("after", "fuzz")
    assert master.get("after") == b"fuzz"
    assert master.check(["alive"]) and not master.check(["slow"])
    idle.close()


def test_sigkill_mid_request(master):
    parked = spawn(
        "import sys; from datetime import timedelta\n"
        "from dtrain.distributed import TCPStore\n"
        "s = TCPStore('127.0.0.1', int(sys.argv[1]), "
        "timeout=timedelta(seconds=60))\n"
        "print('ready', flush=True)\n"
        "s.get('never')\n", master.port)
    half = spawn(
        "import socket, struct, sys, time\n"
        "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\n"
        "s.sendall(struct.pack('<II', %d, 1)); s.recv(9)\n"
        "s.sendall(bytes([1]) + struct.pack('<I', 1) + b'k' + "
        "struct.pack('<Q', 50 << 20) + b'x' * (1 << 20))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n" % MAGIC, master.port)
    try:
        wait_for_line(parked, "ready")
        wait_for_line(half, "ready")
        until(lambda: master._server.stats()["clients"] == 3)
        time.sleep(0.1)
        parked.send_signal(signal.SIGKILL)
        half.send_signal(signal.SIGKILL)
        parked.wait(10)
        half.wait(10)
    finally:
        for p in (parked, half):
            if p.poll() is None:
                p.kill()
            p.communicate()
    until(lambda: master._server.stats()["clients"] == 1)
    master.set("never", "now")
    assert master.get("never") == b"now"
    assert not master.check(["k"])


def test_ctrl_c_interrupts_blocked_get(master):
    child = spawn(
        "import sys, time; from datetime import timedelta\n"
        "from dtrain.distributed import TCPStore\n"
        "s = TCPStore('127.0.0.1', int(sys.argv[1]), "
        "timeout=timedelta(seconds=60))\n"
        "try:\n"
        "    print('ready', flush=True)\n"
        "    s.get('never')\n"
        "except KeyboardInterrupt:\n"
        "    print('interrupted', flush=True)\n"
        "s.set('after', 'ok')\n"             # reconnects transparently
        "print(s.get('after').decode(), flush=True)\n", master.port)
    try:
        wait_for_line(child, "ready")
        time.sleep(0.3)
        start = time.monotonic()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=10)
        assert time.monotonic() - start < 2
    finally:
        if child.poll() is None:
            child.kill()
            child.communicate()
    assert child.returncode == 0, err
    assert out.split() == ["interrupted", "ok"]


# ---------------------------------------------------------------------------
# several processes


RENDEZVOUS = """
import json, sys
from datetime import timedelta
from dtrain.distributed import PrefixStore, TCPStore
rank, world, port = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
store = PrefixStore("rdzv", TCPStore("127.0.0.1", port,
                                     timeout=timedelta(seconds=20)))
store.set(f"addr/{rank}", f"rank{rank}")
store.wait([f"addr/{r}" for r in range(world)])
got = [store.get(f"addr/{r}").decode() for r in range(world)]
store.add("done", 1)
print(json.dumps(got))
"""


def test_rendezvous_across_processes(master):
    world = 4
    procs = [spawn(RENDEZVOUS, r, world, master.port) for r in range(world)]
    outs = finish(procs)
    expected = '["rank0", "rank1", "rank2", "rank3"]'
    assert [o.strip() for o in outs] == [expected] * world
    assert master.get("rdzv/done") == b"4"


ADDER = """
import sys
from datetime import timedelta
from dtrain.distributed import TCPStore
store = TCPStore("127.0.0.1", int(sys.argv[1]),
                 timeout=timedelta(seconds=20))
store.wait(["start"])
for _ in range(int(sys.argv[2])):
    store.add("counter", 1)
"""


def test_concurrent_add_from_processes(master):
    procs = [spawn(ADDER, master.port, 250) for _ in range(4)]
    until(lambda: master._server.stats()["clients"] == 5, timeout=20)
    master.set("start", "go")                   # all add at once
    finish(procs)
    assert master.get("counter") == b"1000"
    assert master.add("counter", 0) == 1000


def test_forked_child_reconnects_and_drops_the_store(master):
    """A data-loader worker forked while a thread is parked in a get: the
    child's copy of the connection is busy (lock held, a reply pending), so
    the child must make its own."""
    other = client(master, timeout=3)
    box = []
    parked = threading.Thread(target=lambda: box.append(other.get("go")))
    parked.start()
    until(lambda: master._server.stats()["clients"] == 2)
    time.sleep(0.1)
    pid = os.fork()
    if pid == 0:                                # the child
        code = 1
        try:
            other.set("from_child", "yes")
            master.close()                      # a copy: nothing to join
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        time.sleep(0.01)
    assert os.waitstatus_to_exitcode(status) == 0
    assert master.get("from_child") == b"yes"
    master.set("go", "1")
    parked.join(5)
    assert box == [b"1"]                        # the parent's link is intact
