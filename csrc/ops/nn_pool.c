/* nn_pool.c: max_pool2d (with indices) and avg_pool2d, forward and
 * backward, on (N, C, H, W) or unbatched (C, H, W) input; every (n, c)
 * plane is pooled on its own. adaptive_avg_pool2d is in nn_adaptive.c.
 *
 * Output sizes, window clipping, NaN propagation and the avg_pool divisor
 * rules follow PyTorch's CPU kernels exactly; the kernels run in the
 * compute dtype (float32, float64, int64). Backward scatters each output
 * gradient to its argmax (saved indices) or spreads it over its window.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn.h"

/* floor(a / b) for b > 0 */
static int64_t
div_floor(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* PyTorch's pooling_output_shape. */
static int64_t
out_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dil,
         bool ceil_mode)
{
    int64_t num = in + 2 * pad - dil * (k - 1) - 1 +
                  (ceil_mode ? stride - 1 : 0);
    int64_t out = div_floor(num, stride) + 1;
    if (ceil_mode && (out - 1) * stride >= in + pad) {
        out--;
    }
    return out;
}

void
dt_nnc_size_list(char *buf, size_t n, const int64_t *shape, int ndim)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++) {
        used += (size_t)snprintf(buf + used, n - used, "%s%" PRId64,
                                 i ? ", " : "", shape[i]);
    }
    if (used < n) {
        snprintf(buf + used, n - used, "]");
    }
}

dt_status
dt_nnc_pool_planes(dt_nnc_pool *a, const int64_t *shape, int ndim,
                   const char *op)
{
    bool ok = ndim == 3 || ndim == 4;
    for (int i = ndim - 3; ok && i < ndim; i++) {
        ok = shape[i] > 0;
    }
    if (!ok) {
        char s[160];
        dt_nnc_size_list(s, sizeof s, shape, ndim);
        return dt_fail(DT_ERR_RUNTIME, "%s: Expected 3D or 4D (batch mode) "
                       "tensor with optional 0 dim batch size for input, but "
                       "got:%s", op, s);
    }
    a->P = shape[ndim - 3] * (ndim == 4 ? shape[0] : 1);
    a->C = shape[ndim - 3];
    a->H = shape[ndim - 2];
    a->W = shape[ndim - 1];
    return DT_OK;
}

static dt_status
check_window(const int64_t *k, const int64_t *s, const int64_t *p,
             const int64_t *d, const char *op)
{
    if (s[0] == 0 || s[1] == 0) {
        return dt_fail(DT_ERR_RUNTIME, "%s: stride should not be zero", op);
    }
    if (s[0] < 0 || s[1] < 0) {
        return dt_fail(DT_ERR_RUNTIME, "%s: stride should be greater than "
                       "zero, but got dH: %" PRId64 " dW: %" PRId64, op, s[0],
                       s[1]);
    }
    if (k[0] <= 0 || k[1] <= 0) {
        return dt_fail(DT_ERR_RUNTIME, "%s: kernel size should be greater "
                       "than zero, but got kH: %" PRId64 " kW: %" PRId64, op,
                       k[0], k[1]);
    }
    if (d[0] <= 0 || d[1] <= 0) {
        return dt_fail(DT_ERR_RUNTIME, "%s: dilation should be greater than "
                       "zero, but got dilationH: %" PRId64 " dilationW: %"
                       PRId64, op, d[0], d[1]);
    }
    if (p[0] < 0 || p[1] < 0) {
        return dt_fail(DT_ERR_RUNTIME, "%s: pad must be non-negative, but "
                       "got pad: %" PRId64, op, p[0] < 0 ? p[0] : p[1]);
    }
    for (int i = 0; i < 2; i++) {
        if (p[i] > ((k[i] - 1) * d[i] + 1) / 2) {
            return dt_fail(DT_ERR_RUNTIME, "%s: pad should be at most half "
                           "of effective kernel size, but got pad=%" PRId64
                           ", kernel_size=%" PRId64 " and dilation=%" PRId64,
                           op, p[i], k[i], d[i]);
        }
    }
    if (p[0] > k[0] / 2 || p[1] > k[1] / 2) {
        return dt_fail(DT_ERR_RUNTIME, "%s: pad should be smaller than or "
                       "equal to half of kernel size, but got padW = %" PRId64
                       ", padH = %" PRId64 ", kW = %" PRId64 ", kH = %" PRId64,
                       op, p[1], p[0], k[1], k[0]);
    }
    return DT_OK;
}

