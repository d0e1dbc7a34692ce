/* binary.c: two-input arithmetic (forward, backward, entry points): add
 * and sub (with alpha), mul, div (true, trunc, floor), and dt_binary, the
 * entry point for every two-input op (pow.c has pow, compare.c maximum,
 * minimum and the comparisons).
 *
 * Inputs are cast to the promoted dtype, then one generated loop per
 * op/dtype runs (ew_impl.h): integers wrap on overflow like PyTorch's,
 * half types compute in float32, floats propagate NaN through
 * maximum/minimum.
 */
#include "ew_impl.h"

typedef struct arith_ctx {
    double falpha;          /* alpha for floating dtypes */
    uint64_t ialpha;        /* alpha for integer dtypes, two's complement */
    bool zero_div;          /* set by integer division by zero */
    const char *name;
} arith_ctx;

/* ---------------------------------------------------------------------- */
/* scalar helpers                                                          */

/* PyTorch's integer division: a zero divisor is reported after the loop;
 * x / -1 is negation, since INT64_MIN / -1 would trap. */
static inline int64_t
idiv_trunc(int64_t a, int64_t b, void *ctx)
{
    if (b == 0) {
        ((arith_ctx *)ctx)->zero_div = true;
        return 0;
    }
    return b == -1 ? (int64_t)(0 - (uint64_t)a) : a / b;
}

static inline int64_t
idiv_floor(int64_t a, int64_t b, void *ctx)
{
    if (b == 0 || b == -1) {
        return idiv_trunc(a, b, ctx);
    }
    int64_t q = a / b, r = a % b;
    return (r != 0 && (r < 0) != (b < 0)) ? q - 1 : q;
}

/* PyTorch's floor division for floats: through fmod, so that a == b * q +
 * r holds as closely as possible (plain floor(a / b) misrounds). */
#define FDIV_FLOOR(NAME, T, FMOD, FLOOR, COPYSIGN)                        \
    static inline T                                                       \
    NAME(T a, T b)                                                        \
    {                                                                     \
        if (b == 0) {                                                     \
            return a / b;                                                 \
        }                                                                 \
        T mod = FMOD(a, b);                                               \
        T div = (a - mod) / b;                                            \
        if (mod != 0 && (b < 0) != (mod < 0)) {                           \
            div -= 1;                                                     \
        }                                                                 \
        if (div == 0) {                                                   \
            return COPYSIGN(0, a / b);                                    \
        }                                                                 \
        T fl = FLOOR(div);                                                \
        return div - fl > (T)0.5 ? fl + 1 : fl;                           \
    }
FDIV_FLOOR(fdiv_floorf, float, fmodf, floorf, copysignf)
FDIV_FLOOR(fdiv_floor, double, fmod, floor, copysign)

/* ---------------------------------------------------------------------- */
/* loops                                                                   */

