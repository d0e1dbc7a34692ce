/* pow.c: powers (forward, backward, entry points): a tensor to a number
 * (x ** 2), tensors to tensors, and a number to a tensor (2 ** x).
 *
 * Exponents PyTorch special-cases (2, 3, 0.5, -1, ...) get their exact
 * loops; the rest call libm. Gradients follow PyTorch's formulas,
 * including its zero gradient for an exponent of 0 and for the exponent
 * where the base is 0 and the exponent non-negative.
 */
#include "ew_impl.h"

#define GEN_UN(SFX, T, C, LD, ST, NAME, ...)                              \
    EW_UNARY_LOOP(EW_STREAM, NAME##_##SFX, T, T, C, LD, ST, , __VA_ARGS__)
#define GEN_LIBM(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_UNARY_LOOP(EW_SCALAR, NAME##_##SFX, T, T, C, LD, ST, , __VA_ARGS__)

/* ---------------------------------------------------------------------- */
/* a tensor to a number                                                    */

/* x ** 0.5 and x ** -0.5: the same loops as unary.c's sqrt and rsqrt */
EW_FLOATS(GEN_LIBM, sqrt, EW_F(sqrtf, sqrt, x))
EW_FLOATS(GEN_LIBM, rsqrt, (ew_t)1 / EW_F(sqrtf, sqrt, x))

#define FLOAT_LOOPS(NAME)                                                 \
    static const dt_loop_fn NAME##_loops[DT_DTYPE_COUNT] = {              \
        EW_TABLE_FLOATS(NAME)}

FLOAT_LOOPS(sqrt);
FLOAT_LOOPS(rsqrt);

static dt_status
run_unary(dt_tensor **out, const dt_tensor *x, const char *name,
          dt_dtype dtype, dt_loop_fn loop, void *ctx)
{
    dt_ew_spec sp = {.name = name, .nin = 1, .in = {x}, .in_dtype = {dtype},
                     .out_dtype = dtype, .loop = loop, .ctx = ctx};
    return dt_ew_run(out, &sp);
}

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


/* Backward: e == 0 gives zeros; else g * (e * x ** (e - 1)), with x ** 1
 * as x. dargs[0]: the exponent; saved: x. */

/* x ** e with the forward's special exponents, so that the gradient
 * agrees with PyTorch's even at 0 (1/sqrt(-0.0) is -inf, pow's +inf). */
#define POW_SPECIAL(NAME, T, SQRT, POW)                                   \
    static inline T                                                       \
    NAME(T x, T e)                                                        \
    {                                                                     \
        return e == 2     ? x * x                                         \
               : e == 3   ? x * x * x                                     \
               : e == 0.5 ? SQRT(x)                                       \
               : e == -0.5 ? (T)1 / SQRT(x)                               \
               : e == -1  ? (T)1 / x                                      \
               : e == -2  ? (T)1 / (x * x)                                \
                          : POW(x, e);                                    \
    }
POW_SPECIAL(pow_specialf, float, sqrtf, powf)
POW_SPECIAL(pow_special, double, sqrt, pow)

typedef struct pow_grad_ctx {
    double e;
} pow_grad_ctx;

#define POW_GRAD_SETUP                                                    \
    const double ed_ = ((const pow_grad_ctx *)ctx)->e;                    \
    const ew_t e_ = (ew_t)ed_, em1_ = (ew_t)(ed_ - 1.0);                  \
    (void)em1_
#define GEN_POW_GRAD(SFX, T, C, LD, ST, NAME, ATTR, ...)                  \
    EW_BINARY_LOOP(ATTR, NAME##_##SFX, T, T, C, LD, ST, POW_GRAD_SETUP,   \
                   __VA_ARGS__)
/* a: gradient, b: x */
EW_FLOATS(GEN_POW_GRAD, pow_grad_sq, EW_STREAM, a * (e_ * b))
EW_FLOATS(GEN_POW_GRAD, pow_grad, EW_SCALAR,
          a * (e_ * EW_F(pow_specialf, pow_special, b, em1_)))
FLOAT_LOOPS(pow_grad_sq);
FLOAT_LOOPS(pow_grad);

static dt_status
dt_pow_scalar_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    const dt_input_meta *m = &n->in_meta[0];
    pow_grad_ctx c = {n->dargs[0]};
    dt_tensor *x = NULL;
    dt_dtype d = dt_ew_grad_dtype(go[0]);
    if (c.e == 0.0) {
        return dt_tensor_zeros(&gi[0], m->shape, m->ndim, m->dtype,
                               dt_tensor_device(go[0]));
    }
    DT_TRY(dt_node_saved(&x, n, 0));
    return dt_ew_grad_run(&gi[0], d,
                          c.e == 2.0 ? pow_grad_sq_loops[d]
                                     : pow_grad_loops[d],
                          &c, go[0], x, NULL);
}

dt_status
dt_pow_scalar(dt_tensor **out, const dt_tensor *x, const dt_tensor *exponent)
{
    char name[32];
    dt_ew_rec r;
    const dt_tensor *in[2] = {x, exponent};
    DT_TRY(dt_ew_rec_begin(&r, out, in, 2, dt_ew_name(name, out, x, "pow")));
    if (!r.record) {
        return dt_pow_scalar_forward(out, x, exponent);
    }
    dt_node *n = NULL;
    double e = 0;
    dt_status s = dt_tensor_item(&e, exponent);
    if (s == DT_OK) {
        s = dt_ew_rec_keep_self(&r);
    }
    if (s == DT_OK) {
        s = dt_pow_scalar_forward(out, x, exponent);
    }
    if (s == DT_OK) {
        s = dt_ew_rec_node(&n, &r, out, "PowBackward0",
                           dt_pow_scalar_backward);
    }
    if (s == DT_OK) {
        n->dargs[0] = e;
        s = dt_ew_save_self(n, &r);
    }
    return dt_ew_rec_end(&r, out, s);
}