/* Checks everything and fills a from the input shape and the window. */
static dt_status
pool_setup(dt_nnc_pool *a, const int64_t *shape, int ndim, const int64_t *k,
           const int64_t *s, const int64_t *p, const int64_t *d,
           bool ceil_mode, const char *op)
{
    DT_TRY(check_window(k, s, p, d, op));
    DT_TRY(dt_nnc_pool_planes(a, shape, ndim, op));
    *a = (dt_nnc_pool){a->P, a->C, a->H, a->W, 0, 0, k[0], k[1], s[0], s[1],
                       p[0], p[1], d[0], d[1]};
    a->OH = out_size(a->H, k[0], p[0], s[0], d[0], ceil_mode);
    a->OW = out_size(a->W, k[1], p[1], s[1], d[1], ceil_mode);
    if (a->OH < 1 || a->OW < 1) {
        return dt_fail(DT_ERR_RUNTIME, "%s: Given input size: (%" PRId64 "x%"
                       PRId64 "x%" PRId64 "). Calculated output size: (%"
                       PRId64 "x%" PRId64 "x%" PRId64 "). Output size is too "
                       "small", op, a->C, a->H, a->W, a->C,
                       a->OH < 0 ? 0 : a->OH, a->OW < 0 ? 0 : a->OW);
    }
    return DT_OK;
}

dt_status
dt_nnc_pool_output(dt_tensor **res, const int64_t *shape, int ndim,
                   int64_t OH, int64_t OW, dt_dtype dtype)
{
    int64_t os[4];
    memcpy(os, shape, (size_t)ndim * sizeof *os);
    os[ndim - 2] = OH;
    os[ndim - 1] = OW;
    return dt_tensor_empty(res, os, ndim, dtype, DT_DEVICE_CPU);
}

/* ---------------------------------------------------------------------- */
/* max_pool2d                                                              */

/* The first in-range tap of a window starting at `start`, and its end. */
#define WINDOW(start, end, o, s, p, k, d, size)                           \
    int64_t start = (o) * (s) - (p);                                      \
    int64_t end = start + ((k) - 1) * (d) + 1;                            \
    end = end < (size) ? end : (size);                                    \
    while (start < 0) {                                                   \
        start += (d);                                                     \
    }

/* NaN wins (the last one seen), as in PyTorch. */
#define MAXPOOL_DEF(NAME, T, LOWEST, ISNAN)                               \
    static void                                                           \
    NAME(T *out, int64_t *ind, const T *x, const dt_nnc_pool *a)          \
    {                                                                     \
        for (int64_t pl = 0; pl < a->P; pl++) {                           \
            const T *in = x + pl * a->H * a->W;                           \
            for (int64_t oh = 0; oh < a->OH; oh++) {                      \
                WINDOW(hs, he, oh, a->sh, a->ph, a->kh, a->dh, a->H)      \
                for (int64_t ow = 0; ow < a->OW; ow++) {                  \
                    WINDOW(ws, we, ow, a->sw, a->pw, a->kw, a->dw, a->W)  \
                    int64_t best = hs * a->W + ws;                        \
                    T m = LOWEST;                                         \
                    for (int64_t ih = hs; ih < he; ih += a->dh) {         \
                        for (int64_t iw = ws; iw < we; iw += a->dw) {     \
                            T v = in[ih * a->W + iw];                     \
                            if (v > m || ISNAN(v)) {                      \
                                m = v;                                    \
                                best = ih * a->W + iw;                    \
                            }                                             \
                        }                                                 \
                    }                                                     \
                    *out++ = m;                                           \
                    *ind++ = best;                                        \
                }                                                         \
            }                                                             \
        }                                                                 \
    }

#define NO_NAN(v) ((void)(v), false)
MAXPOOL_DEF(maxpool_f32, float, -INFINITY, isnan)
MAXPOOL_DEF(maxpool_f64, double, -INFINITY, isnan)
MAXPOOL_DEF(maxpool_i64, int64_t, INT64_MIN, NO_NAN)

/* 2x2, stride 2, no padding or dilation (the common case): a straight
 * pass over pairs of rows. */
