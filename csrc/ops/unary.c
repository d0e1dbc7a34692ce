/* unary.c: one-input elementwise ops (forward, backward, entry point):
 * neg abs exp log sqrt rsqrt sin cos tanh sigmoid relu gelu gelu_tanh.
 *
 * Each op/dtype pair is a loop generated from one expression in `x` (see
 * ew_impl.h). Floating functions of integer inputs run in float32; half
 * types compute in float32. float32 exp, tanh, sigmoid and both GELUs use
 * the vectorisable forms in ew_math.h; the rest call libm. Each backward
 * is one fused pass over the gradient and one saved tensor.
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
/* backward                                                                */

/* PyTorch's formulas, each one pass over (a: gradient, b: the saved
 * tensor: the input x, or the result y where PyTorch saves that). */
static inline double
gelu_grad64(double x)
{
    double cdf = 0.5 * (1.0 + erf(x * 0.70710678118654752440));
    double pdf = 0.39894228040143267794 * exp(-0.5 * x * x);
    return cdf + x * pdf;
}

static inline double
gelu_tanh_grad64(double x)
{
    const double beta = 0.79788456080286535588, kappa = 0.044715;
    double x_sq = x * x, x_cube = x_sq * x;
    double t = tanh(beta * (x + kappa * x_cube));
    double left_d = 0.5 * (1.0 + t);
    double inner_d = beta * (1.0 + 3.0 * kappa * x_sq);
    return left_d + (0.5 * x) * (1.0 - t * t) * inner_d;
}

