"""The dtype objects (dtrain.float32, ...) and their PyTorch aliases."""
from ._C import (bfloat16, bool, dtype, float16, float32, float64, int32,
                 int64, uint8)

float = float32
double = float64
half = float16
int = int32
long = int64

__all__ = ["dtype", "float32", "float64", "float16", "bfloat16", "int32",
           "int64", "uint8", "bool", "float", "double", "half", "int",
           "long"]


def get_default_dtype():
    """The dtype of floating tensors made from Python floats."""
    return float32