/* ---------------------------------------------------------------------- */
/* tensors to tensors                                                      */

/* Integer powers as PyTorch computes them: a negative exponent gives 0
 * except for bases 1 and -1. */
static inline int64_t
ipow(int64_t a, int64_t b)
{
    if (b < 0) {
        return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;
    }
    return (int64_t)ew_powi_u64((uint64_t)a, (uint64_t)b);
}

#define GEN_POWT(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_BINARY_LOOP(EW_SCALAR, NAME##_##SFX, T, T, C, LD, ST, , __VA_ARGS__)
/* integers computed as int64 */
#define INTS_AS_I64(GEN, ...)                                             \
    GEN(u8, uint8_t, int64_t, EW_ID, EW_ST_U8, __VA_ARGS__)               \
    GEN(i32, int32_t, int64_t, EW_ID, EW_ST_I32, __VA_ARGS__)             \
    GEN(i64, int64_t, int64_t, EW_ID, EW_ID, __VA_ARGS__)

INTS_AS_I64(GEN_POWT, powt, ipow(a, b))
EW_FLOATS(GEN_POWT, powt, EW_F(powf, pow, a, b))

static const dt_loop_fn powt_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_INTS(powt), EW_TABLE_FLOATS(powt)};

dt_status
dt_pow_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    char name[32];
    const dt_tensor *ab[2] = {a, b};
    dt_dtype d = dt_result_type(ab, 2);
    dt_ew_spec sp = {.name = dt_ew_name(name, out, a, "pow"), .nin = 2,
                     .in = {a, b}, .in_dtype = {d, d}, .out_dtype = d,
                     .loop = powt_loops[d]};
    if (!sp.loop) {
        return dt_ew_not_impl(name, d);
    }
    return dt_ew_run(out, &sp);
}

/* Backward; saved: a, b, the result. */
#define GEN_TERN(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_TERNARY_LOOP(EW_SCALAR, NAME##_##SFX, T, T, C, LD, ST, ,           \
                    __VA_ARGS__)
/* (gradient, base, exponent) -> the base's gradient */
EW_FLOATS(GEN_TERN, powt_grad_base,
          c == 0 ? (ew_t)0 : a * (c * EW_F(powf, pow, b, c - 1)))
/* (base, exponent, result) -> d result / d exponent */
EW_FLOATS(GEN_TERN, powt_grad_exp,
          (a == 0 && b >= 0) ? (ew_t)0 : c * EW_F(logf, log, a))
FLOAT_LOOPS(powt_grad_base);
FLOAT_LOOPS(powt_grad_exp);

static dt_status
powt_grad_exp(dt_tensor **gi, const dt_tensor *g, dt_dtype d,
              const dt_tensor *a, const dt_tensor *b, const dt_tensor *res)
{
    dt_tensor *t = NULL;
    DT_TRY(dt_ew_grad_run(&t, d, powt_grad_exp_loops[d], NULL, a, b, res));
    dt_status s = dt_binary_forward(gi, g, t, DT_OP_MUL);
    dt_tensor_release(t);
    return s;
}

static dt_status
dt_pow_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *a = NULL, *b = NULL, *res = NULL;
    dt_dtype d = dt_ew_grad_dtype(go[0]);
    DT_TRY(dt_node_saved(&a, n, 0));
    DT_TRY(dt_node_saved(&b, n, 1));
    DT_TRY(dt_node_saved(&res, n, 2));
    if (dt_node_needs_grad(n, 0)) {
        DT_TRY(dt_ew_grad_run(&gi[0], d, powt_grad_base_loops[d], NULL,
                              go[0], a, b));
    }
    if (dt_node_needs_grad(n, 1)) {
        DT_TRY(powt_grad_exp(&gi[1], go[0], d, a, b, res));
    }
    return DT_OK;
}

dt_status
dt_pow_tensor(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    char name[32];
    dt_ew_rec r;
    const dt_tensor *in[2] = {a, b};
    DT_TRY(dt_ew_rec_begin(&r, out, in, 2, dt_ew_name(name, out, a, "pow")));
    if (!r.record) {
        return dt_pow_forward(out, a, b);
    }
    dt_node *n = NULL;
    dt_status s = dt_ew_rec_keep_self(&r);
    if (s == DT_OK) {
        s = dt_pow_forward(out, a, b);
    }
    if (s == DT_OK) {
        s = dt_ew_rec_node(&n, &r, out,
                           a->is_wrapped_number ? "PowBackward2"
                                                : "PowBackward1",
                           dt_pow_backward);
    }
    if (s == DT_OK) {
        s = dt_ew_save_self(n, &r);
    }
    if (s == DT_OK) {
        s = dt_ew_save_input(n, &r, 1);
    }
    if (s == DT_OK) {
        s = dt_node_save(n, *out);
    }
    return dt_ew_rec_end(&r, out, s);
}

dt_status
dt_pow(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    if (b->is_wrapped_number && !a->is_wrapped_number) {
        return dt_pow_scalar(out, a, b);
    }
    return dt_pow_tensor(out, a, b);
}
