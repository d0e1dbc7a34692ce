"""dtrain.nn.functional: torch.nn.functional's names and signatures.

Each function normalises its arguments (ints to pairs, reduction strings to
the core's enum, implicit dims) and calls one C op in dtrain._C, where the
forward and backward live (csrc/ops/nn_*.c).
"""
import warnings

from .. import _C
from .._ops.elementwise import gelu as _gelu
from .._ops.index import one_hot  # noqa: F401  (torch has it here too)

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _reduction(reduction, size_average=None, reduce=None):
    if size_average is not None or reduce is not None:
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("none" if not reduce else
                     "mean" if size_average else "sum")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return _REDUCTIONS[reduction]


def _pair(x, name):
    if isinstance(x, int):
        return (x, x)
    x = tuple(x)
    if len(x) == 1:
        return (x[0], x[0])
    if len(x) != 2 or not all(isinstance(v, int) for v in x):
        raise ValueError(f"{name} must be an int or a pair of ints, got {x!r}")
    return x


def _softmax_dim(ndim):
    warnings.warn("Implicit dimension choice for softmax has been "
                  "deprecated. Change the call to include dim=X as an "
                  "argument.", stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


# ---------------------------------------------------------------- layers

def linear(input, weight, bias=None):
    return _C.linear(input, weight, bias)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1,
           groups=1):
    dilation = _pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if _pair(stride, "stride") != (1, 1):
                raise ValueError("padding='same' is not supported for "
                                 "strided convolutions")
            k = weight.shape[2:]
            total = [d * (s - 1) for d, s in zip(dilation, k)]
            if any(t % 2 for t in total):
                raise NotImplementedError("padding='same' with an even "
                                          "effective kernel size")
            padding = (total[0] // 2, total[1] // 2)
        else:
            raise ValueError(f"Invalid padding string {padding!r}, should "
                             f"be one of ('valid', 'same')")
    return _C.conv2d(input, weight, bias, _pair(stride, "stride"),
                     _pair(padding, "padding"), dilation, groups)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode=False, return_indices=False):
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or stride == [] else _pair(stride, "stride")
    out, idx = _C.max_pool2d(input, k, s, _pair(padding, "padding"),
                             _pair(dilation, "dilation"), bool(ceil_mode))
    return (out, idx) if return_indices else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    k = _pair(kernel_size, "kernel_size")
    s = k if stride is None or stride == [] else _pair(stride, "stride")
    return _C.avg_pool2d(input, k, s, _pair(padding, "padding"),
                         bool(ceil_mode), bool(count_include_pad),
                         0 if divisor_override is None else divisor_override)


def adaptive_avg_pool2d(input, output_size):
    if isinstance(output_size, int):
        output_size = (output_size, output_size)
    size = tuple(input.shape[-2 + i] if s is None else s
                 for i, s in enumerate(output_size))
    return _C.adaptive_avg_pool2d(input, _pair(size, "output_size"))


def embedding(input, weight, padding_idx=None, max_norm=None,
              norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq "
                                  "and sparse are not supported")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return _C.embedding(input, weight, -1 if padding_idx is None
                        else padding_idx)


def dropout(input, p=0.5, training=True, inplace=False):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, "
                         f"but got {p}")
    if not training or p == 0.0:
        return input
    out = _C.dropout(input, float(p))
    return input.copy_(out) if inplace else out


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    if isinstance(normalized_shape, int):
        normalized_shape = (normalized_shape,)
    return _C.layer_norm(input, tuple(normalized_shape), weight, bias,
                         float(eps))


def batch_norm(input, running_mean, running_var, weight=None, bias=None,
               training=False, momentum=0.1, eps=1e-5):
    if training and input.numel() // input.shape[1] <= 1:
        raise ValueError(f"Expected more than 1 value per channel when "
                         f"training, got input size {list(input.shape)}")
    return _C.batch_norm(input, running_mean, running_var, weight, bias,
                         bool(training), float(momentum), float(eps))


# ---------------------------------------------------------------- activations

def relu(input, inplace=False):
    return input.relu_() if inplace else input.relu()


def gelu(input, approximate="none"):
    return _gelu(input, approximate=approximate)


def tanh(input):
    return input.tanh()


def sigmoid(input):
    return input.sigmoid()


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return _C.softmax(input, _softmax_dim(input.ndim) if dim is None else dim)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    if dtype is not None:
        input = input.to(dtype)
    return _C.log_softmax(input, _softmax_dim(input.ndim) if dim is None
                          else dim)


# ---------------------------------------------------------------- losses

def cross_entropy(input, target, weight=None, size_average=None,
                  ignore_index=-100, reduce=None, reduction="mean",
                  label_smoothing=0.0):
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: "
                         f"{label_smoothing}")
    return _C.cross_entropy(input, target, weight, ignore_index,
                            _reduction(reduction, size_average, reduce),
                            float(label_smoothing))


def nll_loss(input, target, weight=None, size_average=None,
             ignore_index=-100, reduce=None, reduction="mean"):
    return _C.nll_loss(input, target, weight, ignore_index,
                       _reduction(reduction, size_average, reduce))


def mse_loss(input, target, size_average=None, reduce=None,
             reduction="mean"):
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(f"Using a target size ({target.shape}) that is "
                      f"different to the input size ({input.shape}). This "
                      f"will likely lead to incorrect results due to "
                      f"broadcasting. Please ensure they have the same "
                      f"size.", stacklevel=2)
    return _C.mse_loss(input, target,
                       _reduction(reduction, size_average, reduce))


def binary_cross_entropy_with_logits(input, target, weight=None,
                                     size_average=None, reduce=None,
                                     reduction="mean", pos_weight=None):
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"Target size ({list(target.shape)}) must be the "
                         f"same as input size ({list(input.shape)})")
    return _C.binary_cross_entropy_with_logits(
        input, target, weight, pos_weight,
        _reduction(reduction, size_average, reduce))
