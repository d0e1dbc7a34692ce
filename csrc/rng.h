/* rng.h: dtrain's counter-based random numbers (Philox4x32-10) and the
 * generators that hand out counters.
 *
 * Philox (Salmon, Moraes, Dror, Shaw, "Parallel Random Numbers: As Easy as
 * 1, 2, 3", SC11) maps a 128-bit counter and a 64-bit key to 128 random
 * bits. It has no sequential state, so element i of a draw is a pure
 * function of (seed, offset, i): the numbers never depend on thread count
 * or chunking, and the CUDA twin computes the same ones.
 *
 * Layout of a draw: key = the generator's seed (low word first); the
 * element at logical (C-order) index i reads block offset + i / per_block,
 * where a block is one counter {lo32, hi32, 0, 0} of the 64-bit position
 * and per_block is 4 for draws of one 32-bit word per element (float32,
 * float16, bfloat16, bernoulli) and 2 for draws of 64 bits (float64,
 * randint, randperm). A draw then moves the offset past its last block.
 * Counter words 2 and 3 stay 0: room for per-rank streams later.
 *
 * Not bit-compatible with torch's CPU generator (mt19937); same seed, same
 * numbers holds within dtrain only.
 */
#ifndef DT_RNG_H
#define DT_RNG_H

#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#define DT_HOSTDEV __host__ __device__
#else
#define DT_HOSTDEV
#endif

/* Salmon et al. 2011: multipliers and Weyl key increments. */
#define DT_PHILOX_M0 0xD2511F53u
#define DT_PHILOX_M1 0xCD9E8D57u
#define DT_PHILOX_W0 0x9E3779B9u
#define DT_PHILOX_W1 0xBB67AE85u

/* The Philox4x32-10 bijection: out = philox(ctr, key). Inline in the
 * header so CPU loops inline it and a .cu file can call it on the
 * device. */
static inline DT_HOSTDEV void
dt_philox4x32_10(uint32_t out[4], const uint32_t ctr[4],
                 const uint32_t key[2])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)DT_PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)DT_PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += DT_PHILOX_W0;
        k1 += DT_PHILOX_W1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

/* The 128 random bits of block `block` under `seed`. */
static inline DT_HOSTDEV void
dt_philox_block(uint32_t out[4], uint64_t seed, uint64_t block)
{
    uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), 0, 0};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    dt_philox4x32_10(out, ctr, key);
}

/* ---------------------------------------------------------------------- */
/* float32 Box-Muller pieces, shared with the CUDA twin so both give the
 * same normals. Arithmetic and bit operations only: they vectorise, and
 * with contraction off (nvcc: --fmad=false) every target rounds alike. */

#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#define DT_EXACT_FP __attribute__((optimize("fp-contract=off")))
#else
#define DT_EXACT_FP
#endif

/* Float compares may trap, which keeps GCC from if-converting them, so
 * the helpers below select on integer bits. */
