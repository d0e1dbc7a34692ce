/* ops.h: the op enum every family dispatches on, with its name table.
 *
 * Autograd (a later layer) records one of these in each graph node; the
 * forward and backward of an op live side by side in its family's file:
 *   unary.c      NEG .. CLAMP          binary.c   ADD .. WHERE
 *   reduce.c     SUM .. NORM           matmul.c   MATMUL
 *   join.c       CAT .. SPLIT          index.c    INDEX .. ONE_HOT
 */
#ifndef DT_OPS_H
#define DT_OPS_H

typedef enum dt_op {
    DT_OP_NONE = 0,
    /* unary */
    DT_OP_NEG, DT_OP_ABS, DT_OP_EXP, DT_OP_LOG, DT_OP_SQRT, DT_OP_RSQRT,
    DT_OP_SIN, DT_OP_COS, DT_OP_TANH, DT_OP_SIGMOID, DT_OP_RELU, DT_OP_GELU,
    DT_OP_GELU_TANH, DT_OP_POW_SCALAR, DT_OP_CLAMP,
    /* binary */
    DT_OP_ADD, DT_OP_SUB, DT_OP_MUL, DT_OP_DIV, DT_OP_POW, DT_OP_MAXIMUM,
    DT_OP_MINIMUM, DT_OP_EQ, DT_OP_NE, DT_OP_LT, DT_OP_LE, DT_OP_GT,
    DT_OP_GE, DT_OP_WHERE,
    /* reductions */
    DT_OP_SUM, DT_OP_MEAN, DT_OP_MAX, DT_OP_MIN, DT_OP_ARGMAX, DT_OP_ARGMIN,
    DT_OP_VAR, DT_OP_STD, DT_OP_NORM,
    /* linear algebra */
    DT_OP_MATMUL,
    /* joining and splitting */
    DT_OP_CAT, DT_OP_STACK, DT_OP_SPLIT,
    /* indexing */
    DT_OP_INDEX, DT_OP_INDEX_PUT, DT_OP_GATHER, DT_OP_SCATTER_ADD,
    DT_OP_ONE_HOT,
    /* copies and views */
    DT_OP_COPY, DT_OP_VIEW, DT_OP_EXPAND, DT_OP_PERMUTE,
    DT_OP_COUNT
} dt_op;

extern const char *const dt_op_names[DT_OP_COUNT];

#endif /* DT_OPS_H */
