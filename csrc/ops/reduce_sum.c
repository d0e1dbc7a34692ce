/* reduce_sum.c: the summing reductions: sum, mean, var/std, norm.
 *
 * Contiguous float32/float64 runs are summed pairwise over blocks, each
 * block by several vector accumulators (GCC vector extensions, cloned per
 * ISA at load time), as PyTorch's cascade sum does: accurate and about as
 * fast as memory allows. Everything else accumulates in double (floating
 * inputs, half types included) or in int64 (integers and bool; int sums
 * wrap like PyTorch's).
 */
#include <stdlib.h>

#include "reduce.h"

/* ---------------------------------------------------------------------- */
/* contiguous pairwise sums                                                */

typedef float dt_v8f __attribute__((vector_size(32)));
typedef double dt_v4d __attribute__((vector_size(32)));

/* Elements per leaf block: each of the 32 (16) lanes adds up to 32
 * elements in a row, then the blocks are combined pairwise. */
#define SUM_BLOCK_F32 1024
#define SUM_BLOCK_F64 512

static inline __attribute__((always_inline)) float
block_sum_f32(const float *x, int64_t n)
{
    dt_v8f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        dt_v8f v0, v1, v2, v3;
        memcpy(&v0, x + i, sizeof v0);   /* unaligned loads */
        memcpy(&v1, x + i + 8, sizeof v1);
        memcpy(&v2, x + i + 16, sizeof v2);
        memcpy(&v3, x + i + 24, sizeof v3);
        a0 += v0;
        a1 += v1;
        a2 += v2;
        a3 += v3;
    }
    dt_v8f s = (a0 + a1) + (a2 + a3);
    float tail = 0.0f;
    for (; i < n; i++) {
        tail += x[i];
    }
    return (((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7])))
           + tail;
}

static inline __attribute__((always_inline)) double
block_sum_f64(const double *x, int64_t n)
{
    dt_v4d a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        dt_v4d v0, v1, v2, v3;
        memcpy(&v0, x + i, sizeof v0);
        memcpy(&v1, x + i + 4, sizeof v1);
        memcpy(&v2, x + i + 8, sizeof v2);
        memcpy(&v3, x + i + 12, sizeof v3);
        a0 += v0;
        a1 += v1;
        a2 += v2;
        a3 += v3;
    }
    dt_v4d s = (a0 + a1) + (a2 + a3);
    double tail = 0.0;
    for (; i < n; i++) {
        tail += x[i];
    }
    return ((s[0] + s[2]) + (s[1] + s[3])) + tail;
}

/* Pairwise over blocks without recursion: a binary counter of partial
 * sums, where block b merges once per trailing 1 bit of b. */
#define PAIRWISE_BODY(T, BLOCK, block_fn)                                 \
    T stack[64];                                                          \
    int sp = 0;                                                           \
    for (int64_t b = 0, off = 0; off < n; b++, off += BLOCK) {            \
        T s = block_fn(x + off, n - off < BLOCK ? n - off : BLOCK);       \
        for (int64_t m = b; m & 1; m >>= 1) {                             \
            s = stack[--sp] + s;                                          \
        }                                                                 \
        stack[sp++] = s;                                                  \
    }                                                                     \
    T r = 0;                                                              \
    while (sp > 0) {                                                      \
        r = stack[--sp] + r;                                              \
    }                                                                     \
    return r;

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3",
                             "default")))
static float
sum_contig_f32(const float *x, int64_t n)
{
    PAIRWISE_BODY(float, SUM_BLOCK_F32, block_sum_f32)
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3",
                             "default")))
static double
sum_contig_f64(const double *x, int64_t n)
{
    PAIRWISE_BODY(double, SUM_BLOCK_F64, block_sum_f64)
}

/* The outer order's hot loop: one contiguous row into double
 * accumulators. */
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3",
                             "default")))
static void
add_row_f32(double *v, const float *x, int64_t n)
{
    for (int64_t k = 0; k < n; k++) {
        v[k] += x[k];
    }
}

/* ---------------------------------------------------------------------- */
/* kernels (see dt_reduce_args in reduce.h)                                */

