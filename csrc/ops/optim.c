/* optim.c: the fused per-parameter updates of SGD and Adam/AdamW.
 *
 * One loop per parameter per step reads param, grad and the state once and
 * writes them back once. The per-element arithmetic repeats torch's
 * single-tensor implementations op for op, in the same order, with the
 * same scalar roundings (a Python-float factor is computed in double, then
 * cast to the compute type, as ATen casts a Scalar to its opmath type) and
 * the same fused multiply-adds (see optim_impl.h). On AVX2/FMA CPUs,
 * float32 SGD matches torch bit for bit, and so do Adam's moments; Adam's
 * params differ only where torch's sqrt (MKL's) is off by an ulp. Half
 * types compute in float32; their state is stored in the param's dtype and
 * the update uses the stored (rounded) state.
 *
 * The scalar loops here are the reference, the non-x86 path and the tails
 * of optim_avx2.c's vector loops.
 */
#include "optim_impl.h"
#include "optim.h"

/* x + a * b: rounded once (ATen's fmadd on FMA hardware) or twice. */
#define MADD_FUSED(a, b, x)                                               \
    _Generic((a), float: __builtin_fmaf, default: __builtin_fma)(a, b, x)
#define MADD_PLAIN(a, b, x) ((a) * (b) + (x))

#define OPTIM_SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)

#define LD_ID(v) (v)
#define ST_ID(v) (v)
#define LD_F16(v) dt_half_to_float(v)
#define ST_F16(v) dt_float_to_half(v)
#define LD_BF16(v) dt_bf16_to_float(v)
#define ST_BF16(v) dt_float_to_bf16(v)

