/* rng.c: generators and the in-place draws (uniform_, normal_, bernoulli_,
 * random integers) built on Philox4x32-10 (rng.h).
 *
 * Each draw reserves its blocks up front, then walks the output in C order
 * under dt_iter_run; the loop keeps the logical index of the next element,
 * so element i reads block base + i / per_block whatever the strides are.
 * Bits to numbers:
 *   float32  24 random bits -> k * 2**-24 in [0, 1)
 *   float16  11 bits, bfloat16 8 bits (exact in the type, so never 1.0)
 *   float64  53 of 64 bits -> k * 2**-53
 *   normal   Box-Muller on pairs of uniforms, u1 in (0, 1] so log is
 *            finite: float32 (and halves) with rng.h's arithmetic log,
 *            sqrt and sincos (they vectorise), float64 with libm
 *   integers 64 bits, mapped to [0, range) by (x * range) >> 64: the bias is
 *            below range / 2**64, and no rejection keeps positions fixed.
 */
#include <stdlib.h>

#include "dt_impl.h"
#include "rng.h"

static dt_generator default_generator = {DT_DEFAULT_SEED, 0};

dt_generator *
dt_generator_default(void)
{
    return &default_generator;
}

dt_generator *
dt_generator_new(uint64_t seed)
{
    dt_generator *g = calloc(1, sizeof *g);
    if (g) {
        g->seed = seed;
    }
    return g;
}

void
dt_generator_free(dt_generator *g)
{
    if (g && g != &default_generator) {
        free(g);
    }
}

void
dt_generator_manual_seed(dt_generator *g, uint64_t seed)
{
    g->seed = seed;
    __atomic_store_n(&g->offset, 0, __ATOMIC_RELAXED);
}

uint64_t
dt_generator_reserve(dt_generator *g, uint64_t nblocks)
{
    return __atomic_fetch_add(&g->offset, nblocks, __ATOMIC_RELAXED);
}

/* Word-major so the rounds vectorise across blocks. The words sit in
 * 64-bit lanes, masked to 32 bits, because that is the form GCC 12 turns
 * into pmuludq (a 32x32->64 multiply per lane); every clone does the same
 * integer ops, so all give dt_philox_block's bits. */
__attribute__((target_clones("arch=x86-64-v4", "avx2", "default"))) void
dt_philox_batch(uint32_t r[4][DT_PHILOX_BATCH], uint64_t seed,
                uint64_t first)
{
    const uint64_t lo32 = 0xFFFFFFFFu;
    uint64_t c0[DT_PHILOX_BATCH], c1[DT_PHILOX_BATCH];
    uint64_t c2[DT_PHILOX_BATCH], c3[DT_PHILOX_BATCH];
    uint64_t k0 = seed & lo32, k1 = seed >> 32;
    for (int j = 0; j < DT_PHILOX_BATCH; j++) {
        c0[j] = (first + (uint64_t)j) & lo32;
        c1[j] = (first + (uint64_t)j) >> 32;
        c2[j] = 0;
        c3[j] = 0;
    }
    for (int round = 0; round < 10; round++) {
        for (int j = 0; j < DT_PHILOX_BATCH; j++) {
            uint64_t p0 = (c0[j] & lo32) * DT_PHILOX_M0;
            uint64_t p1 = (c2[j] & lo32) * DT_PHILOX_M1;
            uint64_t n0 = (p1 >> 32) ^ c1[j] ^ k0;
            uint64_t n2 = (p0 >> 32) ^ c3[j] ^ k1;
            c1[j] = p1 & lo32;
            c3[j] = p0 & lo32;
            c0[j] = n0;
            c2[j] = n2;
        }
        k0 = (k0 + DT_PHILOX_W0) & lo32;
        k1 = (k1 + DT_PHILOX_W1) & lo32;
    }
    for (int j = 0; j < DT_PHILOX_BATCH; j++) {
        r[0][j] = (uint32_t)c0[j];
        r[1][j] = (uint32_t)c1[j];
        r[2][j] = (uint32_t)c2[j];
        r[3][j] = (uint32_t)c3[j];
    }
}

/* ---------------------------------------------------------------------- */
/* bits to numbers, a batch of blocks at a time                            */

/* Each *_batch turns the words r[w][j] of nb blocks into the values
 * v[k][j] (k < per_block) of the elements those blocks feed. The loops
 * over j vectorise. */
#define B DT_PHILOX_BATCH
#define U64(lo, hi) ((uint64_t)(lo) | (uint64_t)(hi) << 32)

/* One draw in flight. */
typedef struct draw {
    uint64_t seed, base;   /* key, and the first block reserved */
    int64_t pos;           /* logical index of the next element */
    double a, b;           /* from/to, mean/std or p */
    int64_t low;           /* random_int_: the lower bound */
    uint64_t range;        /* random_int_: high - low */
    dt_dtype dtype;        /* of the output */
    dt_dtype src_dtype;    /* bernoulli: of p */
    bool bad;              /* bernoulli: some p was outside [0, 1] */
    _Alignas(8) char one[8];   /* the value 1 in the output dtype */
} draw;