static inline DT_HOSTDEV uint32_t
dt_rng_f2u(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline DT_HOSTDEV float
dt_rng_u2f(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ln x for x in [2**-24, 1]: x = m * 2**e with m in [sqrt(1/2), sqrt(2)),
 * ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, odd series to
 * s**9 (truncation < 1e-9). Arithmetic only, so it vectorises. */
static inline DT_HOSTDEV DT_EXACT_FP float
dt_rng_log(float x)
{
    uint32_t bits = dt_rng_f2u(x);
    int32_t e = (int32_t)(bits >> 23) - 127;
    uint32_t mbits = (bits & 0x7FFFFFu) | 0x3F800000u;   /* m in [1, 2) */
    int32_t high = mbits > 0x3FB504F3u;                  /* m > sqrt(2) */
    float m = dt_rng_u2f(mbits - ((uint32_t)high << 23));   /* halve m */
    float s = (m - 1.0f) / (m + 1.0f), z = s * s;
    float series = 2.0f + z * (2.0f / 3 + z * (0.4f + z * (2.0f / 7 +
                                                           z * (2.0f / 9))));
    return (float)(e + high) * 0.693147181f + s * series;
}

/* sqrt(x) for x >= 0 by Newton on 1/sqrt (libm's sqrtf may set errno,
 * which also keeps GCC from vectorising it). */
static inline DT_HOSTDEV DT_EXACT_FP float
dt_rng_sqrt(float x)
{
    uint32_t bits = dt_rng_f2u(x);
    /* clamp to 1e-30 so the 0 case gives 0 * finite */
    float xs = dt_rng_u2f(bits < 0x0DA24260u ? 0x0DA24260u : bits);
    float y = dt_rng_u2f(0x5F3759DFu - (dt_rng_f2u(xs) >> 1));
    for (int it = 0; it < 3; it++) {
        y = y * (1.5f - 0.5f * xs * y * y);
    }
    return x * y;
}

/* sin and cos of 2 pi k / 2**24 for a 24-bit k: the quadrant comes from
 * k's top bits, the rest is an angle in [-pi/4, pi/4) where short Taylor
 * series are accurate to 2e-9. */
static inline DT_HOSTDEV DT_EXACT_FP void
dt_rng_sincos(float *s_out, float *c_out, uint32_t k)
{
    uint32_t q = (k + (1u << 21)) >> 22;            /* nearest quadrant */
    int32_t rem = (int32_t)k - (int32_t)(q << 22);  /* [-2**21, 2**21) */
    float x = (float)rem * (1.57079633f / (float)(1 << 22));
    float z = x * x;
    float s = x * (1.0f + z * (-1.0f / 6 + z * (1.0f / 120 +
                   z * (-1.0f / 5040 + z * (1.0f / 362880)))));
    float c = 1.0f + z * (-0.5f + z * (1.0f / 24 + z * (-1.0f / 720 +
                   z * (1.0f / 40320 - z * (1.0f / 3628800)))));
    /* rotate by q quarter turns: odd q swaps, and signs flip by quadrant */
    uint32_t swap = 0u - (q & 1u);
    uint32_t sb = dt_rng_f2u(s), cb = dt_rng_f2u(c);
    uint32_t so = (sb & ~swap) | (cb & swap), co = (cb & ~swap) | (sb & swap);
    *s_out = dt_rng_u2f(so ^ ((q & 2u) << 30));
    *c_out = dt_rng_u2f(co ^ (((q + 1u) & 2u) << 30));
}

#ifndef __CUDACC__

#include "dt.h"

/* Blocks first .. first + DT_PHILOX_BATCH - 1 at once, word-major:
 * r[w][j] is word w of block first + j (the bits of dt_philox_block). */
#define DT_PHILOX_BATCH 16
void dt_philox_batch(uint32_t r[4][DT_PHILOX_BATCH], uint64_t seed,
                     uint64_t first);

/* A generator: the key and the next unused block. Draws reserve blocks
 * through dt_generator_reserve, which is atomic, so two threads drawing
 * at once get disjoint numbers. */
typedef struct dt_generator {
    uint64_t seed;
    uint64_t offset;      /* in blocks (128-bit counters) */
} dt_generator;

/* torch's default seed (the numbers still differ: torch's CPU generator
 * is mt19937). */
#define DT_DEFAULT_SEED UINT64_C(67280421310721)

/* The process-wide generator dtrain.rand & co. use by default. */
dt_generator *dt_generator_default(void);
/* A new generator seeded with `seed` (NULL when out of memory). */
dt_generator *dt_generator_new(uint64_t seed);
void dt_generator_free(dt_generator *g);
/* Restarts the stream: seed = `seed`, offset = 0. */
void dt_generator_manual_seed(dt_generator *g, uint64_t seed);
/* Returns the first of `nblocks` fresh blocks and moves the offset on. */
uint64_t dt_generator_reserve(dt_generator *g, uint64_t nblocks);

/* In-place draws (rng.c). Every element of t, in C order of its shape
 * (views and non-contiguous tensors too), gets the number its logical
 * index selects; `g` NULL means the default generator. Floating dtypes
 * only for uniform_/normal_; bernoulli_ and random_int_ take any dtype. */
dt_status dt_uniform_(dt_tensor *t, double from, double to, dt_generator *g);
dt_status dt_normal_(dt_tensor *t, double mean, double std, dt_generator *g);
dt_status dt_bernoulli_(dt_tensor *t, double p, dt_generator *g);
/* Integers uniform in [low, high); the caller checks they fit t's dtype. */
dt_status dt_random_int_(dt_tensor *t, int64_t low, int64_t high,
                         dt_generator *g);
/* out[i] = 1 with probability p[i], else 0, in p's dtype (floating). */
dt_status dt_bernoulli_forward(dt_tensor **out, const dt_tensor *p,
                               dt_generator *g);

#endif /* __CUDACC__ */

#endif /* DT_RNG_H */
