/* reduce.h: reductions (sum, mean, max/min, argmax/argmin, var/std, norm).
 *
 * Dims: `dims`/`ndims` list the dims to reduce (negative ones count from
 * the end); ndims == 0 reduces every dim, as PyTorch does for dim=None and
 * dim=(). A 0-dim tensor accepts dim 0 and -1. keepdim keeps each reduced
 * dim with size 1.
 *
 * Outputs follow dt.h: *out == NULL allocates, else the result is written
 * into *out (shape must match, dtype must accept the result).
 *
 * dt_<op>_forward never records autograd history (kernels call it);
 * dt_<op>, with the same arguments, is what the Python glue calls: it runs
 * the forward and records the backward when the input requires grad
 * (reduce_sum_backward.c, reduce_arg_backward.c). argmax/argmin are not
 * differentiable and have no such entry point.
 *
 * The second half of this header is the reduction engine that reduce.c and
 * reduce_arg.c share; nothing outside csrc/ops/reduce*.c should need it.
 */
#ifndef DT_REDUCE_H
#define DT_REDUCE_H

#include "../dt_impl.h"

/* dtype: the result dtype (the input is cast to it first, as in PyTorch),
 * or DT_DTYPE_COUNT for the default: the input dtype for floats, int64 for
 * integers and bool. */
dt_status dt_sum_forward(dt_tensor **out, const dt_tensor *t,
                         const int64_t *dims, int ndims, bool keepdim,
                         dt_dtype dtype);
/* Floating inputs (or a floating dtype) only; the mean of nothing is nan. */
dt_status dt_mean_forward(dt_tensor **out, const dt_tensor *t,
                          const int64_t *dims, int ndims, bool keepdim,
                          dt_dtype dtype);
/* Divides by max(0, N - correction): correction=1 is Bessel's. */
dt_status dt_var_forward(dt_tensor **out, const dt_tensor *t,
                         const int64_t *dims, int ndims, double correction,
                         bool keepdim);
dt_status dt_std_forward(dt_tensor **out, const dt_tensor *t,
                         const int64_t *dims, int ndims, double correction,
                         bool keepdim);
/* Vector p-norm over dims: p may be any float, INFINITY or -INFINITY
 * (p = 2 is also PyTorch's 'fro'). dtype as for sum, floating only. */
dt_status dt_norm_forward(dt_tensor **out, const dt_tensor *t, double p,
                          const int64_t *dims, int ndims, bool keepdim,
                          dt_dtype dtype);

/* amax/amin: the extreme value over dims; NaN wins, as in PyTorch. */
dt_status dt_amax_forward(dt_tensor **out, const dt_tensor *t,
                          const int64_t *dims, int ndims, bool keepdim);
dt_status dt_amin_forward(dt_tensor **out, const dt_tensor *t,
                          const int64_t *dims, int ndims, bool keepdim);
/* max/min: with dim == NULL, the 0-dim extreme of every element (indices
 * must then be NULL); with a dim, the values and the int64 index of the
 * first extreme (or first NaN) along it. */
dt_status dt_max_forward(dt_tensor **values, dt_tensor **indices,
                         const dt_tensor *t, const int64_t *dim,
                         bool keepdim);
dt_status dt_min_forward(dt_tensor **values, dt_tensor **indices,
                         const dt_tensor *t, const int64_t *dim,
                         bool keepdim);
/* argmax/argmin: int64 index of the first extreme; dim == NULL indexes the
 * flattened tensor. */
dt_status dt_argmax_forward(dt_tensor **out, const dt_tensor *t,
                            const int64_t *dim, bool keepdim);
dt_status dt_argmin_forward(dt_tensor **out, const dt_tensor *t,
                            const int64_t *dim, bool keepdim);

/* The recording entry points (reduce_sum_backward.c, reduce_arg_backward.c).
 * max/min with a dim record for the values only. */
dt_status dt_sum(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
                 int ndims, bool keepdim, dt_dtype dtype);
dt_status dt_mean(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
                  int ndims, bool keepdim, dt_dtype dtype);
dt_status dt_var(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
                 int ndims, double correction, bool keepdim);
dt_status dt_std(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
                 int ndims, double correction, bool keepdim);
dt_status dt_norm(dt_tensor **out, const dt_tensor *t, double p,
                  const int64_t *dims, int ndims, bool keepdim,
                  dt_dtype dtype);
dt_status dt_amax(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
                  int ndims, bool keepdim);
dt_status dt_amin(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
                  int ndims, bool keepdim);
dt_status dt_max(dt_tensor **values, dt_tensor **indices, const dt_tensor *t,
                 const int64_t *dim, bool keepdim);
dt_status dt_min(dt_tensor **values, dt_tensor **indices, const dt_tensor *t,
                 const int64_t *dim, bool keepdim);

/* ---------------------------------------------------------------------- */
/* the engine shared by reduce*.c                                          */

/* The input seen as kept dims (the output's) and reduced dims, size-1 dims
 * dropped and mergeable neighbours coalesced. Strides are in bytes for the
 * input, in elements for the output (contiguous, kept dims only). */
