"""Command line of `python -m dtrain.run` (torchrun's flags) -> LaunchConfig.

Every flag has a dash and an underscore spelling (--nproc-per-node,
--nproc_per_node) and, like torchrun, takes its value from a PET_<NAME>
environment variable (PET_NPROC_PER_NODE, ...) when not on the command line.
Everything after the training script goes to the script untouched, even
tokens that look like launcher flags.

Precedence for the node layout and the master address, highest first:
  1. the command line (--nnodes, --node-rank, --master-addr, --master-port,
     --rdzv-endpoint, --standalone),
  2. PET_NNODES, PET_NODE_RANK, PET_MASTER_ADDR, PET_MASTER_PORT, ...,
  3. Slurm, inside an srun step (see dtrain/_launch/slurm.py): nnodes =
     tasks in the step, node rank = SLURM_PROCID, master address = first
     host of SLURM_STEP_NODELIST (or SLURM_JOB_NODELIST), run id = job id,
  4. torchrun's defaults: 1 node, node rank 0, 127.0.0.1:29500.
"""
import argparse
import dataclasses
import os
import socket
import sys
import uuid

from .logs import log
from .slurm import slurm_layout

__all__ = ["LaunchConfig", "parse_args", "free_port"]

STOP_GRACE_DEFAULT = 30.0  # seconds between SIGTERM and SIGKILL, as torchrun

# (names, dest, type, help); type None marks a flag that takes no value.
_OPTIONS = [
    (("--nnodes",), "nnodes", str,
     "number of nodes, N or MIN:MAX (static rendezvous: MIN == MAX)"),
    (("--nproc-per-node", "--nproc_per_node"), "nproc_per_node", str,
     "workers per node: an int, 'cpu', 'gpu' or 'auto' (default 1)"),
    (("--node-rank", "--node_rank"), "node_rank", int,
     "rank of this node, 0..nnodes-1 (default 0)"),
    (("--master-addr", "--master_addr"), "master_addr", str,
     "address of rank 0's host (default 127.0.0.1)"),
    (("--master-port", "--master_port"), "master_port", int,
     "port rank 0 listens on (default 29500)"),
    (("--standalone",), "standalone", None,
     "single node; pick a free port on 127.0.0.1"),
    (("--rdzv-backend", "--rdzv_backend"), "rdzv_backend", str,
     "'static' (default) or 'c10d' (handled as static here)"),
    (("--rdzv-endpoint", "--rdzv_endpoint"), "rdzv_endpoint", str,
     "host:port; sets the master address and port"),
    (("--rdzv-id", "--rdzv_id"), "rdzv_id", str,
     "run id, exported as TORCHELASTIC_RUN_ID (default 'none')"),
    (("--rdzv-conf", "--rdzv_conf"), "rdzv_conf", str, "accepted, ignored"),
    (("--max-restarts", "--max_restarts"), "max_restarts", int,
     "restarts of the worker group before failing (default 0)"),
    (("--monitor-interval", "--monitor_interval"), "monitor_interval", float,
     "seconds between worker checks (default 0.1)"),
    (("--stop-grace", "--stop_grace"), "stop_grace", float,
     "seconds from SIGTERM to SIGKILL when stopping workers (default "
     "$DTRAIN_STOP_GRACE or 30); a dtrain extension"),
    (("--start-method", "--start_method"), "start_method", str,
     "accepted, ignored: workers are always fresh processes"),
    (("--role",), "role", str, "ROLE_NAME of the workers (default 'default')"),
    (("-m", "--module"), "module", None,
     "run the script as a module, like python -m"),
    (("--no-python", "--no_python"), "no_python", None,
     "run the script as an executable, without the python interpreter"),
    (("--run-path", "--run_path"), "run_path", None,
     "accepted: scripts always run as a fresh python process"),
    (("--log-dir", "--log_dir"), "log_dir", str,
     "write each worker's stdout/stderr to <dir>/<run id>/attempt_<k>/"
     "<local rank>/ (alone: both streams, also kept on the console)"),
    (("-r", "--redirects"), "redirects", str,
     "0 none, 1 stdout, 2 stderr, 3 both into the log files only; or a "
     "map 0:1,1:2 by local rank"),
    (("-t", "--tee"), "tee", str,
     "like --redirects, but also keep the stream on the console"),
    (("--local-addr", "--local_addr"), "local_addr", str, "accepted, ignored"),
    (("--local-ranks-filter", "--local_ranks_filter"), "local_ranks_filter",
     str, "accepted, ignored"),
    (("--logs-specs", "--logs_specs"), "logs_specs", str, "accepted, ignored"),
    (("--log-line-prefix-template", "--log_line_prefix_template"),
     "log_line_prefix_template", str, "accepted, ignored"),
]


