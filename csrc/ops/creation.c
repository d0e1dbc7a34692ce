/* creation.c: empty/full/zeros, arange, linspace, eye, and the random
 * creation ops (rand, randn, randint, randperm) on top of rng.c's draws.
 *
 * Sequences are generated under dt_iter_run with a running element index,
 * so an out= tensor may have any strides. Floating ranges compute each
 * value in double and round once, as torch's CPU kernels do (torch's
 * float32 linspace computes in float; the last bit may differ).
 */
#include <inttypes.h>

#include "../dt_impl.h"
#include "creation.h"

dt_status
dt_check_size(const int64_t *shape, int ndim, const char *op)
{
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char buf[160];
            dt_shape_format(buf, sizeof buf, shape, ndim);
            return dt_fail(DT_ERR_RUNTIME, "%s: trying to create tensor "
                           "with negative dimension %" PRId64 ": %s", op,
                           shape[i], buf);
        }
    }
    return DT_OK;
}

dt_status
dt_empty_forward(dt_tensor **out, const int64_t *shape, int ndim,
                 dt_dtype dtype, dt_device device, const char *op)
{
    DT_TRY(dt_check_size(shape, ndim, op));
    return dt_prepare_out(out, shape, ndim, dtype, device, op);
}

/* A typed store per element size: GCC turns these loops into wide stores,
 * which copy_'s general strided loop (stride-0 source) does not get; the
 * clones widen them to 32 or 64 bytes. Bit copies, so every clone writes
 * the same thing. */
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
static void
fill_contiguous(char *p, int64_t n, const char *value, size_t isz)
{
#define FILL(T)                                                           \
    do {                                                                  \
        T v_;                                                             \
        memcpy(&v_, value, sizeof v_);                                    \
        for (int64_t i = 0; i < n; i++) {                                 \
            ((T *)p)[i] = v_;                                             \
        }                                                                 \
    } while (0)
    switch (isz) {
    case 1: memset(p, (unsigned char)value[0], (size_t)n); break;
    case 2: FILL(uint16_t); break;
    case 4: FILL(uint32_t); break;
    default: FILL(uint64_t); break;
    }
#undef FILL
}

dt_status
dt_full_forward(dt_tensor **out, const dt_tensor *value,
                const int64_t *shape, int ndim, dt_dtype dtype,
                dt_device device, const char *op)
{
    dt_tensor *v = NULL;
    DT_TRY(dt_check_size(shape, ndim, op));
    if (!*out && !value) {
        return dt_tensor_zeros(out, shape, ndim, dtype, device);
    }
    DT_TRY(dt_prepare_out(out, shape, ndim, dtype, device, op));
    if (!value) {
        return dt_fill_(*out, 0.0);
    }
    if (!dt_tensor_is_contiguous(*out)) {
        /* copy_ broadcasts the 0-dim value and casts it exactly */
        return dt_copy_(*out, value);
    }
    DT_TRY(dt_to_dtype(&v, value, (*out)->dtype));
    fill_contiguous(dt_tensor_data(*out), dt_tensor_numel(*out),
                    dt_tensor_data(v), dt_dtype_size(v->dtype));
    dt_tensor_release(v);
    dt_tensor_bump_version(*out);
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* ranges                                                                  */

typedef struct range_ctx {
    double start, end, step;     /* floating ranges */
    int64_t istart, istep;       /* integral ranges */
    int64_t pos;                 /* logical index of the next element */
    int64_t steps, halfway;      /* linspace */
    dt_dtype dtype;
} range_ctx;

/* The index converts from int32 when it fits: that conversion
 * vectorises, int64 -> double does not before AVX-512. */
static void
arange_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    range_ctx *c = vctx;
    char *p = ptrs[0];
    int64_t s = strides[0];
    if (c->dtype == DT_FLOAT32 && s == 4 && c->pos + n <= INT32_MAX) {
        int32_t pos = (int32_t)c->pos;
        for (int32_t k = 0; k < (int32_t)n; k++) {
            ((float *)p)[k] = (float)(c->start +
                                      c->step * (double)(pos + k));
        }
    } else {
        for (int64_t k = 0; k < n; k++) {
            dt_store_double(p + k * s, c->dtype,
                            c->start + c->step * (double)(c->pos + k));
        }
    }
    c->pos += n;
}

