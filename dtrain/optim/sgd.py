"""SGD with momentum, dampening, Nesterov momentum, weight decay and
maximize, as torch.optim.SGD. The update is one fused C loop per parameter
(csrc/ops/optim.c, dt_sgd_step)."""
from .. import _C
from .optimizer import Optimizer, _run_closure, _to_scalar, _use_grad

__all__ = ["SGD"]


def _check_impl_flags(name, foreach, fused, differentiable):
    """foreach/fused are accepted and recorded (the kernel is fused
    already); differentiable steps are not supported."""
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
    if differentiable:
        raise NotImplementedError(f"{name}: differentiable=True is not "
                                  f"supported by dtrain")


class SGD(Optimizer):
    """Stochastic gradient descent (optionally with momentum)."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0,
                 weight_decay=0, nesterov=False, *, maximize=False,
                 foreach=None, differentiable=False, fused=None):
        if isinstance(lr, _C.TensorBase) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        if _to_scalar(lr) < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr, "momentum": momentum, "dampening": dampening,
            "weight_decay": weight_decay, "nesterov": nesterov,
            "maximize": maximize, "foreach": foreach,
            "differentiable": differentiable, "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero "
                             "dampening")
        _check_impl_flags("SGD", foreach, fused, differentiable)
        super().__init__(params, defaults)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("maximize", False)
            group.setdefault("foreach", None)
            group.setdefault("differentiable", False)
            group.setdefault("fused", False)

    @_use_grad
    def step(self, closure=None):
        """Performs one step; params whose grad is None are skipped."""
        loss = _run_closure(closure)
        for group in self.param_groups:
            momentum = group["momentum"]
            params, grads, bufs = [], [], []
            for p in group["params"]:
                if p.grad is None:
                    continue
                params.append(p)
                grads.append(p.grad)
                if momentum != 0:
                    bufs.append(self.state[p].get("momentum_buffer"))
            if not params:
                continue
            # a None buffer is created (set to the gradient) by the kernel
            _C._sgd_step(params, grads, bufs, float(_to_scalar(group["lr"])),
                         float(momentum), float(group["dampening"]),
                         float(_to_scalar(group["weight_decay"])),
                         bool(group["nesterov"]), bool(group["maximize"]))
            if momentum != 0:
                for p, buf in zip(params, bufs):
                    self.state[p]["momentum_buffer"] = buf
        return loss