#define GEN_BIN(SFX, T, C, LD, ST, NAME, ...)                             \
    EW_BINARY_LOOP(EW_STREAM, NAME##_##SFX, T, T, C, LD, ST, , __VA_ARGS__)
#define GEN_SLOW(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_BINARY_LOOP(EW_SCALAR, NAME##_##SFX, T, T, C, LD, ST, , __VA_ARGS__)
#define ALPHA_F const ew_t al = (ew_t)((const arith_ctx *)ctx)->falpha
#define ALPHA_I const ew_t al = (ew_t)((const arith_ctx *)ctx)->ialpha
#define GEN_ALPHA_F(SFX, T, C, LD, ST, NAME, ...)                         \
    EW_BINARY_LOOP(EW_STREAM, NAME##_##SFX, T, T, C, LD, ST, ALPHA_F,     \
                   __VA_ARGS__)
#define GEN_ALPHA_I(SFX, T, C, LD, ST, NAME, ...)                         \
    EW_BINARY_LOOP(EW_STREAM, NAME##_##SFX, T, T, C, LD, ST, ALPHA_I,     \
                   __VA_ARGS__)
/* integers computed as int64 (division, powers) */
#define INTS_AS_I64(GEN, ...)                                             \
    GEN(u8, uint8_t, int64_t, EW_ID, EW_ST_U8, __VA_ARGS__)               \
    GEN(i32, int32_t, int64_t, EW_ID, EW_ST_I32, __VA_ARGS__)             \
    GEN(i64, int64_t, int64_t, EW_ID, EW_ID, __VA_ARGS__)

/* float32/float64 arithmetic gets the hand-unrolled vector loop */
#define GEN_VEC(SFX, T, C, LD, ST, NAME, ...)                             \
    EW_BINARY_VLOOP(NAME##_##SFX, T, , __VA_ARGS__)
#define GEN_VEC_ALPHA(SFX, T, C, LD, ST, NAME, ...)                       \
    EW_BINARY_VLOOP(NAME##_##SFX, T, ALPHA_F, __VA_ARGS__)
#define FLOATS_VEC(GEN, GENV, ...)                                        \
    GEN(f16, dt_half, float, EW_LD_F16, EW_ST_F16, __VA_ARGS__)           \
    GEN(bf16, dt_bf16, float, EW_LD_BF16, EW_ST_BF16, __VA_ARGS__)        \
    GENV(f32, float, float, EW_ID, EW_ID, __VA_ARGS__)                    \
    GENV(f64, double, double, EW_ID, EW_ID, __VA_ARGS__)

EW_BOOL(GEN_BIN, add, a | b)
EW_INTS_WRAP(GEN_BIN, add, a + b)
FLOATS_VEC(GEN_BIN, GEN_VEC, add, a + b)
EW_INTS_WRAP(GEN_BIN, sub, a - b)
FLOATS_VEC(GEN_BIN, GEN_VEC, sub, a - b)
EW_BINARY_LOOP(EW_STREAM, add_alpha_b, bool, bool, bool, EW_ID, EW_ID,
               const bool al = ((const arith_ctx *)ctx)->ialpha != 0,
               a | (al & b))
EW_INTS_WRAP(GEN_ALPHA_I, add_alpha, a + al * b)
FLOATS_VEC(GEN_ALPHA_F, GEN_VEC_ALPHA, add_alpha, a + al * b)
EW_BOOL(GEN_BIN, mul, a & b)
EW_INTS_WRAP(GEN_BIN, mul, a * b)
FLOATS_VEC(GEN_BIN, GEN_VEC, mul, a * b)
FLOATS_VEC(GEN_BIN, GEN_VEC, div, a / b)
INTS_AS_I64(GEN_SLOW, div_trunc, idiv_trunc(a, b, ctx))
EW_FLOATS(GEN_BIN, div_trunc, EW_F(truncf, trunc, a / b))
INTS_AS_I64(GEN_SLOW, div_floor, idiv_floor(a, b, ctx))
EW_FLOATS(GEN_SLOW, div_floor, EW_F(fdiv_floorf, fdiv_floor, a, b))

/* Half-type tensor times (or over) a 0-dim scalar read as float32:
 * PyTorch keeps the scalar at float precision in mul and div instead of
 * rounding it to the tensor's dtype first (add and sub do round it). */
#define GEN_HALF_SCALAR(SFX, T, LD, ST, NAME, ...)                        \
    static EW_STREAM void                                                 \
    NAME##_##SFX(char **p_, const int64_t *s_, int64_t n_, void *ctx)     \
    {                                                                     \
        const float b = *(const float *)p_[2];                            \
        (void)ctx;                                                        \
        if (s_[0] == sizeof(T) && s_[1] == sizeof(T)) {                   \
            T *o_ = (T *)p_[0];                                           \
            const T *x_ = (const T *)p_[1];                               \
            EW_IVDEP                                                      \
            for (int64_t i_ = 0; i_ < n_; i_++) {                         \
                float a = LD(x_[i_]);                                     \
                o_[i_] = ST((__VA_ARGS__));                               \
            }                                                             \
            return;                                                       \
        }                                                                 \
        for (int64_t i_ = 0; i_ < n_; i_++) {                             \
            float a = LD(EW_AT(const T, p_[1], i_, s_[1]));               \
            EW_AT(T, p_[0], i_, s_[0]) = ST((__VA_ARGS__));               \
        }                                                                 \
    }
#define HALVES(GEN, ...)                                                  \
    GEN(f16, dt_half, EW_LD_F16, EW_ST_F16, __VA_ARGS__)                  \
    GEN(bf16, dt_bf16, EW_LD_BF16, EW_ST_BF16, __VA_ARGS__)

HALVES(GEN_HALF_SCALAR, mul_scalar, a * b)
HALVES(GEN_HALF_SCALAR, div_scalar, a / b)

#define ALL_LOOPS(NAME)                                                   \
    static const dt_loop_fn NAME##_loops[DT_DTYPE_COUNT] = {              \
        EW_TABLE_BOOL(NAME), EW_TABLE_INTS(NAME), EW_TABLE_FLOATS(NAME)}
#define NUM_LOOPS(NAME)                                                   \
    static const dt_loop_fn NAME##_loops[DT_DTYPE_COUNT] = {              \
        EW_TABLE_INTS(NAME), EW_TABLE_FLOATS(NAME)}

ALL_LOOPS(add);
NUM_LOOPS(sub);
ALL_LOOPS(add_alpha);
ALL_LOOPS(mul);
static const dt_loop_fn div_loops[DT_DTYPE_COUNT] = {EW_TABLE_FLOATS(div)};
NUM_LOOPS(div_trunc);
NUM_LOOPS(div_floor);
static const dt_loop_fn mul_scalar_loops[DT_DTYPE_COUNT] = {
    [DT_FLOAT16] = mul_scalar_f16, [DT_BFLOAT16] = mul_scalar_bf16};
static const dt_loop_fn div_scalar_loops[DT_DTYPE_COUNT] = {
    [DT_FLOAT16] = div_scalar_f16, [DT_BFLOAT16] = div_scalar_bf16};

/* ---------------------------------------------------------------------- */
/* ops                                                                     */

static dt_status
zero_div_check(void *ctx)
{
    const arith_ctx *c = ctx;
    return c->zero_div ? dt_fail(DT_ERR_RUNTIME, "%s: ZeroDivisionError",
                                 c->name)
                       : DT_OK;
}

/* Runs loops[dtype] with both inputs cast to dtype, or, for a half type
 * and a 0-dim b, scalar_loops[dtype] (if given) with b as float32. */
static dt_status
run_binary(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
           dt_dtype dtype, const dt_loop_fn *loops,
           const dt_loop_fn *scalar_loops, arith_ctx *c)
{
    dt_ew_spec sp = {.name = c->name, .nin = 2, .in = {a, b},
                     .in_dtype = {dtype, dtype}, .out_dtype = dtype,
                     .loop = loops[dtype], .ctx = c,
                     .after = zero_div_check};
    if (scalar_loops && scalar_loops[dtype] && b->ndim == 0) {
        sp.in_dtype[1] = DT_FLOAT32;
        sp.loop = scalar_loops[dtype];
    }
    if (!sp.loop) {
        return dt_ew_not_impl(c->name, dtype);
    }
    return dt_ew_run(out, &sp);
}

static dt_dtype
promote2(const dt_tensor *a, const dt_tensor *b)
{
    const dt_tensor *ab[2] = {a, b};
    return dt_result_type(ab, 2);
}

/* Reads alpha into c (negated for sub) after PyTorch's checks; *one tells
 * whether it is 1, so the plain loop can run. */
static dt_status
read_alpha(arith_ctx *c, bool *one, const dt_tensor *alpha, dt_dtype d,
           bool negate)
{
    double v;
    if (alpha->ndim != 0) {
        return dt_fail(DT_ERR_RUNTIME, "%s: alpha must be a number",
                       c->name);
    }
    if (dt_dtype_is_floating(alpha->dtype) && !dt_dtype_is_floating(d)) {
        return dt_fail(DT_ERR_RUNTIME, "%s: For integral input tensors, "
                       "argument alpha must not be a floating point number.",
                       c->name);
    }
    if (alpha->dtype == DT_BOOL && d != DT_BOOL) {
        return dt_fail(DT_ERR_RUNTIME, "%s: Boolean alpha only supported for "
                       "Boolean results.", c->name);
    }
    DT_TRY(dt_tensor_item(&v, alpha));
    uint64_t iv = alpha->dtype == DT_INT64
                      ? (uint64_t)*(const int64_t *)dt_tensor_data(alpha)
                      : (uint64_t)(int64_t)v;
    *one = dt_dtype_is_floating(d) ? v == 1.0 : iv == 1;
    c->falpha = negate ? -v : v;
    c->ialpha = negate ? 0 - iv : iv;
    return DT_OK;
}

static dt_status
add_or_sub(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
           const dt_tensor *alpha, bool sub)
{
    char name[32];
    arith_ctx c = {.name = dt_ew_name(name, out, a, sub ? "sub" : "add")};
    dt_dtype d = promote2(a, b);
    bool one = true;
    if (sub && (a->dtype == DT_BOOL || b->dtype == DT_BOOL)) {
        bool two = a->dtype == DT_BOOL && b->dtype == DT_BOOL;
        return dt_fail(DT_ERR_RUNTIME,
                       two ? "%s: Subtraction, the `-` operator, with two "
                             "bool tensors is not supported. Use the `^` or "
                             "`logical_xor()` operator instead."
                           : "%s: Subtraction, the `-` operator, with a bool "
                             "tensor is not supported. If you are trying to "
                             "invert a mask, use the `~` or `logical_not()` "
                             "operator instead.", name);
    }
    if (alpha) {
        DT_TRY(read_alpha(&c, &one, alpha, d, sub));
    }
    const dt_loop_fn *loops = !one ? add_alpha_loops
                              : sub ? sub_loops : add_loops;
    return run_binary(out, a, b, d, loops, NULL, &c);
}

dt_status
dt_add_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
               const dt_tensor *alpha)
{
    return add_or_sub(out, a, b, alpha, false);
}

