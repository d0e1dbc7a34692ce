"""`python -m dtrain.run`: a torchrun-compatible launcher.

    python -m dtrain.run --nproc-per-node 4 train.py --lr 0.1
    python -m dtrain.run --nnodes 2 --node-rank 0 --master-addr 10.0.0.1 \
        --master-port 29500 --nproc-per-node 8 -m mypkg.train
    python -m dtrain.run --standalone --nproc-per-node auto train.py

Each worker gets torchrun's environment (LOCAL_RANK, RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RESTART_COUNT, ...) and calls
init_process_group() with env://. Worker stderr is echoed prefixed
"[rankN]:"; when a worker fails the others are stopped (SIGTERM, grace,
SIGKILL), the group is restarted while --max-restarts allows, and otherwise
a report names the failed rank, its exit code and its traceback. See
dtrain/_launch/ for the details and `python -m dtrain.run --help` for flags.
"""
import sys

from dtrain._launch.agent import run as _run_agent
from dtrain._launch.config import parse_args

__all__ = ["main"]


def main(argv=None):
    """Parse argv (default sys.argv[1:]), run the workers; returns nothing
    and exits with the launcher's status (0, 1 on failure, 128 + signal)."""
    cfg = parse_args(argv)
    sys.exit(_run_agent(cfg))


if __name__ == "__main__":
    main()