static void
arange_int_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    range_ctx *c = vctx;
    char *p = ptrs[0];
    /* unsigned: wraps instead of UB; the caller checked the range */
    uint64_t v = (uint64_t)c->istart + (uint64_t)c->istep * (uint64_t)c->pos;
    if (c->dtype == DT_INT64 && strides[0] == 8) {
        for (int64_t k = 0; k < n; k++, v += (uint64_t)c->istep) {
            ((int64_t *)p)[k] = (int64_t)v;
        }
        c->pos += n;
        return;
    }
    for (int64_t k = 0; k < n; k++, p += strides[0]) {
        int64_t x = (int64_t)v;
        v += (uint64_t)c->istep;
        switch (c->dtype) {
        case DT_INT64: *(int64_t *)p = x; break;
        case DT_INT32: *(int32_t *)p = (int32_t)x; break;
        case DT_UINT8: *(uint8_t *)p = (uint8_t)x; break;
        case DT_BOOL: *(bool *)p = x != 0; break;
        default: dt_store_double(p, c->dtype, (double)x); break;
        }
    }
    c->pos += n;
}

static dt_status
run_range(dt_tensor **out, int64_t size, dt_loop_fn fn, range_ctx *c,
          dt_device device, const char *op)
{
    if (c->dtype == DT_BOOL) {
        return dt_fail(DT_ERR_NOTIMPL, "%s: not implemented for dtype bool",
                       op);
    }
    DT_TRY(dt_prepare_out(out, &size, 1, c->dtype, device, op));
    dt_tensor *ops[1] = {*out};
    c->pos = 0;
    dt_iter_run(ops, 1, fn, c);
    return DT_OK;
}

dt_status
dt_arange_forward(dt_tensor **out, double start, double end, double step,
                  dt_dtype dtype, dt_device device)
{
    if (step == 0.0) {
        return dt_fail(DT_ERR_RUNTIME, "arange: step must be nonzero");
    }
    if (!isfinite(start) || !isfinite(end)) {
        return dt_fail(DT_ERR_RUNTIME, "arange: unsupported range: %g -> %g",
                       start, end);
    }
    if (!((step > 0 && end >= start) || (step < 0 && end <= start))) {
        return dt_fail(DT_ERR_RUNTIME, "arange: upper bound and lower bound "
                       "inconsistent with step sign");
    }
    double size = ceil((end - start) / step);
    if (!(size >= 0 && size < 0x1p62)) {
        return dt_fail(DT_ERR_RUNTIME, "arange: invalid size %g, possible "
                       "overflow?", size);
    }
    range_ctx c = {.start = start, .step = step, .dtype = dtype};
    return run_range(out, (int64_t)size, arange_loop, &c, device, "arange");
}

dt_status
dt_arange_int_forward(dt_tensor **out, int64_t start, int64_t end,
                      int64_t step, dt_dtype dtype, dt_device device)
{
    if (step == 0) {
        return dt_fail(DT_ERR_RUNTIME, "arange: step must be nonzero");
    }
    if (!((step > 0 && end >= start) || (step < 0 && end <= start))) {
        return dt_fail(DT_ERR_RUNTIME, "arange: upper bound and lower bound "
                       "inconsistent with step sign");
    }
    /* ceil((end - start) / step) without overflow or rounding */
    __int128 sgn = step > 0 ? 1 : -1;
    __int128 size = ((__int128)end - start + step - sgn) / step;
    if (size > INT64_MAX / 2) {
        return dt_fail(DT_ERR_RUNTIME, "arange: invalid size, possible "
                       "overflow?");
    }
    range_ctx c = {.istart = start, .istep = step, .dtype = dtype};
    return run_range(out, (int64_t)size, arange_int_loop, &c, device,
                     "arange");
}

/* torch's formula: from the start for the first half, back from the end
 * for the second, so both endpoints are exact. */
