/* optim_avx2.c: SGD's and Adam's updates hand-vectorised for AVX2 + FMA
 * (x86-64 only; optim.c picks them at run time and finishes the tails).
 *
 * GCC 12 vectorises neither Adam's sqrt (it may set errno, and the build
 * keeps -fmath-errno) nor float16 conversions, and those scalar loops ran
 * 2-4x slower than torch's separate ops. The math here is the fused
 * flavour of optim.c's loops, lane for lane: float32, float16 and bfloat16
 * compute in 8 float lanes, float64 in 4 double lanes, and state is read
 * back after each store so half types use their rounded state.
 */
#include "optim_impl.h"

#if OPTIM_X86
#include <immintrin.h>

#define AVX2_ATTR __attribute__((target("avx2,fma,f16c")))

/* ---------------------------------------------------------------------- */
/* loads and stores: memory <-> compute lanes                              */

static inline AVX2_ATTR __m256
ld_f32(const float *p)
{
    return _mm256_loadu_ps(p);
}

static inline AVX2_ATTR void
st_f32(float *p, __m256 v)
{
    _mm256_storeu_ps(p, v);
}

static inline AVX2_ATTR __m256d
ld_f64(const double *p)
{
    return _mm256_loadu_pd(p);
}

static inline AVX2_ATTR void
st_f64(double *p, __m256d v)
{
    _mm256_storeu_pd(p, v);
}

static inline AVX2_ATTR __m256
ld_f16(const dt_half *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline AVX2_ATTR void
st_f16(dt_half *p, __m256 v)
{
    _mm_storeu_si128((__m128i *)p,
                     _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

static inline AVX2_ATTR __m256
ld_bf16(const dt_bf16 *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

/* Rounds to nearest even and maps NaN to 0x7FC0, as dt_float_to_bf16. */
static inline AVX2_ATTR void
st_bf16(dt_bf16 *p, __m256 v)
{
    __m256i u = _mm256_castps_si256(v);
    __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16),
                                   _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(
                                        lsb, _mm256_set1_epi32(0x7FFF)));
    r = _mm256_srli_epi32(r, 16);
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), nan);
    /* packus works per 128-bit half: gather quadwords 0 and 2 */
    r = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128((__m128i *)p, _mm256_castsi256_si128(r));
}

/* ---------------------------------------------------------------------- */
/* SGD (see SGD_LOOP in optim.c)                                           */

/* T: memory type; C, VT, W, S: compute type, its vector, lanes, and the
 * intrinsic suffix (ps or pd). */