dt_status
dt_sub_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
               const dt_tensor *alpha)
{
    return add_or_sub(out, a, b, alpha, true);
}

/* Backward: a gets the gradient, b alpha times it (dargs[0], negated for
 * sub). */
static dt_status
dt_add_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    double al = n->dargs[0];
    if (dt_node_needs_grad(n, 0)) {
        dt_tensor_retain(go[0]);
        gi[0] = go[0];
    }
    if (!dt_node_needs_grad(n, 1)) {
        return DT_OK;
    }
    if (al == 1.0) {
        dt_tensor_retain(go[0]);
        gi[1] = go[0];
        return DT_OK;
    }
    if (al == -1.0) {
        return dt_unary_forward(&gi[1], go[0], DT_OP_NEG);
    }
    dt_tensor *t = NULL;
    DT_TRY(dt_ew_number(&t, al));
    dt_status s = dt_binary_forward(&gi[1], go[0], t, DT_OP_MUL);
    dt_tensor_release(t);
    return s;
}

static dt_status
add_or_sub_entry(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
                 const dt_tensor *alpha, bool sub)
{
    char name[32];
    dt_ew_rec r;
    const dt_tensor *in[2] = {a, b};
    dt_ew_name(name, out, a, sub ? "sub" : "add");
    DT_TRY(dt_ew_rec_begin(&r, out, in, 2, name));
    if (!r.record) {
        return add_or_sub(out, a, b, alpha, sub);
    }
    double al = 1.0;
    dt_node *n = NULL;
    dt_status s = alpha ? dt_tensor_item(&al, alpha) : DT_OK;
    if (s == DT_OK) {
        s = add_or_sub(out, a, b, alpha, sub);
    }
    if (s == DT_OK) {
        s = dt_ew_rec_node(&n, &r, out, sub ? "SubBackward0" : "AddBackward0",
                           dt_add_backward);
    }
    if (s == DT_OK) {
        n->dargs[0] = sub ? -al : al;
    }
    return dt_ew_rec_end(&r, out, s);
}