/* uniform in [a, b) from the top `bits` bits of each word */
static inline DT_EXACT_FP void
uniform_bits(float v[4][B], const uint32_t r[4][B], int nb, const draw *d,
             int bits)
{
    float lo = (float)d->a, span = (float)(d->b - d->a);
    float scale = 1.0f / (float)(1u << bits);
    for (int k = 0; k < 4; k++) {
        for (int j = 0; j < nb; j++) {
            v[k][j] = lo + span * ((float)(int32_t)(r[k][j] >> (32 - bits)) *
                                   scale);
        }
    }
}

static DT_EXACT_FP void
uniform_f32_batch(float v[4][B], const uint32_t r[4][B], int nb,
                  const draw *d)
{
    uniform_bits(v, r, nb, d, 24);
}

static DT_EXACT_FP void
uniform_f16_batch(float v[4][B], const uint32_t r[4][B], int nb,
                  const draw *d)
{
    uniform_bits(v, r, nb, d, 11);
}

static DT_EXACT_FP void
uniform_bf16_batch(float v[4][B], const uint32_t r[4][B], int nb,
                   const draw *d)
{
    uniform_bits(v, r, nb, d, 8);
}

static DT_EXACT_FP void
uniform_f64_batch(double v[2][B], const uint32_t r[4][B], int nb,
                  const draw *d)
{
    double lo = d->a, span = d->b - d->a;
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < nb; j++) {
            uint64_t x = U64(r[2 * k][j], r[2 * k + 1][j]);
            v[k][j] = lo + span * ((double)(int64_t)(x >> 11) * 0x1p-53);
        }
    }
}

/* Box-Muller on words (0, 1) and (2, 3) of each block. */
static DT_EXACT_FP void
normal_f32_batch(float v[4][B], const uint32_t r[4][B], int nb,
                 const draw *d)
{
    float mean = (float)d->a, std = (float)d->b;
    for (int k = 0; k < 4; k += 2) {
        for (int j = 0; j < nb; j++) {
            /* u1 in [2**-24, 1], so the log is finite */
            float u1 = (float)(int32_t)((r[k][j] >> 8) + 1u) * 0x1p-24f;
            float rad = std * dt_rng_sqrt(-2.0f * dt_rng_log(u1));
            float sn, cs;
            dt_rng_sincos(&sn, &cs, r[k + 1][j] >> 8);
            v[k][j] = mean + rad * cs;
            v[k + 1][j] = mean + rad * sn;
        }
    }
}

/* Box-Muller in double (libm): one pair of 64-bit words per block. */
static void
normal_f64_batch(double v[2][B], const uint32_t r[4][B], int nb,
                 const draw *d)
{
    for (int j = 0; j < nb; j++) {
        uint64_t x1 = U64(r[0][j], r[1][j]), x2 = U64(r[2][j], r[3][j]);
        double u1 = (double)((x1 >> 11) + 1) * 0x1p-53;
        double th = 6.283185307179586 * ((double)(x2 >> 11) * 0x1p-53);
        double rad = d->b * sqrt(-2.0 * log(u1));
        v[0][j] = d->a + rad * cos(th);
        v[1][j] = d->a + rad * sin(th);
    }
}

static void
bernoulli_batch(bool v[4][B], const uint32_t r[4][B], int nb, const draw *d)
{
    for (int k = 0; k < 4; k++) {
        for (int j = 0; j < nb; j++) {
            v[k][j] = (double)(r[k][j] >> 8) * 0x1p-24 < d->a;
        }
    }
}

/* low + (x * range) >> 64 */
static void
randint_batch(int64_t v[2][B], const uint32_t r[4][B], int nb,
              const draw *d)
{
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < nb; j++) {
            uint64_t x = U64(r[2 * k][j], r[2 * k + 1][j]);
            uint64_t off = (uint64_t)(((unsigned __int128)x * d->range) >>
                                      64);
            v[k][j] = (int64_t)((uint64_t)d->low + off);
        }
    }
}

/* ---------------------------------------------------------------------- */
/* the walk                                                                */

/* The bits of blocks first.. : a whole batch when `avail` blocks remain,
 * else one block. Returns how many blocks it made. */
static int
philox_some(uint32_t r[4][B], uint64_t seed, uint64_t first, int64_t avail)
{
    if (avail >= B) {
        dt_philox_batch(r, seed, first);
        return B;
    }
    uint32_t one[4];
    dt_philox_block(one, seed, first);
    for (int w = 0; w < 4; w++) {
        r[w][0] = one[w];
    }
    return 1;
}

