/* clamp.c: clamp (forward, backward, entry point): min(max(x, lo), hi)
 * with number or tensor bounds.
 *
 * The gradient passes where lo <= x <= hi, boundaries included (PyTorch's
 * subgradient); tensor bounds get it where they won. Number bounds take a
 * one-pass loop with the bounds in its context.
 */
#include "ew_impl.h"

/* min(max(x, lo), hi); a NaN anywhere comes out as NaN, and lo > hi gives
 * hi, as in PyTorch. */
#define MAX_INT(a, b) ((a) > (b) ? (a) : (b))
#define MIN_INT(a, b) ((a) < (b) ? (a) : (b))
static inline float
clampf(float x, float lo, float hi)
{
    float t = (x > lo || __builtin_isnan(x)) ? x : lo;
    return (t < hi || __builtin_isnan(t)) ? t : hi;
}

static inline double
clampd(double x, double lo, double hi)
{
    double t = (x > lo || __builtin_isnan(x)) ? x : lo;
    return (t < hi || __builtin_isnan(t)) ? t : hi;
}

/* operands (out, x, lo, hi); the fast path has scalar bounds */
#define GEN_CLAMP(SFX, T, C, LD, ST, ...)                                 \
    static EW_STREAM void                                                 \
    clamp_##SFX(char **p, const int64_t *s, int64_t n, void *ctx)         \
    {                                                                     \
        (void)ctx;                                                        \
        if (s[0] == sizeof(T) && s[1] == sizeof(T) && !s[2] && !s[3]) {   \
            T *o = (T *)p[0];                                             \
            const T *xp = (const T *)p[1];                                \
            const C lo = LD(*(const T *)p[2]), hi = LD(*(const T *)p[3]); \
            EW_IVDEP                                                      \
            for (int64_t i = 0; i < n; i++) {                             \
                C x = LD(xp[i]);                                          \
                o[i] = ST((__VA_ARGS__));                                 \
            }                                                             \
            return;                                                       \
        }                                                                 \
        for (int64_t i = 0; i < n; i++) {                                 \
            C x = LD(EW_AT(const T, p[1], i, s[1]));                      \
            C lo = LD(EW_AT(const T, p[2], i, s[2]));                     \
            C hi = LD(EW_AT(const T, p[3], i, s[3]));                     \
            EW_AT(T, p[0], i, s[0]) = ST((__VA_ARGS__));                  \
        }                                                                 \
    }

EW_FLOATS(GEN_CLAMP, EW_F(clampf, clampd, x, lo, hi))
EW_INTS(GEN_CLAMP, MIN_INT(MAX_INT(x, lo), hi))
EW_BOOL(GEN_CLAMP, MIN_INT(MAX_INT(x, lo), hi))

static const dt_loop_fn clamp_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_BOOL(clamp), EW_TABLE_INTS(clamp), EW_TABLE_FLOATS(clamp)};

/* A 0-dim tensor holding dtype d's lowest or highest value: what a
 * missing min or max stands for. */
static dt_status
extreme(dt_tensor **out, dt_dtype d, bool high)
{
    DT_TRY(dt_tensor_empty(out, NULL, 0, d, DT_DEVICE_CPU));
    void *p = dt_tensor_data(*out);
    switch (d) {
    case DT_BOOL: *(bool *)p = high; break;
    case DT_UINT8: *(uint8_t *)p = high ? UINT8_MAX : 0; break;
    case DT_INT32: *(int32_t *)p = high ? INT32_MAX : INT32_MIN; break;
    case DT_INT64: *(int64_t *)p = high ? INT64_MAX : INT64_MIN; break;
    default: dt_store_double(p, d, high ? INFINITY : -INFINITY); break;
    }
    return DT_OK;
}

dt_status
dt_clamp_forward(dt_tensor **out, const dt_tensor *x, const dt_tensor *lo,
                 const dt_tensor *hi)
{
    char name[32];
    const dt_tensor *ts[3] = {x, lo, hi};
    dt_tensor *lo_fill = NULL, *hi_fill = NULL;
    dt_ew_name(name, out, x, "clamp");
    if (!lo && !hi) {
        return dt_fail(DT_ERR_RUNTIME, "%s: At least one of 'min' or 'max' "
                       "must not be None", name);
    }
    dt_dtype d = dt_ew_result_type(ts, 3);
    dt_status s = lo ? DT_OK : extreme(&lo_fill, d, false);
    if (s == DT_OK && !hi) {
        s = extreme(&hi_fill, d, true);
    }
    if (s == DT_OK) {
        dt_ew_spec sp = {.name = name, .nin = 3,
                         .in = {x, lo ? lo : lo_fill, hi ? hi : hi_fill},
                         .in_dtype = {d, d, d}, .out_dtype = d,
                         .loop = clamp_loops[d]};
        s = dt_ew_run(out, &sp);
    }
    dt_tensor_release(lo_fill);
    dt_tensor_release(hi_fill);
    return s;
}

/* Backward. iargs[0]: 1 when both bounds are numbers (or missing), whose
 * values, rounded to the forward's dtype, are dargs[0..1]; saved: x, and
 * for tensor bounds lo and hi (NULL when missing). */

typedef struct clamp_bounds {
    double lo, hi;
} clamp_bounds;

#define BOUNDS                                                            \
    const ew_t lo = (ew_t)((const clamp_bounds *)ctx)->lo;                \
    const ew_t hi = (ew_t)((const clamp_bounds *)ctx)->hi
#define GEN_PASS(SFX, T, C, LD, ST, ...)                                  \
    EW_BINARY_LOOP(EW_STREAM, clamp_grad_##SFX, T, T, C, LD, ST, BOUNDS,  \
                   __VA_ARGS__)
