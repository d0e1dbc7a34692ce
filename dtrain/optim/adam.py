"""Adam (with amsgrad, L2 or decoupled weight decay, maximize), as
torch.optim.Adam. The update is one fused C loop per parameter
(csrc/ops/optim.c, dt_adam_step).

State per parameter, as in torch 2.x: "step" (a 0-dim float32 tensor;
float64 under a float64 default dtype), "exp_avg", "exp_avg_sq" and, with
amsgrad, "max_exp_avg_sq" (tensors of the param's shape and dtype).
"""
from .. import _C
from .._ops.creation import zeros_like
from .optimizer import (Optimizer, _new_step, _run_closure, _to_scalar,
                        _use_grad)
from .sgd import _check_impl_flags

__all__ = ["Adam"]


def _is_tensor(x):
    return isinstance(x, _C.TensorBase)


def _check_adam_args(lr, betas, eps, weight_decay, foreach, capturable):
    """torch's argument checks, in torch's order and words."""
    if _is_tensor(lr):
        if foreach and not capturable:
            raise ValueError("lr as a Tensor is not supported for "
                             "capturable=False and foreach=True")
        if lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
    if not 0.0 <= _to_scalar(lr):
        raise ValueError(f"Invalid learning rate: {lr}")
    if not 0.0 <= eps:
        raise ValueError(f"Invalid epsilon value: {eps}")
    for i in (0, 1):
        if _is_tensor(betas[i]) and betas[i].numel() != 1:
            raise ValueError(f"Tensor betas[{i}] must be 1-element")
        if not 0.0 <= _to_scalar(betas[i]) < 1.0:
            raise ValueError(f"Invalid beta parameter at index {i}: "
                             f"{betas[i]}")
    if not 0.0 <= weight_decay:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    if not ((isinstance(betas[0], float) and isinstance(betas[1], float))
            or (_is_tensor(betas[0]) and _is_tensor(betas[1]))):
        raise ValueError("betas must be either both floats or both Tensors")
    for i in (0, 1):
        if _is_tensor(betas[i]) and not capturable and foreach:
            raise ValueError(f"betas[{i}] as a Tensor is not supported for "
                             f"capturable=False and foreach=True")


class Adam(Optimizer):
    """Adam; decoupled_weight_decay=True makes it AdamW."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0, amsgrad=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False,
                 fused=None, decoupled_weight_decay=False):
        _check_adam_args(lr, betas, eps, weight_decay, foreach, capturable)
        betas = tuple(map(_to_scalar, betas))
        defaults = {
            "lr": lr, "betas": betas, "eps": eps,
            "weight_decay": weight_decay, "amsgrad": amsgrad,
            "maximize": maximize, "foreach": foreach,
            "capturable": capturable, "differentiable": differentiable,
            "fused": fused, "decoupled_weight_decay": decoupled_weight_decay,
        }
        name = type(self).__name__
        if capturable:
            raise NotImplementedError(f"{name}: capturable=True is not "
                                      f"supported by dtrain")
        _check_impl_flags(name, foreach, fused, differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("amsgrad", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("capturable", False)
            group.setdefault("differentiable", False)
            group.setdefault("decoupled_weight_decay", False)
            group.setdefault("fused", None)
            for p in group["params"]:
                p_state = self.state.get(p, [])
                if len(p_state) != 0 and not _is_tensor(p_state["step"]):
                    p_state["step"] = _new_step(p_state["step"])

    def _init_group(self, group, lists):
        """Appends, for each param with a grad, the param, its grad and its
        state tensors (created as zeros on the first step) to `lists`."""
        amsgrad = group["amsgrad"]
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self.state[p]
            if len(state) == 0:
                state["step"] = _new_step()
                state["exp_avg"] = zeros_like(p)
                state["exp_avg_sq"] = zeros_like(p)
                if amsgrad:
                    state["max_exp_avg_sq"] = zeros_like(p)
            lists[0].append(p)
            lists[1].append(p.grad)
            lists[2].append(state["exp_avg"])
            lists[3].append(state["exp_avg_sq"])
            if amsgrad:
                lists[4].append(state["max_exp_avg_sq"])
            lists[5].append(state["step"])

    @_use_grad
    def step(self, closure=None):
        """Performs one step; params whose grad is None are skipped."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            lists = ([], [], [], [], [], [])
            self._init_group(group, lists)
            if not lists[0]:
                continue
            beta1, beta2 = group["betas"]
            _C._adam_step(*lists, float(_to_scalar(group["lr"])),
                          float(_to_scalar(beta1)), float(_to_scalar(beta2)),
                          float(group["eps"]), float(group["weight_decay"]),
                          bool(group["decoupled_weight_decay"]),
                          bool(group["amsgrad"]), bool(group["maximize"]))
        return loss
