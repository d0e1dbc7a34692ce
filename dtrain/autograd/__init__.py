"""dtrain.autograd: reverse-mode differentiation (the engine is in C,
csrc/autograd/). backward/grad as in torch.autograd, grad-mode context
managers, queue_callback for end-of-backward work, and Function for custom
differentiable operations."""
from .. import _C
from .function import Function, FunctionCtx
from .grad_mode import enable_grad, no_grad, set_grad_enabled

__all__ = ["backward", "grad", "no_grad", "enable_grad", "set_grad_enabled",
           "is_grad_enabled", "queue_callback", "Function", "FunctionCtx"]

is_grad_enabled = _C.is_grad_enabled


def _as_tuple(x):
    if x is None:
        return None
    if isinstance(x, _C.TensorBase):
        return (x,)
    return tuple(x)


def _grads_for(tensors, grad_tensors):
    if grad_tensors is None:
        return (None,) * len(tensors)
    grad_tensors = _as_tuple(grad_tensors)
    if len(grad_tensors) != len(tensors):
        raise RuntimeError(f"grad_tensors has {len(grad_tensors)} entries "
                           f"but tensors has {len(tensors)}")
    return grad_tensors


def backward(tensors, grad_tensors=None, retain_graph=None,
             create_graph=False, inputs=None):
    """Accumulates d(tensors)/d(leaf) into each leaf's .grad."""
    if create_graph:
        raise NotImplementedError("create_graph=True (higher-order "
                                  "gradients) is not supported")
    if inputs is not None:
        raise NotImplementedError("backward(inputs=...) is not supported; "
                                  "use dtrain.autograd.grad")
    tensors = _as_tuple(tensors)
    _C._run_backward(tensors, _grads_for(tensors, grad_tensors),
                     bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph=None,
         create_graph=False, allow_unused=None, materialize_grads=False):
    """The gradients of outputs with respect to inputs, as a tuple; leaves'
    .grad are left untouched."""
    if create_graph:
        raise NotImplementedError("create_graph=True (higher-order "
                                  "gradients) is not supported")
    outputs = _as_tuple(outputs)
    inputs = _as_tuple(inputs)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"One of the differentiated Tensors (input "
                               f"{i}) does not require grad")
    allow_unused = bool(allow_unused) or materialize_grads
    result = _C._run_backward(outputs, _grads_for(outputs, grad_outputs),
                              bool(retain_graph), inputs, allow_unused)
    if materialize_grads:
        from .._ops.creation import zeros_like
        result = tuple(zeros_like(t) if g is None else g
                       for g, t in zip(result, inputs))
    return result


def queue_callback(fn):
    """Runs fn() once when the backward pass now running ends."""
    _C._queue_callback(fn)
