/* nn_loss_gen.h: mse_loss and binary_cross_entropy_with_logits kernels
 * for one element type, included by nn_loss.c once per NN_T via
 * nn_types_gen.h (see nn_rows_gen.h; this one also uses NN_LOG1P and
 * NN_SIGMOID). Operands
 * are contiguous and already broadcast to n elements; w and pw may be
 * NULL. With `loss` the per-element losses are written, else only their
 * sum is returned. */
#include "nn_rows_gen.h"

#define NN_GELEM(g, i, gstride, gscale) ((NN_T)((g)[(i) * (gstride)] * (gscale)))

static DT_NN_KERNEL double
NN_S(mse_forward)(NN_T *loss, const NN_T *a, const NN_T *b, int64_t n)
{
    NN_T buf[NN_CHUNK];
    double total = 0;
    for (int64_t i = 0; i < n; i += NN_CHUNK) {
        int64_t m = n - i < NN_CHUNK ? n - i : NN_CHUNK;
        NN_T *o = loss ? loss + i : buf;
        for (int64_t j = 0; j < m; j++) {
            NN_T d = a[i + j] - b[i + j];
            o[j] = d * d;
        }
        if (!loss) {
            total += NN_S(row_sum)(buf, m);
        }
    }
    return total;
}

static DT_NN_KERNEL void
NN_S(mse_backward)(NN_T *da, NN_T *db, const NN_T *a, const NN_T *b,
                   const NN_T *g, int64_t gstride, double gscale, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        NN_T v = 2 * (a[i] - b[i]) * NN_GELEM(g, i, gstride, gscale);
        if (da) {
            da[i] = v;
        }
        if (db) {
            db[i] = -v;
        }
    }
}

/* log(sigmoid(x)) without overflow: min(x, 0) - log1p(exp(-|x|)) */
DT_NN_INLINE NN_T
NN_S(log_sigmoid)(NN_T x)
{
    NN_T ax = x < 0 ? -x : x;
    return (x < 0 ? x : 0) - NN_LOG1P(NN_EXP(-ax));
}

/* loss = w ((1 - t) x - (1 + (pw - 1) t) log_sigmoid(x)) */
static DT_NN_KERNEL double
NN_S(bce_forward)(NN_T *loss, const NN_T *x, const NN_T *t, const NN_T *w,
                  const NN_T *pw, int64_t n)
{
    NN_T buf[NN_CHUNK];
    double total = 0;
    for (int64_t i = 0; i < n; i += NN_CHUNK) {
        int64_t m = n - i < NN_CHUNK ? n - i : NN_CHUNK;
        NN_T *o = loss ? loss + i : buf;
        for (int64_t j = 0; j < m; j++) {
            int64_t k = i + j;
            NN_T lw = pw ? 1 + (pw[k] - 1) * t[k] : 1;
            NN_T v = (1 - t[k]) * x[k] - lw * NN_S(log_sigmoid)(x[k]);
            o[j] = w ? v * w[k] : v;
        }
        if (!loss) {
            total += NN_S(row_sum)(buf, m);
        }
    }
    return total;
}

/* dx = g w ((1 + (pw - 1) t) sigmoid(x) - pw t)
 * dt = g w (-x - (pw - 1) log_sigmoid(x))   (pw = 1 when absent) */
static DT_NN_KERNEL void
NN_S(bce_backward)(NN_T *dx, NN_T *dt, const NN_T *x, const NN_T *t,
                   const NN_T *w, const NN_T *pw, const NN_T *g,
                   int64_t gstride, double gscale, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        NN_T gi = NN_GELEM(g, i, gstride, gscale) * (w ? w[i] : 1);
        NN_T p = pw ? pw[i] : 1;
        if (dx) {
            NN_T lw = 1 + (p - 1) * t[i];
            dx[i] = gi * (lw * NN_SIGMOID(x[i]) - p * t[i]);
        }
        if (dt) {
            NN_T v = -x[i];
            if (pw) {
                v -= (p - 1) * NN_S(log_sigmoid)(x[i]);
            }
            dt[i] = gi * v;
        }
    }
}