/* Instantiates LOOP for the four floating dtypes in one flavour. */
#define OPTIM_DTYPES(LOOP, SFX, ATTR, MADD)                               \
    LOOP(f32_##SFX, ATTR, float, float, LD_ID, ST_ID, MADD)               \
    LOOP(f64_##SFX, ATTR, double, double, LD_ID, ST_ID, MADD)             \
    LOOP(f16_##SFX, ATTR, dt_half, float, LD_F16, ST_F16, MADD)           \
    LOOP(bf16_##SFX, ATTR, dt_bf16, float, LD_BF16, ST_BF16, MADD)

#if OPTIM_X86
#define OPTIM_FLAVOURS(LOOP)                                              \
    OPTIM_DTYPES(LOOP, fused, OPTIM_FMA_ATTR, MADD_FUSED)                 \
    OPTIM_DTYPES(LOOP, plain, OPTIM_BASE_ATTR, MADD_PLAIN)
#else
#define OPTIM_FLAVOURS(LOOP)                                              \
    OPTIM_DTYPES(LOOP, plain, OPTIM_BASE_ATTR, MADD_PLAIN)
#endif

/* -1: the flavour this CPU can run (the default); 0: plain. */
static _Atomic int optim_mode = -1;

static bool
optim_cpu_has_fma(void)
{
#if OPTIM_X86
    static _Atomic int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") &&
                 __builtin_cpu_supports("fma") &&
                 __builtin_cpu_supports("f16c");
    }
    return cached;
#else
    return false;
#endif
}

bool
dt_optim_fused(void)
{
    return optim_mode != 0 && optim_cpu_has_fma();
}

void
dt_optim_set_flavour(int mode)
{
    optim_mode = mode == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------------- */
/* SGD                                                                     */

/* sgd.py, per element (g: grad, p: param, b: momentum buffer):
 *   g = -g                         if maximize
 *   g = g + wd * p                 if wd != 0          (add, alpha)
 *   b = g                          first step
 *   b = b * mom; b = b + (1 - dampening) * g           (mul_; add_, alpha)
 *   g = g + mom * b  (nesterov)  or  g = b             (add, alpha)
 *   p = p + (-lr) * g                                  (add_, alpha)
 */
typedef void (*sgd_loop_fn)(void *p, const void *g, void *b, int64_t n,
                            const dt_optim_sgd_consts *k);

#define SGD_LOOP(SFX, ATTR, T, C, LD, ST, MADD)                           \
    static ATTR void                                                      \
    sgd_##SFX(void *vp, const void *vg, void *vb, int64_t n,              \
              const dt_optim_sgd_consts *k)                               \
    {                                                                     \
        T *restrict p_ = vp;                                              \
        const T *restrict g_ = vg;                                        \
        T *restrict b_ = vb;                                              \
        const C neg_lr = (C)k->neg_lr, mom = (C)k->momentum;              \
        const C damp1 = (C)k->damp1, wd = (C)k->wd;                       \
        const bool maximize = k->maximize, has_wd = k->has_wd;            \
        const bool nesterov = k->nesterov, first = k->first;              \
        if (!k->has_mom) {                                                \
            for (int64_t i = 0; i < n; i++) {                             \
                C g = LD(g_[i]), p = LD(p_[i]);                           \
                g = maximize ? -g : g;                                    \
                g = has_wd ? MADD(wd, p, g) : g;                          \
                p_[i] = ST(MADD(neg_lr, g, p));                           \
            }                                                             \
            return;                                                       \
        }                                                                 \
        for (int64_t i = 0; i < n; i++) {                                 \
            C g = LD(g_[i]), p = LD(p_[i]);                               \
            g = maximize ? -g : g;                                        \
            g = has_wd ? MADD(wd, p, g) : g;                              \
            C b = first ? g : MADD(damp1, g, LD(b_[i]) * mom);            \
            b_[i] = ST(b);                                                \
            b = LD(b_[i]);                                                \
            g = nesterov ? MADD(mom, b, g) : b;                           \
            p_[i] = ST(MADD(neg_lr, g, p));                               \
        }                                                                 \
    }

OPTIM_FLAVOURS(SGD_LOOP)

/* ---------------------------------------------------------------------- */
/* Adam / AdamW                                                            */

/* adam.py (capturable=False), per element (m, v: moments, x: max moment):
 *   g = -g                                    if maximize
 *   p = p * (1 - lr * wd)                     AdamW, wd != 0   (mul_)
 *   g = g + wd * p                            Adam, wd != 0    (add, alpha)
 *   m = m.lerp(g, 1 - beta1)                                   (lerp_)
 *   v = v * beta2; v = v + (1 - beta2) * g * g            (mul_; addcmul_)
 *   x = maximum(x, v); v = x                  if amsgrad
 *   denom = sqrt(v) / sqrt(bias_correction2) + eps        (div; add_)
 *   p = p + (-lr / bias_correction1) * m / denom          (addcdiv_)
 * ATen's lerp interpolates from m for small weights and from g for large
 * ones: m + w * (g - m), or g + (w - 1) * (g - m).
 */
typedef void (*adam_loop_fn)(void *p, const void *g, void *m, void *v,
                             void *x, int64_t n,
                             const dt_optim_adam_consts *k);

#define ADAM_LOOP(SFX, ATTR, T, C, LD, ST, MADD)                          \
    static ATTR void                                                      \
    adam_##SFX(void *vp, const void *vg, void *vm, void *vv, void *vx,    \
               int64_t n, const dt_optim_adam_consts *k)                  \
    {                                                                     \
        T *restrict p_ = vp, *restrict m_ = vm, *restrict v_ = vv;        \
        const T *restrict g_ = vg;                                        \
        T *restrict x_ = vx;                                              \
        const C decay = (C)k->decay, wd = (C)k->wd, w1 = (C)k->w1;        \
        const C w1m1 = w1 - (C)1, beta2 = (C)k->beta2, w2 = (C)k->w2;     \
        const C bc2 = (C)k->bc2_sqrt, eps = (C)k->eps;                    \
        const C neg_step = (C)k->neg_step;                                \
        const bool maximize = k->maximize;                                \
        const bool small_w1 = fabs((C)k->w1) < (C)0.5;                    \
        const bool l2 = k->l2, decoupled = k->decoupled;                  \
        const bool amsgrad = k->amsgrad;                                  \
        for (int64_t i = 0; i < n; i++) {                                 \
            C g = LD(g_[i]), p = LD(p_[i]), m = LD(m_[i]);                \
            g = maximize ? -g : g;                                        \
            p = decoupled ? p * decay : p;                                \
            g = l2 ? MADD(wd, p, g) : g;                                  \
            m = small_w1 ? MADD(w1, g - m, m) : MADD(w1m1, g - m, g);     \
            m_[i] = ST(m);                                                \
            m = LD(m_[i]);                                                \
            C v = MADD(w2 * g, g, LD(v_[i]) * beta2);                     \
            v_[i] = ST(v);                                                \
            v = LD(v_[i]);                                                \
            if (amsgrad) {                                                \
                C x = LD(x_[i]);                                          \
                x_[i] = ST((v > x || v != v) ? v : x);                    \
                v = LD(x_[i]);                                            \
            }                                                             \
            C denom = OPTIM_SQRT(v) / bc2 + eps;                          \
            p_[i] = ST(p + neg_step * m / denom);                         \
        }                                                                 \
    }

OPTIM_FLAVOURS(ADAM_LOOP)

/* ---------------------------------------------------------------------- */
/* argument checks                                                         */

static dt_status
check_param(const char *op, const dt_tensor *param)
{
    if (dt_tensor_device(param).type != DT_CPU) {
        return dt_fail(DT_ERR_NOTIMPL, "%s: only CPU parameters are "
                       "supported", op);
    }
    if (!dt_dtype_is_floating(param->dtype)) {
        return dt_fail(DT_ERR_TYPE, "%s: parameters must be floating point, "
                       "got a %s parameter", op, dt_dtype_name(param->dtype));
    }
    if (!dt_tensor_is_contiguous(param)) {
        return dt_fail(DT_ERR_RUNTIME, "%s: the fused update needs a "
                       "contiguous parameter, got a non-contiguous one",
                       op);
    }
    return DT_OK;
}

/* `t` (the grad or a state tensor) must be a contiguous tensor of the
 * param's shape, dtype and device. */
static dt_status
check_like(const char *op, const char *what, const dt_tensor *t,
           const dt_tensor *param)
{
    char ps[64], ts[64];
    if (t->ndim != param->ndim ||
        memcmp(t->shape, param->shape, sizeof(int64_t) * t->ndim) != 0) {
        dt_shape_format(ps, sizeof ps, param->shape, param->ndim);
        dt_shape_format(ts, sizeof ts, t->shape, t->ndim);
        return dt_fail(DT_ERR_RUNTIME, "%s: %s has shape %s but the param "
                       "has shape %s", op, what, ts, ps);
    }
    if (t->dtype != param->dtype) {
        return dt_fail(DT_ERR_RUNTIME, "%s: %s has dtype %s but the param "
                       "has dtype %s", op, what, dt_dtype_name(t->dtype),
                       dt_dtype_name(param->dtype));
    }
    if (!dt_device_equal(dt_tensor_device(t), dt_tensor_device(param))) {
        return dt_fail(DT_ERR_RUNTIME, "%s: %s is on another device than "
                       "the param", op, what);
    }
    if (!dt_tensor_is_contiguous(t)) {
        return dt_fail(DT_ERR_RUNTIME, "%s: %s must be contiguous", op,
                       what);
    }
    return DT_OK;
}

/* A gradient may come from anywhere (a transposed view, say): reads it
 * through a contiguous copy when it is not one already. */
static dt_status
contiguous_grad(dt_tensor **out, const char *op, const dt_tensor *grad,
                const dt_tensor *param)
{
    if (dt_tensor_is_contiguous(grad)) {
        dt_tensor_retain((dt_tensor *)grad);
        *out = (dt_tensor *)grad;
    } else {
        DT_TRY(dt_contiguous(out, grad));
    }
    dt_status s = check_like(op, "grad", *out, param);
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

/* ---------------------------------------------------------------------- */
/* entry points                                                            */

/* Loops by [fused][dtype]; NULL for non-floating dtypes (checked
 * before). Without the fused flavour, both rows are the plain one. */
#define OPTIM_ROW(PREFIX, SFX)                                            \
    {                                                                     \
        [DT_FLOAT32] = PREFIX##f32_##SFX,                                 \
        [DT_FLOAT64] = PREFIX##f64_##SFX,                                 \
        [DT_FLOAT16] = PREFIX##f16_##SFX,                                 \
        [DT_BFLOAT16] = PREFIX##bf16_##SFX,                               \
    }
#if OPTIM_X86
#define OPTIM_TABLE(PREFIX)                                               \
    {OPTIM_ROW(PREFIX, plain), OPTIM_ROW(PREFIX, fused)}
#else
#define OPTIM_TABLE(PREFIX)                                               \
    {OPTIM_ROW(PREFIX, plain), OPTIM_ROW(PREFIX, plain)}
#endif

static const sgd_loop_fn sgd_loops[2][DT_DTYPE_COUNT] = OPTIM_TABLE(sgd_);
static const adam_loop_fn adam_loops[2][DT_DTYPE_COUNT] = OPTIM_TABLE(adam_);

/* The AVX2 loop (where it runs) does whole vectors, the scalar loop the
 * rest. */
static void
sgd_dispatch(dt_tensor *param, const dt_tensor *grad, dt_tensor *buf,
             const dt_optim_sgd_consts *k)
{
    int64_t n = dt_tensor_numel(param), done = 0;
    char *pp = dt_tensor_data(param), *gp = dt_tensor_data(grad);
    char *bp = buf ? dt_tensor_data(buf) : NULL;
    bool fused = dt_optim_fused();
#if OPTIM_X86
    if (fused) {
        done = dt_optim_sgd_avx2(param->dtype, pp, gp, bp, n, k);
    }
#endif
    sgd_loop_fn loop = sgd_loops[fused][param->dtype];
    DT_ASSERT(loop);
    size_t off = (size_t)done * dt_dtype_size(param->dtype);
    loop(pp + off, gp + off, bp ? bp + off : NULL, n - done, k);
}

dt_status
dt_sgd_step(dt_tensor *param, const dt_tensor *grad, dt_tensor *momentum_buf,
            const dt_sgd_hparams *h, bool first_step)
{
    const char *op = "sgd";
    DT_TRY(check_param(op, param));
    bool has_mom = h->momentum != 0;
    if (has_mom != (momentum_buf != NULL)) {
        return dt_fail(DT_ERR_VALUE, "%s: a momentum buffer is needed "
                       "exactly when momentum != 0", op);
    }
    if (has_mom) {
        DT_TRY(check_like(op, "momentum_buffer", momentum_buf, param));
    }
    dt_tensor *g = NULL;
    DT_TRY(contiguous_grad(&g, op, grad, param));
    dt_optim_sgd_consts k = {
        .neg_lr = -h->lr, .momentum = h->momentum,
        .damp1 = 1 - h->dampening, .wd = h->weight_decay,
        .maximize = h->maximize, .has_wd = h->weight_decay != 0,
        .has_mom = has_mom, .first = first_step, .nesterov = h->nesterov,
    };
    sgd_dispatch(param, g, momentum_buf, &k);
    dt_tensor_release(g);
    dt_tensor_bump_version(param);
    if (momentum_buf) {
        dt_tensor_bump_version(momentum_buf);
    }
    return DT_OK;
}

static dt_status
check_adam_state(const char *op, const dt_tensor *param,
                 const dt_tensor *exp_avg, const dt_tensor *exp_avg_sq,
                 const dt_tensor *max_exp_avg_sq, const dt_tensor *step,
                 bool amsgrad)
{
    DT_TRY(check_like(op, "exp_avg", exp_avg, param));
    DT_TRY(check_like(op, "exp_avg_sq", exp_avg_sq, param));
    if (amsgrad != (max_exp_avg_sq != NULL)) {
        return dt_fail(DT_ERR_VALUE, "%s: max_exp_avg_sq is needed exactly "
                       "when amsgrad=True", op);
    }
    if (amsgrad) {
        DT_TRY(check_like(op, "max_exp_avg_sq", max_exp_avg_sq, param));
    }
    if (dt_tensor_numel(step) != 1 || !dt_dtype_is_floating(step->dtype) ||
        dt_tensor_device(step).type != DT_CPU) {
        return dt_fail(DT_ERR_RUNTIME, "%s: state 'step' must be a "
                       "one-element floating point CPU tensor", op);
    }
    return DT_OK;
}

/* Increments state["step"] in its own dtype (torch's `step_t += 1`) and
 * returns the new value. */
static double
advance_step(dt_tensor *step)
{
    void *p = dt_tensor_data(step);
    dt_store_double(p, step->dtype, dt_load_double(p, step->dtype) + 1);
    dt_tensor_bump_version(step);
    return dt_load_double(p, step->dtype);
}

/* The AVX2 loop (when it runs) does whole vectors, the scalar loop the
 * rest. */
static void
adam_dispatch(dt_tensor *param, const dt_tensor *grad, dt_tensor *m,
              dt_tensor *v, dt_tensor *x, const dt_optim_adam_consts *k)
{
    int64_t n = dt_tensor_numel(param), done = 0;
    char *pp = dt_tensor_data(param), *gp = dt_tensor_data(grad);
    char *mp = dt_tensor_data(m), *vp = dt_tensor_data(v);
    char *xp = x ? dt_tensor_data(x) : NULL;
    bool fused = dt_optim_fused();
#if OPTIM_X86
    if (fused) {
        done = dt_optim_adam_avx2(param->dtype, pp, gp, mp, vp, xp, n, k);
    }
#endif
    adam_loop_fn loop = adam_loops[fused][param->dtype];
    DT_ASSERT(loop);
    size_t off = (size_t)done * dt_dtype_size(param->dtype);
    loop(pp + off, gp + off, mp + off, vp + off, xp ? xp + off : NULL,
         n - done, k);
}

dt_status
dt_adam_step(dt_tensor *param, const dt_tensor *grad, dt_tensor *exp_avg,
             dt_tensor *exp_avg_sq, dt_tensor *max_exp_avg_sq,
             dt_tensor *step, const dt_adam_hparams *h)
{
    const char *op = h->decoupled ? "adamw" : "adam";
    DT_TRY(check_param(op, param));
    DT_TRY(check_adam_state(op, param, exp_avg, exp_avg_sq, max_exp_avg_sq,
                            step, h->amsgrad));
    dt_tensor *g = NULL;
    DT_TRY(contiguous_grad(&g, op, grad, param));
    double t = advance_step(step);
    /* Python floats in adam.py: bias corrections, step size, and
     * `bias_correction2 ** 0.5` (a pow, not a sqrt, to round alike). */
    double bc1 = 1 - pow(h->beta1, t);
    double bc2 = 1 - pow(h->beta2, t);
    double step_size = h->lr / bc1;
    bool has_wd = h->weight_decay != 0;
    dt_optim_adam_consts k = {
        .decay = 1 - h->lr * h->weight_decay, .wd = h->weight_decay,
        .w1 = 1 - h->beta1, .beta2 = h->beta2, .w2 = 1 - h->beta2,
        .bc2_sqrt = pow(bc2, 0.5), .eps = h->eps, .neg_step = -step_size,
        .maximize = h->maximize, .l2 = has_wd && !h->decoupled,
        .decoupled = has_wd && h->decoupled, .amsgrad = h->amsgrad,
    };
    adam_dispatch(param, g, exp_avg, exp_avg_sq, max_exp_avg_sq, &k);
    dt_tensor_release(g);
    dt_tensor_bump_version(param);
    dt_tensor_bump_version(exp_avg);
    dt_tensor_bump_version(exp_avg_sq);
    if (max_exp_avg_sq) {
        dt_tensor_bump_version(max_exp_avg_sq);
    }
    return DT_OK;
}