#define GEN_GRAD(SFX, T, C, LD, ST, NAME, ATTR, ...)                      \
    EW_BINARY_LOOP(ATTR, NAME##_grad_##SFX, T, T, C, LD, ST, , __VA_ARGS__)

EW_FLOATS(GEN_GRAD, abs, EW_STREAM,
          a * (ew_t)((b > 0) - (b < 0)))                     /* x */
EW_FLOATS(GEN_GRAD, exp, EW_STREAM, a * b)                   /* y */
EW_FLOATS(GEN_GRAD, log, EW_STREAM, a / b)                   /* x */
EW_FLOATS(GEN_GRAD, sqrt, EW_STREAM, a / (2 * b))            /* y */
EW_FLOATS(GEN_GRAD, rsqrt, EW_STREAM,
          ((ew_t)-0.5 * a) * (b * b * b))                    /* y */
EW_FLOATS(GEN_GRAD, sin, EW_SCALAR, a * EW_F(cosf, cos, b))  /* x */
EW_FLOATS(GEN_GRAD, cos, EW_SCALAR, a * -EW_F(sinf, sin, b)) /* x */
EW_FLOATS(GEN_GRAD, tanh, EW_STREAM, a * (1 - b * b))        /* y */
EW_FLOATS(GEN_GRAD, sigmoid, EW_STREAM, a * (1 - b) * b)     /* y */
EW_FLOATS(GEN_GRAD, relu, EW_STREAM, b <= 0 ? (ew_t)0 : a)   /* y */
EW_FLOATS(GEN_GRAD, gelu, EW_COMPUTE,
          a * EW_F(ew_gelu_erf_grad, gelu_grad64, b))        /* x */
EW_FLOATS(GEN_GRAD, gelu_tanh, EW_COMPUTE,
          a * EW_F(ew_gelu_tanh_grad, gelu_tanh_grad64, b))  /* x */

#define GRAD_LOOPS(NAME)                                                  \
    (const dt_loop_fn[DT_DTYPE_COUNT]){EW_TABLE_FLOATS(NAME##_grad)}

enum { SAVE_NONE, SAVE_X, SAVE_Y };

typedef struct unary_grad {
    const char *node;
    int save;
    const dt_loop_fn *loops;     /* by dtype; NULL: neg */
} unary_grad;

static const unary_grad unary_grads[] = {
    [DT_OP_NEG - DT_OP_NEG] = {"NegBackward0", SAVE_NONE, NULL},
    [DT_OP_ABS - DT_OP_NEG] = {"AbsBackward0", SAVE_X, GRAD_LOOPS(abs)},
    [DT_OP_EXP - DT_OP_NEG] = {"ExpBackward0", SAVE_Y, GRAD_LOOPS(exp)},
    [DT_OP_LOG - DT_OP_NEG] = {"LogBackward0", SAVE_X, GRAD_LOOPS(log)},
    [DT_OP_SQRT - DT_OP_NEG] = {"SqrtBackward0", SAVE_Y, GRAD_LOOPS(sqrt)},
    [DT_OP_RSQRT - DT_OP_NEG] = {"RsqrtBackward0", SAVE_Y,
                                 GRAD_LOOPS(rsqrt)},
    [DT_OP_SIN - DT_OP_NEG] = {"SinBackward0", SAVE_X, GRAD_LOOPS(sin)},
    [DT_OP_COS - DT_OP_NEG] = {"CosBackward0", SAVE_X, GRAD_LOOPS(cos)},
    [DT_OP_TANH - DT_OP_NEG] = {"TanhBackward0", SAVE_Y, GRAD_LOOPS(tanh)},
    [DT_OP_SIGMOID - DT_OP_NEG] = {"SigmoidBackward0", SAVE_Y,
                                   GRAD_LOOPS(sigmoid)},
    [DT_OP_RELU - DT_OP_NEG] = {"ReluBackward0", SAVE_Y, GRAD_LOOPS(relu)},
    [DT_OP_GELU - DT_OP_NEG] = {"GeluBackward0", SAVE_X, GRAD_LOOPS(gelu)},
    [DT_OP_GELU_TANH - DT_OP_NEG] = {"GeluBackward0", SAVE_X,
                                     GRAD_LOOPS(gelu_tanh)},
};
_Static_assert(sizeof unary_grads / sizeof unary_grads[0] ==
               DT_OP_GELU_TANH - DT_OP_NEG + 1, "a unary op lacks its grad");

/* iargs[0]: the op; saved: x or y as unary_grads says */
static dt_status
dt_unary_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    const unary_grad *u = &unary_grads[n->iargs[0] - DT_OP_NEG];
    dt_dtype d = dt_ew_grad_dtype(go[0]);
    dt_tensor *saved = NULL;
    if (!u->loops) {
        return dt_unary_forward(&gi[0], go[0], DT_OP_NEG);
    }
    DT_TRY(dt_node_saved(&saved, n, 0));
    return dt_ew_grad_run(&gi[0], d, u->loops[d], NULL, go[0], saved, NULL);
}

dt_status
dt_unary(dt_tensor **out, const dt_tensor *x, dt_op op)
{
    char name[32];
    dt_ew_rec r;
    DT_ASSERT(op >= DT_OP_NEG && op <= DT_OP_GELU_TANH);
    const unary_grad *u = &unary_grads[op - DT_OP_NEG];
    dt_ew_name(name, out, x, unary_ops[op - DT_OP_NEG].name);
    DT_TRY(dt_ew_rec_begin(&r, out, &x, 1, name));
    if (!r.record) {
        return dt_unary_forward(out, x, op);
    }
    dt_node *n = NULL;
    dt_status s = u->save == SAVE_X ? dt_ew_rec_keep_self(&r) : DT_OK;
    if (s == DT_OK) {
        s = dt_unary_forward(out, x, op);
    }
    if (s == DT_OK) {
        s = dt_ew_rec_node(&n, &r, out, u->node, dt_unary_backward);
    }
    if (s == DT_OK) {
        n->iargs[0] = op;
        n->num_iargs = 1;
        s = u->save == SAVE_X   ? dt_ew_save_self(n, &r)
            : u->save == SAVE_Y ? dt_node_save(n, *out)
                                : DT_OK;
    }
    return dt_ew_rec_end(&r, out, s);
}