@dataclasses.dataclass
class LaunchConfig:
    """Everything the agent needs to run one node's workers."""
    cmd: list                  # argv of one worker
    script: str                # for messages ("train.py FAILED")
    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str = "127.0.0.1"
    master_port: int = 29500   # 0: a fresh free port for every attempt
    max_restarts: int = 0
    monitor_interval: float = 0.1
    stop_grace: float = STOP_GRACE_DEFAULT
    run_id: str = "none"
    role: str = "default"
    log_dir: str = None
    redirects: dict = dataclasses.field(default_factory=dict)  # local rank ->
    tee: dict = dataclasses.field(default_factory=dict)        # 0..3 bits
    env: dict = dataclasses.field(default_factory=dict)  # extra worker env


def free_port(host="127.0.0.1"):
    """A port that was free a moment ago (bind port 0, read, close)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        return s.getsockname()[1]


_EPILOG = """\
precedence (node layout, master address): command line > PET_<FLAG>
environment variables > Slurm (inside srun: one launcher per task) >
defaults. Environment: DTRAIN_STOP_GRACE (seconds, SIGTERM -> SIGKILL),
DTRAIN_SLURM=0 (ignore Slurm), PYTHON_EXEC (the worker interpreter).
Exit status: 0, 1 when a worker failed, 128 + N after signal N.
"""


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m dtrain.run", allow_abbrev=False,
        usage="python -m dtrain.run [options] training_script "
              "[training_script_args ...]",
        description="Start N worker processes per node with torchrun's "
                    "environment (RANK, WORLD_SIZE, MASTER_ADDR, ...).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG)
    for names, dest, typ, text in _OPTIONS:
        if typ is None:
            p.add_argument(*names, dest=dest, action="store_const",
                           const=True, default=None, help=text)
        else:
            p.add_argument(*names, dest=dest, type=typ, default=None,
                           help=text)
    return p


def _split_argv(argv):
    """(launcher args, script, script args): the script is the first token
    that is neither a launcher option nor an option's value."""
    takes_value = {n for names, _, typ, _ in _OPTIONS if typ for n in names}
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            return argv[:i], argv[i + 1:i + 2], argv[i + 2:]
        if not tok.startswith("-") or tok == "-":
            return argv[:i], [tok], argv[i + 1:]
        if tok in takes_value:
            i += 2
        else:
            i += 1  # a flag, --opt=value, -r3, or unknown (argparse says)
    return argv, [], []


def _from_env(args, dest, typ):
    """Fill an option missing from the command line from PET_<DEST>."""
    if getattr(args, dest) is not None:
        return
    raw = os.environ.get("PET_" + dest.upper())
    if raw is None:
        return
    if typ is None:
        value = raw.strip().lower() not in ("", "0", "false", "no")
    else:
        value = typ(raw)
    setattr(args, dest, value)


def _gpu_count():
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        ids = [d.strip() for d in visible.split(",")]
        return len([d for d in ids if d not in ("", "-1")])
    try:
        return len(os.listdir("/proc/driver/nvidia/gpus"))
    except OSError:
        return 0


def _nproc(text, parser):
    text = "1" if text is None else text.strip()
    if text in ("cpu", "auto", "gpu"):
        gpus = _gpu_count() if text != "cpu" else 0
        if text == "gpu" and gpus == 0:
            parser.error("--nproc-per-node gpu: no GPU found")
        return gpus or os.cpu_count() or 1
    try:
        n = int(text)
    except ValueError:
        parser.error(f"--nproc-per-node: expected an int, 'cpu', 'gpu' or "
                     f"'auto', got {text!r}")
    if n < 1:
        parser.error(f"--nproc-per-node must be >= 1, got {n}")
    return n


def _nnodes(text, parser):
    lo, _, hi = text.strip().partition(":")
    try:
        lo = int(lo)
        hi = int(hi) if hi else lo
    except ValueError:
        parser.error(f"--nnodes: expected N or MIN:MAX, got {text!r}")
    if lo < 1:
        parser.error(f"--nnodes must be >= 1, got {text!r}")
    if lo != hi:
        parser.error(f"--nnodes {text}: elastic node ranges are not "
                     "supported; the static rendezvous needs a fixed node "
                     "count (MIN == MAX, e.g. --nnodes 2)")
    return lo


