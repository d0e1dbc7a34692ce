"""The launcher behind `python -m dtrain.run` (torchrun-compatible) and the
process spawning API behind dtrain.multiprocessing.spawn.

  config.py  command line -> LaunchConfig (flags, PET_* env, Slurm)
  slurm.py   hostlist expansion, srun step layout
  agent.py   start / monitor / stop / restart one node's workers
  logs.py    worker output pumps, the stderr tail, launcher log lines
  errors.py  the failure summary
  spawn.py   spawn(fn, args, nprocs), launch(fn, ...) for notebooks

Pure Python; it needs nothing from the C core or the process groups.
"""
