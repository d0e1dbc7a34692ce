/* nn_softmax_gen.h: softmax and log_softmax kernels for one element type,
 * included by nn_softmax.c once per NN_T via nn_types_gen.h (see
 * nn_rows_gen.h).
 *
 * The data is (outer, n, inner) around the softmax dim, contiguous.
 * inner == 1: each row of n is one cache-friendly pass after another.
 * inner > 1: the dim is strided; a block of up to NN_COLS neighbouring
 * columns is walked row by row, so every inner loop runs along contiguous
 * memory and vectorises, with the running max and sum held per column.
 */
#include "nn_rows_gen.h"

#ifndef NN_COLS
#define NN_COLS 256
#endif

/* y = softmax(x) or log_softmax(x) along rows of n. */
static DT_NN_KERNEL void
NN_S(softmax_rows)(NN_T *y, const NN_T *x, int64_t rows, int64_t n,
                   bool is_log)
{
    for (int64_t r = 0; r < rows; r++) {
        const NN_T *xr = x + r * n;
        NN_T *yr = y + r * n;
        NN_T m = NN_S(row_max)(xr, n);
        /* the output row holds the exponentials first */
        for (int64_t i = 0; i < n; i++) {
            yr[i] = NN_EXP(xr[i] - m);
        }
        NN_T s = NN_S(row_sum)(yr, n);
        if (is_log) {
            /* x - m is exact; adding log(s) to m first would round */
            NN_T ls = NN_LOG(s);
            for (int64_t i = 0; i < n; i++) {
                yr[i] = (xr[i] - m) - ls;
            }
        } else {
            NN_T inv = 1 / s;
            for (int64_t i = 0; i < n; i++) {
                yr[i] *= inv;
            }
        }
    }
}

/* One block of w columns (stride `inner`) over n rows. */
DT_NN_INLINE void
NN_S(softmax_block)(NN_T *y, const NN_T *x, int64_t n, int64_t inner,
                    int64_t w, bool is_log)
{
    NN_T m[NN_COLS], s[NN_COLS];
    for (int64_t j = 0; j < w; j++) {
        m[j] = -INFINITY;
        s[j] = 0;
    }
    for (int64_t k = 0; k < n; k++) {
        const NN_T *xk = x + k * inner;
        for (int64_t j = 0; j < w; j++) {
            m[j] = xk[j] > m[j] ? xk[j] : m[j];
        }
    }
    for (int64_t k = 0; k < n; k++) {
        const NN_T *xk = x + k * inner;
        NN_T *yk = y + k * inner;
        for (int64_t j = 0; j < w; j++) {
            yk[j] = NN_EXP(xk[j] - m[j]);
            s[j] += yk[j];
        }
    }
    for (int64_t j = 0; j < w; j++) {
        s[j] = is_log ? NN_LOG(s[j]) : 1 / s[j];
    }
    for (int64_t k = 0; k < n; k++) {
        const NN_T *xk = x + k * inner;
        NN_T *yk = y + k * inner;
        if (is_log) {
            for (int64_t j = 0; j < w; j++) {
                yk[j] = (xk[j] - m[j]) - s[j];
            }
        } else {
            for (int64_t j = 0; j < w; j++) {
                yk[j] *= s[j];
            }
        }
    }
}

static DT_NN_KERNEL void
NN_S(softmax_cols)(NN_T *y, const NN_T *x, int64_t outer, int64_t n,
                   int64_t inner, bool is_log)
{
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < inner; j += NN_COLS) {
            int64_t w = inner - j < NN_COLS ? inner - j : NN_COLS;
            int64_t at = o * n * inner + j;
            NN_S(softmax_block)(y + at, x + at, n, inner, w, is_log);
        }
    }
}

/* Backward along rows, from the forward's output y:
 *   softmax:     dx = y * (g - sum(g * y))
 *   log_softmax: dx = g - exp(y) * sum(g) */
static DT_NN_KERNEL void
NN_S(softmax_back_rows)(NN_T *dx, const NN_T *y, const NN_T *g,
                        int64_t rows, int64_t n, bool is_log)
{
    for (int64_t r = 0; r < rows; r++) {
        const NN_T *yr = y + r * n, *gr = g + r * n;
        NN_T *d = dx + r * n;
        if (is_log) {
            NN_T s = NN_S(row_sum)(gr, n);
            for (int64_t i = 0; i < n; i++) {
                d[i] = gr[i] - NN_EXP(yr[i]) * s;
            }
        } else {
            NN_T s = NN_S(row_dot)(gr, yr, n);
            for (int64_t i = 0; i < n; i++) {
                d[i] = yr[i] * (gr[i] - s);
            }
        }
    }
}

DT_NN_INLINE void
NN_S(softmax_back_block)(NN_T *dx, const NN_T *y, const NN_T *g, int64_t n,
                         int64_t inner, int64_t w, bool is_log)
{
    NN_T s[NN_COLS];
    for (int64_t j = 0; j < w; j++) {
        s[j] = 0;
    }
    for (int64_t k = 0; k < n; k++) {
        const NN_T *yk = y + k * inner, *gk = g + k * inner;
        for (int64_t j = 0; j < w; j++) {
            s[j] += is_log ? gk[j] : gk[j] * yk[j];
        }
    }
    for (int64_t k = 0; k < n; k++) {
        const NN_T *yk = y + k * inner, *gk = g + k * inner;
        NN_T *d = dx + k * inner;
        if (is_log) {
            for (int64_t j = 0; j < w; j++) {
                d[j] = gk[j] - NN_EXP(yk[j]) * s[j];
            }
        } else {
            for (int64_t j = 0; j < w; j++) {
                d[j] = yk[j] * (gk[j] - s[j]);
            }
        }
    }
}

static DT_NN_KERNEL void
NN_S(softmax_back_cols)(NN_T *dx, const NN_T *y, const NN_T *g,
                        int64_t outer, int64_t n, int64_t inner, bool is_log)
{
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t j = 0; j < inner; j += NN_COLS) {
            int64_t w = inner - j < NN_COLS ? inner - j : NN_COLS;
            int64_t at = o * n * inner + j;
            NN_S(softmax_back_block)(dx + at, y + at, g + at, n, inner, w,
                                     is_log);
        }
    }
}
