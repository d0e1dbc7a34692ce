"""index ops: the functions dtrain exports at top level."""

__all__ = []