static void
linspace_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    range_ctx *c = vctx;
    char *p = ptrs[0];
    if (c->dtype == DT_FLOAT32 && strides[0] == 4 && c->steps <= INT32_MAX) {
        /* the two halves as two branch-free loops that vectorise */
        float *f = (float *)p;
        int32_t i0 = (int32_t)c->pos, i1 = (int32_t)(c->pos + n);
        int32_t h = (int32_t)(c->halfway < i0 ? i0
                              : c->halfway > i1 ? i1 : c->halfway);
        int32_t last = (int32_t)c->steps - 1;
        for (int32_t i = i0; i < h; i++) {
            f[i - i0] = (float)(c->start + c->step * (double)i);
        }
        for (int32_t i = h; i < i1; i++) {
            f[i - i0] = (float)(c->end - c->step * (double)(last - i));
        }
        c->pos += n;
        return;
    }
    for (int64_t k = 0; k < n; k++, p += strides[0]) {
        int64_t i = c->pos + k;
        double v = i < c->halfway
                       ? c->start + c->step * (double)i
                       : c->end - c->step * (double)(c->steps - i - 1);
        dt_store_double(p, c->dtype, v);
    }
    c->pos += n;
}

dt_status
dt_linspace_forward(dt_tensor **out, double start, double end, int64_t steps,
                    dt_dtype dtype, dt_device device)
{
    if (steps < 0) {
        return dt_fail(DT_ERR_RUNTIME, "linspace: number of steps must be "
                       "non-negative, got %" PRId64, steps);
    }
    range_ctx c = {.start = start, .end = end, .steps = steps,
                   .halfway = steps / 2, .dtype = dtype};
    /* one point is start (the formula would divide by zero) */
    c.step = steps > 1 ? (end - start) / (double)(steps - 1) : 0.0;
    if (steps == 1) {
        c.halfway = 1;
    }
    return run_range(out, steps, linspace_loop, &c, device, "linspace");
}