static inline __attribute__((always_inline)) void
sum_inner_f(const dt_reduce_args *a, dt_dtype dt)
{
    double *v = a->val;
    if (dt == DT_FLOAT32 && a->stride == 4) {
        *v += sum_contig_f32((const float *)a->in, a->n);
        return;
    }
    if (dt == DT_FLOAT64 && a->stride == 8) {
        *v += sum_contig_f64((const double *)a->in, a->n);
        return;
    }
    double acc = 0.0;
    for (int64_t i = 0; i < a->n; i++) {
        acc += dt_reduce_load_f(a->in + i * a->stride, dt);
    }
    *v += acc;
}

static inline __attribute__((always_inline)) void
sum_outer_f(const dt_reduce_args *a, dt_dtype dt)
{
    double *v = a->val;
    const int64_t isz = (int64_t)dt_dtype_size(dt);
    if (dt == DT_FLOAT32 && a->vstride == 1 && a->stride == 4) {
        add_row_f32(v, (const float *)a->in, a->n);
        return;
    }
    if (a->vstride == 1 && a->stride == isz) {
        /* constant strides: GCC vectorises this one */
        for (int64_t k = 0; k < a->n; k++) {
            v[k] += dt_reduce_load_f(a->in + k * isz, dt);
        }
        return;
    }
    for (int64_t k = 0; k < a->n; k++) {
        v[k * a->vstride] += dt_reduce_load_f(a->in + k * a->stride, dt);
    }
}

/* Integer sums wrap (unsigned arithmetic: no overflow UB). */
static inline __attribute__((always_inline)) void
sum_inner_i(const dt_reduce_args *a, dt_dtype dt)
{
    int64_t *v = a->val;
    uint64_t acc = (uint64_t)*v;
    for (int64_t i = 0; i < a->n; i++) {
        acc += (uint64_t)dt_reduce_load_i(a->in + i * a->stride, dt);
    }
    *v = (int64_t)acc;
}

static inline __attribute__((always_inline)) void
sum_outer_i(const dt_reduce_args *a, dt_dtype dt)
{
    int64_t *v = a->val;
    for (int64_t k = 0; k < a->n; k++) {
        int64_t *o = v + k * a->vstride;
        *o = (int64_t)((uint64_t)*o +
                       (uint64_t)dt_reduce_load_i(a->in + k * a->stride,
                                                  dt));
    }
}

/* var's second pass: squared deviations from the per-output mean. */
static inline __attribute__((always_inline)) void
dev2_inner_f(const dt_reduce_args *a, dt_dtype dt)
{
    double *v = a->val, c = a->center[0], acc = 0.0;
    for (int64_t i = 0; i < a->n; i++) {
        double d = dt_reduce_load_f(a->in + i * a->stride, dt) - c;
        acc += d * d;
    }
    *v += acc;
}

static inline __attribute__((always_inline)) void
dev2_outer_f(const dt_reduce_args *a, dt_dtype dt)
{
    double *v = a->val;
    for (int64_t k = 0; k < a->n; k++) {
        double d = dt_reduce_load_f(a->in + k * a->stride, dt) -
                   a->center[k * a->vstride];
        v[k * a->vstride] += d * d;
    }
}

/* One norm step; +-inf norms keep the extreme |x| and let NaN win. */
static inline double
norm_fold(double acc, double x, double p)
{
    x = fabs(x);
    if (isinf(p)) {
        return (p > 0 ? x > acc : x < acc) || isnan(x) ? x : acc;
    }
    return acc + (p == 2.0 ? x * x : p == 1.0 ? x
                  : p == 0.0 ? (double)(x != 0.0) : pow(x, p));
}

static inline __attribute__((always_inline)) void
norm_inner_f(const dt_reduce_args *a, dt_dtype dt)
{
    double *v = a->val, acc = *v;
    for (int64_t i = 0; i < a->n; i++) {
        acc = norm_fold(acc, dt_reduce_load_f(a->in + i * a->stride, dt),
                        a->p);
    }
    *v = acc;
}

static inline __attribute__((always_inline)) void
norm_outer_f(const dt_reduce_args *a, dt_dtype dt)
{
    double *v = a->val;
    for (int64_t k = 0; k < a->n; k++) {
        double *o = v + k * a->vstride;
        *o = norm_fold(*o, dt_reduce_load_f(a->in + k * a->stride, dt),
                       a->p);
    }
}

