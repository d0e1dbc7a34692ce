/* nn_ce_gen.h: cross_entropy and nll_loss kernels for one element type,
 * included by nn_loss_ce.c once per NN_T via nn_types_gen.h (see
 * nn_rows_gen.h).
 *
 * Every kernel sees the input as rows (R, C): one row of class scores per
 * sample (spatial inputs were transposed to that layout). Targets are
 * int64 (R) class indices, already checked to lie in [0, C) unless equal
 * to ignore; w is NULL or the (C) class weights. Per-row results are
 * NN_T, totals double.
 *
 * Class-index cross entropy with smoothing ls and W = sum(w) (C without
 * weights), with lse = logsumexp(x) and p = softmax(x):
 *   loss = (1 - ls) w[t] (lse - x[t]) + ls/C (W lse - sum_c w[c] x[c])
 *   dx[c] = g ((1 - ls) w[t] + ls/C W) p[c] - g ls/C w[c]
 *           - g (1 - ls) w[t] [c == t]
 * so the forward keeps only lse per row and the backward is one pass.
 * lse is kept as (max, log(sum(exp(x - max)))): lse - x[c] is then
 * (max - x[c]) + logsum, which does not round lse to max's precision.
 */
#include "nn_rows_gen.h"

/* The scale of row r's gradient: its own upstream value ('none') or the
 * shared one (mean, sum; gstride 0). */
#define NN_GROW(g, r, gstride, gscale) ((NN_T)((g)[(r) * (gstride)] * (gscale)))

/* sum_c w[c] (m - x[c]) (w NULL: all ones), without cancelling */
DT_NN_INLINE NN_T
NN_S(ce_wdev)(const NN_T *x, NN_T m, const NN_T *w, int64_t C)
{
    NN_T buf[NN_CHUNK], s = 0;
    for (int64_t c = 0; c < C; c += NN_CHUNK) {
        int64_t n = C - c < NN_CHUNK ? C - c : NN_CHUNK;
        for (int64_t j = 0; j < n; j++) {
            buf[j] = m - x[c + j];
        }
        s += w ? NN_S(row_dot)(w + c, buf, n) : NN_S(row_sum)(buf, n);
    }
    return s;
}

static DT_NN_KERNEL void
NN_S(ce_forward)(NN_T *loss, NN_T *lse, double *total, double *wsum,
                 const NN_T *x, const int64_t *t, const NN_T *w,
                 int64_t rows, int64_t C, int64_t ignore, NN_T ls)
{
    NN_T wall = w ? NN_S(row_sum)(w, C) : (NN_T)C;
    double tot = 0, ws = 0;
    for (int64_t r = 0; r < rows; r++) {
        const NN_T *xr = x + r * C;
        NN_T m, lg, v = 0;
        NN_S(row_logsumexp)(&m, &lg, xr, C);
        lse[2 * r] = m;
        lse[2 * r + 1] = lg;
        if (t[r] != ignore) {
            NN_T wt = w ? w[t[r]] : 1;
            v = (1 - ls) * wt * ((m - xr[t[r]]) + lg);
            if (ls > 0) {
                v += ls / (NN_T)C * (wall * lg + NN_S(ce_wdev)(xr, m, w, C));
            }
            ws += wt;
        }
        if (loss) {
            loss[r] = v;
        }
        tot += v;
    }
    *total = tot;
    *wsum = ws;
}

static DT_NN_KERNEL void
NN_S(ce_backward)(NN_T *dx, const NN_T *x, const NN_T *lse, const int64_t *t,
                  const NN_T *w, const NN_T *g, int64_t gstride,
                  double gscale, int64_t rows, int64_t C, int64_t ignore,
                  NN_T ls)
{
    NN_T wall = w ? NN_S(row_sum)(w, C) : (NN_T)C;
    for (int64_t r = 0; r < rows; r++) {
        const NN_T *xr = x + r * C;
        NN_T *d = dx + r * C;
        if (t[r] == ignore) {
            memset(d, 0, (size_t)C * sizeof *d);
            continue;
        }
        NN_T gr = NN_GROW(g, r, gstride, gscale);
        NN_T m = lse[2 * r], lg = lse[2 * r + 1];
        NN_T wt = w ? w[t[r]] : 1;
        NN_T a = gr * ((1 - ls) * wt + ls / (NN_T)C * wall);
        NN_T b = gr * ls / (NN_T)C;
        for (int64_t c = 0; c < C; c++) {
            d[c] = a * NN_EXP((xr[c] - m) - lg);
        }
        if (ls > 0) {
            for (int64_t c = 0; c < C; c++) {
                d[c] -= b * (w ? w[c] : 1);
            }
        }
        d[t[r]] -= gr * (1 - ls) * wt;
    }
}

/* Probability targets p_t (R, C), smoothed to q = (1 - ls) p_t + ls/C:
 *   loss = sum_c w[c] q[c] (lse - x[c])
 * wq gets w q for one chunk of classes (the same in both passes). */