static void
maxpool2x2_f32(float *out, int64_t *ind, const float *x,
               const dt_nnc_pool *a)
{
    int64_t W = a->W;
    for (int64_t pl = 0; pl < a->P; pl++) {
        const float *in = x + pl * a->H * W;
        for (int64_t oh = 0; oh < a->OH; oh++) {
            const float *r0 = in + 2 * oh * W, *r1 = r0 + W;
            int64_t i0 = 2 * oh * W;
            for (int64_t ow = 0; ow < a->OW; ow++) {
                float v0 = r0[2 * ow], v1 = r0[2 * ow + 1];
                float v2 = r1[2 * ow], v3 = r1[2 * ow + 1];
                float m = v0;
                int64_t b = i0 + 2 * ow;
                if (v1 > m || isnan(v1)) {
                    m = v1;
                    b = i0 + 2 * ow + 1;
                }
                if (v2 > m || isnan(v2)) {
                    m = v2;
                    b = i0 + W + 2 * ow;
                }
                if (v3 > m || isnan(v3)) {
                    m = v3;
                    b = i0 + W + 2 * ow + 1;
                }
                out[ow] = m;
                ind[ow] = b;
            }
            out += a->OW;
            ind += a->OW;
        }
    }
}

dt_status
dt_max_pool2d_forward(dt_tensor **out, dt_tensor **indices,
                      const dt_tensor *x, const int64_t *k, const int64_t *s,
                      const int64_t *p, const int64_t *d, bool ceil_mode)
{
    dt_nnc_pool a;
    dt_dtype cdt = DT_FLOAT32;
    DT_TRY(pool_setup(&a, x->shape, x->ndim, k, s, p, d, ceil_mode,
                      "max_pool2d"));
    DT_TRY(dt_nnc_compute_dtype(&cdt, x->dtype, "max_pool2d"));
    dt_tensor *xc = NULL, *res = NULL, *ind = NULL;
    dt_status st = dt_nnc_prep(&xc, x, cdt);
    if (st == DT_OK) {
        st = dt_nnc_pool_output(&res, x->shape, x->ndim, a.OH, a.OW, cdt);
    }
    if (st == DT_OK) {
        st = dt_nnc_pool_output(&ind, x->shape, x->ndim, a.OH, a.OW,
                                DT_INT64);
    }
    if (st == DT_OK) {
        void *o = dt_tensor_data(res), *xi = dt_tensor_data(xc);
        int64_t *ip = dt_tensor_data(ind);
        bool fast = a.kh == 2 && a.kw == 2 && a.sh == 2 && a.sw == 2 &&
                    a.ph == 0 && a.pw == 0 && a.dh == 1 && a.dw == 1 &&
                    2 * a.OH <= a.H && 2 * a.OW <= a.W;
        if (cdt == DT_FLOAT32) {
            (fast ? maxpool2x2_f32 : maxpool_f32)(o, ip, xi, &a);
        } else if (cdt == DT_FLOAT64) {
            maxpool_f64(o, ip, xi, &a);
        } else {
            maxpool_i64(o, ip, xi, &a);
        }
        st = dt_nnc_deliver(out, res, x->dtype, "max_pool2d");
        res = NULL;
    }
    if (st == DT_OK) {
        st = dt_nnc_deliver(indices, ind, DT_INT64, "max_pool2d");
        ind = NULL;
    }
    dt_tensor_release(xc);
    dt_tensor_release(res);
    dt_tensor_release(ind);
    return st;
}

/* saved: indices. grad x[plane][ind] += grad out. */
static dt_status
dt_max_pool2d_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *ind, *gc = NULL;
    DT_TRY(dt_node_saved(&ind, n, 0));
    const dt_input_meta *im = &n->in_meta[0];
    dt_nnc_pool a;
    dt_dtype cdt = DT_FLOAT32;
    DT_TRY(dt_nnc_pool_planes(&a, im->shape, im->ndim, "max_pool2d"));
    DT_TRY(dt_nnc_compute_dtype(&cdt, im->dtype, "max_pool2d"));
    int64_t L = ind->shape[ind->ndim - 2] * ind->shape[ind->ndim - 1];
    int64_t HW = a.H * a.W;
    dt_tensor *ic = NULL;
    dt_status s = dt_nnc_prep(&gc, go[0], cdt);
    if (s == DT_OK) {
        s = dt_contiguous(&ic, ind);
    }
    if (s == DT_OK) {
        s = dt_tensor_zeros(&gi[0], im->shape, im->ndim, cdt, DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        const int64_t *ip = dt_tensor_data(ic);
        for (int64_t pl = 0; pl < a.P; pl++) {
            const int64_t *pi = ip + pl * L;
            if (cdt == DT_FLOAT32) {
                const float *g = (const float *)dt_tensor_data(gc) + pl * L;
                float *o = (float *)dt_tensor_data(gi[0]) + pl * HW;
                for (int64_t i = 0; i < L; i++) {
                    o[pi[i]] += g[i];
                }
            } else {
                const double *g = (const double *)dt_tensor_data(gc) + pl * L;
                double *o = (double *)dt_tensor_data(gi[0]) + pl * HW;
                for (int64_t i = 0; i < L; i++) {
                    o[pi[i]] += g[i];
                }
            }
        }
    }
    dt_tensor_release(gc);
    dt_tensor_release(ic);
    return s;
}

