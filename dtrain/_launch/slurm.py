"""Slurm support for the launcher: hostlist expansion and the node layout
of an srun step.

The layout rule is "one launcher per srun task": a step started with
`srun --ntasks-per-node=1 python -m dtrain.run --nproc-per-node 4 train.py`
has nnodes = number of tasks, node rank = SLURM_PROCID and its master on
the first host of the step's node list. Command-line flags (and PET_*
variables) still win; see dtrain/_launch/config.py for the precedence.
"""
import itertools
import os
import re

__all__ = ["expand_hostlist", "slurm_layout"]


def _split_top(text, sep=","):
    """Split on `sep` outside brackets: "a[1,2],b" -> ["a[1,2]", "b"]."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise ValueError(f"hostlist: unbalanced ']' in {text!r}")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise ValueError(f"hostlist: unbalanced '[' in {text!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _expand_range(body, text):
    """"01-03,07" -> ["01", "02", "03", "07"]; widths follow the low bound."""
    out = []
    for item in body.split(","):
        item = item.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", item)
        if m is None:
            raise ValueError(f"hostlist: bad range {item!r} in {text!r}")
        lo, hi = m.group(1), m.group(2)
        if hi is None:
            out.append(lo)
            continue
        if int(hi) < int(lo):
            raise ValueError(f"hostlist: descending range {item!r} "
                             f"in {text!r}")
        width = len(lo)
        out.extend(str(n).zfill(width) for n in range(int(lo), int(hi) + 1))
    return out


def _expand_one(expr):
    """One host expression, possibly with several bracket groups
    ("rack[1-2]-n[01-02]"): the cartesian product, left to right."""
    pieces = []  # list of alternatives per segment
    pos = 0
    for m in re.finditer(r"\[([^\[\]]*)\]", expr):
        pieces.append([expr[pos:m.start()]])
        pieces.append(_expand_range(m.group(1), expr))
        pos = m.end()
    pieces.append([expr[pos:]])
    return ["".join(combo) for combo in itertools.product(*pieces)]


def expand_hostlist(hostlist):
    """Expand a Slurm hostlist: "node[01-03,07],gpu5" -> ["node01",
    "node02", "node03", "node07", "gpu5"]. Order is kept, like
    `scontrol show hostnames`."""
    hosts = []
    for expr in _split_top(hostlist.strip()):
        hosts.extend(_expand_one(expr))
    return hosts


def _int_env(env, *names):
    for name in names:
        value = env.get(name)
        if value not in (None, ""):
            return int(value)
    return None


def slurm_layout(env=None):
    """The node layout of the srun step we run in, or None outside one.

    Returns a dict with nnodes, node_rank, master_addr (None when Slurm
    gives no node list), run_id (the job id) and a warning (None or text).
    Detection needs SLURM_PROCID and SLURM_STEP_NUM_TASKS, which only srun
    sets: a batch script or salloc shell also has SLURM_PROCID=0 and
    SLURM_NTASKS, but is not one launcher of many. DTRAIN_SLURM=0 turns the
    detection off.
    """
    env = os.environ if env is None else env
    if env.get("DTRAIN_SLURM", "1") == "0":
        return None
    if "SLURM_PROCID" not in env or "SLURM_STEP_NUM_TASKS" not in env:
        return None
    ntasks = _int_env(env, "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS")
    procid = _int_env(env, "SLURM_PROCID")
    nnodes = _int_env(env, "SLURM_STEP_NUM_NODES", "SLURM_NNODES")
    nodelist = (env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
                or env.get("SLURM_NODELIST"))
    master = expand_hostlist(nodelist)[0] if nodelist else None
    warning = None
    if nnodes is not None and nnodes != ntasks:
        warning = (f"srun started {ntasks} tasks on {nnodes} nodes; "
                   "dtrain.run expects one launcher per node (srun "
                   "--ntasks-per-node=1) and treats each task as a node, so "
                   "LOCAL_RANK restarts at 0 in every task")
    return {"nnodes": ntasks, "node_rank": procid, "master_addr": master,
            "run_id": env.get("SLURM_JOB_ID") or env.get("SLURM_JOBID"),
            "warning": warning}
