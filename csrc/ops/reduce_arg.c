/* reduce_arg.c: the extreme-value reductions: amax/amin, max/min (with
 * or without a dim), argmax/argmin.
 *
 * PyTorch's rules: NaN wins (the first NaN gives the index), ties give the
 * first occurrence, an empty reduction is an error because max has no
 * identity. Floating inputs compare as double, integer and bool inputs as
 * int64, both exact.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "reduce.h"

static inline __attribute__((always_inline)) bool
better_f(double x, double best, bool is_max)
{
    return (is_max ? x > best : x < best) || (isnan(x) && !isnan(best));
}

/* Kernels: fold into val (and idx, when the op wants indices). With the
 * accumulator starting at the -inf/+inf identity, a strict comparison
 * keeps the first of equal values. */
static inline __attribute__((always_inline)) void
ext_inner_f(const dt_reduce_args *a, dt_dtype dt, bool is_max)
{
    double *v = a->val, best = *v;
    int64_t bi = -1;
    for (int64_t i = 0; i < a->n; i++) {
        double x = dt_reduce_load_f(a->in + i * a->stride, dt);
        if (better_f(x, best, is_max)) {
            best = x;
            bi = i;
        }
    }
    *v = best;
    if (a->idx && bi >= 0) {
        *a->idx = a->pos + bi;
    }
}

static inline __attribute__((always_inline)) void
ext_outer_f(const dt_reduce_args *a, dt_dtype dt, bool is_max)
{
    double *v = a->val;
    for (int64_t k = 0; k < a->n; k++) {
        double x = dt_reduce_load_f(a->in + k * a->stride, dt);
        double *o = v + k * a->vstride;
        if (better_f(x, *o, is_max)) {
            *o = x;
            if (a->idx) {
                a->idx[k * a->vstride] = a->pos;
            }
        }
    }
}

static inline __attribute__((always_inline)) void
ext_inner_i(const dt_reduce_args *a, dt_dtype dt, bool is_max)
{
    int64_t *v = a->val, best = *v;
    int64_t bi = -1;
    for (int64_t i = 0; i < a->n; i++) {
        int64_t x = dt_reduce_load_i(a->in + i * a->stride, dt);
        if (is_max ? x > best : x < best) {
            best = x;
            bi = i;
        }
    }
    *v = best;
    if (a->idx && bi >= 0) {
        *a->idx = a->pos + bi;
    }
}

static inline __attribute__((always_inline)) void
ext_outer_i(const dt_reduce_args *a, dt_dtype dt, bool is_max)
{
    int64_t *v = a->val;
    for (int64_t k = 0; k < a->n; k++) {
        int64_t x = dt_reduce_load_i(a->in + k * a->stride, dt);
        int64_t *o = v + k * a->vstride;
        if (is_max ? x > *o : x < *o) {
            *o = x;
            if (a->idx) {
                a->idx[k * a->vstride] = a->pos;
            }
        }
    }
}

#define MAX_INNER_F(a, dt) ext_inner_f(a, dt, true)
#define MAX_OUTER_F(a, dt) ext_outer_f(a, dt, true)
#define MIN_INNER_F(a, dt) ext_inner_f(a, dt, false)
#define MIN_OUTER_F(a, dt) ext_outer_f(a, dt, false)
#define MAX_INNER_I(a, dt) ext_inner_i(a, dt, true)
#define MAX_OUTER_I(a, dt) ext_outer_i(a, dt, true)
#define MIN_INNER_I(a, dt) ext_inner_i(a, dt, false)
#define MIN_OUTER_I(a, dt) ext_outer_i(a, dt, false)
DT_REDUCE_FLOAT_TABLE(max_inner_ft, MAX_INNER_F)
DT_REDUCE_FLOAT_TABLE(max_outer_ft, MAX_OUTER_F)
DT_REDUCE_FLOAT_TABLE(min_inner_ft, MIN_INNER_F)
DT_REDUCE_FLOAT_TABLE(min_outer_ft, MIN_OUTER_F)
DT_REDUCE_INT_TABLE(max_inner_it, MAX_INNER_I)
DT_REDUCE_INT_TABLE(max_outer_it, MAX_OUTER_I)
DT_REDUCE_INT_TABLE(min_inner_it, MIN_INNER_I)
DT_REDUCE_INT_TABLE(min_outer_it, MIN_OUTER_I)

/* ---------------------------------------------------------------------- */
/* forward ops                                                             */

/* What one call wants: which extreme, which dims, which outputs. */
typedef struct ext_req {
    const char *op;
    bool is_max;
    const int64_t *dims;      /* NULL/0: every dim */
    int ndims;
    bool keepdim;
    bool ordered;             /* index ops: keep the logical order */
} ext_req;