/* Runs over elements [pos, pos + n) of a draw with PER elements per
 * block: BATCH turns blocks into values, STORE writes the value v at p_. */
#define DRAW_LOOP(PER, T, BATCH, STORE)                                   \
    do {                                                                  \
        draw *d = vctx;                                                   \
        char *p_ = ptrs[0];                                               \
        int64_t s_ = strides[0], i_ = d->pos, end_ = d->pos + n;          \
        uint32_t r_[4][B];                                                \
        T v_[PER][B];                                                     \
        while (i_ < end_) {                                               \
            int64_t full_ = i_ % PER ? 0 : (end_ - i_) / PER;             \
            int nb_ = philox_some(r_, d->seed,                            \
                                  d->base + (uint64_t)i_ / PER, full_);   \
            BATCH(v_, (const uint32_t(*)[B])r_, nb_, d);                  \
            for (int j_ = 0; j_ < nb_; j_++) {                            \
                for (int w_ = (int)(i_ % PER); w_ < PER && i_ < end_;     \
                     w_++, i_++, p_ += s_) {                              \
                    T v = v_[w_][j_];                                     \
                    STORE;                                                \
                }                                                         \
            }                                                             \
        }                                                                 \
        d->pos = end_;                                                    \
    } while (0)

static void
uniform_f32_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    DRAW_LOOP(4, float, uniform_f32_batch, *(float *)p_ = v);
}

static void
uniform_f16_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    DRAW_LOOP(4, float, uniform_f16_batch,
              *(dt_half *)p_ = dt_float_to_half(v));
}

static void
uniform_bf16_loop(char **ptrs, const int64_t *strides, int64_t n,
                  void *vctx)
{
    DRAW_LOOP(4, float, uniform_bf16_batch,
              *(dt_bf16 *)p_ = dt_float_to_bf16(v));
}

static void
uniform_f64_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    DRAW_LOOP(2, double, uniform_f64_batch, *(double *)p_ = v);
}

static void
normal_f32_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    DRAW_LOOP(4, float, normal_f32_batch, *(float *)p_ = v);
}

static void
normal_f16_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    DRAW_LOOP(4, float, normal_f32_batch,
              *(dt_half *)p_ = dt_float_to_half(v));
}

static void
normal_bf16_loop(char **ptrs, const int64_t *strides, int64_t n,
                 void *vctx)
{
    DRAW_LOOP(4, float, normal_f32_batch,
              *(dt_bf16 *)p_ = dt_float_to_bf16(v));
}

static void
normal_f64_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    DRAW_LOOP(2, double, normal_f64_batch, *(double *)p_ = v);
}

static void
bernoulli_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    static const char zero[8];
    DRAW_LOOP(4, bool, bernoulli_batch,
              memcpy(p_, v ? d->one : zero, dt_dtype_size(d->dtype)));
}

/* Integral dtypes narrow the int64 (the caller checked the bounds);
 * floating ones round it. */
static inline void
store_int(char *p, dt_dtype dtype, int64_t v)
{
    switch (dtype) {
    case DT_BOOL: *(bool *)p = v != 0; break;
    case DT_UINT8: *(uint8_t *)p = (uint8_t)v; break;
    case DT_INT32: *(int32_t *)p = (int32_t)v; break;
    case DT_INT64: *(int64_t *)p = v; break;
    default: dt_store_double(p, dtype, (double)v); break;
    }
}

static void
randint_i64_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    DRAW_LOOP(2, int64_t, randint_batch, *(int64_t *)p_ = v);
}

static void
randint_any_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    DRAW_LOOP(2, int64_t, randint_batch, store_int(p_, d->dtype, v));
}

/* p is read as a double whatever its floating dtype; out gets 0 or 1. */
static void
bernoulli_tensor_loop(char **ptrs, const int64_t *strides, int64_t n,
                      void *vctx)
{
    static const char zero[8];
    draw *d = vctx;
    size_t isz = dt_dtype_size(d->dtype);
    uint32_t r[4];
    for (int64_t k = 0; k < n; k++) {
        int64_t i = d->pos + k;
        if (k == 0 || i % 4 == 0) {
            dt_philox_block(r, d->seed, d->base + (uint64_t)i / 4);
        }
        double p = dt_load_double(ptrs[1] + k * strides[1], d->src_dtype);
        if (!(p >= 0.0 && p <= 1.0)) {
            d->bad = true;
            d->a = p;   /* reported after the walk */
        }
        bool bit = (double)(r[i % 4] >> 8) * 0x1p-24 < p;
        memcpy(ptrs[0] + k * strides[0], bit ? d->one : zero, isz);
    }
    d->pos += n;
}

/* ---------------------------------------------------------------------- */
/* entry points                                                            */

