/* nn_adaptive.c: adaptive_avg_pool2d forward and backward on (N, C, H, W)
 * or (C, H, W) floating input. Output cell (oh, ow) averages input rows
 * [start(oh), end(oh)) and columns likewise, with PyTorch's integer
 * formulas for the window bounds, so neighbouring windows may overlap.
 */
#include <inttypes.h>

#include "nn.h"

/* PyTorch's start_index / end_index: a = output index, b = output size,
 * c = input size. */
static inline int64_t
win_start(int64_t a, int64_t b, int64_t c)
{
    return (a / b) * c + ((a % b) * c) / b;
}

static inline int64_t
win_end(int64_t a, int64_t b, int64_t c)
{
    return 1 + ((a + 1) * c - 1) / b;
}

static dt_status
adaptive_setup(dt_nnc_pool *a, const int64_t *shape, int ndim,
               const int64_t *size)
{
    char s[160];
    dt_nnc_size_list(s, sizeof s, shape, ndim);
    if (ndim != 3 && ndim != 4) {
        return dt_fail(DT_ERR_RUNTIME, "adaptive_avg_pool2d(): Expected 3D "
                       "or 4D tensor, but got %s", s);
    }
    for (int i = ndim - 2; i < ndim; i++) {
        if (shape[i] <= 0) {
            return dt_fail(DT_ERR_RUNTIME, "adaptive_avg_pool2d(): Expected "
                           "input to have non-zero size for non-batch "
                           "dimensions, but input has sizes %s with "
                           "dimension %d being empty", s, i);
        }
    }
    if (size[0] < 0 || size[1] < 0) {
        return dt_fail(DT_ERR_RUNTIME, "adaptive_avg_pool2d: elements of "
                       "output_size must be greater than or equal to 0 but "
                       "received {%" PRId64 ", %" PRId64 "}", size[0],
                       size[1]);
    }
    memset(a, 0, sizeof *a);
    a->C = shape[ndim - 3];
    a->P = a->C * (ndim == 4 ? shape[0] : 1);
    a->H = shape[ndim - 2];
    a->W = shape[ndim - 1];
    a->OH = size[0];
    a->OW = size[1];
    return DT_OK;
}

/* The sum of rows [hs, he) x columns [ws, we) of a W-wide plane: whole
 * rows are one contiguous run; wide windows sum row runs with the
 * vectorised helper; narrow ones (under a vector) add directly. */
#define WINDOW_SUM_DEF(T, SUM)                                            \
    static double                                                         \
    window_sum_##T(const T *in, int64_t W, int64_t hs, int64_t he,        \
                   int64_t ws, int64_t we)                                \
    {                                                                     \
        if (ws == 0 && we == W) {                                         \
            return SUM(in + hs * W, (he - hs) * W);                       \
        }                                                                 \
        double sum = 0.0;                                                 \
        for (int64_t ih = hs; ih < he; ih++) {                            \
            if (we - ws >= 16) {                                          \
                sum += SUM(in + ih * W + ws, we - ws);                    \
                continue;                                                 \
            }                                                             \
            for (int64_t iw = ws; iw < we; iw++) {                        \
                sum += in[ih * W + iw];                                   \
            }                                                             \
        }                                                                 \
        return sum;                                                       \
    }

WINDOW_SUM_DEF(float, dt_nnc_sum_f32)
WINDOW_SUM_DEF(double, dt_nnc_sum_f64)

#define ADAPTIVE_DEF(NAME, T)                                             \
    static void                                                           \
    NAME(T *out, const T *x, const dt_nnc_pool *a)                        \
    {                                                                     \
        for (int64_t pl = 0; pl < a->P; pl++) {                           \
            const T *in = x + pl * a->H * a->W;                           \
            for (int64_t oh = 0; oh < a->OH; oh++) {                      \
                int64_t hs = win_start(oh, a->OH, a->H);                  \
                int64_t he = win_end(oh, a->OH, a->H);                    \
                for (int64_t ow = 0; ow < a->OW; ow++) {                  \
                    int64_t ws = win_start(ow, a->OW, a->W);              \
                    int64_t we = win_end(ow, a->OW, a->W);                \
                    double sum = window_sum_##T(in, a->W, hs, he, ws, we); \
                    *out++ = (T)(sum / (double)((he - hs) * (we - ws)));  \
                }                                                         \
            }                                                             \
        }                                                                 \
    }