DT_REDUCE_FLOAT_TABLE(sum_inner_ft, sum_inner_f)
DT_REDUCE_FLOAT_TABLE(sum_outer_ft, sum_outer_f)
DT_REDUCE_INT_TABLE(sum_inner_it, sum_inner_i)
DT_REDUCE_INT_TABLE(sum_outer_it, sum_outer_i)
DT_REDUCE_FLOAT_TABLE(dev2_inner_ft, dev2_inner_f)
DT_REDUCE_FLOAT_TABLE(dev2_outer_ft, dev2_outer_f)
DT_REDUCE_FLOAT_TABLE(norm_inner_ft, norm_inner_f)
DT_REDUCE_FLOAT_TABLE(norm_outer_ft, norm_outer_f)

/* ---------------------------------------------------------------------- */
/* forward ops                                                             */

/* kn accumulators, zeroed (0.0 and int64 0 share their bits). */
static dt_status
alloc_acc(void **val, const dt_reduce_plan *p)
{
    *val = calloc((size_t)(p->kn > 0 ? p->kn : 1), 8);
    return *val ? DT_OK : dt_fail(DT_ERR_NOMEM, "out of memory");
}

/* The input cast to `dtype` when one is given (PyTorch casts first). */
static dt_status
cast_input(dt_tensor **src, const dt_tensor *t, dt_dtype dtype)
{
    if (dtype == DT_DTYPE_COUNT || dtype == t->dtype) {
        dt_tensor_retain((dt_tensor *)t);
        *src = (dt_tensor *)t;
        return DT_OK;
    }
    return dt_to_dtype(src, t, dtype);
}

static dt_status
sum_like(dt_tensor **out, const dt_tensor *src, const int64_t *dims,
         int ndims, bool keepdim, dt_dtype result, bool mean,
         const char *op)
{
    dt_reduce_plan p;
    void *val = NULL;
    DT_TRY(dt_reduce_plan_init(&p, src, dims, ndims, keepdim, false, op));
    DT_TRY(alloc_acc(&val, &p));
    bool is_int = dt_dtype_is_integral(src->dtype);
    if (is_int) {
        dt_reduce_run(&p, sum_inner_it[src->dtype], sum_outer_it[src->dtype],
                      val, NULL, NULL, 0.0);
    } else {
        dt_reduce_run(&p, sum_inner_ft[src->dtype], sum_outer_ft[src->dtype],
                      val, NULL, NULL, 0.0);
    }
    if (mean) {
        double *v = val;
        for (int64_t i = 0; i < p.kn; i++) {
            v[i] /= (double)p.rn;   /* 0 / 0 = nan for empty means */
        }
    }
    dt_status s = dt_reduce_store(out, &p, val, is_int, result, op);
    free(val);
    return s;
}

dt_status
dt_sum_forward(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
               int ndims, bool keepdim, dt_dtype dtype)
{
    dt_tensor *src = NULL;
    DT_TRY(cast_input(&src, t, dtype));
    dt_dtype result = dt_dtype_is_integral(src->dtype) &&
                      dtype == DT_DTYPE_COUNT ? DT_INT64 : src->dtype;
    dt_status s = sum_like(out, src, dims, ndims, keepdim, result, false,
                           "sum");
    dt_tensor_release(src);
    return s;
}

dt_status
dt_mean_forward(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
                int ndims, bool keepdim, dt_dtype dtype)
{
    dt_dtype want = dtype == DT_DTYPE_COUNT ? t->dtype : dtype;
    if (!dt_dtype_is_floating(want)) {
        return dt_fail(DT_ERR_RUNTIME,
                       "mean(): could not infer output dtype. %s dtype must "
                       "be either a floating point or complex dtype. Got: "
                       "%s", dtype == DT_DTYPE_COUNT ? "Input" : "Optional",
                       dt_dtype_name(want));
    }
    dt_tensor *src = NULL;
    DT_TRY(cast_input(&src, t, dtype));
    dt_status s = sum_like(out, src, dims, ndims, keepdim, src->dtype, true,
                           "mean");
    dt_tensor_release(src);
    return s;
}