DT_NN_INLINE void
NN_S(ce_prob_weights)(NN_T *wq, const NN_T *pt, const NN_T *w, int64_t c0,
                      int64_t n, int64_t C, NN_T ls)
{
    for (int64_t j = 0; j < n; j++) {
        wq[j] = (w ? w[c0 + j] : 1) * ((1 - ls) * pt[c0 + j] + ls / (NN_T)C);
    }
}

static DT_NN_KERNEL void
NN_S(ce_prob_forward)(NN_T *loss, NN_T *lse, double *total, const NN_T *x,
                      const NN_T *pt, const NN_T *w, int64_t rows, int64_t C,
                      NN_T ls)
{
    NN_T wq[NN_CHUNK], dev[NN_CHUNK];
    double tot = 0;
    for (int64_t r = 0; r < rows; r++) {
        const NN_T *xr = x + r * C, *pr = pt + r * C;
        NN_T m, lg, v = 0;
        NN_S(row_logsumexp)(&m, &lg, xr, C);
        for (int64_t c = 0; c < C; c += NN_CHUNK) {
            int64_t n = C - c < NN_CHUNK ? C - c : NN_CHUNK;
            NN_S(ce_prob_weights)(wq, pr, w, c, n, C, ls);
            for (int64_t j = 0; j < n; j++) {
                dev[j] = (m - xr[c + j]) + lg;
            }
            v += NN_S(row_dot)(wq, dev, n);
        }
        lse[2 * r] = m;
        lse[2 * r + 1] = lg;
        if (loss) {
            loss[r] = v;
        }
        tot += v;
    }
    *total = tot;
}

/* dx = g (p sum(w q) - w q); dpt = g (1 - ls) w (lse - x);
 * dw += g q (lse - x). Any of dx, dpt, dw may be NULL. */
static DT_NN_KERNEL void
NN_S(ce_prob_backward)(NN_T *dx, NN_T *dpt, double *dw, const NN_T *x,
                       const NN_T *lse, const NN_T *pt, const NN_T *w,
                       const NN_T *g, int64_t gstride, double gscale,
                       int64_t rows, int64_t C, NN_T ls)
{
    NN_T buf[NN_CHUNK];
    for (int64_t r = 0; r < rows; r++) {
        const NN_T *xr = x + r * C, *pr = pt + r * C;
        NN_T gr = NN_GROW(g, r, gstride, gscale), wq = 0;
        NN_T m = lse[2 * r], lg = lse[2 * r + 1];
        NN_T *d = dx ? dx + r * C : NULL, *dp = dpt ? dpt + r * C : NULL;
        for (int64_t c = 0; c < C; c += NN_CHUNK) {
            int64_t n = C - c < NN_CHUNK ? C - c : NN_CHUNK;
            NN_S(ce_prob_weights)(buf, pr, w, c, n, C, ls);
            wq += NN_S(row_sum)(buf, n);
            for (int64_t j = 0; d && j < n; j++) {
                d[c + j] = -gr * buf[j];
            }
        }
        for (int64_t c = 0; d && c < C; c++) {
            d[c] += gr * wq * NN_EXP((xr[c] - m) - lg);
        }
        for (int64_t c = 0; dp && c < C; c++) {
            dp[c] = gr * (1 - ls) * (w ? w[c] : 1) * ((m - xr[c]) + lg);
        }
        for (int64_t c = 0; dw && c < C; c++) {
            NN_T q = (1 - ls) * pr[c] + ls / (NN_T)C;
            dw[c] += (double)(gr * q * ((m - xr[c]) + lg));
        }
    }
}

/* nll_loss on log-probabilities x: loss = -w[t] x[t]. */
static void
NN_S(nll_forward)(NN_T *loss, double *total, double *wsum, const NN_T *x,
                  const int64_t *t, const NN_T *w, int64_t rows, int64_t C,
                  int64_t ignore)
{
    double tot = 0, ws = 0;
    for (int64_t r = 0; r < rows; r++) {
        NN_T v = 0;
        if (t[r] != ignore) {
            NN_T wt = w ? w[t[r]] : 1;
            v = -wt * x[r * C + t[r]];
            ws += wt;
        }
        if (loss) {
            loss[r] = v;
        }
        tot += v;
    }
    *total = tot;
    *wsum = ws;
}

/* dx (zeroed by the caller)[r, t] = -g w[t] */
static void
NN_S(nll_backward)(NN_T *dx, const int64_t *t, const NN_T *w, const NN_T *g,
                   int64_t gstride, double gscale, int64_t rows, int64_t C,
                   int64_t ignore)
{
    for (int64_t r = 0; r < rows; r++) {
        if (t[r] != ignore) {
            dx[r * C + t[r]] = -NN_GROW(g, r, gstride, gscale) *
                               (w ? w[t[r]] : 1);
        }
    }
}
