/* reduce_grad.c: the helpers every reduction backward shares (see
 * reduce_grad.h): recording with the dims as a mask, expanding per-output
 * tensors back to the input's shape as stride-0 views, the fused
 * elementwise pass that writes a gradient, and counting ties.
 */
#include <stdlib.h>

#include "reduce_grad.h"

dt_status
dt_reduce_check_out(const dt_tensor *out, const dt_tensor *t, const char *op)
{
    if (out && dt_autograd_needed1(t)) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): functions with out=... "
                       "arguments don't support automatic differentiation, "
                       "but one of the arguments requires grad.", op);
    }
    return DT_OK;
}

dt_status
dt_reduce_record(dt_node **n, dt_tensor **out, const dt_tensor *t,
                 const int64_t *dims, int ndims, bool keepdim,
                 const char *name, dt_backward_fn fn)
{
    *n = NULL;
    if (!dt_autograd_needed1(t) || !dt_dtype_is_floating((*out)->dtype)) {
        return DT_OK;   /* integer results carry no gradient */
    }
    int64_t mask[DT_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) {
        mask[d] = ndims == 0;
    }
    for (int i = 0; i < ndims && t->ndim > 0; i++) {
        int64_t d = dims[i];
        DT_TRY(dt_wrap_dim(&d, t->ndim, name));   /* the forward checked */
        mask[d] = 1;
    }
    dt_status s = dt_node_record(n, name, fn, &t, 1, out, 1);
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
        return s;
    }
    (*n)->iargs[DT_RG_KEEPDIM] = keepdim;
    (*n)->iargs[DT_RG_HASDIM] = ndims > 0;
    memcpy((*n)->iargs + DT_RG_MASK, mask, (size_t)t->ndim * sizeof *mask);
    (*n)->num_iargs = DT_RG_MASK + t->ndim;
    return DT_OK;
}

int
dt_reduce_grad_dims(int64_t *dims, const dt_node *n)
{
    int nd = 0;
    for (int d = 0; d < n->in_meta[0].ndim; d++) {
        if (n->iargs[DT_RG_MASK + d]) {
            dims[nd++] = d;
        }
    }
    return nd;
}

int64_t
dt_reduce_grad_count(const dt_node *n)
{
    int64_t count = 1;
    for (int d = 0; d < n->in_meta[0].ndim; d++) {
        if (n->iargs[DT_RG_MASK + d]) {
            count *= n->in_meta[0].shape[d];
        }
    }
    return count;
}

dt_status
dt_reduce_grad_expand(dt_tensor **out, const dt_tensor *g, const dt_node *n,
                      bool kd)
{
    const dt_input_meta *im = &n->in_meta[0];
    bool keep = kd || n->iargs[DT_RG_KEEPDIM];
    int64_t strides[DT_MAX_DIMS];
    int j = 0;
    for (int d = 0; d < im->ndim; d++) {
        if (n->iargs[DT_RG_MASK + d]) {
            strides[d] = 0;
            j += keep;
        } else {
            strides[d] = g->strides[j++];
        }
    }
    DT_ASSERT(j == g->ndim);
    return dt_view_as_strided(out, g, im->shape, strides, im->ndim,
                              g->offset);
}

dt_status
dt_reduce_grad_small(dt_tensor **out, const dt_tensor *t, const dt_node *n)
{
    const dt_input_meta *im = &n->in_meta[0];
    int64_t shape[DT_MAX_DIMS];
    for (int d = 0; d < im->ndim; d++) {
        shape[d] = n->iargs[DT_RG_MASK + d] ? 1 : im->shape[d];
    }
    dt_tensor *f = NULL, *c = NULL;
    DT_TRY(dt_to_dtype(&f, t, DT_FLOAT64));
    dt_status s = dt_contiguous(&c, f);
    dt_tensor_release(f);
    if (s == DT_OK) {
        s = dt_view(out, c, shape, im->ndim);
    }
    dt_tensor_release(c);
    return s;
}

/* ---------------------------------------------------------------------- */
/* the fused gradient pass                                                 */

typedef struct map_ctx {
    dt_rg_kind kind;
    double p;
    dt_dtype dtype;
} map_ctx;

