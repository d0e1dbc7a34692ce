/* reduce_grad.h: what the reduction backwards share (reduce_backward.c
 * defines these; reduce_arg_backward.c uses them too).
 *
 * A reduction node keeps its dims as a mask over the input's dims:
 *   iargs[DT_RG_KEEPDIM]   keepdim
 *   iargs[DT_RG_HASDIM]    dims were given (0: dim=None, every dim)
 *   iargs[DT_RG_MASK + d]  input dim d was reduced
 * and its scalar parameter (correction, p) in dargs[0].
 *
 * The backwards work on two kinds of tensors: full ones with the input's
 * shape, and small ones with one element per output. Small ones are kept
 * as contiguous float64 in the keepdim shape and expanded to the input's
 * shape as stride-0 views, so nothing output-sized is broadcast into
 * memory until the one fused pass (dt_reduce_grad_map) that writes the
 * gradient.
 */
#ifndef DT_REDUCE_GRAD_H
#define DT_REDUCE_GRAD_H

#include "../autograd/autograd.h"
#include "reduce.h"

enum { DT_RG_KEEPDIM = 0, DT_RG_HASDIM = 1, DT_RG_MASK = 2 };

/* Forward ran into *out: records `name` when t requires grad and the
 * result is floating (*n stays NULL otherwise). On failure releases
 * *out. Refuses an out= tensor when recording, as PyTorch does. */
dt_status dt_reduce_record(dt_node **n, dt_tensor **out, const dt_tensor *t,
                           const int64_t *dims, int ndims, bool keepdim,
                           const char *name, dt_backward_fn fn);
/* The refusal alone, for entry points to call before the forward. */
dt_status dt_reduce_check_out(const dt_tensor *out, const dt_tensor *t,
                              const char *op);

/* The node's reduced dims as a list (returns how many; 0: every dim) and
 * how many elements fold into each output. */
int dt_reduce_grad_dims(int64_t *dims, const dt_node *n);
int64_t dt_reduce_grad_count(const dt_node *n);

/* g (output-shaped, or keepdim-shaped when `kd`) as a stride-0 view with
 * the input's shape. */
dt_status dt_reduce_grad_expand(dt_tensor **out, const dt_tensor *g,
                                const dt_node *n, bool kd);
/* t (output- or keepdim-shaped) as a contiguous float64 tensor in the
 * keepdim shape. */
dt_status dt_reduce_grad_small(dt_tensor **out, const dt_tensor *t,
                               const dt_node *n);

/* What dt_reduce_grad_map computes per element from x (the input), r and
 * g (small float64 tensors, expanded): */
typedef enum dt_rg_kind {
    DT_RG_VAR,        /* (x - r) * g, r the mean */
    DT_RG_VAR_DOF0,   /* (x == r ? nan : inf) * g: no degrees of freedom */
    DT_RG_MASK_MUL,   /* (x == r) * g: amax/amin, where g / 0 gives nan */
    DT_RG_MASK_SEL,   /* x matches r (both nan counts) ? g : 0: max() */
    DT_RG_NORM_1,     /* sgn(x) * g */
    DT_RG_NORM_2,     /* r == 0 ? 0 : g * (x / r) */
    DT_RG_NORM_INF,   /* sgn(x) * (g * (|x| == r || isnan(x))) */
    DT_RG_NORM_LT1,   /* sgn(x) * (x == 0 ? 0 : |x|^(p-1)) * g */
    DT_RG_NORM_LT2,   /* sgn(x) * |x|^(p-1) * g */
    DT_RG_NORM_GE2    /* x * |x|^(p-2) * g */
} dt_rg_kind;

/* out (new, x's shape and dtype): the elementwise formula of `kind` over
 * x and the expansions of the small tensors r and g (r may be NULL for
 * kinds that don't read it). */
dt_status dt_reduce_grad_map(dt_tensor **out, const dt_tensor *x,
                             const dt_tensor *r, const dt_tensor *g,
                             const dt_node *n, dt_rg_kind kind, double p);

/* How many elements of each reduced slice of x match the small float64
 * result r; ties share the gradient. mode: 0 x == r; 1 the same, but a
 * nan r matches nan x; 2 |x| == r or x is nan. count: one double per
 * output (new, keepdim shape). */
dt_status dt_reduce_grad_ties(dt_tensor **count, const dt_tensor *x,
                              const dt_tensor *r, const dt_node *n,
                              int mode);

#endif /* DT_REDUCE_GRAD_H */