/* a: gradient, b: x */
EW_FLOATS(GEN_PASS, (b >= lo && b <= hi) ? a : (ew_t)0)

#define GEN_MASK(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_TERNARY_LOOP(EW_STREAM, NAME##_##SFX, bool, T, C, LD, EW_ID, ,     \
                    __VA_ARGS__)
/* a: x, b: lo, c: hi; where each of the three gets the gradient */
EW_FLOATS(GEN_MASK, mask_x, a >= b && a <= c)
EW_FLOATS(GEN_MASK, mask_lo, a < b && b < c)
EW_FLOATS(GEN_MASK, mask_hi, a > c || c < b)

static const dt_loop_fn clamp_grad_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_FLOATS(clamp_grad)};
static const dt_loop_fn mask_x_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_FLOATS(mask_x)};
static const dt_loop_fn mask_lo_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_FLOATS(mask_lo)};
static const dt_loop_fn mask_hi_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_FLOATS(mask_hi)};
static const dt_loop_fn *const mask_loops[3] = {mask_x_loops, mask_lo_loops,
                                                mask_hi_loops};

/* gi = mask_loops[k](x, lo, hi) ? g : 0, compared in dtype d */
static dt_status
masked_grad(dt_tensor **gi, int k, const dt_tensor *g, dt_dtype d,
            const dt_tensor *const *xlh)
{
    dt_tensor *mask = NULL, *zero = NULL;
    dt_ew_spec sp = {.name = "clamp_backward", .nin = 3,
                     .in = {xlh[0], xlh[1], xlh[2]}, .in_dtype = {d, d, d},
                     .out_dtype = DT_BOOL, .loop = mask_loops[k][d]};
    DT_TRY(dt_ew_run(&mask, &sp));
    dt_status s = dt_tensor_scalar(&zero, 0.0, g->dtype);
    if (s == DT_OK) {
        s = dt_where_forward(gi, mask, g, zero);
    }
    dt_tensor_release(mask);
    dt_tensor_release(zero);
    return s;
}

static dt_status
clamp_tensor_grads(dt_node *n, dt_tensor **gi, const dt_tensor *g,
                   dt_dtype d)
{
    const dt_tensor *xlh[3];
    dt_tensor *fill[3] = {NULL, NULL, NULL};
    dt_status s = DT_OK;
    for (int k = 0; k < 3 && s == DT_OK; k++) {
        dt_tensor *t = NULL;
        s = dt_node_saved(&t, n, k);
        if (s == DT_OK && !t) {
            s = extreme(&fill[k], d, k == 2);
            t = fill[k];
        }
        xlh[k] = t;
    }
    for (int k = 0; k < 3 && s == DT_OK; k++) {
        if (dt_node_needs_grad(n, k)) {
            s = masked_grad(&gi[k], k, g, d, xlh);
        }
    }
    for (int k = 0; k < 3; k++) {
        dt_tensor_release(fill[k]);
    }
    return s;
}

static dt_status
dt_clamp_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_dtype d = dt_ew_grad_dtype(go[0]);
    if (!n->iargs[0]) {
        return clamp_tensor_grads(n, gi, go[0], d);
    }
    dt_tensor *x = NULL;
    clamp_bounds b = {n->dargs[0], n->dargs[1]};
    DT_TRY(dt_node_saved(&x, n, 0));
    return dt_ew_grad_run(&gi[0], d, clamp_grad_loops[d], &b, go[0], x,
                          NULL);
}

/* A bound that needs no gradient and has one value. */
static bool
number_bound(const dt_tensor *t)
{
    return !t || (t->ndim == 0 && !dt_requires_grad(t));
}

/* The bound's value rounded to dtype d, or the infinity it stands for. */
static dt_status
bound_value(double *v, const dt_tensor *t, dt_dtype d, bool high)
{
    uint64_t bits = 0;
    if (!t) {
        *v = high ? INFINITY : -INFINITY;
        return DT_OK;
    }
    DT_TRY(dt_tensor_item(v, t));
    dt_store_double(&bits, d, *v);
    *v = dt_load_double(&bits, d);
    return DT_OK;
}

static dt_status
clamp_save(dt_node *n, const dt_ew_rec *r, bool numbers, dt_dtype d)
{
    n->iargs[0] = numbers;
    n->num_iargs = 1;
    DT_TRY(dt_ew_save_self(n, r));
    if (numbers) {
        DT_TRY(bound_value(&n->dargs[0], r->in[1], d, false));
        return bound_value(&n->dargs[1], r->in[2], d, true);
    }
    DT_TRY(dt_ew_save_input(n, r, 1));
    return dt_ew_save_input(n, r, 2);
}

dt_status
dt_clamp(dt_tensor **out, const dt_tensor *x, const dt_tensor *lo,
         const dt_tensor *hi)
{
    char name[32];
    const dt_tensor *in[3] = {x, lo, hi};
    dt_ew_rec r;
    DT_TRY(dt_ew_rec_begin(&r, out, in, 3, dt_ew_name(name, out, x,
                                                      "clamp")));
    if (!r.record) {
        return dt_clamp_forward(out, x, lo, hi);
    }
    bool numbers = number_bound(lo) && number_bound(hi);
    dt_dtype d = dt_ew_result_type(in, 3);
    dt_node *n = NULL;
    dt_status s = dt_ew_rec_keep_self(&r);
    if (s == DT_OK) {
        s = dt_clamp_forward(out, x, lo, hi);
    }
    if (s == DT_OK) {
        s = dt_ew_rec_node(&n, &r, out,
                           numbers ? "ClampBackward1" : "ClampBackward0",
                           dt_clamp_backward);
    }
    if (s == DT_OK) {
        s = clamp_save(n, &r, numbers, d);
    }
    return dt_ew_rec_end(&r, out, s);
}