/* PyTorch's sgn for reals: 0 for 0 and for nan. */
static inline double
sgn(double x)
{
    return (double)((x > 0.0) - (x < 0.0));
}

/* b ** e, by multiplication for small integer e and by sqrt for halves:
 * norm's exponents are usually 1, 2 or 1/2 off an integer, and pow() per
 * element is what would dominate the backward. */
static inline double
power(double b, double e)
{
    if (e == rint(e) && fabs(e) <= 16.0) {
        double r = 1.0, f = e < 0.0 ? 1.0 / b : b;
        for (int k = (int)fabs(e); k > 0; k >>= 1) {
            r = (k & 1) ? r * f : r;
            f *= f;
        }
        return r;
    }
    if (e == 0.5) {
        return sqrt(b);
    }
    return e == -0.5 ? 1.0 / sqrt(b) : pow(b, e);
}

static inline __attribute__((always_inline)) double
grad_elem(dt_rg_kind kind, double x, double r, double g, double p)
{
    switch (kind) {
    case DT_RG_VAR: return (x - r) * g;
    case DT_RG_VAR_DOF0: return (x == r ? NAN : INFINITY) * g;
    case DT_RG_MASK_MUL: return (double)(x == r) * g;
    case DT_RG_MASK_SEL: return (isnan(r) ? isnan(x) : x == r) ? g : 0.0;
    case DT_RG_NORM_1: return sgn(x) * g;
    case DT_RG_NORM_2: return r == 0.0 ? 0.0 : g * (x / r);
    case DT_RG_NORM_INF:
        return sgn(x) * (g * (double)(fabs(x) == r || isnan(x)));
    case DT_RG_NORM_LT1:
        return sgn(x) * (x == 0.0 ? 0.0 : power(fabs(x), p - 1.0)) * g;
    case DT_RG_NORM_LT2: return sgn(x) * power(fabs(x), p - 1.0) * g;
    default: return x * power(fabs(x), p - 2.0) * g;
    }
}

static inline __attribute__((always_inline)) void
store_f(char *p, dt_dtype dt, double v)
{
    switch (dt) {
    case DT_FLOAT16: *(dt_half *)p = dt_float_to_half((float)v); break;
    case DT_BFLOAT16: *(dt_bf16 *)p = dt_float_to_bf16((float)v); break;
    case DT_FLOAT32: *(float *)p = (float)v; break;
    default: *(double *)p = v; break;
    }
}

/* One loop per (dtype, kind), so loads, stores and the formula fold into
 * straight-line code. The common inner run walks one reduced slice: x
 * and out contiguous, r and g constant, which vectorises. */
static inline __attribute__((always_inline)) void
map_run(char **ptrs, const int64_t *st, int64_t n, double p, dt_dtype dt,
        dt_rg_kind kind)
{
    const int64_t isz = (int64_t)dt_dtype_size(dt);
    if (st[0] == isz && st[1] == isz && st[2] == 0 && st[3] == 0) {
        double r = *(const double *)ptrs[2], g = *(const double *)ptrs[3];
        for (int64_t i = 0; i < n; i++) {
            double x = dt_reduce_load_f(ptrs[1] + i * isz, dt);
            store_f(ptrs[0] + i * isz, dt, grad_elem(kind, x, r, g, p));
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        double x = dt_reduce_load_f(ptrs[1] + i * st[1], dt);
        double r = *(const double *)(ptrs[2] + i * st[2]);
        double g = *(const double *)(ptrs[3] + i * st[3]);
        store_f(ptrs[0] + i * st[0], dt, grad_elem(kind, x, r, g, p));
    }
}

#define MAP_KIND(K)                                                       \
    case K: map_run(ptrs, st, n, p, dt, K); break;

static inline __attribute__((always_inline)) void
map_kinds(char **ptrs, const int64_t *st, int64_t n, double p, dt_dtype dt,
          dt_rg_kind kind)
{
    switch (kind) {
    MAP_KIND(DT_RG_VAR)
    MAP_KIND(DT_RG_VAR_DOF0)
    MAP_KIND(DT_RG_MASK_MUL)
    MAP_KIND(DT_RG_MASK_SEL)
    MAP_KIND(DT_RG_NORM_1)
    MAP_KIND(DT_RG_NORM_2)
    MAP_KIND(DT_RG_NORM_INF)
    MAP_KIND(DT_RG_NORM_LT1)
    MAP_KIND(DT_RG_NORM_LT2)
    MAP_KIND(DT_RG_NORM_GE2)
    }
}

static void
map_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    const map_ctx *c = vctx;
    switch (c->dtype) {
    case DT_FLOAT16:
        map_kinds(ptrs, strides, n, c->p, DT_FLOAT16, c->kind);
        break;
    case DT_BFLOAT16:
        map_kinds(ptrs, strides, n, c->p, DT_BFLOAT16, c->kind);
        break;
    case DT_FLOAT32:
        map_kinds(ptrs, strides, n, c->p, DT_FLOAT32, c->kind);
        break;
    default:
        map_kinds(ptrs, strides, n, c->p, DT_FLOAT64, c->kind);
        break;
    }
}

