"""Elementwise ops: the functions dtrain exports at top level.

Thin wrappers over dtrain._C (csrc/python/py_elementwise.c) with PyTorch's
names and signatures. Binary ops broadcast and promote like torch; either
operand may be a Python number (dtrain.add(2, t)). The Tensor methods
(t.add(b), t.exp_(), t.clamp(min=0), ...) and operators come from the C
type directly.
"""
from .. import _C

__all__ = [
    "add", "sub", "subtract", "rsub", "mul", "multiply", "div", "divide",
    "true_divide", "pow", "maximum", "minimum",
    "eq", "ne", "lt", "le", "gt", "ge", "greater", "greater_equal", "less",
    "less_equal", "not_equal", "where",
    "neg", "negative", "abs", "absolute", "exp", "log", "sqrt", "rsqrt",
    "sin", "cos", "tanh", "sigmoid", "relu", "gelu", "square", "clamp",
    "clip",
]


# ---------------------------------------------------------------------------
# binary

def add(input, other, *, alpha=1, out=None):
    """input + alpha * other."""
    return _C.add(input, other, alpha=alpha, out=out)


def sub(input, other, *, alpha=1, out=None):
    """input - alpha * other."""
    return _C.sub(input, other, alpha=alpha, out=out)


def rsub(input, other, *, alpha=1):
    """other - alpha * input."""
    return _C.sub(other, input, alpha=alpha)


def mul(input, other, *, out=None):
    return _C.mul(input, other, out=out)


def div(input, other, *, rounding_mode=None, out=None):
    """True division (integers give float32) unless rounding_mode is
    'trunc' or 'floor'."""
    return _C.div(input, other, rounding_mode=rounding_mode, out=out)


def true_divide(dividend, divisor, *, out=None):
    return _C.div(dividend, divisor, out=out)


def pow(input, exponent, *, out=None):
    """input ** exponent; either may be a number."""
    return _C.pow(input, exponent, out=out)


def maximum(input, other, *, out=None):
    """Elementwise max; NaN if either is NaN."""
    return _C.maximum(input, other, out=out)


def minimum(input, other, *, out=None):
    """Elementwise min; NaN if either is NaN."""
    return _C.minimum(input, other, out=out)


def eq(input, other, *, out=None):
    return _C.eq(input, other, out=out)


def ne(input, other, *, out=None):
    return _C.ne(input, other, out=out)


def lt(input, other, *, out=None):
    return _C.lt(input, other, out=out)


def le(input, other, *, out=None):
    return _C.le(input, other, out=out)


def gt(input, other, *, out=None):
    return _C.gt(input, other, out=out)


def ge(input, other, *, out=None):
    return _C.ge(input, other, out=out)


def where(condition, input=None, other=None, *, out=None):
    """condition ? input : other, all three broadcast; input and other may
    be numbers. With only a condition, the indices of its nonzeros, as
    torch.where(condition) does."""
    if input is None and other is None:
        return condition.nonzero(as_tuple=True)
    return _C.where(condition, input, other, out=out)


subtract, multiply, divide = sub, mul, div
greater, greater_equal, less, less_equal, not_equal = gt, ge, lt, le, ne


# ---------------------------------------------------------------------------
# unary

def neg(input, *, out=None):
    return _C.neg(input, out=out)


def abs(input, *, out=None):
    return _C.abs(input, out=out)


def exp(input, *, out=None):
    return _C.exp(input, out=out)


def log(input, *, out=None):
    return _C.log(input, out=out)


def sqrt(input, *, out=None):
    return _C.sqrt(input, out=out)


def rsqrt(input, *, out=None):
    return _C.rsqrt(input, out=out)


def sin(input, *, out=None):
    return _C.sin(input, out=out)


def cos(input, *, out=None):
    return _C.cos(input, out=out)


def tanh(input, *, out=None):
    return _C.tanh(input, out=out)


def sigmoid(input, *, out=None):
    return _C.sigmoid(input, out=out)


def relu(input):
    return _C.relu(input)


def gelu(input, approximate="none"):
    """x * Phi(x) (exact, through erf) or, with approximate='tanh', the
    tanh approximation, as torch.nn.functional.gelu."""
    return _C.gelu(input, approximate=approximate)


def square(input):
    return _C.pow(input, 2)


def clamp(input, min=None, max=None, *, out=None):
    """Limits input to [min, max]; either bound (a number or a tensor) may
    be None, but not both."""
    return _C.clamp(input, min, max, out=out)


negative, absolute, clip = neg, abs, clamp
