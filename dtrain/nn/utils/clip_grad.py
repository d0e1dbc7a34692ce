"""clip_grad_norm_ and clip_grad_value_, as torch.nn.utils."""
import math

from ... import _C
from ..._ops.creation import tensor
from ..._ops.index import stack
from ...autograd import no_grad


def _grads(parameters):
    if isinstance(parameters, _C.TensorBase):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


@no_grad()
def clip_grad_norm_(parameters, max_norm, norm_type=2.0,
                    error_if_nonfinite=False, foreach=None):
    """Scales the gradients in place so their joint norm is at most
    max_norm; returns the joint norm before clipping."""
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        return tensor(0.0)
    norms = [g.norm(norm_type).float() for g in grads]
    total = stack(norms).norm(norm_type)
    value = total.item()
    if error_if_nonfinite and not math.isfinite(value):
        raise RuntimeError(f"The total norm of order {norm_type} for "
                           f"gradients from `parameters` is non-finite, so "
                           f"it cannot be clipped. To disable this error and "
                           f"scale the gradients by the non-finite norm "
                           f"anyway, set `error_if_nonfinite=False`")
    coef = (max_norm / (total + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(coef.to(g.dtype))
    return total


@no_grad()
def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamps every gradient element into [-clip_value, clip_value]."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(-clip_value, clip_value)