dt_status
dt_add(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
       const dt_tensor *alpha)
{
    return add_or_sub_entry(out, a, b, alpha, false);
}

dt_status
dt_sub(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
       const dt_tensor *alpha)
{
    return add_or_sub_entry(out, a, b, alpha, true);
}

dt_status
dt_div_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
               dt_rounding mode)
{
    char name[32];
    arith_ctx c = {.name = dt_ew_name(name, out, a, "div")};
    dt_dtype d = promote2(a, b);
    if (mode == DT_ROUND_NONE) {
        if (!dt_dtype_is_floating(d)) {
            d = DT_DEFAULT_FLOAT;
        }
        return run_binary(out, a, b, d, div_loops, div_scalar_loops, &c);
    }
    return run_binary(out, a, b, d,
                      mode == DT_ROUND_TRUNC ? div_trunc_loops
                                             : div_floor_loops, NULL, &c);
}

/* Backward of true division: g / b and -g * ((a / b) / b). Saved: a
 * (only when b needs a gradient), b. Rounding modes have zero gradients
 * (dt_ew_zero_backward), as in PyTorch. */
#define GEN_TERN(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_TERNARY_LOOP(EW_STREAM, NAME##_##SFX, T, T, C, LD, ST, ,           \
                    __VA_ARGS__)
