"""Optimizer: the base class of dtrain.optim, with torch.optim.Optimizer's
surface: param groups with per-group options, lazily created per-parameter
state keyed by the parameter object, zero_grad, add_param_group, and
state_dict/load_state_dict in torch's format:

    {"state": {0: {"step": tensor(3.), "exp_avg": tensor(...), ...}, ...},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, ...]}

where the ints number the parameters in group order. Subclasses gather each
group's parameters and state and call one fused C kernel per parameter
(csrc/ops/optim.c); nothing here does arithmetic on tensor elements.
"""
import functools
import warnings
from collections import defaultdict
from copy import deepcopy
from itertools import chain

from .. import _C
from .._dtypes import float32, float64, get_default_dtype
from .._ops.creation import tensor as _make_tensor
from ..autograd import enable_grad, no_grad

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """Marks a default that every param group must give."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


def _typename(obj):
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


def _is_tensor(x):
    return isinstance(x, _C.TensorBase)


def _to_scalar(x):
    """A one-element tensor (a tensor lr, say) as a Python number."""
    if _is_tensor(x):
        if x.numel() != 1:
            raise ValueError("Tensor must be 1-element")
        return x.item()
    return x


def _scalar_dtype():
    """The dtype of state["step"]: float64 under a float64 default, as
    torch's _get_scalar_dtype."""
    return float64 if get_default_dtype() == float64 else float32


def _new_step(value=0.0):
    return _make_tensor(float(value), dtype=_scalar_dtype())


def _use_grad(step):
    """Runs an optimizer's step with autograd recording off."""

    @functools.wraps(step)
    def wrapper(self, *args, **kwargs):
        with no_grad():
            return step(self, *args, **kwargs)

    return wrapper


def _run_closure(closure):
    if closure is None:
        return None
    with enable_grad():
        return closure()


class Optimizer:
    """Base class: holds param_groups (dicts with "params" and options),
    defaults (the options a group gets when it does not set them) and
    state (a dict per parameter)."""

    def __init__(self, params, defaults):
        self.defaults = defaults
        if _is_tensor(params):
            raise TypeError("params argument given to the optimizer should "
                            "be an iterable of Tensors or dicts, but got "
                            + _typename(params))
        self.state = defaultdict(dict)
        self.param_groups = []
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __getstate__(self):
        return {"defaults": self.defaults, "state": self.state,
                "param_groups": self.param_groups}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.defaults.setdefault("differentiable", False)

    def __repr__(self):
        out = self.__class__.__name__ + " ("
        for i, group in enumerate(self.param_groups):
            out += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params":
                    out += f"    {key}: {group[key]}\n"
        return out + ")"

    def step(self, closure=None):
        """Performs one optimization step; closure re-evaluates the model
        and returns the loss."""
        raise NotImplementedError

    def zero_grad(self, set_to_none=True):
        """Resets the gradients of all optimized tensors: to None (the
        default), or to zeros when set_to_none=False."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                g = p.grad
                if g.grad_fn is not None:
                    g.detach_()
                else:
                    g.requires_grad_(False)
                g.zero_()

    # ---------------------------------------------------------- groups

    def add_param_group(self, param_group):
        """Adds a group of parameters (a dict with "params" and options;
        missing options come from defaults)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got "
                            f"{type(param_group)}")
        params = param_group["params"]
        if _is_tensor(params):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("optimizer parameters need to be organized in "
                            "ordered collections, but the ordering of "
                            "tensors in sets will change between runs. "
                            "Please use a list instead.")
        else:
            params = list(params)
        self._split_names(param_group, params)
        for param in param_group["params"]:
            if not _is_tensor(param):
                raise TypeError("optimizer can only optimize Tensors, but "
                                "one of the params is " + _typename(param))
            if not self.defaults.get("differentiable", None) and not (
                    param.is_leaf or getattr(param, "retains_grad", False)):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(f"parameter group didn't specify a value of "
                                 f"required optimization parameter {name}")
            param_group.setdefault(name, default)
        self._check_disjoint(param_group)
        self.param_groups.append(param_group)

    @staticmethod
    def _split_names(param_group, params):
        """Accepts (name, tensor) pairs, as from named_parameters()."""
        names = [p[0] for p in params if isinstance(p, tuple)]
        param_group["params"] = [p[1] if isinstance(p, tuple) else p
                                 for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError("all optimizer params should be with/"
                                 "without names. Some param names are "
                                 "missing")
            param_group["param_names"] = names

    def _check_disjoint(self, param_group):
        params = param_group["params"]
        if len(params) != len(set(params)):
            warnings.warn("optimizer contains a parameter group with "
                          "duplicate parameters; in future, this will cause "
                          "an error; see github.com/pytorch/pytorch/issues/"
                          "40967 for more information", stacklevel=4)
        param_set = set()
        for group in self.param_groups:
            param_set.update(set(group["params"]))
            if ("param_names" in param_group) != ("param_names" in group):
                txt = ("with names" if "param_names" in param_group
                       else "without names")
                raise ValueError("all optimizer param groups should be "
                                 "with/without names. cannot add param "
                                 f"group {txt} to the optimizer")
        if not param_set.isdisjoint(set(params)):
            raise ValueError("some parameters appear in more than one "
                             "parameter group")

    # ---------------------------------------------------------- state

    def state_dict(self):
        """The optimizer's state as {"state": {index: {...}},
        "param_groups": [{..., "params": [index, ...]}]}. The state tensors
        are the live ones (not copies), as in torch."""
        mapping = {}
        start = 0

        def pack_group(group):
            nonlocal start
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                mapping.setdefault(id(p), i)
            packed["params"] = [mapping[id(p)] for p in group["params"]]
            start += len(packed["params"])
            return packed

        param_groups = [pack_group(g) for g in self.param_groups]
        packed_state = {(mapping[id(k)] if _is_tensor(k) else k): v
                        for k, v in self.state.items()}
        return {"state": packed_state, "param_groups": param_groups}

    def load_state_dict(self, state_dict):
        """Loads a state_dict() result (possibly through dtrain.save/load).
        Groups are matched by position and must have the same sizes;
        floating state tensors are cast to their parameter's dtype, except
        "step"."""
        state_dict = state_dict.copy()
        groups = self.param_groups
        saved_groups = deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of "
                             "parameter groups")
        if any(len(g["params"]) != len(s["params"])
               for g, s in zip(groups, saved_groups)):
            raise ValueError("loaded state dict contains a parameter group "
                             "that doesn't match the size of optimizer's "
                             "group")
        id_map = dict(zip(
            chain.from_iterable(g["params"] for g in saved_groups),
            chain.from_iterable(g["params"] for g in groups)))
        state = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                state[id_map[k]] = _cast_state(id_map[k], v)
            else:
                state[k] = v

        def update_group(group, new_group):
            new_group["params"] = group["params"]
            if "param_names" in group and "param_names" not in new_group:
                new_group["param_names"] = group["param_names"]
            return new_group

        param_groups = [update_group(g, ng)
                        for g, ng in zip(groups, saved_groups)]
        self.__setstate__({"state": state, "param_groups": param_groups})


def _cast_state(param, value, key=None):
    """torch's load-time policy: floating state tensors take the param's
    dtype ("step" stays as saved); containers are rebuilt."""
    if _is_tensor(value):
        if key == "step" or not param.is_floating_point():
            return value
        return value.to(dtype=param.dtype)
    if isinstance(value, dict):
        return {k: _cast_state(param, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(param, v) for v in value)
    return value