dt_status
dt_eye_forward(dt_tensor **out, int64_t n, int64_t m, dt_dtype dtype,
               dt_device device)
{
    if (n < 0 || m < 0) {
        return dt_fail(DT_ERR_RUNTIME, "eye: %s must be greater or equal "
                       "to 0, got %" PRId64, n < 0 ? "n" : "m",
                       n < 0 ? n : m);
    }
    int64_t shape[2] = {n, m};
    DT_TRY(dt_full_forward(out, NULL, shape, 2, dtype, device, "eye"));
    dt_tensor *t = *out;
    size_t isz = dt_dtype_size(t->dtype);
    _Alignas(8) char one[8];
    dt_store_double(one, t->dtype, 1.0);
    char *p = dt_tensor_data(t);
    int64_t diag = (t->strides[0] + t->strides[1]) * (int64_t)isz;
    for (int64_t i = 0; i < (n < m ? n : m); i++) {
        memcpy(p + i * diag, one, isz);
    }
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* random                                                                  */

static dt_status
check_floating(dt_dtype dtype, const char *op)
{
    if (!dt_dtype_is_floating(dtype)) {
        return dt_fail(DT_ERR_NOTIMPL, "%s: not implemented for dtype %s",
                       op, dt_dtype_name(dtype));
    }
    return DT_OK;
}

dt_status
dt_rand_forward(dt_tensor **out, const int64_t *shape, int ndim,
                dt_dtype dtype, dt_device device, dt_generator *g)
{
    DT_TRY(check_floating(dtype, "rand"));
    DT_TRY(dt_empty_forward(out, shape, ndim, dtype, device, "rand"));
    return dt_uniform_(*out, 0.0, 1.0, g);
}

dt_status
dt_randn_forward(dt_tensor **out, const int64_t *shape, int ndim,
                 dt_dtype dtype, dt_device device, dt_generator *g)
{
    DT_TRY(check_floating(dtype, "randn"));
    DT_TRY(dt_empty_forward(out, shape, ndim, dtype, device, "randn"));
    return dt_normal_(*out, 0.0, 1.0, g);
}

/* The integers dtype holds exactly: [*lo, *hi]. */
static void
exact_int_range(dt_dtype dtype, int64_t *lo, int64_t *hi)
{
    static const int digits[DT_DTYPE_COUNT] = {
        [DT_FLOAT16] = 11, [DT_BFLOAT16] = 8, [DT_FLOAT32] = 24,
        [DT_FLOAT64] = 53,
    };
    switch (dtype) {
    case DT_BOOL: *lo = 0; *hi = 1; break;
    case DT_UINT8: *lo = 0; *hi = UINT8_MAX; break;
    case DT_INT32: *lo = INT32_MIN; *hi = INT32_MAX; break;
    case DT_INT64: *lo = INT64_MIN; *hi = INT64_MAX; break;
    default:
        *hi = INT64_C(1) << digits[dtype];
        *lo = -*hi;
        break;
    }
}

dt_status
dt_randint_forward(dt_tensor **out, int64_t low, int64_t high,
                   const int64_t *shape, int ndim, dt_dtype dtype,
                   dt_device device, dt_generator *g)
{
    int64_t lo, hi;
    if (low >= high) {
        return dt_fail(DT_ERR_RUNTIME, "randint: expects 'low' to be less "
                       "than 'high', but got low=%" PRId64 " >= high=%"
                       PRId64, low, high);
    }
    exact_int_range(dtype, &lo, &hi);
    if (low < lo || high - 1 > hi) {
        return dt_fail(DT_ERR_RUNTIME, "randint: [low, high) = [%" PRId64
                       ", %" PRId64 ") is out of bounds for dtype %s", low,
                       high, dt_dtype_name(dtype));
    }
    DT_TRY(dt_empty_forward(out, shape, ndim, dtype, device, "randint"));
    return dt_random_int_(*out, low, high, g);
}

/* Fisher-Yates from the top: swap k (for position i = n-1-k) draws 64
 * bits from block base + k / 2, scaled into [0, i]. Bits come a batch of
 * blocks at a time; those past the reservation are computed, never used. */
static void
shuffle(int64_t *a, int64_t n, uint64_t seed, uint64_t base)
{
    enum { SWAPS = 2 * DT_PHILOX_BATCH };   /* per batch */
    uint32_t r[4][DT_PHILOX_BATCH];
    for (int64_t i = 0; i < n; i++) {
        a[i] = i;
    }
    for (int64_t k = 0; k < n - 1; k++) {
        int64_t i = n - 1 - k;
        int b = (int)(k % SWAPS) / 2, w = (int)(k % 2) * 2;
        if (k % SWAPS == 0) {
            dt_philox_batch(r, seed, base + (uint64_t)k / 2);
        }
        uint64_t x = (uint64_t)r[w][b] | (uint64_t)r[w + 1][b] << 32;
        int64_t j = (int64_t)(((unsigned __int128)x * (uint64_t)(i + 1))
                              >> 64);
        int64_t tmp = a[i];
        a[i] = a[j];
        a[j] = tmp;
    }
}

dt_status
dt_randperm_forward(dt_tensor **out, int64_t n, dt_dtype dtype,
                    dt_device device, dt_generator *g)
{
    int64_t lo, hi;
    dt_tensor *perm = NULL;
    if (n < 0) {
        return dt_fail(DT_ERR_RUNTIME, "randperm: n must be non-negative, "
                       "got n=%" PRId64, n);
    }
    if (dtype == DT_BOOL) {
        return dt_fail(DT_ERR_NOTIMPL, "randperm: not implemented for dtype "
                       "bool");
    }
    exact_int_range(dtype, &lo, &hi);
    if (n - 1 > hi) {
        return dt_fail(DT_ERR_RUNTIME, "randperm: n=%" PRId64 " is too "
                       "large for dtype %s", n, dt_dtype_name(dtype));
    }
    DT_TRY(dt_tensor_empty(&perm, &n, 1, DT_INT64, device));
    if (!g) {
        g = dt_generator_default();
    }
    uint64_t seed = g->seed;
    shuffle(dt_tensor_data(perm), n, seed,
            dt_generator_reserve(g, ((uint64_t)n + 1) / 2));
    if (!*out && dtype == DT_INT64) {
        *out = perm;
        return DT_OK;
    }
    dt_status s = dt_prepare_out(out, &n, 1, dtype, device, "randperm");
    if (s == DT_OK) {
        s = dt_copy_(*out, perm);
    }
    dt_tensor_release(perm);
    return s;
}
