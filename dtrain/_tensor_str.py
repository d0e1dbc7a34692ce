"""Printing tensors the way torch does (placeholder until formatting lands)."""


def tensor_repr(t):
    return f"tensor({t.tolist()!r}, dtype=dtrain.{t.dtype})"
