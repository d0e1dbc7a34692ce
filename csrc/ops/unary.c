/* unary.c: one-input elementwise ops (forward): neg abs exp log sqrt rsqrt
 * sin cos tanh sigmoid relu gelu gelu_tanh, pow by a scalar, clamp.
 *
 * Each op/dtype pair is a loop generated from one expression in `x` (see
 * ew_impl.h). Floating functions of integer inputs run in float32; half
 * types compute in float32. float32 exp, tanh, sigmoid and both GELUs use
 * the vectorisable forms in ew_math.h; the rest call libm.
 */
#include "ew_impl.h"
#include "ew_math.h"

static inline double
sigmoid64(double x)
{
    return 1.0 / (1.0 + exp(-x));
}

static inline double
gelu64(double x)
{
    return 0.5 * x * erfc(-x * 0.70710678118654752440);
}

static inline double
gelu_tanh64(double x)
{
    double u = 0.79788456080286535588 * (x + 0.044715 * x * x * x);
    return 0.5 * x * (1.0 + tanh(u));
}

/* ---------------------------------------------------------------------- */
/* loops                                                                   */

#define GEN_UN(SFX, T, C, LD, ST, NAME, ...)                              \
    EW_UNARY_LOOP(EW_STREAM, NAME##_##SFX, T, T, C, LD, ST, , __VA_ARGS__)
#define GEN_MATH(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_UNARY_LOOP(EW_COMPUTE, NAME##_##SFX, T, T, C, LD, ST, , __VA_ARGS__)
#define GEN_LIBM(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_UNARY_LOOP(EW_SCALAR, NAME##_##SFX, T, T, C, LD, ST, , __VA_ARGS__)

EW_INTS_WRAP(GEN_UN, neg, 0 - x)
EW_FLOATS(GEN_UN, neg, -x)

EW_UNARY_LOOP(EW_STREAM, abs_u8, uint8_t, uint8_t, uint8_t, EW_ID, EW_ID, , x)
EW_UNARY_LOOP(EW_STREAM, abs_i32, int32_t, int32_t, uint32_t, EW_LD_U32,
              EW_ST_I32, , (int32_t)x < 0 ? 0 - x : x)
EW_UNARY_LOOP(EW_STREAM, abs_i64, int64_t, int64_t, uint64_t, EW_LD_U64,
              EW_ST_I64, , (int64_t)x < 0 ? 0 - x : x)
EW_FLOATS(GEN_UN, abs, EW_F(__builtin_fabsf, __builtin_fabs, x))

EW_INTS(GEN_UN, relu, x > 0 ? x : 0)
EW_FLOATS(GEN_UN, relu, (x > 0 || __builtin_isnan(x)) ? x : (ew_t)0)

EW_FLOATS(GEN_MATH, exp, EW_F(ew_expf, exp, x))
EW_FLOATS(GEN_LIBM, log, EW_F(logf, log, x))
EW_FLOATS(GEN_LIBM, sqrt, EW_F(sqrtf, sqrt, x))
EW_FLOATS(GEN_LIBM, rsqrt, (ew_t)1 / EW_F(sqrtf, sqrt, x))
EW_FLOATS(GEN_LIBM, sin, EW_F(sinf, sin, x))
EW_FLOATS(GEN_LIBM, cos, EW_F(cosf, cos, x))
EW_FLOATS(GEN_MATH, tanh, EW_F(ew_tanhf, tanh, x))
EW_FLOATS(GEN_MATH, sigmoid, EW_F(ew_sigmoidf, sigmoid64, x))
EW_FLOATS(GEN_MATH, gelu, EW_F(ew_gelu_erf, gelu64, x))
EW_FLOATS(GEN_MATH, gelu_tanh, EW_F(ew_gelu_tanh, gelu_tanh64, x))

#define FLOAT_LOOPS(NAME)                                                 \
    static const dt_loop_fn NAME##_loops[DT_DTYPE_COUNT] = {              \
        EW_TABLE_FLOATS(NAME)}

