/* nn_avgpool.c: avg_pool2d forward and backward on (N, C, H, W) or
 * unbatched (C, H, W) input, with PyTorch's window clipping and divisor
 * rules (count_include_pad, divisor_override). Kernels run in float32,
 * float64 or int64 (integer division truncates, as in PyTorch); the
 * backward spreads each output gradient over its window.
 */
#include "nn.h"

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
    DT_TRY(dt_nnc_pool_setup(&a, x->shape, x->ndim, k, s, p, one, ceil_mode,
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
    DT_TRY(dt_nnc_pool_setup(&a, im->shape, im->ndim, ia, ia + 2, ia + 4,
                             one, ia[6] != 0, "avg_pool2d"));
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