/* Reserves the draw's blocks and walks ops[0] (and ops[1], if any). */
static void
run_draw(dt_tensor *const *ops, int nops, dt_loop_fn fn, int per, draw *d,
         dt_generator *g)
{
    uint64_t n = (uint64_t)dt_tensor_numel(ops[0]);
    if (!g) {
        g = dt_generator_default();
    }
    d->seed = g->seed;
    d->base = dt_generator_reserve(g, (n + (uint64_t)per - 1) / per);
    d->pos = 0;
    d->dtype = ops[0]->dtype;
    dt_store_double(d->one, d->dtype, 1.0);
    dt_iter_run(ops, nops, fn, d);
}

static dt_status
check_floating(const dt_tensor *t, const char *op)
{
    if (!dt_dtype_is_floating(t->dtype)) {
        return dt_fail(DT_ERR_NOTIMPL, "%s: not implemented for dtype %s",
                       op, dt_dtype_name(t->dtype));
    }
    return DT_OK;
}

dt_status
dt_uniform_(dt_tensor *t, double from, double to, dt_generator *g)
{
    static const dt_loop_fn loops[DT_DTYPE_COUNT] = {
        [DT_FLOAT32] = uniform_f32_loop, [DT_FLOAT64] = uniform_f64_loop,
        [DT_FLOAT16] = uniform_f16_loop, [DT_BFLOAT16] = uniform_bf16_loop,
    };
    DT_TRY(check_floating(t, "uniform_"));
    if (!(from <= to) || !isfinite(from) || !isfinite(to)) {
        return dt_fail(DT_ERR_RUNTIME, "uniform_ expects to return a "
                       "[from, to) range, but found from=%g > to=%g", from,
                       to);
    }
    draw d = {.a = from, .b = to};
    dt_tensor *ops[1] = {t};
    run_draw(ops, 1, loops[t->dtype], t->dtype == DT_FLOAT64 ? 2 : 4, &d,
             g);
    dt_tensor_bump_version(t);
    return DT_OK;
}

dt_status
dt_normal_(dt_tensor *t, double mean, double std, dt_generator *g)
{
    static const dt_loop_fn loops[DT_DTYPE_COUNT] = {
        [DT_FLOAT32] = normal_f32_loop, [DT_FLOAT64] = normal_f64_loop,
        [DT_FLOAT16] = normal_f16_loop, [DT_BFLOAT16] = normal_bf16_loop,
    };
    DT_TRY(check_floating(t, "normal_"));
    if (!(std >= 0.0)) {
        return dt_fail(DT_ERR_RUNTIME,
                       "normal_: expects std >= 0.0, but found std %g", std);
    }
    draw d = {.a = mean, .b = std};
    dt_tensor *ops[1] = {t};
    run_draw(ops, 1, loops[t->dtype], t->dtype == DT_FLOAT64 ? 2 : 4, &d,
             g);
    dt_tensor_bump_version(t);
    return DT_OK;
}

dt_status
dt_bernoulli_(dt_tensor *t, double p, dt_generator *g)
{
    if (!(p >= 0.0 && p <= 1.0)) {
        return dt_fail(DT_ERR_RUNTIME,
                       "bernoulli_: expects p to be in [0, 1], but got p=%g",
                       p);
    }
    draw d = {.a = p};
    dt_tensor *ops[1] = {t};
    run_draw(ops, 1, bernoulli_loop, 4, &d, g);
    dt_tensor_bump_version(t);
    return DT_OK;
}

dt_status
dt_random_int_(dt_tensor *t, int64_t low, int64_t high, dt_generator *g)
{
    if (low >= high) {
        return dt_fail(DT_ERR_RUNTIME, "random_: expects 'from' to be less "
                       "than 'to', but got from=%lld >= to=%lld",
                       (long long)low, (long long)high);
    }
    draw d = {.low = low, .range = (uint64_t)high - (uint64_t)low};
    dt_tensor *ops[1] = {t};
    run_draw(ops, 1, t->dtype == DT_INT64 ? randint_i64_loop
                                          : randint_any_loop, 2, &d, g);
    dt_tensor_bump_version(t);
    return DT_OK;
}

dt_status
dt_bernoulli_forward(dt_tensor **out, const dt_tensor *p, dt_generator *g)
{
    DT_TRY(check_floating(p, "bernoulli"));
    DT_TRY(dt_prepare_out(out, p->shape, p->ndim, p->dtype,
                          dt_tensor_device(p), "bernoulli"));
    draw d = {.src_dtype = p->dtype};
    dt_tensor *ops[2] = {*out, (dt_tensor *)p};   /* p is only read */
    run_draw(ops, 2, bernoulli_tensor_loop, 4, &d, g);
    if (d.bad) {
        return dt_fail(DT_ERR_RUNTIME, "bernoulli: expects all elements of "
                       "p to be in [0, 1], but found %g", d.a);
    }
    return DT_OK;
}
