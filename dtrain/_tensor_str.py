"""Printing tensors the way torch does.

torch's rules (torch/_tensor_str.py): 4 digits of precision; past 1000
elements only `edgeitems` (3) rows/items at each end of every dim are
shown, with `...` between; 1-d rows wrap at 80 columns; one formatter per
tensor picks a common width and switches to scientific notation when the
nonzero finite magnitudes span more than 1000x, exceed 1e8 or go below
1e-4; floats that are all integers print as `1.`. The dtype is shown
unless it is float32, int64 or bool.

Everything here works on Python values from tolist() (on the summarised
edges only, for big tensors), so printing needs no tensor math.
"""
import math

from . import _C


class _PrintOptions:
    __slots__ = ("precision", "threshold", "edgeitems", "linewidth",
                 "sci_mode")

    def __init__(self):
        self.precision = 4
        self.threshold = 1000
        self.edgeitems = 3
        self.linewidth = 80
        self.sci_mode = None


PRINT_OPTS = _PrintOptions()

_PROFILES = {
    "default": (4, 1000, 3, 80),
    "short": (2, 1000, 2, 80),
    "full": (4, math.inf, 3, 80),
}


def set_printoptions(precision=None, threshold=None, edgeitems=None,
                     linewidth=None, profile=None, sci_mode=None):
    """As torch.set_printoptions; sci_mode=None means "decide per tensor"."""
    if profile is not None:
        (PRINT_OPTS.precision, PRINT_OPTS.threshold, PRINT_OPTS.edgeitems,
         PRINT_OPTS.linewidth) = _PROFILES[profile]
    if precision is not None:
        PRINT_OPTS.precision = precision
    if threshold is not None:
        PRINT_OPTS.threshold = threshold
    if edgeitems is not None:
        PRINT_OPTS.edgeitems = edgeitems
    if linewidth is not None:
        PRINT_OPTS.linewidth = linewidth
    PRINT_OPTS.sci_mode = sci_mode


class _Formatter:
    """One width and style for every element of a tensor."""

    def __init__(self, values, floating):
        self.floating = floating
        self.int_mode = True
        self.sci_mode = False
        self.max_width = 1
        p = PRINT_OPTS.precision
        if not floating:
            for v in values:
                self.max_width = max(self.max_width, len(f"{v}"))
            return
        finite = [v for v in values if math.isfinite(v) and v != 0]
        if not finite:
            return
        mags = [abs(v) for v in finite]
        lo, hi = min(mags), max(mags)
        self.int_mode = all(v == math.ceil(v) for v in finite)
        if PRINT_OPTS.sci_mode is None:
            self.sci_mode = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
        else:
            self.sci_mode = PRINT_OPTS.sci_mode
        if self.sci_mode:
            strs = [f"{v:.{p}e}" for v in finite]
        elif self.int_mode:
            strs = [f"{v:.0f}." for v in finite]   # room for the point
        else:
            strs = [f"{v:.{p}f}" for v in finite]
        self.max_width = max(len(s) for s in strs)

    def width(self):
        return self.max_width

    def format(self, value):
        p = PRINT_OPTS.precision
        if not self.floating:
            ret = f"{value}"
        elif self.sci_mode:
            ret = f"{value:{self.max_width}.{p}e}"
        elif self.int_mode:
            ret = f"{value:.0f}"
            if math.isfinite(value):
                ret += "."
        else:
            ret = f"{value:.{p}f}"
        return (self.max_width - len(ret)) * " " + ret


# ---------------------------------------------------------------------------
# values: nested lists, with Ellipsis where a summarised dim skips items

def _gather(t, summarize):
    if not summarize:
        return t.tolist()
    e = PRINT_OPTS.edgeitems
    n = t.shape[0]
    if t.ndim == 1:
        if n > 2 * e:
            return (t.narrow(0, 0, e).tolist() + [...] +
                    t.narrow(0, n - e, e).tolist())
        return t.tolist()
    rows = (list(range(e)) + [None] + list(range(n - e, n))
            if n > 2 * e else range(n))
    return [... if i is None else _gather(t.select(0, i), True)
            for i in rows]


def _leaves(nested, out):
    if isinstance(nested, list):
        for x in nested:
            _leaves(x, out)
    elif nested is not ...:
        out.append(nested)
    return out


# ---------------------------------------------------------------------------
# layout

def _vector_str(values, indent, summarize, fmt):
    # each element takes its width plus ", "
    element_length = fmt.width() + 2
    per_line = max(1, math.floor((PRINT_OPTS.linewidth - indent) /
                                 element_length))
    if summarize and not PRINT_OPTS.edgeitems:
        data = ["..."]
    else:
        data = [" ..." if v is ... else fmt.format(v) for v in values]
    lines = [", ".join(data[i:i + per_line])
             for i in range(0, len(data), per_line)]
    return "[" + ("," + "\n" + " " * (indent + 1)).join(lines) + "]"


def _nested_str(values, dim, indent, summarize, fmt):
    if dim == 0:
        return fmt.format(values)
    if dim == 1:
        return _vector_str(values, indent, summarize, fmt)
    slices = ["..." if v is ... else
              _nested_str(v, dim - 1, indent + 1, summarize, fmt)
              for v in values]
    sep = "," + "\n" * (dim - 1) + " " * (indent + 1)
    return "[" + sep.join(slices) + "]"


def _tensor_str(t, indent):
    if t.numel() == 0:
        return "[]"
    summarize = t.numel() > PRINT_OPTS.threshold
    values = _gather(t, summarize)
    fmt = _Formatter(_leaves(values, []), t.dtype.is_floating_point)
    return _nested_str(values, t.ndim, indent, summarize, fmt)


def _add_suffixes(tensor_str, suffixes, indent):
    parts = [tensor_str]
    last_line_len = len(tensor_str) - tensor_str.rfind("\n") + 1
    for suffix in suffixes:
        if last_line_len + len(suffix) + 2 > PRINT_OPTS.linewidth:
            parts.append(",\n" + " " * indent + suffix)
            last_line_len = indent + len(suffix)
        else:
            parts.append(", " + suffix)
            last_line_len += len(suffix) + 2
    parts.append(")")
    return "".join(parts)


_SILENT_DTYPES = (_C.float32, _C.int64, _C.bool)


def tensor_repr(t):
    name = type(t).__name__
    prefix = "tensor(" if name in ("Tensor", "Parameter") else f"{name}("
    indent = len(prefix)
    suffixes = []
    if t.device.type != "cpu":
        suffixes.append(f"device='{t.device}'")
    if t.numel() == 0:
        # NumPy's rule: show the shape unless it is (0,); an empty tensor
        # has no values to tell int64 from float32, so only float32 is
        # silent
        if t.ndim != 1:
            suffixes.append(f"size={tuple(t.shape)}")
        if t.dtype != _C.float32:
            suffixes.append(f"dtype={t.dtype}")
        body = "[]"
    else:
        if not PRINT_OPTS.edgeitems:
            suffixes.append(f"size={tuple(t.shape)}")
        if t.dtype not in _SILENT_DTYPES:
            suffixes.append(f"dtype={t.dtype}")
        body = _tensor_str(t, indent)
    grad_fn = getattr(t, "grad_fn", None)
    if grad_fn is not None:
        name = grad_fn.name() if hasattr(grad_fn, "name") else type(grad_fn).__name__
        suffixes.append(f"grad_fn=<{name}>")
    elif getattr(t, "requires_grad", False):
        suffixes.append("requires_grad=True")
    return _add_suffixes(prefix + body, suffixes, indent)