dt_status
dt_max_pool2d(dt_tensor **out, dt_tensor **indices, const dt_tensor *x,
              const int64_t *k, const int64_t *s, const int64_t *p,
              const int64_t *d, bool ceil_mode)
{
    DT_TRY(dt_max_pool2d_forward(out, indices, x, k, s, p, d, ceil_mode));
    const dt_tensor *save[1] = {*indices};
    return dt_nnc_record(out, NULL, "MaxPool2DWithIndicesBackward0",
                         dt_max_pool2d_backward, &x, 1, save, 1);
}

/* ---------------------------------------------------------------------- */
/* avg_pool2d                                                              */

/* One output's clipped window and its divisor (PyTorch's rules). Returns
 * false for a window entirely in the padding (output 0). */
static inline bool
avg_window(int64_t *hs, int64_t *he, int64_t *ws, int64_t *we, int64_t *div,
           const dt_nnc_pool *a, int64_t oh, int64_t ow, bool include_pad,
           int64_t divisor)
{
    int64_t h0 = oh * a->sh - a->ph, w0 = ow * a->sw - a->pw;
    int64_t h1 = h0 + a->kh, w1 = w0 + a->kw;
    h1 = h1 < a->H + a->ph ? h1 : a->H + a->ph;
    w1 = w1 < a->W + a->pw ? w1 : a->W + a->pw;
    int64_t pool = (h1 - h0) * (w1 - w0);
    *hs = h0 > 0 ? h0 : 0;
    *ws = w0 > 0 ? w0 : 0;
    *he = h1 < a->H ? h1 : a->H;
    *we = w1 < a->W ? w1 : a->W;
    *div = divisor ? divisor
                   : include_pad ? pool : (*he - *hs) * (*we - *ws);
    return *hs < *he && *ws < *we;
}

#define AVGPOOL_DEF(NAME, T, ACC)                                         \
    static void                                                           \
    NAME(T *out, const T *x, const dt_nnc_pool *a, bool inc, int64_t dv)  \
    {                                                                     \
        for (int64_t pl = 0; pl < a->P; pl++) {                           \
            const T *in = x + pl * a->H * a->W;                           \
            for (int64_t oh = 0; oh < a->OH; oh++) {                      \
                for (int64_t ow = 0; ow < a->OW; ow++) {                  \
                    int64_t hs, he, ws, we, div;                          \
                    if (!avg_window(&hs, &he, &ws, &we, &div, a, oh, ow,  \
                                    inc, dv)) {                           \
                        *out++ = 0;                                       \
                        continue;                                         \
                    }                                                     \
                    ACC sum = 0;                                          \
                    for (int64_t ih = hs; ih < he; ih++) {                \
                        for (int64_t iw = ws; iw < we; iw++) {            \
                            sum += (ACC)in[ih * a->W + iw];               \
                        }                                                 \
                    }                                                     \
                    *out++ = (T)(sum / (ACC)div);                         \
                }                                                         \
            }                                                             \
        }                                                                 \
    }

AVGPOOL_DEF(avgpool_f32, float, double)
AVGPOOL_DEF(avgpool_f64, double, double)
AVGPOOL_DEF(avgpool_i64, int64_t, int64_t)

