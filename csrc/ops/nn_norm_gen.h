/* nn_norm_gen.h: layer_norm kernels for one element type, included by
 * nn_norm.c once per NN_T via nn_types_gen.h (see nn_rows_gen.h; this
 * one also uses NN_SQRT). */
#include "nn_rows_gen.h"

/* sum((x - mu)^2): the two-pass variance, which does not cancel */
DT_NN_INLINE NN_T
NN_S(row_sqdev)(const NN_T *x, NN_T mu, int64_t n)
{
    NN_LANE_SUM(n, (NN_VAT(x + i) - mu) * (NN_VAT(x + i) - mu),
                (x[i] - mu) * (x[i] - mu));
}

/* ---------------------------------------------------------------------- */
/* layer_norm: rows of m; w, b NULL or (m)                                 */

static DT_NN_KERNEL void
NN_S(ln_forward)(NN_T *y, NN_T *mean, NN_T *rstd, const NN_T *x,
                 const NN_T *w, const NN_T *b, int64_t rows, int64_t m,
                 NN_T eps)
{
    for (int64_t r = 0; r < rows; r++) {
        const NN_T *xr = x + r * m;
        NN_T *yr = y + r * m;
        NN_T mu = NN_S(row_sum)(xr, m) / (NN_T)m;
        NN_T rs = 1 / NN_SQRT(NN_S(row_sqdev)(xr, mu, m) / (NN_T)m + eps);
        mean[r] = mu;
        rstd[r] = rs;
        if (w && b) {
            for (int64_t i = 0; i < m; i++) {
                yr[i] = (xr[i] - mu) * rs * w[i] + b[i];
            }
        } else if (w) {
            for (int64_t i = 0; i < m; i++) {
                yr[i] = (xr[i] - mu) * rs * w[i];
            }
        } else {
            for (int64_t i = 0; i < m; i++) {
                yr[i] = (xr[i] - mu) * rs + (b ? b[i] : 0);
            }
        }
    }
}

/* sum(g w) and sum(g w (x - mu)), both in one pass, by vector lanes
 * folded into doubles every NN_FLUSH elements */
DT_NN_INLINE void
NN_S(ln_row_sums)(NN_T *sg, NN_T *sgx, const NN_T *g, const NN_T *w,
                  const NN_T *x, NN_T mu, int64_t n)
{
    double t1 = 0, t2 = 0;
    for (int64_t i0 = 0; i0 < n; i0 += NN_FLUSH) {
        int64_t end = n - i0 < NN_FLUSH ? n : i0 + NN_FLUSH, i = i0;
        NN_S(vec) a1 = {0}, a2 = {0};
        NN_T s1 = 0, s2 = 0;
        for (; i + NN_W <= end; i += NN_W) {
            NN_S(vec) gw = NN_VAT(g + i) * NN_VAT(w + i);
            a1 += gw;
            a2 += gw * (NN_VAT(x + i) - mu);
        }
        for (; i < end; i++) {
            s1 += g[i] * w[i];
            s2 += g[i] * w[i] * (x[i] - mu);
        }
        t1 += (double)(s1 + NN_S(vtotal)(&a1));
        t2 += (double)(s2 + NN_S(vtotal)(&a2));
    }
    *sg = (NN_T)t1;
    *sgx = (NN_T)t2;
}

/* With xh = (x - mean) rstd and gw = g w:
 *   dx = rstd (gw - mean(gw) - xh mean(gw xh)) = rstd gw + kx x + k0
 *   dw += g xh; db += g.
 * Two passes per row: the sums, then dx with dw and db. w, dw and db
 * are always given (ones and scratch when the op has none); dx may be
 * NULL. restrict: with six streams GCC gives up on runtime alias checks
 * and would leave the loop scalar. */
static DT_NN_KERNEL void
NN_S(ln_backward)(NN_T *restrict dx, NN_T *restrict dw, NN_T *restrict db,
                  const NN_T *restrict x, const NN_T *restrict g,
                  const NN_T *mean, const NN_T *rstd,
                  const NN_T *restrict w, int64_t rows, int64_t m)
{
    for (int64_t r = 0; r < rows; r++) {
        const NN_T *xr = x + r * m, *gr = g + r * m;
        NN_T mu = mean[r], rs = rstd[r], sg, sgx;
        NN_S(ln_row_sums)(&sg, &sgx, gr, w, xr, mu, m);
        NN_T kx = -rs * rs * rs * sgx / (NN_T)m;
        NN_T k0 = -rs * sg / (NN_T)m - mu * kx;
        if (dx) {
            NN_T *d = dx + r * m;
            for (int64_t i = 0; i < m; i++) {
                d[i] = rs * gr[i] * w[i] + kx * xr[i] + k0;
                dw[i] += gr[i] * ((xr[i] - mu) * rs);
                db[i] += gr[i];
            }
        } else {
            for (int64_t i = 0; i < m; i++) {
                dw[i] += gr[i] * ((xr[i] - mu) * rs);
                db[i] += gr[i];
            }
        }
    }
}