static const dt_loop_fn neg_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_INTS(neg), EW_TABLE_FLOATS(neg)};
static const dt_loop_fn abs_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_INTS(abs), EW_TABLE_FLOATS(abs)};
static const dt_loop_fn relu_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_INTS(relu), EW_TABLE_FLOATS(relu)};
FLOAT_LOOPS(exp);
FLOAT_LOOPS(log);
FLOAT_LOOPS(sqrt);
FLOAT_LOOPS(rsqrt);
FLOAT_LOOPS(sin);
FLOAT_LOOPS(cos);
FLOAT_LOOPS(tanh);
FLOAT_LOOPS(sigmoid);
FLOAT_LOOPS(gelu);
FLOAT_LOOPS(gelu_tanh);

typedef struct unary_info {
    const char *name;
    bool to_float;                 /* integer inputs compute in float32 */
    const dt_loop_fn *loops;       /* by dtype; NULL: not implemented */
} unary_info;

static const unary_info unary_ops[] = {
    [DT_OP_NEG - DT_OP_NEG] = {"neg", false, neg_loops},
    [DT_OP_ABS - DT_OP_NEG] = {"abs", false, abs_loops},
    [DT_OP_EXP - DT_OP_NEG] = {"exp", true, exp_loops},
    [DT_OP_LOG - DT_OP_NEG] = {"log", true, log_loops},
    [DT_OP_SQRT - DT_OP_NEG] = {"sqrt", true, sqrt_loops},
    [DT_OP_RSQRT - DT_OP_NEG] = {"rsqrt", true, rsqrt_loops},
    [DT_OP_SIN - DT_OP_NEG] = {"sin", true, sin_loops},
    [DT_OP_COS - DT_OP_NEG] = {"cos", true, cos_loops},
    [DT_OP_TANH - DT_OP_NEG] = {"tanh", true, tanh_loops},
    [DT_OP_SIGMOID - DT_OP_NEG] = {"sigmoid", true, sigmoid_loops},
    [DT_OP_RELU - DT_OP_NEG] = {"relu", false, relu_loops},
    [DT_OP_GELU - DT_OP_NEG] = {"gelu", false, gelu_loops},
    [DT_OP_GELU_TANH - DT_OP_NEG] = {"gelu", false, gelu_tanh_loops},
};
_Static_assert(sizeof unary_ops / sizeof unary_ops[0] ==
               DT_OP_GELU_TANH - DT_OP_NEG + 1, "a unary op lacks an entry");

static dt_status
run_unary(dt_tensor **out, const dt_tensor *x, const char *name,
          dt_dtype dtype, dt_loop_fn loop, void *ctx)
{
    dt_ew_spec sp = {.name = name, .nin = 1, .in = {x}, .in_dtype = {dtype},
                     .out_dtype = dtype, .loop = loop, .ctx = ctx};
    return dt_ew_run(out, &sp);
}

dt_status
dt_unary_forward(dt_tensor **out, const dt_tensor *x, dt_op op)
{
    char name[32];
    DT_ASSERT(op >= DT_OP_NEG && op <= DT_OP_GELU_TANH);
    const unary_info *u = &unary_ops[op - DT_OP_NEG];
    dt_ew_name(name, out, x, u->name);
    dt_dtype d = x->dtype;
    if (d == DT_BOOL && op == DT_OP_NEG) {
        return dt_fail(DT_ERR_RUNTIME,
                       "%s: Negation, the `-` operator, on a bool tensor is "
                       "not supported. If you are trying to invert a mask, "
                       "use the `~` or `logical_not()` operator instead.",
                       name);
    }
    if (d == DT_BOOL && op == DT_OP_RELU) {
        return dt_fail(DT_ERR_RUNTIME,
                       "%s: Boolean inputs not supported for relu", name);
    }
    if (u->to_float && !dt_dtype_is_floating(d)) {
        d = DT_DEFAULT_FLOAT;
    }
    if (!u->loops[d]) {
        return dt_ew_not_impl(name, d);
    }
    return run_unary(out, x, name, d, u->loops[d], NULL);
}

/* ---------------------------------------------------------------------- */
/* pow by a scalar                                                         */

typedef struct pow_ctx {
    double fexp;        /* the exponent, floating dtypes */
    uint64_t iexp;      /* the exponent, integer dtypes (never negative) */
} pow_ctx;