/* (gradient, a, b) -> b's gradient */
EW_FLOATS(GEN_TERN, div_grad_other, -a * ((b / c) / c))
static const dt_loop_fn div_grad_other_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_FLOATS(div_grad_other)};

static dt_status
dt_div_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *a = NULL, *b = NULL;
    dt_dtype d = dt_ew_grad_dtype(go[0]);
    DT_TRY(dt_node_saved(&a, n, 0));
    DT_TRY(dt_node_saved(&b, n, 1));
    if (dt_node_needs_grad(n, 0)) {
        DT_TRY(dt_div_forward(&gi[0], go[0], b, DT_ROUND_NONE));
    }
    if (dt_node_needs_grad(n, 1)) {
        DT_TRY(dt_ew_grad_run(&gi[1], d, div_grad_other_loops[d], NULL,
                              go[0], a, b));
    }
    return DT_OK;
}

dt_status
dt_div(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
       dt_rounding mode)
{
    char name[32];
    dt_ew_rec r;
    const dt_tensor *in[2] = {a, b};
    DT_TRY(dt_ew_rec_begin(&r, out, in, 2, dt_ew_name(name, out, a, "div")));
    if (!r.record) {
        return dt_div_forward(out, a, b, mode);
    }
    bool true_div = mode == DT_ROUND_NONE, save_a = dt_requires_grad(b);
    dt_node *n = NULL;
    dt_status s = true_div && save_a ? dt_ew_rec_keep_self(&r) : DT_OK;
    if (s == DT_OK) {
        s = dt_div_forward(out, a, b, mode);
    }
    if (s == DT_OK) {
        s = true_div ? dt_ew_rec_node(&n, &r, out, "DivBackward0",
                                      dt_div_backward)
                     : dt_ew_rec_node(&n, &r, out, "DivBackward2",
                                      dt_ew_zero_backward);
    }
    if (s == DT_OK && true_div) {
        s = save_a ? dt_ew_save_self(n, &r) : dt_node_save(n, NULL);
    }
    if (s == DT_OK && true_div) {
        s = dt_ew_save_input(n, &r, 1);
    }
    return dt_ew_rec_end(&r, out, s);
}