dt_status
dt_avg_pool2d_forward(dt_tensor **out, const dt_tensor *x, const int64_t *k,
                      const int64_t *s, const int64_t *p, bool ceil_mode,
                      bool count_include_pad, int64_t divisor)
{
    static const int64_t one[2] = {1, 1};
    dt_nnc_pool a;
    dt_dtype cdt = DT_FLOAT32;
    DT_TRY(pool_setup(&a, x->shape, x->ndim, k, s, p, one, ceil_mode,
                      "avg_pool2d"));
    if (x->dtype == DT_BOOL || x->dtype == DT_UINT8 ||
        x->dtype == DT_INT32) {
        return dt_fail(DT_ERR_NOTIMPL, "avg_pool2d: not implemented for "
                       "'%s'", dt_dtype_name(x->dtype));
    }
    DT_TRY(dt_nnc_compute_dtype(&cdt, x->dtype, "avg_pool2d"));
    dt_tensor *xc = NULL, *res = NULL;
    dt_status st = dt_nnc_prep(&xc, x, cdt);
    if (st == DT_OK) {
        st = dt_nnc_pool_output(&res, x->shape, x->ndim, a.OH, a.OW, cdt);
    }
    if (st == DT_OK) {
        void *o = dt_tensor_data(res), *xi = dt_tensor_data(xc);
        if (cdt == DT_FLOAT32) {
            avgpool_f32(o, xi, &a, count_include_pad, divisor);
        } else if (cdt == DT_FLOAT64) {
            avgpool_f64(o, xi, &a, count_include_pad, divisor);
        } else {
            avgpool_i64(o, xi, &a, count_include_pad, divisor);
        }
        st = dt_nnc_deliver(out, res, x->dtype, "avg_pool2d");
        res = NULL;
    }
    dt_tensor_release(xc);
    dt_tensor_release(res);
    return st;
}

#define AVGPOOL_BACK_DEF(NAME, T)                                         \
    static void                                                           \
    NAME(T *gx, const T *g, const dt_nnc_pool *a, bool inc, int64_t dv)   \
    {                                                                     \
        for (int64_t pl = 0; pl < a->P; pl++) {                           \
            T *o = gx + pl * a->H * a->W;                                 \
            for (int64_t oh = 0; oh < a->OH; oh++) {                      \
                for (int64_t ow = 0; ow < a->OW; ow++) {                  \
                    int64_t hs, he, ws, we, div;                          \
                    T v = *g++;                                           \
                    if (!avg_window(&hs, &he, &ws, &we, &div, a, oh, ow,  \
                                    inc, dv)) {                           \
                        continue;                                         \
                    }                                                     \
                    v /= (T)div;                                          \
                    for (int64_t ih = hs; ih < he; ih++) {                \
                        for (int64_t iw = ws; iw < we; iw++) {            \
                            o[ih * a->W + iw] += v;                       \
                        }                                                 \
                    }                                                     \
                }                                                         \
            }                                                             \
        }                                                                 \
    }

AVGPOOL_BACK_DEF(avgpool_back_f32, float)
AVGPOOL_BACK_DEF(avgpool_back_f64, double)

/* iargs: kernel, stride, padding (pairs), ceil_mode, count_include_pad,
 * divisor. */
static dt_status
dt_avg_pool2d_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    static const int64_t one[2] = {1, 1};
    const dt_input_meta *im = &n->in_meta[0];
    const int64_t *ia = n->iargs;
    dt_nnc_pool a;
    dt_dtype cdt = DT_FLOAT32;
    DT_TRY(pool_setup(&a, im->shape, im->ndim, ia, ia + 2, ia + 4, one,
                      ia[6] != 0, "avg_pool2d"));
    DT_TRY(dt_nnc_compute_dtype(&cdt, im->dtype, "avg_pool2d"));
    dt_tensor *gc = NULL;
    dt_status s = dt_nnc_prep(&gc, go[0], cdt);
    if (s == DT_OK) {
        s = dt_tensor_zeros(&gi[0], im->shape, im->ndim, cdt, DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        bool inc = ia[7] != 0;
        int64_t dv = ia[8];
        if (cdt == DT_FLOAT32) {
            avgpool_back_f32(dt_tensor_data(gi[0]), dt_tensor_data(gc), &a,
                             inc, dv);
        } else {
            avgpool_back_f64(dt_tensor_data(gi[0]), dt_tensor_data(gc), &a,
                             inc, dv);
        }
    }
    dt_tensor_release(gc);
    return s;
}

dt_status
dt_avg_pool2d(dt_tensor **out, const dt_tensor *x, const int64_t *k,
              const int64_t *s, const int64_t *p, bool ceil_mode,
              bool count_include_pad, int64_t divisor)
{
    DT_TRY(dt_avg_pool2d_forward(out, x, k, s, p, ceil_mode,
                                 count_include_pad, divisor));
    dt_node *node = NULL;
    DT_TRY(dt_nnc_record(out, &node, "AvgPool2DBackward0",
                         dt_avg_pool2d_backward, &x, 1, NULL, 0));
    if (node) {
        int64_t args[9] = {k[0], k[1], s[0], s[1], p[0], p[1], ceil_mode,
                           count_include_pad, divisor};
        memcpy(node->iargs, args, sizeof args);
        node->num_iargs = 9;
    }
    return DT_OK;
}