/* Empty reductions have no identity: PyTorch's errors, naming the op. */
static dt_status
check_nonempty(const dt_tensor *t, const ext_req *r)
{
    if (r->ndims == 0) {
        if (dt_tensor_numel(t) == 0) {
            return dt_fail(DT_ERR_RUNTIME, "%s(): Expected reduction dim to "
                           "be specified for input.numel() == 0. Specify "
                           "the reduction dim with the 'dim' argument.",
                           r->op);
        }
        return DT_OK;
    }
    for (int i = 0; i < r->ndims; i++) {
        int64_t d = r->dims[i];
        DT_TRY(dt_wrap_dim(&d, t->ndim, r->op));
        if (t->ndim > 0 && t->shape[d] == 0) {
            return dt_fail(DT_ERR_INDEX, "%s(): Expected reduction dim %"
                           PRId64 " to have non-zero size.", r->op, d);
        }
    }
    return DT_OK;
}

/* Runs the reduction; stores values into *values and indices into
 * *indices, each only when that pointer is given. */
static dt_status
extreme(dt_tensor **values, dt_tensor **indices, const dt_tensor *t,
        const ext_req *r)
{
    dt_reduce_plan p;
    DT_TRY(check_nonempty(t, r));
    DT_TRY(dt_reduce_plan_init(&p, t, r->dims, r->ndims, r->keepdim,
                               r->ordered, r->op));
    size_t n = (size_t)(p.kn > 0 ? p.kn : 1);
    void *val = malloc(n * 8);
    int64_t *idx = indices ? calloc(n, sizeof *idx) : NULL;
    if (!val || (indices && !idx)) {
        free(val);
        free(idx);
        return dt_fail(DT_ERR_NOMEM, "out of memory");
    }
    bool is_int = dt_dtype_is_integral(t->dtype);
    dt_dtype dt = t->dtype;
    for (int64_t i = 0; i < p.kn; i++) {
        if (is_int) {
            ((int64_t *)val)[i] = r->is_max ? INT64_MIN : INT64_MAX;
        } else {
            ((double *)val)[i] = r->is_max ? -INFINITY : INFINITY;
        }
    }
    if (is_int) {
        dt_reduce_run(&p, (r->is_max ? max_inner_it : min_inner_it)[dt],
                      (r->is_max ? max_outer_it : min_outer_it)[dt], val, idx,
                      NULL, 0.0);
    } else {
        dt_reduce_run(&p, (r->is_max ? max_inner_ft : min_inner_ft)[dt],
                      (r->is_max ? max_outer_ft : min_outer_ft)[dt], val, idx,
                      NULL, 0.0);
    }
    dt_status s = DT_OK;
    if (values) {
        s = dt_reduce_store(values, &p, val, is_int, dt, r->op);
    }
    if (s == DT_OK && indices) {
        s = dt_reduce_store(indices, &p, idx, true, DT_INT64, r->op);
    }
    free(val);
    free(idx);
    return s;
}

dt_status
dt_amax_forward(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
                int ndims, bool keepdim)
{
    ext_req r = {"amax", true, dims, ndims, keepdim, false};
    return extreme(out, NULL, t, &r);
}

dt_status
dt_amin_forward(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
                int ndims, bool keepdim)
{
    ext_req r = {"amin", false, dims, ndims, keepdim, false};
    return extreme(out, NULL, t, &r);
}

static dt_status
max_min(dt_tensor **values, dt_tensor **indices, const dt_tensor *t,
        const int64_t *dim, bool keepdim, bool is_max)
{
    ext_req r = {is_max ? "max" : "min", is_max, dim, dim ? 1 : 0,
                 dim ? keepdim : false, dim != NULL};
    DT_ASSERT(dim || !indices);
    return extreme(values, indices, t, &r);
}

dt_status
dt_max_forward(dt_tensor **values, dt_tensor **indices, const dt_tensor *t,
               const int64_t *dim, bool keepdim)
{
    return max_min(values, indices, t, dim, keepdim, true);
}

dt_status
dt_min_forward(dt_tensor **values, dt_tensor **indices, const dt_tensor *t,
               const int64_t *dim, bool keepdim)
{
    return max_min(values, indices, t, dim, keepdim, false);
}

static dt_status
arg_extreme(dt_tensor **out, const dt_tensor *t, const int64_t *dim,
            bool keepdim, bool is_max)
{
    ext_req r = {is_max ? "argmax" : "argmin", is_max, dim, dim ? 1 : 0,
                 keepdim, true};
    if (t->dtype == DT_BOOL) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): does not support bool input",
                       r.op);
    }
    if (!dim && dt_tensor_numel(t) == 0) {
        return dt_fail(DT_ERR_INDEX, "%s(): Expected reduction dim to be "
                       "specified for input.numel() == 0.", r.op);
    }
    return extreme(NULL, out, t, &r);
}

dt_status
dt_argmax_forward(dt_tensor **out, const dt_tensor *t, const int64_t *dim,
                  bool keepdim)
{
    return arg_extreme(out, t, dim, keepdim, true);
}

dt_status
dt_argmin_forward(dt_tensor **out, const dt_tensor *t, const int64_t *dim,
                  bool keepdim)
{
    return arg_extreme(out, t, dim, keepdim, false);
}