static dt_status
var_like(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
         int ndims, double correction, bool keepdim, bool is_std)
{
    const char *op = is_std ? "std" : "var";
    if (!dt_dtype_is_floating(t->dtype)) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): std and var only support "
                       "floating point and complex dtypes, got %s", op,
                       dt_dtype_name(t->dtype));
    }
    dt_reduce_plan p;
    void *val = NULL, *center = NULL;
    DT_TRY(dt_reduce_plan_init(&p, t, dims, ndims, keepdim, false, op));
    DT_TRY(alloc_acc(&val, &p));
    if (alloc_acc(&center, &p) != DT_OK) {
        free(val);
        return DT_ERR_NOMEM;
    }
    /* two passes (mean, then squared deviations): exact-ish, no Welford */
    double *v = val, *c = center;
    dt_reduce_run(&p, sum_inner_ft[t->dtype], sum_outer_ft[t->dtype], v,
                  NULL, NULL, 0.0);
    for (int64_t i = 0; i < p.kn; i++) {
        c[i] = v[i] / (double)p.rn;
        v[i] = 0.0;
    }
    dt_reduce_run(&p, dev2_inner_ft[t->dtype], dev2_outer_ft[t->dtype], v,
                  NULL, c, 0.0);
    double dof = (double)p.rn - correction;
    for (int64_t i = 0; i < p.kn; i++) {
        v[i] /= dof > 0.0 ? dof : 0.0;
        v[i] = is_std ? sqrt(v[i]) : v[i];
    }
    dt_status s = dt_reduce_store(out, &p, val, false, t->dtype, op);
    free(val);
    free(center);
    return s;
}

dt_status
dt_var_forward(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
               int ndims, double correction, bool keepdim)
{
    return var_like(out, t, dims, ndims, correction, keepdim, false);
}

dt_status
dt_std_forward(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
               int ndims, double correction, bool keepdim)
{
    return var_like(out, t, dims, ndims, correction, keepdim, true);
}

static dt_status
norm_run(dt_tensor **out, const dt_tensor *src, double p_ord,
         const int64_t *dims, int ndims, bool keepdim)
{
    dt_reduce_plan p;
    void *val = NULL;
    DT_TRY(dt_reduce_plan_init(&p, src, dims, ndims, keepdim, false,
                               "norm"));
    if (isinf(p_ord) && p.rn == 0) {
        return dt_fail(DT_ERR_RUNTIME, "norm(): cannot compute the %sinf "
                       "norm on an empty tensor because the operation does "
                       "not have an identity", p_ord < 0 ? "-" : "");
    }
    DT_TRY(alloc_acc(&val, &p));
    double *v = val;
    for (int64_t i = 0; i < p.kn && p_ord == -INFINITY; i++) {
        v[i] = INFINITY;
    }
    dt_reduce_run(&p, norm_inner_ft[src->dtype], norm_outer_ft[src->dtype],
                  val, NULL, NULL, p_ord);
    for (int64_t i = 0; i < p.kn; i++) {
        if (p_ord == 2.0) {
            v[i] = sqrt(v[i]);
        } else if (!isinf(p_ord) && p_ord != 1.0 && p_ord != 0.0) {
            v[i] = pow(v[i], 1.0 / p_ord);
        }
    }
    dt_status s = dt_reduce_store(out, &p, val, false, src->dtype, "norm");
    free(val);
    return s;
}

dt_status
dt_norm_forward(dt_tensor **out, const dt_tensor *t, double p_ord,
                const int64_t *dims, int ndims, bool keepdim, dt_dtype dtype)
{
    dt_dtype want = dtype == DT_DTYPE_COUNT ? t->dtype : dtype;
    if (!dt_dtype_is_floating(want)) {
        return dt_fail(DT_ERR_RUNTIME, "norm(): expected a floating point "
                       "or complex tensor as input. Got %s",
                       dt_dtype_name(want));
    }
    dt_tensor *src = NULL;
    DT_TRY(cast_input(&src, t, dtype));
    dt_status s = norm_run(out, src, p_ord, dims, ndims, keepdim);
    dt_tensor_release(src);
    return s;
}