dt_status
dt_binary_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
                  dt_op op)
{
    char name[32];
    const dt_tensor *self = a;
    switch (op) {
    case DT_OP_ADD: return dt_add_forward(out, a, b, NULL);
    case DT_OP_SUB: return dt_sub_forward(out, a, b, NULL);
    case DT_OP_DIV: return dt_div_forward(out, a, b, DT_ROUND_NONE);
    case DT_OP_POW: return dt_pow_forward(out, a, b);
    case DT_OP_MAXIMUM:
    case DT_OP_MINIMUM: return dt_maxmin_forward(out, a, b, op);
    case DT_OP_MUL: break;
    default:
        DT_ASSERT(op >= DT_OP_EQ && op <= DT_OP_GE);
        return dt_compare_forward(out, a, b, op);
    }
    if (a->ndim == 0 && b->ndim > 0) {
        const dt_tensor *t = a;     /* the scalar goes second */
        a = b;
        b = t;
    }
    arith_ctx c = {.name = dt_ew_name(name, out, self, dt_op_names[op])};
    return run_binary(out, a, b, promote2(a, b), mul_loops, mul_scalar_loops,
                      &c);
}

/* Backward of mul: g * b and g * a. Saved: a (when b needs a gradient),
 * b (when a does). */
static dt_status
dt_mul_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *a = NULL, *b = NULL;
    DT_TRY(dt_node_saved(&a, n, 0));
    DT_TRY(dt_node_saved(&b, n, 1));
    if (dt_node_needs_grad(n, 0)) {
        DT_TRY(dt_binary_forward(&gi[0], go[0], b, DT_OP_MUL));
    }
    if (dt_node_needs_grad(n, 1)) {
        DT_TRY(dt_binary_forward(&gi[1], go[0], a, DT_OP_MUL));
    }
    return DT_OK;
}

static dt_status
mul_entry(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    char name[32];
    dt_ew_rec r;
    const dt_tensor *in[2] = {a, b};
    DT_TRY(dt_ew_rec_begin(&r, out, in, 2, dt_ew_name(name, out, a, "mul")));
    if (!r.record) {
        return dt_binary_forward(out, a, b, DT_OP_MUL);
    }
    bool save_a = dt_requires_grad(b), save_b = dt_requires_grad(a);
    dt_node *n = NULL;
    dt_status s = save_a ? dt_ew_rec_keep_self(&r) : DT_OK;
    if (s == DT_OK) {
        s = dt_binary_forward(out, a, b, DT_OP_MUL);
    }
    if (s == DT_OK) {
        s = dt_ew_rec_node(&n, &r, out, "MulBackward0", dt_mul_backward);
    }
    if (s == DT_OK) {
        s = save_a ? dt_ew_save_self(n, &r) : dt_node_save(n, NULL);
    }
    if (s == DT_OK) {
        s = save_b ? dt_ew_save_input(n, &r, 1) : dt_node_save(n, NULL);
    }
    return dt_ew_rec_end(&r, out, s);
}

dt_status
dt_binary(dt_tensor **out, const dt_tensor *a, const dt_tensor *b, dt_op op)
{
    switch (op) {
    case DT_OP_ADD: return dt_add(out, a, b, NULL);
    case DT_OP_SUB: return dt_sub(out, a, b, NULL);
    case DT_OP_DIV: return dt_div(out, a, b, DT_ROUND_NONE);
    case DT_OP_MUL: return mul_entry(out, a, b);
    case DT_OP_POW: return dt_pow_tensor(out, a, b);
    case DT_OP_MAXIMUM:
    case DT_OP_MINIMUM: return dt_maxmin(out, a, b, op);
    default: return dt_compare(out, a, b, op);
    }
}
