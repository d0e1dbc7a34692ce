/* ops.c: the op name table; a new op without a name fails to compile. */
#include "ops.h"

const char *const dt_op_names[] = {
    "none",
    "neg", "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tanh",
    "sigmoid", "relu", "gelu", "gelu_tanh", "pow", "clamp",
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne",
    "lt", "le", "gt", "ge", "where",
    "sum", "mean", "max", "min", "argmax", "argmin", "var", "std", "norm",
    "matmul",
    "cat", "stack", "split",
    "index", "index_put_", "gather", "scatter_add", "one_hot",
    "copy_", "view", "expand", "permute",
};
_Static_assert(sizeof dt_op_names / sizeof dt_op_names[0] == DT_OP_COUNT,
               "every op needs a name");
_Static_assert(DT_OP_COUNT == 52, "update the op tables");
