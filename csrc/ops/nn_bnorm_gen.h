/* nn_bnorm_gen.h: batch_norm kernels for one element type, included by
 * nn_batch_norm.c once per NN_T via nn_types_gen.h (see nn_rows_gen.h).
 * The data is (n, c, s) contiguous: batch, channels, spatial. */
#include "nn_rows_gen.h"

/* s1 += sum(p), s2 += sum(p q) with p = u - ku, q = v - kv over one
 * contiguous run; lanes are flushed to double every NN_FLUSH elements so
 * that long runs keep their precision. */
DT_NN_INLINE void
NN_S(run_sums)(double *s1, double *s2, const NN_T *u, NN_T ku, const NN_T *v,
               NN_T kv, int64_t n)
{
    for (int64_t i0 = 0; i0 < n; i0 += NN_FLUSH) {
        int64_t end = n - i0 < NN_FLUSH ? n : i0 + NN_FLUSH, i = i0;
        NN_S(vec) a1 = {0}, a2 = {0};
        NN_T t1 = 0, t2 = 0;
        for (; i + NN_W <= end; i += NN_W) {
            NN_S(vec) p = NN_VAT(u + i) - ku;
            a1 += p;
            a2 += p * (NN_VAT(v + i) - kv);
        }
        for (; i < end; i++) {
            t1 += u[i] - ku;
            t2 += (u[i] - ku) * (v[i] - kv);
        }
        *s1 += (double)(t1 + NN_S(vtotal)(&a1));
        *s2 += (double)(t2 + NN_S(vtotal)(&a2));
    }
}

/* Per channel: s1[c] = sum(u - ku[c]), s2[c] = sum((u - ku[c]) (v -
 * kv[c])) over n and s (the caller zeroes s1 and s2). s == 1 runs along
 * the channels instead, which are then the contiguous dim. */
static DT_NN_KERNEL void
NN_S(bn_sums)(double *s1, double *s2, const NN_T *u, const NN_T *ku,
              const NN_T *v, const NN_T *kv, int64_t n, int64_t c,
              int64_t s)
{
    for (int64_t i = 0; i < n; i++) {
        const NN_T *ui = u + i * c * s, *vi = v + i * c * s;
        if (s == 1) {
            for (int64_t j = 0; j < c; j++) {
                NN_T p = ui[j] - ku[j];
                s1[j] += p;
                s2[j] += p * (vi[j] - kv[j]);
            }
            continue;
        }
        for (int64_t j = 0; j < c; j++) {
            NN_S(run_sums)(&s1[j], &s2[j], ui + j * s, ku[j], vi + j * s,
                           kv[j], s);
        }
    }
}

/* out = a[c] u + b[c] v + k[c] per channel (u may be NULL: a unused). */
static DT_NN_KERNEL void
NN_S(bn_apply)(NN_T *out, const NN_T *u, const NN_T *v, const NN_T *a,
               const NN_T *b, const NN_T *k, int64_t n, int64_t c,
               int64_t s)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t at = i * c * s;
        if (s == 1) {
            for (int64_t j = 0; j < c; j++) {
                out[at + j] = (u ? a[j] * u[at + j] : 0) + b[j] * v[at + j] +
                              k[j];
            }
            continue;
        }
        for (int64_t j = 0; j < c; j++, at += s) {
            NN_T aj = a[j], bj = b[j], kj = k[j];
            if (u) {
                for (int64_t q = 0; q < s; q++) {
                    out[at + q] = aj * u[at + q] + bj * v[at + q] + kj;
                }
            } else {
                for (int64_t q = 0; q < s; q++) {
                    out[at + q] = bj * v[at + q] + kj;
                }
            }
        }
    }
}
