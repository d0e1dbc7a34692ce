/* elementwise.h: the elementwise op family, PyTorch semantics.
 *
 *   unary.c     neg abs exp log sqrt rsqrt sin cos tanh sigmoid relu gelu
 *               gelu_tanh
 *   pow.c       pow by a scalar, tensor ** tensor, number ** tensor
 *   clamp.c     clamp
 *   binary.c    add sub mul div
 *   compare.c   eq ne lt le gt ge, maximum minimum, where
 *
 * Each op has a pure kernel, dt_<op>_forward (what other kernels and
 * backwards call; it never records), and an entry point dt_<op> (what the
 * Python glue calls): the same forward, recording a graph node when grad
 * mode is on and an input requires grad. In place (*out is the first
 * input) the entry point refuses a leaf that requires grad before writing;
 * with out= it refuses autograd altogether, as PyTorch does.
 *
 * Every function follows dt.h's output convention: *out == NULL allocates
 * the result; a tensor in *out is written into (in place when it is the
 * first input, out= otherwise) after checking that the broadcast shape
 * matches and the result dtype can be cast to it.
 *
 * Inputs broadcast against each other (NumPy rules), promote by PyTorch's
 * result_type (Python numbers arrive as wrapped 0-dim tensors and promote
 * only by category), and may be any strided view. Integer inputs to
 * floating functions (exp, sqrt, sigmoid, true division...) give float32.
 */
#ifndef DT_ELEMENTWISE_H
#define DT_ELEMENTWISE_H

#include "../dt.h"
#include "ops.h"

/* ---------------------------------------------------------------------- */
/* unary.c                                                                 */

/* op in DT_OP_NEG .. DT_OP_GELU_TANH (DT_OP_GELU is the exact erf form,
 * DT_OP_GELU_TANH the tanh approximation). */
dt_status dt_unary_forward(dt_tensor **out, const dt_tensor *x, dt_op op);
/* x ** exponent for a 0-dim exponent (usually a Python number). Integer
 * bases to a negative integer exponent are an error, as in PyTorch. */
dt_status dt_pow_scalar_forward(dt_tensor **out, const dt_tensor *x,
                                const dt_tensor *exponent);
/* min(max(x, lo), hi) with NaNs propagated; lo and hi are tensors that
 * broadcast with x (0-dim for scalars) or NULL, but not both NULL. */
dt_status dt_clamp_forward(dt_tensor **out, const dt_tensor *x,
                           const dt_tensor *lo, const dt_tensor *hi);

/* ---------------------------------------------------------------------- */
/* binary.c                                                                */

/* a op b for DT_OP_ADD, SUB, MUL, DIV (true division), POW, MAXIMUM,
 * MINIMUM, and the comparisons EQ .. GE (bool result). */
dt_status dt_binary_forward(dt_tensor **out, const dt_tensor *a,
                            const dt_tensor *b, dt_op op);
/* a + alpha * b and a - alpha * b; alpha is a 0-dim tensor or NULL (1). */
dt_status dt_add_forward(dt_tensor **out, const dt_tensor *a,
                         const dt_tensor *b, const dt_tensor *alpha);
dt_status dt_sub_forward(dt_tensor **out, const dt_tensor *a,
                         const dt_tensor *b, const dt_tensor *alpha);

typedef enum dt_rounding {
    DT_ROUND_NONE = 0,   /* true division: integers give float32 */
    DT_ROUND_TRUNC,      /* toward zero, in the promoted dtype */
    DT_ROUND_FLOOR       /* toward -inf, in the promoted dtype */
} dt_rounding;

dt_status dt_div_forward(dt_tensor **out, const dt_tensor *a,
                         const dt_tensor *b, dt_rounding mode);

/* ---------------------------------------------------------------------- */
/* compare.c                                                               */

/* The comparisons behind dt_binary_forward: a op b as bool. */
dt_status dt_compare_forward(dt_tensor **out, const dt_tensor *a,
                             const dt_tensor *b, dt_op op);
/* cond ? x : y, all three broadcast; cond must be bool. */
dt_status dt_where_forward(dt_tensor **out, const dt_tensor *cond,
                           const dt_tensor *x, const dt_tensor *y);

/* ---------------------------------------------------------------------- */
/* entry points (recording)                                                */

dt_status dt_unary(dt_tensor **out, const dt_tensor *x, dt_op op);
dt_status dt_pow_scalar(dt_tensor **out, const dt_tensor *x,
                        const dt_tensor *exponent);
/* a ** b; a Python-number exponent (wrapped 0-dim) of a tensor base goes
 * to dt_pow_scalar, as the glue wants. */
dt_status dt_pow(dt_tensor **out, const dt_tensor *a, const dt_tensor *b);
dt_status dt_clamp(dt_tensor **out, const dt_tensor *x, const dt_tensor *lo,
                   const dt_tensor *hi);
/* Every op dt_binary_forward takes; comparisons record only in place. */
dt_status dt_binary(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
                    dt_op op);
dt_status dt_add(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
                 const dt_tensor *alpha);
dt_status dt_sub(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
                 const dt_tensor *alpha);
/* Rounding modes record a node whose gradients are zero, as PyTorch's. */
dt_status dt_div(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
                 dt_rounding mode);
dt_status dt_where(dt_tensor **out, const dt_tensor *cond, const dt_tensor *x,
                   const dt_tensor *y);

#endif /* DT_ELEMENTWISE_H */
