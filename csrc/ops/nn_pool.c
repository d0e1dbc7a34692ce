/* nn_pool.c: the pooling checks and output sizes the 2-D pools share,
 * and max_pool2d (with indices), forward and backward, on (N, C, H, W) or
 * unbatched (C, H, W) input; every (n, c) plane is pooled on its own.
 * avg_pool2d is in nn_avgpool.c, adaptive_avg_pool2d in nn_adaptive.c.
 *
 * Output sizes, window clipping and NaN propagation follow PyTorch's CPU
 * kernels exactly; the kernels run in the compute dtype (float32,
 * float64, int64). Backward sends each output gradient to its argmax
 * (the saved indices).
 */
#include <inttypes.h>
#include <stdio.h>

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

dt_status
dt_nnc_pool_setup(dt_nnc_pool *a, const int64_t *shape, int ndim,
                  const int64_t *k, const int64_t *s, const int64_t *p,
                  const int64_t *d, bool ceil_mode, const char *op)
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

/* 2x2, stride 2, no padding or dilation (the common case), one output
 * row: branch-free, so it vectorises. The window position of the max
 * (0..3, NaN winning, ties to the first) goes to code[], and the flat
 * indices are made from it in a second simple loop. */
#define CHUNK2 256

DT_NNC_CLONES static void
maxpool2x2_row(float *restrict out, int64_t *restrict ind,
               const float *restrict r0, const float *restrict r1,
               int64_t OW, int64_t i0, int64_t W)
{
    int32_t code[CHUNK2];
    for (int64_t c0 = 0; c0 < OW; c0 += CHUNK2) {
        int64_t nc = OW - c0 < CHUNK2 ? OW - c0 : CHUNK2;
        const float *a = r0 + 2 * c0, *b = r1 + 2 * c0;
        for (int64_t k = 0; k < nc; k++) {
            float v0 = a[2 * k], v1 = a[2 * k + 1];
            float v2 = b[2 * k], v3 = b[2 * k + 1];
            float m = v0;
            int32_t c = 0;
            bool t = (v1 > m) | (v1 != v1);   /* v != v: NaN */
            m = t ? v1 : m;
            c = t ? 1 : c;
            t = (v2 > m) | (v2 != v2);
            m = t ? v2 : m;
            c = t ? 2 : c;
            t = (v3 > m) | (v3 != v3);
            m = t ? v3 : m;
            c = t ? 3 : c;
            out[c0 + k] = m;
            code[k] = c;
        }
        for (int64_t k = 0; k < nc; k++) {
            int64_t c = code[k];
            ind[c0 + k] = i0 + 2 * (c0 + k) + (c & 1) + (-(c >> 1) & W);
        }
    }
}

