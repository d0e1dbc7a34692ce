"""dtrain.autograd.Function: custom differentiable operations written in
Python, as torch.autograd.Function:

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            y, = ctx.saved_tensors
            return grad * y

    y = Exp.apply(x)

forward runs under no_grad; apply records one graph node, named
"ExpBackward", whose backward (csrc/python/py_function.c) calls the
class's backward with the GIL held. backward returns one gradient per
forward argument (None for non-Tensor arguments and for inputs needing
none).
"""
import inspect

from .. import _C
from .grad_mode import no_grad

__all__ = ["Function", "FunctionCtx"]

_SECOND_TIME = (
    "Trying to backward through the graph a second time (or directly access "
    "saved tensors after they have already been freed). Saved intermediate "
    "values of the graph are freed when you call .backward() or "
    "autograd.grad(). Specify retain_graph=True if you need to backward "
    "through the graph a second time or if you need to access saved tensors "
    "after calling backward.")


def _is_tensor(x):
    return isinstance(x, _C.TensorBase)


class FunctionCtx:
    """The ctx handed to forward/setup_context and backward."""

    def __init__(self):
        self.needs_input_grad = ()
        self.materialize_grads = True
        self._saved = ()            # ((detached alias, version) or None,)
        self._saved_freed = False
        self._non_differentiable = set()
        self._fn_name = "Function"

    def save_for_backward(self, *tensors):
        """Keeps tensors (or None) for backward; read them back with
        saved_tensors, which checks they were not modified in place."""
        saved = []
        for i, t in enumerate(tensors):
            if t is None:
                saved.append(None)
            elif not _is_tensor(t):
                raise TypeError(f"save_for_backward can only save Tensors "
                                f"or None, but argument {i} is "
                                f"{type(t).__name__}")
            else:
                # a detached alias: an output saved here must not keep its
                # own grad_fn (and so this ctx) alive
                saved.append((t.detach(), t._version))
        self._saved = tuple(saved)
        self._saved_freed = False

    @property
    def saved_tensors(self):
        if self._saved_freed:
            raise RuntimeError(_SECOND_TIME)
        out = []
        for entry in self._saved:
            if entry is None:
                out.append(None)
                continue
            t, version = entry
            if t._version != version:
                raise RuntimeError(
                    f"one of the variables needed for gradient computation "
                    f"has been modified by an inplace operation: "
                    f"[{t.dtype} {list(t.shape)}], which is saved by "
                    f"{self._fn_name}, is at version {t._version}; expected "
                    f"version {version} instead.")
            out.append(t)
        return tuple(out)

    def _free_saved(self):
        # called at the end of a backward that freed the graph
        if self._saved:
            self._saved = ()
            self._saved_freed = True

    def mark_non_differentiable(self, *tensors):
        """These outputs get requires_grad=False; backward still receives a
        (zero, or None without materialize_grads) gradient for each."""
        for t in tensors:
            if not _is_tensor(t):
                raise TypeError("mark_non_differentiable only accepts "
                                "Tensors")
            self._non_differentiable.add(id(t))

    def set_materialize_grads(self, value):
        """With False, backward gets None instead of zeros for outputs no
        gradient reached."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors):
        raise NotImplementedError(
            "ctx.mark_dirty: in-place custom Functions are not supported by "
            "dtrain; return a new tensor instead of modifying an input")

    def save_for_forward(self, *tensors):
        raise NotImplementedError("ctx.save_for_forward: forward-mode AD "
                                  "is not supported by dtrain")


class _OutputSlot:
    """How backward's gradient for one forward output is made."""
    __slots__ = ("node_index", "shape", "dtype")

    def __init__(self, node_index, shape, dtype):
        self.node_index = node_index   # index among the node's outputs
        self.shape = shape
        self.dtype = dtype


