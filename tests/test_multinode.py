"""Two nodes for real: two network namespaces joined by a veth pair, one
`python -m dtrain.run --nnodes 2 --node-rank R` in each, talking over the
veth addresses (not loopback). Skips with the reason where namespaces
cannot be made (not root, no iproute2, no CAP_NET_ADMIN)."""
import json
import os
import random
import shutil
import subprocess
import sys
import textwrap
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = textwrap.dedent("""
    import json, os, sys
    import dtrain
    import dtrain.distributed as dist
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    t = dtrain.full((1000,), float(rank + 1))
    dist.all_reduce(t)
    dist.barrier()
    gathered = [dtrain.zeros(1) for _ in range(world)]
    dist.all_gather(gathered, dtrain.tensor([float(rank)]))
    with open(os.path.join(sys.argv[1], f"rank{rank}.json"), "w") as f:
        json.dump({"rank": rank, "world": world, "sum": t[0].item(),
                   "gathered": [g.item() for g in gathered],
                   "node": int(os.environ["GROUP_RANK"]),
                   "master": os.environ["MASTER_ADDR"]}, f)
""")


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True,
                          check=check, timeout=20)


@pytest.fixture
def two_hosts():
    if shutil.which("ip") is None:
        pytest.skip("iproute2 (the ip command) is not installed")
    tag = uuid.uuid4().hex[:6]
    ns = [f"dt{tag}n0", f"dt{tag}n1"]
    veth = [f"dt{tag}v0", f"dt{tag}v1"]
    net = random.randint(16, 250)
    addrs = [f"10.{net}.77.1", f"10.{net}.77.2"]
    try:
        for n in ns:
            _ip("netns", "add", n)
        _ip("link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        for n, v, a in zip(ns, veth, addrs):
            _ip("link", "set", v, "netns", n)
            _ip("-n", n, "addr", "add", a + "/24", "dev", v)
            _ip("-n", n, "link", "set", v, "up")
            _ip("-n", n, "link", "set", "lo", "up")
    except (subprocess.CalledProcessError, OSError) as e:
        for n in ns:
            _ip("netns", "del", n, check=False)
        err = getattr(e, "stderr", "") or str(e)
        pytest.skip(f"cannot create network namespaces here: {err.strip()}")
    try:
        yield ns, veth, addrs
    finally:
        for n in ns:  # deleting a namespace removes its end of the veth
            _ip("netns", "del", n, check=False)


@pytest.mark.timeout(180)
def test_two_nodes_allreduce_and_barrier(two_hosts, tmp_path):
    ns, veth, addrs = two_hosts
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    port = random.randint(20000, 60000)
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    procs = []
    for node in range(2):
        cmd = ["ip", "netns", "exec", ns[node], sys.executable, "-m",
               "dtrain.run", "--nnodes", "2", "--node-rank", str(node),
               "--nproc-per-node", "2", "--master-addr", addrs[0],
               "--master-port", str(port), "--stop-grace", "5",
               str(script), str(tmp_path)]
        procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = []
    for p in procs:
        try:
            out, _ = p.communicate(timeout=150)
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
        outputs.append(out)
    for node, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"node {node} failed:\n{out}"
    results = [json.loads((tmp_path / f"rank{r}.json").read_text())
               for r in range(4)]
    for r, res in enumerate(results):
        assert res["world"] == 4 and res["rank"] == r
        assert res["node"] == r // 2 and res["master"] == addrs[0]
        assert res["sum"] == 1 + 2 + 3 + 4
        assert res["gathered"] == [0.0, 1.0, 2.0, 3.0]