def _endpoint(text, default_port, parser):
    """"host:port" or "[v6addr]:port" -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port = text.split(":")
    else:
        host, port = text, ""
    if not port:
        if default_port is None:
            parser.error(f"--rdzv-endpoint {text!r}: the port is missing "
                         "(static rendezvous needs host:port)")
        port = default_port
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        parser.error(f"--rdzv-endpoint {text!r}: bad port {port!r}")


def _layout(args, parser):
    """nnodes, node_rank, master_addr, master_port, run_id, by the
    precedence in the module docstring."""
    if args.standalone:
        if args.nnodes not in (None, "1", "1:1"):
            log(f"--standalone runs a single node; ignoring --nnodes "
                f"{args.nnodes}")
        return 1, 0, "127.0.0.1", 0, args.rdzv_id or uuid.uuid4().hex
    slurm = slurm_layout() or {}
    if slurm.get("warning"):
        log(slurm["warning"])
    backend = args.rdzv_backend or "static"
    if backend not in ("static", "c10d"):
        parser.error(f"--rdzv-backend {backend!r}: only 'static' and 'c10d' "
                     "are supported")
    nnodes = (_nnodes(args.nnodes, parser) if args.nnodes is not None
              else slurm.get("nnodes", 1))
    node_rank = args.node_rank
    if node_rank is None:
        node_rank = slurm.get("node_rank")
    if node_rank is None:
        if backend == "c10d" and nnodes > 1:
            parser.error("--rdzv-backend c10d is handled as a static "
                         "rendezvous here: give every node its --node-rank")
        node_rank = 0
    if not 0 <= node_rank < nnodes:
        parser.error(f"--node-rank {node_rank} is out of range for "
                     f"--nnodes {nnodes}")
    addr = args.master_addr or slurm.get("master_addr") or "127.0.0.1"
    port = args.master_port if args.master_port is not None else 29500
    if args.rdzv_endpoint:
        addr, port = _endpoint(args.rdzv_endpoint,
                               29400 if backend == "c10d" else None, parser)
    run_id = args.rdzv_id or slurm.get("run_id") or "none"
    return nnodes, node_rank, addr, port, run_id


def _std_map(text, nproc, parser, flag):
    """--redirects/--tee value -> {local_rank: 0..3}."""
    if text is None:
        return {}
    try:
        if ":" not in text:
            out = {r: int(text) for r in range(nproc)}
        else:
            out = {}
            for item in text.split(","):
                rank, value = item.split(":")
                out[int(rank)] = int(value)
    except ValueError:
        parser.error(f"{flag}: expected 0-3 or a map like 0:1,1:2, "
                     f"got {text!r}")
    if any(not 0 <= v <= 3 for v in out.values()):
        parser.error(f"{flag}: values are 0 (none), 1 (stdout), 2 (stderr), "
                     f"3 (both); got {text!r}")
    return out


def _worker_cmd(args, script, script_args, parser):
    if args.no_python and args.module:
        parser.error("--no-python and -m/--module cannot be used together")
    if args.no_python:
        return [script] + script_args
    python = os.environ.get("PYTHON_EXEC", sys.executable)
    return [python, "-u"] + (["-m"] if args.module else []) \
        + [script] + script_args


def _stop_grace(args, parser):
    if args.stop_grace is not None:
        return args.stop_grace
    raw = os.environ.get("DTRAIN_STOP_GRACE")
    try:
        return float(raw) if raw else STOP_GRACE_DEFAULT
    except ValueError:
        parser.error(f"DTRAIN_STOP_GRACE: expected seconds, got {raw!r}")


def _logging(args, cfg, parser):
    cfg.redirects = _std_map(args.redirects, cfg.nproc_per_node, parser,
                             "--redirects")
    cfg.tee = _std_map(args.tee, cfg.nproc_per_node, parser, "--tee")
    wants_files = any(cfg.redirects.values()) or any(cfg.tee.values())
    if args.log_dir and not wants_files:
        cfg.tee = {r: 3 for r in range(cfg.nproc_per_node)}
    elif wants_files and not args.log_dir:
        import tempfile
        args.log_dir = tempfile.mkdtemp(prefix="dtrun_")
        log(f"worker logs go to {args.log_dir}")
    cfg.log_dir = args.log_dir


def _omp_env(nproc):
    if nproc > 1 and "OMP_NUM_THREADS" not in os.environ:
        log("\n" + "*" * 41 + "\nSetting OMP_NUM_THREADS environment variable "
            "for each process to be 1 in default, to avoid your system being "
            "overloaded, please further tune the variable for optimal "
            "performance in your application as needed.\n" + "*" * 41)
        return {"OMP_NUM_THREADS": "1"}
    return {}


def parse_args(argv=None):
    """argv (without the program name) -> LaunchConfig; exits with status 2
    and a usage message on a bad command line, like argparse."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    launcher_argv, script, script_args = _split_argv(argv)
    args = parser.parse_args(launcher_argv)
    for _, dest, typ, _ in _OPTIONS:
        try:
            _from_env(args, dest, typ)
        except ValueError:
            parser.error(f"PET_{dest.upper()}: bad value "
                         f"{os.environ['PET_' + dest.upper()]!r}")
    if not script:
        parser.error("the training script (or module with -m) is missing")
    nproc = _nproc(args.nproc_per_node, parser)
    nnodes, node_rank, addr, port, run_id = _layout(args, parser)
    cfg = LaunchConfig(
        cmd=_worker_cmd(args, script[0], script_args, parser),
        script=script[0], nproc_per_node=nproc, nnodes=nnodes,
        node_rank=node_rank, master_addr=addr, master_port=port,
        max_restarts=args.max_restarts or 0,
        monitor_interval=(args.monitor_interval
                          if args.monitor_interval is not None else 0.1),
        stop_grace=_stop_grace(args, parser), run_id=run_id,
        role=args.role or "default", env=_omp_env(nproc))
    if cfg.max_restarts < 0 or cfg.monitor_interval <= 0 or cfg.stop_grace < 0:
        parser.error("--max-restarts and --stop-grace must be >= 0 and "
                     "--monitor-interval > 0")
    _logging(args, cfg, parser)
    return cfg