#define POW_EXP const ew_t e_ = (ew_t)((const pow_ctx *)ctx)->fexp
#define POW_IEXP const uint64_t e_ = ((const pow_ctx *)ctx)->iexp
#define GEN_POWF(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_UNARY_LOOP(EW_SCALAR, NAME##_##SFX, T, T, C, LD, ST, POW_EXP,      \
                  __VA_ARGS__)
#define GEN_POWI(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_UNARY_LOOP(EW_SCALAR, NAME##_##SFX, T, T, C, LD, ST, POW_IEXP,     \
                  __VA_ARGS__)

/* the exponents PyTorch special-cases (exact squares, sqrt, ...) */
EW_FLOATS(GEN_UN, sq, x * x)
EW_FLOATS(GEN_UN, cube, x * x * x)
EW_FLOATS(GEN_UN, recip, (ew_t)1 / x)
EW_FLOATS(GEN_UN, rsq, (ew_t)1 / (x * x))
EW_FLOATS(GEN_POWF, powf, EW_F(powf, pow, x, e_))
EW_INTS_WRAP(GEN_UN, sq, x * x)
EW_INTS_WRAP(GEN_UN, cube, x * x * x)
EW_INTS_WRAP(GEN_POWI, powi, ew_powi_u64(x, e_))

static const dt_loop_fn sq_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_INTS(sq), EW_TABLE_FLOATS(sq)};
static const dt_loop_fn cube_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_INTS(cube), EW_TABLE_FLOATS(cube)};
/* bool ** bool: PyTorch passes x ** 1 through and gives x ** 0 = 1 */
EW_UNARY_LOOP(EW_STREAM, powi_b, bool, bool, bool, EW_ID, EW_ID, POW_IEXP,
              e_ ? x : 1)

static const dt_loop_fn pow_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_BOOL(powi), EW_TABLE_INTS(powi), EW_TABLE_FLOATS(powf)};
FLOAT_LOOPS(recip);
FLOAT_LOOPS(rsq);

/* The loop for x ** e in dtype d: PyTorch's special exponents first. */
static dt_loop_fn
pow_loop(dt_dtype d, double e)
{
    if (d == DT_BOOL) {
        return pow_loops[d];
    }
    if (e == 2.0) {
        return sq_loops[d];
    }
    if (e == 3.0) {
        return cube_loops[d];
    }
    if (dt_dtype_is_floating(d)) {
        return e == 0.5    ? sqrt_loops[d]
               : e == -0.5 ? rsqrt_loops[d]
               : e == -1.0 ? recip_loops[d]
               : e == -2.0 ? rsq_loops[d]
                           : pow_loops[d];
    }
    return pow_loops[d];
}

dt_status
dt_pow_scalar_forward(dt_tensor **out, const dt_tensor *x,
                      const dt_tensor *exponent)
{
    char name[32];
    const dt_tensor *both[2] = {x, exponent};
    dt_dtype d = dt_result_type(both, 2);
    pow_ctx c = {0, 0};
    dt_ew_name(name, out, x, "pow");
    if (dt_tensor_numel(exponent) != 1 || exponent->ndim != 0) {
        return dt_fail(DT_ERR_RUNTIME, "%s: the exponent must be a number "
                       "or a 0-dim tensor", name);
    }
    DT_TRY(dt_tensor_item(&c.fexp, exponent));
    if (d == DT_FLOAT16 || d == DT_BFLOAT16) {
        uint16_t bits;             /* PyTorch rounds the exponent to d */
        dt_store_double(&bits, d, c.fexp);
        c.fexp = dt_load_double(&bits, d);
    }
    if (!dt_dtype_is_floating(d)) {
        /* exact for int64 exponents past 2**53 */
        int64_t e = exponent->dtype == DT_INT64
                        ? *(const int64_t *)dt_tensor_data(exponent)
                        : (int64_t)c.fexp;
        if (e < 0) {
            return dt_fail(DT_ERR_RUNTIME, "%s: Integers to negative integer "
                           "powers are not allowed.", name);
        }
        c.iexp = (uint64_t)e;
    }
    return run_unary(out, x, name, d, pow_loop(d, c.fexp), &c);
}

/* ---------------------------------------------------------------------- */
/* clamp                                                                   */

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