static void
maxpool2x2_f32(float *out, int64_t *ind, const float *x,
               const dt_nnc_pool *a)
{
    int64_t W = a->W;
    for (int64_t pl = 0; pl < a->P; pl++) {
        const float *in = x + pl * a->H * W;
        for (int64_t oh = 0; oh < a->OH; oh++) {
            const float *r0 = in + 2 * oh * W;
            maxpool2x2_row(out, ind, r0, r0 + W, a->OW, 2 * oh * W, W);
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
    DT_TRY(dt_nnc_pool_setup(&a, x->shape, x->ndim, k, s, p, d, ceil_mode,
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

/* Windows that tile the input without overlap (kernel == stride, no
 * padding or dilation): every input cell is written once, the argmax
 * with its gradient and the rest with 0, so no zero-fill pass first. */
#define MAXPOOL_TILED_BACK_DEF(NAME, T)                                   \
    static void                                                           \
    NAME(T *gx, const T *g, const int64_t *ind, const dt_nnc_pool *a)     \
    {                                                                     \
        int64_t W = a->W, kh = a->kh, kw = a->kw, L = a->OH * a->OW;      \
        for (int64_t pl = 0; pl < a->P; pl++) {                           \
            T *o = gx + pl * a->H * W;                                    \
            const T *gp = g + pl * L;                                     \
            const int64_t *ip = ind + pl * L;                             \
            for (int64_t oh = 0; oh < a->OH; oh++) {                      \
                for (int64_t r = 0; r < kh; r++) {                        \
                    T *row = o + (oh * kh + r) * W;                       \
                    for (int64_t c = a->OW * kw; c < W; c++) {            \
                        row[c] = 0;                                       \
                    }                                                     \
                }                                                         \
                for (int64_t ow = 0; ow < a->OW; ow++) {                  \
                    int64_t best = ip[oh * a->OW + ow];                   \
                    T v = gp[oh * a->OW + ow];                            \
                    for (int64_t r = 0; r < kh; r++) {                    \
                        int64_t pos = (oh * kh + r) * W + ow * kw;        \
                        for (int64_t c = 0; c < kw; c++, pos++) {         \
                            o[pos] = pos == best ? v : (T)0;              \
                        }                                                 \
                    }                                                     \
                }                                                         \
            }                                                             \
            memset(o + a->OH * kh * W, 0,                                 \
                   (size_t)((a->H - a->OH * kh) * W) * sizeof(T));        \
        }                                                                 \
    }

#define MAXPOOL_BACK_DEF(NAME, T)                                         \
    static void                                                           \
    NAME(T *gx, const T *g, const int64_t *ind, const dt_nnc_pool *a)     \
    {                                                                     \
        int64_t HW = a->H * a->W, L = a->OH * a->OW;                      \
        memset(gx, 0, (size_t)(a->P * HW) * sizeof(T));                   \
        for (int64_t pl = 0; pl < a->P; pl++) {                           \
            for (int64_t i = 0; i < L; i++) {                             \
                gx[pl * HW + ind[pl * L + i]] += g[pl * L + i];           \
            }                                                             \
        }                                                                 \
    }

/* The 2x2 case of the above, one row pair: branch-free selects. */
DT_NNC_CLONES static void
maxpool2x2_back_row(float *restrict r0, float *restrict r1,
                    const float *restrict g, const int64_t *restrict ind,
                    int64_t OW, int64_t i0, int64_t W)
{
    for (int64_t ow = 0; ow < OW; ow++) {
        int64_t d = ind[ow] - (i0 + 2 * ow);
        float v = g[ow];
        r0[2 * ow] = d == 0 ? v : 0.0f;
        r0[2 * ow + 1] = d == 1 ? v : 0.0f;
        r1[2 * ow] = d == W ? v : 0.0f;
        r1[2 * ow + 1] = d == W + 1 ? v : 0.0f;
    }
}

static void
maxpool2x2_back_f32(float *gx, const float *g, const int64_t *ind,
                    const dt_nnc_pool *a)
{
    int64_t W = a->W, L = a->OH * a->OW;
    for (int64_t pl = 0; pl < a->P; pl++) {
        float *o = gx + pl * a->H * W;
        for (int64_t oh = 0; oh < a->OH; oh++) {
            float *r0 = o + 2 * oh * W;
            maxpool2x2_back_row(r0, r0 + W, g + pl * L + oh * a->OW,
                                ind + pl * L + oh * a->OW, a->OW,
                                2 * oh * W, W);
            for (int64_t c = 2 * a->OW; c < W; c++) {
                r0[c] = r0[W + c] = 0.0f;
            }
        }
        memset(o + 2 * a->OH * W, 0,
               (size_t)((a->H - 2 * a->OH) * W) * sizeof(float));
    }
}

MAXPOOL_TILED_BACK_DEF(maxpool_tiled_back_f32, float)
MAXPOOL_TILED_BACK_DEF(maxpool_tiled_back_f64, double)
MAXPOOL_BACK_DEF(maxpool_back_f32, float)
MAXPOOL_BACK_DEF(maxpool_back_f64, double)

/* saved: indices; iargs: kernel, stride, padding, dilation (pairs). */
static dt_status
dt_max_pool2d_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *ind, *gc = NULL, *ic = NULL;
    DT_TRY(dt_node_saved(&ind, n, 0));
    const dt_input_meta *im = &n->in_meta[0];
    const int64_t *ia = n->iargs;
    dt_nnc_pool a;
    dt_dtype cdt = DT_FLOAT32;
    DT_TRY(dt_nnc_pool_planes(&a, im->shape, im->ndim, "max_pool2d"));
    DT_TRY(dt_nnc_compute_dtype(&cdt, im->dtype, "max_pool2d"));
    a.OH = ind->shape[ind->ndim - 2];
    a.OW = ind->shape[ind->ndim - 1];
    a.kh = ia[0];
    a.kw = ia[1];
    bool tiled = ia[0] == ia[2] && ia[1] == ia[3] && ia[4] == 0 &&
                 ia[5] == 0 && ia[6] == 1 && ia[7] == 1 &&
                 a.OH * a.kh <= a.H && a.OW * a.kw <= a.W;
    dt_status s = dt_nnc_prep(&gc, go[0], cdt);
    if (s == DT_OK) {
        s = dt_contiguous(&ic, ind);
    }
    if (s == DT_OK) {
        s = dt_tensor_empty(&gi[0], im->shape, im->ndim, cdt, DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        void *gx = dt_tensor_data(gi[0]);
        const void *g = dt_tensor_data(gc);
        const int64_t *ip = dt_tensor_data(ic);
        if (cdt == DT_FLOAT32 && tiled && a.kh == 2 && a.kw == 2) {
            maxpool2x2_back_f32(gx, g, ip, &a);
        } else if (cdt == DT_FLOAT32) {
            (tiled ? maxpool_tiled_back_f32 : maxpool_back_f32)(gx, g, ip,
                                                                &a);
        } else {
            (tiled ? maxpool_tiled_back_f64 : maxpool_back_f64)(gx, g, ip,
                                                                &a);
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
    dt_node *node = NULL;
    DT_TRY(dt_nnc_record(out, &node, "MaxPool2DWithIndicesBackward0",
                         dt_max_pool2d_backward, &x, 1, save, 1));
    if (node) {
        int64_t args[8] = {k[0], k[1], s[0], s[1], p[0], p[1], d[0], d[1]};
        memcpy(node->iargs, args, sizeof args);
        node->num_iargs = 8;
    }
    return DT_OK;
}
