/* nn_rows_gen.h: the row helpers of the nn kernels, written once for the
 * element type NN_T (float or double) and included by the nn_*_gen.h
 * templates, for which nn_types_gen.h defines
 *   NN_T        the element type
 *   NN_S(name)  name with the type's suffix (name##_f32)
 *   NN_EXP, NN_LOG   exp and log for NN_T (ew_expf for float: it
 *                    vectorises, libm's expf does not)
 *
 * The helpers are always_inline so that every AVX2/AVX-512 clone of a
 * kernel inlines them. Reductions (max, sums) are written with GCC vector
 * types: without -ffast-math GCC will not reorder a scalar reduction into
 * vector lanes by itself. Lane-wise partial sums are also more accurate
 * than one running sum.
 */
#ifndef NN_VBYTES
#define NN_VBYTES 64
#define NN_CHUNK 256
#define NN_FLUSH 4096
#endif

typedef NN_T NN_S(vec)
    __attribute__((vector_size(NN_VBYTES), aligned(sizeof(NN_T))));
#define NN_W ((int64_t)(NN_VBYTES / sizeof(NN_T)))

/* the vector at p (any alignment of NN_T) */
#define NN_VAT(p) (*(const NN_S(vec) *)(p))

DT_NN_INLINE NN_T
NN_S(vtotal)(const NN_S(vec) *v)
{
    NN_T s = 0;
    for (int64_t l = 0; l < NN_W; l++) {
        s += (*v)[l];
    }
    return s;
}

DT_NN_INLINE NN_T
NN_S(row_max)(const NN_T *x, int64_t n)
{
    NN_S(vec) acc = (NN_S(vec)){0} - INFINITY;
    NN_T m = -INFINITY;
    int64_t i = 0;
    for (; i + NN_W <= n; i += NN_W) {
        /* v > acc ? v : acc per lane, as bit masks (C has no vector ?:);
         * a NaN never wins, the row's result is NaN through the sum */
        NN_S(vec) v = NN_VAT(x + i);
        __typeof__(v > acc) k = v > acc;
        acc = (NN_S(vec))((k & (__typeof__(k))v) | (~k & (__typeof__(k))acc));
    }
    for (; i < n; i++) {
        m = x[i] > m ? x[i] : m;
    }
    for (int64_t l = 0; l < NN_W; l++) {
        m = acc[l] > m ? acc[l] : m;
    }
    return m;
}

/* Sums over n elements: vector lanes, folded into a double every
 * NN_FLUSH elements so that long float rows keep their precision. */
#define NN_LANE_SUM(n, TERM_VEC, TERM)                                    \
    double total_ = 0;                                                    \
    for (int64_t i0_ = 0; i0_ < (n); i0_ += NN_FLUSH) {                   \
        int64_t end_ = (n) - i0_ < NN_FLUSH ? (n) : i0_ + NN_FLUSH;       \
        int64_t i = i0_;                                                  \
        NN_S(vec) acc_ = {0};                                             \
        NN_T s_ = 0;                                                      \
        for (; i + NN_W <= end_; i += NN_W) {                             \
            acc_ += (TERM_VEC);                                           \
        }                                                                 \
        for (; i < end_; i++) {                                           \
            s_ += (TERM);                                                 \
        }                                                                 \
        total_ += (double)(s_ + NN_S(vtotal)(&acc_));                     \
    }                                                                     \
    return (NN_T)total_

DT_NN_INLINE NN_T
NN_S(row_sum)(const NN_T *x, int64_t n)
{
    NN_LANE_SUM(n, NN_VAT(x + i), x[i]);
}

DT_NN_INLINE NN_T
NN_S(row_dot)(const NN_T *x, const NN_T *y, int64_t n)
{
    NN_LANE_SUM(n, NN_VAT(x + i) * NN_VAT(y + i), x[i] * y[i]);
}

/* sum of exp(x - shift), through a small buffer so that the exp loop
 * stays a plain (vectorisable) elementwise loop */
DT_NN_INLINE NN_T
NN_S(row_sumexp)(const NN_T *x, NN_T shift, int64_t n)
{
    NN_T buf[NN_CHUNK], s = 0;
    for (int64_t i = 0; i < n; i += NN_CHUNK) {
        int64_t w = n - i < NN_CHUNK ? n - i : NN_CHUNK;
        for (int64_t j = 0; j < w; j++) {
            buf[j] = NN_EXP(x[i + j] - shift);
        }
        s += NN_S(row_sum)(buf, w);
    }
    return s;
}

/* logsumexp(x) as the max m and log(sum(exp(x - m))): callers form
 * (x - m) - log(sum) (exact, then one rounding) rather than x - lse, which
 * would round lse to the precision of m first. */
DT_NN_INLINE void
NN_S(row_logsumexp)(NN_T *m, NN_T *logsum, const NN_T *x, int64_t n)
{
    *m = NN_S(row_max)(x, n);
    *logsum = NN_LOG(NN_S(row_sumexp)(x, *m, n));
}