def _run_backward(ctx, node_grads):
    """Called by the node (GIL held, grad mode off): maps the node's
    gradients to forward outputs and calls the user's backward."""
    grads = []
    for slot in ctx._output_slots:
        g = None
        if slot is not None:
            if slot.node_index is not None:
                g = node_grads[slot.node_index]
            if g is None and ctx.materialize_grads:
                g = _C._full(slot.shape, None, slot.dtype, "zeros")
        grads.append(g)
    cls = ctx._fn_cls
    backward = cls.backward
    if backward is Function.backward:     # torch's other spelling
        backward = cls.vjp
    return backward(ctx, *grads)


class Function:
    """Subclass with static forward(ctx, *args) and backward(ctx, *grads),
    then call Subclass.apply(*args). Alternatively forward(*args) without
    ctx plus setup_context(ctx, inputs, output)."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError(
            f"{type(self).__name__}: autograd.Function is not instantiated; "
            f"define static forward/backward and call "
            f"{type(self).__name__}.apply(...)")

    @staticmethod
    def forward(*args, **kwargs):
        raise NotImplementedError("You must implement the forward function "
                                  "for custom autograd.Function.")

    @staticmethod
    def setup_context(ctx, inputs, output):
        raise NotImplementedError("setup_context is not overridden.")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("You must implement either the backward "
                                  "or vjp method for your custom "
                                  "autograd.Function to use it with "
                                  "backward mode AD.")

    vjp = backward

    @classmethod
    def _bind(cls, has_ctx, args, kwargs):
        """Keyword arguments naming positional parameters become inputs
        (as torch binds them); keyword-only ones stay keywords."""
        if not kwargs:
            return args, kwargs
        sig = cls.__dict__.get("_dt_signature")
        if sig is None:
            sig = inspect.signature(cls.forward)
            cls._dt_signature = sig
        bound = (sig.bind(None, *args, **kwargs) if has_ctx
                 else sig.bind(*args, **kwargs))
        return bound.args[1:] if has_ctx else bound.args, bound.kwargs

    @classmethod
    def apply(cls, *args, **kwargs):
        if cls.forward is Function.forward:
            raise NotImplementedError("You must implement the forward "
                                      "function for custom "
                                      "autograd.Function.")
        split_setup = cls.setup_context is not Function.setup_context
        args, kwargs = cls._bind(not split_setup, args, kwargs)
        grad_on = _C.is_grad_enabled()
        ctx = FunctionCtx()
        ctx._fn_name = cls.__name__ + "Backward"
        ctx.needs_input_grad = tuple(
            grad_on and _is_tensor(a) and a.requires_grad for a in args)
        with no_grad():
            if split_setup:
                output = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, output)
            else:
                output = cls.forward(ctx, *args, **kwargs)
        if not any(ctx.needs_input_grad):
            return output
        return _record(cls, ctx, args, output)


def _record(cls, ctx, args, output):
    """Makes the node the grad_fn of the differentiable outputs."""
    multi = isinstance(output, (tuple, list))
    outs = list(output) if multi else [output]
    input_ids = {id(a) for a in args if _is_tensor(a)}
    seen = set()
    slots, node_outs = [], []
    for i, o in enumerate(outs):
        if not _is_tensor(o):
            slots.append(None)
            continue
        diff = (id(o) not in ctx._non_differentiable and
                o.dtype.is_floating_point)
        if id(o) in input_ids or id(o) in seen or o.requires_grad:
            # an input returned as is (or any tensor with history of its
            # own): the output is a new alias of it, a view, as in PyTorch
            o = o.detach()
            outs[i] = o
        seen.add(id(o))
        slots.append(_OutputSlot(len(node_outs) if diff else None,
                                 tuple(o.shape), o.dtype))
        if diff:
            node_outs.append(o)
    ctx._output_slots = slots
    ctx._fn_cls = cls
    ctx._non_differentiable = set()   # ids are meaningless from here on
    if node_outs:
        inputs = tuple(a if _is_tensor(a) else None for a in args)
        _C._function_record(ctx, _run_backward, inputs, tuple(node_outs),
                            ctx._fn_name)
    if not multi:
        return outs[0]
    return type(output)(outs) if isinstance(output, list) else tuple(outs)