typedef struct dt_reduce_plan {
    const char *data;                 /* first input element */
    dt_dtype dtype;                   /* input dtype */
    int nk, nr;
    int64_t ksize[DT_MAX_DIMS], kstride[DT_MAX_DIMS], kout[DT_MAX_DIMS];
    int64_t rsize[DT_MAX_DIMS], rstride[DT_MAX_DIMS];
    int64_t kn, rn;                   /* output numel, reduced numel */
    int64_t out_shape[DT_MAX_DIMS];
    int out_ndim;
} dt_reduce_plan;

/* ordered: keep the reduced dims in logical order (index ops need it);
 * otherwise they are sorted by stride so the inner run is the densest. */
dt_status dt_reduce_plan_init(dt_reduce_plan *p, const dt_tensor *t,
                              const int64_t *dims, int ndims, bool keepdim,
                              bool ordered, const char *op);

/* What a kernel sees. Per output element the engine keeps val (a double,
 * or an int64 for integer inputs) and, for index ops, idx.
 *   inner call (vstride == 0): fold n input elements into val[0]/idx[0];
 *   outer call (vstride > 0): fold element k into val[k * vstride].
 * pos is the logical reduced index of the first element (inner) or of the
 * whole row (outer); index ops use it. */
typedef struct dt_reduce_args {
    const char *in;
    int64_t n, stride;                /* elements, input stride in bytes */
    void *val;                        /* double * or int64_t * */
    int64_t *idx;
    int64_t vstride;
    int64_t pos;
    const double *center;             /* var: the mean, aligned with val */
    double p;                         /* norm: the order */
} dt_reduce_args;

typedef void (*dt_reduce_fn)(const dt_reduce_args *a);

/* Runs `inner` or `outer` over the plan, val/idx holding kn accumulators
 * already set to the op's identity. */
void dt_reduce_run(const dt_reduce_plan *p, dt_reduce_fn inner,
                   dt_reduce_fn outer, void *val, int64_t *idx,
                   const double *center, double norm_p);

/* Element loads for kernels instantiated per dtype: with a constant dtype
 * the switch folds away. Floating inputs compute in double, integer and
 * bool inputs in int64. */
static inline __attribute__((always_inline)) double
dt_reduce_load_f(const char *p, dt_dtype dtype)
{
    switch (dtype) {
    case DT_FLOAT16: return dt_half_to_float(*(const dt_half *)p);
    case DT_BFLOAT16: return dt_bf16_to_float(*(const dt_bf16 *)p);
    case DT_FLOAT32: return *(const float *)p;
    default: return *(const double *)p;
    }
}

static inline __attribute__((always_inline)) int64_t
dt_reduce_load_i(const char *p, dt_dtype dtype)
{
    switch (dtype) {
    case DT_BOOL: return *(const bool *)p;
    case DT_UINT8: return *(const uint8_t *)p;
    case DT_INT32: return *(const int32_t *)p;
    default: return *(const int64_t *)p;
    }
}

/* Defines NAME_<dtype> wrappers around IMPL(a, DT_<dtype>) and a table
 * `NAME` indexed by dtype (IMPL may be a function or a macro). */
#define DT_REDUCE_WRAP(NAME, SUF, DT, IMPL)                               \
    static void NAME##_##SUF(const dt_reduce_args *a)                     \
    {                                                                     \
        IMPL(a, DT);                                                      \
    }
#define DT_REDUCE_FLOAT_TABLE(NAME, IMPL)                                 \
    DT_REDUCE_WRAP(NAME, f16, DT_FLOAT16, IMPL)                           \
    DT_REDUCE_WRAP(NAME, bf16, DT_BFLOAT16, IMPL)                         \
    DT_REDUCE_WRAP(NAME, f32, DT_FLOAT32, IMPL)                           \
    DT_REDUCE_WRAP(NAME, f64, DT_FLOAT64, IMPL)                           \
    static const dt_reduce_fn NAME[DT_DTYPE_COUNT] = {                    \
        [DT_FLOAT16] = NAME##_f16, [DT_BFLOAT16] = NAME##_bf16,           \
        [DT_FLOAT32] = NAME##_f32, [DT_FLOAT64] = NAME##_f64,             \
    };
#define DT_REDUCE_INT_TABLE(NAME, IMPL)                                   \
    DT_REDUCE_WRAP(NAME, b, DT_BOOL, IMPL)                                \
    DT_REDUCE_WRAP(NAME, u8, DT_UINT8, IMPL)                              \
    DT_REDUCE_WRAP(NAME, i32, DT_INT32, IMPL)                             \
    DT_REDUCE_WRAP(NAME, i64, DT_INT64, IMPL)                             \
    static const dt_reduce_fn NAME[DT_DTYPE_COUNT] = {                    \
        [DT_BOOL] = NAME##_b, [DT_UINT8] = NAME##_u8,                     \
        [DT_INT32] = NAME##_i32, [DT_INT64] = NAME##_i64,                 \
    };

/* Writes kn accumulators (doubles, or int64 when is_int) into *out with
 * the plan's output shape and `dtype`. */
dt_status dt_reduce_store(dt_tensor **out, const dt_reduce_plan *p,
                          const void *val, bool is_int, dt_dtype dtype,
                          const char *op);

#endif /* DT_REDUCE_H */