#define ADAPTIVE_BACK_DEF(NAME, T)                                        \
    static void                                                           \
    NAME(T *gx, const T *g, const dt_nnc_pool *a)                         \
    {                                                                     \
        for (int64_t pl = 0; pl < a->P; pl++) {                           \
            T *o = gx + pl * a->H * a->W;                                 \
            for (int64_t oh = 0; oh < a->OH; oh++) {                      \
                int64_t hs = win_start(oh, a->OH, a->H);                  \
                int64_t he = win_end(oh, a->OH, a->H);                    \
                for (int64_t ow = 0; ow < a->OW; ow++) {                  \
                    int64_t ws = win_start(ow, a->OW, a->W);              \
                    int64_t we = win_end(ow, a->OW, a->W);                \
                    T v = *g++ / (T)((he - hs) * (we - ws));              \
                    for (int64_t ih = hs; ih < he; ih++) {                \
                        for (int64_t iw = ws; iw < we; iw++) {            \
                            o[ih * a->W + iw] += v;                       \
                        }                                                 \
                    }                                                     \
                }                                                         \
            }                                                             \
        }                                                                 \
    }

ADAPTIVE_DEF(adaptive_f32, float)
ADAPTIVE_DEF(adaptive_f64, double)
ADAPTIVE_BACK_DEF(adaptive_back_f32, float)
ADAPTIVE_BACK_DEF(adaptive_back_f64, double)

dt_status
dt_adaptive_avg_pool2d_forward(dt_tensor **out, const dt_tensor *x,
                               const int64_t *size)
{
    dt_nnc_pool a;
    DT_TRY(adaptive_setup(&a, x->shape, x->ndim, size));
    if (!dt_dtype_is_floating(x->dtype)) {
        return dt_fail(DT_ERR_NOTIMPL, "adaptive_avg_pool2d: not "
                       "implemented for '%s'", dt_dtype_name(x->dtype));
    }
    dt_dtype cdt = dt_compute_dtype(x->dtype);
    dt_tensor *xc = NULL, *res = NULL;
    dt_status s = dt_nnc_prep(&xc, x, cdt);
    if (s == DT_OK) {
        s = dt_nnc_pool_output(&res, x->shape, x->ndim, a.OH, a.OW, cdt);
    }
    if (s == DT_OK) {
        if (cdt == DT_FLOAT32) {
            adaptive_f32(dt_tensor_data(res), dt_tensor_data(xc), &a);
        } else {
            adaptive_f64(dt_tensor_data(res), dt_tensor_data(xc), &a);
        }
        s = dt_nnc_deliver(out, res, x->dtype, "adaptive_avg_pool2d");
        res = NULL;
    }
    dt_tensor_release(xc);
    dt_tensor_release(res);
    return s;
}

/* iargs: the output size. */
static dt_status
dt_adaptive_avg_pool2d_backward(dt_node *n, dt_tensor **gi,
                                dt_tensor *const *go)
{
    const dt_input_meta *im = &n->in_meta[0];
    dt_nnc_pool a;
    DT_TRY(adaptive_setup(&a, im->shape, im->ndim, n->iargs));
    dt_dtype cdt = dt_compute_dtype(im->dtype);
    dt_tensor *gc = NULL;
    dt_status s = dt_nnc_prep(&gc, go[0], cdt);
    if (s == DT_OK) {
        s = dt_tensor_zeros(&gi[0], im->shape, im->ndim, cdt, DT_DEVICE_CPU);
    }
    if (s == DT_OK && cdt == DT_FLOAT32) {
        adaptive_back_f32(dt_tensor_data(gi[0]), dt_tensor_data(gc), &a);
    } else if (s == DT_OK) {
        adaptive_back_f64(dt_tensor_data(gi[0]), dt_tensor_data(gc), &a);
    }
    dt_tensor_release(gc);
    return s;
}

dt_status
dt_adaptive_avg_pool2d(dt_tensor **out, const dt_tensor *x,
                       const int64_t *size)
{
    DT_TRY(dt_adaptive_avg_pool2d_forward(out, x, size));
    dt_node *node = NULL;
    DT_TRY(dt_nnc_record(out, &node, "AdaptiveAvgPool2DBackward0",
                         dt_adaptive_avg_pool2d_backward, &x, 1, NULL, 0));
    if (node) {
        node->iargs[0] = size[0];
        node->iargs[1] = size[1];
        node->num_iargs = 2;
    }
    return DT_OK;
}
