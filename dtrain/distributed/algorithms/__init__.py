"""dtrain.distributed.algorithms: torch.distributed.algorithms' training
algorithms (DDP communication hooks, in ddp_comm_hooks)."""