dt_status
dt_reduce_grad_map(dt_tensor **out, const dt_tensor *x, const dt_tensor *r,
                   const dt_tensor *g, const dt_node *n, dt_rg_kind kind,
                   double p)
{
    DT_ASSERT(dt_dtype_is_floating(x->dtype));
    dt_tensor *re = NULL, *ge = NULL, *o = NULL;
    dt_status s = dt_reduce_grad_expand(&ge, g, n, true);
    if (s == DT_OK) {
        s = dt_reduce_grad_expand(&re, r ? r : g, n, true);
    }
    if (s == DT_OK) {
        s = dt_tensor_empty(&o, x->shape, x->ndim, x->dtype, DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        map_ctx ctx = {kind, p, x->dtype};
        dt_tensor *ops[4] = {o, (dt_tensor *)x, re, ge};
        dt_iter_run(ops, 4, map_loop, &ctx);
        *out = o;
    }
    dt_tensor_release(re);
    dt_tensor_release(ge);
    return s;
}

/* ---------------------------------------------------------------------- */
/* counting ties                                                           */

static inline double
tie(double x, double c, int mode)
{
    if (mode == 2) {
        return (double)(fabs(x) == c || isnan(x));
    }
    if (mode == 1 && isnan(c)) {
        return (double)isnan(x);
    }
    return (double)(x == c);
}

static inline __attribute__((always_inline)) void
tie_inner_f(const dt_reduce_args *a, dt_dtype dt)
{
    double *v = a->val, c = a->center[0], acc = 0.0;
    int mode = (int)a->p;
    for (int64_t i = 0; i < a->n; i++) {
        acc += tie(dt_reduce_load_f(a->in + i * a->stride, dt), c, mode);
    }
    *v += acc;
}

static inline __attribute__((always_inline)) void
tie_outer_f(const dt_reduce_args *a, dt_dtype dt)
{
    double *v = a->val;
    int mode = (int)a->p;
    for (int64_t k = 0; k < a->n; k++) {
        v[k * a->vstride] += tie(dt_reduce_load_f(a->in + k * a->stride, dt),
                                 a->center[k * a->vstride], mode);
    }
}

DT_REDUCE_FLOAT_TABLE(tie_inner_ft, tie_inner_f)
DT_REDUCE_FLOAT_TABLE(tie_outer_ft, tie_outer_f)

dt_status
dt_reduce_grad_ties(dt_tensor **count, const dt_tensor *x,
                    const dt_tensor *r, const dt_node *n, int mode)
{
    int64_t dims[DT_MAX_DIMS];
    int nd = dt_reduce_grad_dims(dims, n);
    dt_reduce_plan p;
    DT_TRY(dt_reduce_plan_init(&p, x, dims, nd, true, false, "backward"));
    DT_TRY(dt_tensor_zeros(count, p.out_shape, p.out_ndim, DT_FLOAT64,
                           DT_DEVICE_CPU));
    dt_reduce_run(&p, tie_inner_ft[x->dtype], tie_outer_ft[x->dtype],
                  dt_tensor_data(*count), NULL, dt_tensor_data(r),
                  (double)mode);
    return DT_OK;
}