#define SGD_AVX2(NAME, T, C, VT, W, S, LD, ST)                            \
    static AVX2_ATTR int64_t                                              \
    NAME(T *p_, const T *g_, T *b_, int64_t n,                            \
         const dt_optim_sgd_consts *k)                                    \
    {                                                                     \
        const VT neg_lr = _mm256_set1_##S((C)k->neg_lr);                  \
        const VT mom = _mm256_set1_##S((C)k->momentum);                   \
        const VT damp1 = _mm256_set1_##S((C)k->damp1);                    \
        const VT wd = _mm256_set1_##S((C)k->wd);                          \
        const VT sign = _mm256_set1_##S(k->maximize ? (C)-0.0 : (C)0.0);  \
        const bool has_wd = k->has_wd, has_mom = k->has_mom;              \
        const bool first = k->first, nesterov = k->nesterov;              \
        int64_t i = 0;                                                    \
        for (; i + W <= n; i += W) {                                      \
            VT g = _mm256_xor_##S(LD(g_ + i), sign);                      \
            VT p = LD(p_ + i);                                            \
            g = has_wd ? _mm256_fmadd_##S(wd, p, g) : g;                  \
            if (has_mom) {                                                \
                VT b = first ? g                                          \
                             : _mm256_fmadd_##S(                          \
                                   damp1, g,                              \
                                   _mm256_mul_##S(LD(b_ + i), mom));      \
                ST(b_ + i, b);                                            \
                b = LD(b_ + i);                                           \
                g = nesterov ? _mm256_fmadd_##S(mom, b, g) : b;           \
            }                                                             \
            ST(p_ + i, _mm256_fmadd_##S(neg_lr, g, p));                   \
        }                                                                 \
        return i;                                                         \
    }

SGD_AVX2(sgd_f32, float, float, __m256, 8, ps, ld_f32, st_f32)
SGD_AVX2(sgd_f64, double, double, __m256d, 4, pd, ld_f64, st_f64)
SGD_AVX2(sgd_f16, dt_half, float, __m256, 8, ps, ld_f16, st_f16)
SGD_AVX2(sgd_bf16, dt_bf16, float, __m256, 8, ps, ld_bf16, st_bf16)

int64_t
dt_optim_sgd_avx2(dt_dtype dtype, void *p, const void *g, void *b,
                  int64_t n, const dt_optim_sgd_consts *k)
{
    switch (dtype) {
    case DT_FLOAT32: return sgd_f32(p, g, b, n, k);
    case DT_FLOAT64: return sgd_f64(p, g, b, n, k);
    case DT_FLOAT16: return sgd_f16(p, g, b, n, k);
    case DT_BFLOAT16: return sgd_bf16(p, g, b, n, k);
    default: return 0;
    }
}

/* ---------------------------------------------------------------------- */
/* Adam (see ADAM_LOOP in optim.c)                                         */

#define ADAM_AVX2(NAME, T, C, VT, W, S, LD, ST)                           \
    static AVX2_ATTR int64_t                                              \
    NAME(T *p_, const T *g_, T *m_, T *v_, T *x_, int64_t n,              \
         const dt_optim_adam_consts *k)                                   \
    {                                                                     \
        const VT decay = _mm256_set1_##S((C)k->decay);                    \
        const VT wd = _mm256_set1_##S((C)k->wd);                          \
        const VT w1 = _mm256_set1_##S((C)k->w1);                          \
        const VT w1m1 = _mm256_set1_##S((C)k->w1 - (C)1);                 \
        const VT beta2 = _mm256_set1_##S((C)k->beta2);                    \
        const VT w2 = _mm256_set1_##S((C)k->w2);                          \
        const VT bc2 = _mm256_set1_##S((C)k->bc2_sqrt);                   \
        const VT eps = _mm256_set1_##S((C)k->eps);                        \
        const VT neg_step = _mm256_set1_##S((C)k->neg_step);              \
        const VT sign = _mm256_set1_##S(k->maximize ? (C)-0.0 : (C)0.0);  \
        const bool small_w1 = fabs((C)k->w1) < (C)0.5, l2 = k->l2;        \
        const bool decoupled = k->decoupled, amsgrad = k->amsgrad;        \
        int64_t i = 0;                                                    \
        for (; i + W <= n; i += W) {                                      \
            VT g = _mm256_xor_##S(LD(g_ + i), sign);                      \
            VT p = LD(p_ + i);                                            \
            p = decoupled ? _mm256_mul_##S(p, decay) : p;                 \
            g = l2 ? _mm256_fmadd_##S(wd, p, g) : g;                      \
            VT m = LD(m_ + i);                                            \
            VT d = _mm256_sub_##S(g, m);                                  \
            m = small_w1 ? _mm256_fmadd_##S(w1, d, m)                     \
                         : _mm256_fmadd_##S(w1m1, d, g);                  \
            ST(m_ + i, m);                                                \
            m = LD(m_ + i);                                               \
            VT v = _mm256_mul_##S(LD(v_ + i), beta2);                     \
            ST(v_ + i, _mm256_fmadd_##S(_mm256_mul_##S(w2, g), g, v));    \
            v = LD(v_ + i);                                               \
            if (amsgrad) {                                                \
                /* torch.maximum: NaN wins from either side */            \
                VT x = _mm256_max_##S(v, LD(x_ + i));                     \
                VT nan = _mm256_cmp_##S(v, v, _CMP_UNORD_Q);              \
                ST(x_ + i, _mm256_blendv_##S(x, v, nan));                 \
                v = LD(x_ + i);                                           \
            }                                                             \
            VT den = _mm256_div_##S(_mm256_sqrt_##S(v), bc2);             \
            den = _mm256_add_##S(den, eps);                               \
            VT up = _mm256_div_##S(_mm256_mul_##S(neg_step, m), den);     \
            ST(p_ + i, _mm256_add_##S(p, up));                            \
        }                                                                 \
        return i;                                                         \
    }

ADAM_AVX2(adam_f32, float, float, __m256, 8, ps, ld_f32, st_f32)
ADAM_AVX2(adam_f64, double, double, __m256d, 4, pd, ld_f64, st_f64)
ADAM_AVX2(adam_f16, dt_half, float, __m256, 8, ps, ld_f16, st_f16)
ADAM_AVX2(adam_bf16, dt_bf16, float, __m256, 8, ps, ld_bf16, st_bf16)

int64_t
dt_optim_adam_avx2(dt_dtype dtype, void *p, const void *g, void *m, void *v,
                   void *x, int64_t n, const dt_optim_adam_consts *k)
{
    switch (dtype) {
    case DT_FLOAT32: return adam_f32(p, g, m, v, x, n, k);
    case DT_FLOAT64: return adam_f64(p, g, m, v, x, n, k);
    case DT_FLOAT16: return adam_f16(p, g, m, v, x, n, k);
    case DT_BFLOAT16: return adam_bf16(p, g, m, v, x, n, k);
    default: return 0;
    }
}

#endif /* OPTIM_X86 */
