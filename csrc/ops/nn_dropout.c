/* nn_dropout.c: training-mode dropout, out = x * mask / (1 - p).
 *
 * The mask is Bernoulli(1 - p) drawn from the default Philox generator
 * exactly as bernoulli_ draws it (element i reads word i % 4 of block
 * offset + i / 4 and keeps when its top 24 bits, read as [0, 1), fall
 * below 1 - p), so manual_seed makes dropout reproducible and
 * empty(shape).bernoulli_(1 - p) after the same seed gives the same mask.
 * One pass draws, masks and scales; the mask is kept as uint8 for the
 * backward (grad x = grad out * mask * scale).
 */
#include <math.h>

#include "../rng.h"
#include "nn.h"

#define BATCH DT_PHILOX_BATCH

/* keep = top 24 bits < thresh, with thresh = ceil((1 - p) * 2**24): the
 * integer form of bernoulli_'s  k * 2**-24 < 1 - p. */
#define DROPOUT_DEF(NAME, T)                                              \
    static void                                                           \
    NAME(T *out, uint8_t *mask, const T *x, int64_t n, uint64_t seed,     \
         uint64_t base, uint32_t thresh, T scale)                         \
    {                                                                     \
        uint32_t r[4][BATCH];                                             \
        for (int64_t i0 = 0; i0 < n; i0 += 4 * BATCH) {                   \
            uint64_t blk = base + (uint64_t)i0 / 4;                       \
            int64_t left = n - i0;                                        \
            if (left >= 4 * BATCH) {                                      \
                dt_philox_batch(r, seed, blk);                            \
                for (int j = 0; j < BATCH; j++) {                         \
                    for (int w = 0; w < 4; w++) {                         \
                        int64_t e = i0 + 4 * j + w;                       \
                        uint8_t keep = (r[w][j] >> 8) < thresh;           \
                        mask[e] = keep;                                   \
                        out[e] = x[e] * (keep ? scale : (T)0);            \
                    }                                                     \
                }                                                         \
                continue;                                                 \
            }                                                             \
            for (int64_t e = i0; e < n; e++) {                            \
                uint32_t one[4];                                          \
                dt_philox_block(one, seed, base + (uint64_t)e / 4);       \
                uint8_t keep = (one[e % 4] >> 8) < thresh;                \
                mask[e] = keep;                                           \
                out[e] = x[e] * (keep ? scale : (T)0);                    \
            }                                                             \
        }                                                                 \
    }

DROPOUT_DEF(dropout_f32, float)
DROPOUT_DEF(dropout_f64, double)

dt_status
dt_dropout_forward(dt_tensor **out, dt_tensor **mask, const dt_tensor *x,
                   double p)
{
    if (!(p >= 0.0 && p <= 1.0)) {
        return dt_fail(DT_ERR_VALUE, "dropout probability has to be between "
                       "0 and 1, but got %g", p);
    }
    if (!dt_dtype_is_floating(x->dtype)) {
        return dt_fail(DT_ERR_RUNTIME, "dropout: result type Float can't be "
                       "cast to the desired output type %s",
                       dt_dtype_name(x->dtype));
    }
    dt_dtype cdt = dt_compute_dtype(x->dtype);
    dt_tensor *xc = NULL, *res = NULL, *m = NULL;
    dt_status s = dt_nnc_prep(&xc, x, cdt);
    if (s == DT_OK) {
        s = dt_tensor_empty(&res, x->shape, x->ndim, cdt, DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        s = dt_tensor_empty(&m, x->shape, x->ndim, DT_UINT8, DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        int64_t n = dt_tensor_numel(x);
        dt_generator *g = dt_generator_default();
        uint64_t seed = g->seed;
        uint64_t base = dt_generator_reserve(g, ((uint64_t)n + 3) / 4);
        uint32_t thresh = (uint32_t)ceil((1.0 - p) * 16777216.0);
        double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
        if (cdt == DT_FLOAT32) {
            dropout_f32(dt_tensor_data(res), dt_tensor_data(m),
                        dt_tensor_data(xc), n, seed, base, thresh,
                        (float)scale);
        } else {
            dropout_f64(dt_tensor_data(res), dt_tensor_data(m),
                        dt_tensor_data(xc), n, seed, base, thresh, scale);
        }
        s = dt_nnc_deliver(out, res, x->dtype, "dropout");
        res = NULL;
    }
    if (s == DT_OK && mask) {
        *mask = m;
        m = NULL;
    }
    dt_tensor_release(xc);
    dt_tensor_release(res);
    dt_tensor_release(m);
    return s;
}

#define DROPOUT_BACK(T)                                                   \
    do {                                                                  \
        const T *g = dt_tensor_data(gc);                                  \
        T *o = dt_tensor_data(gi[0]), sc = (T)scale;                      \
        for (int64_t i = 0; i < nel; i++) {                               \
            o[i] = g[i] * (mp[i] ? sc : (T)0);                            \
        }                                                                 \
    } while (0)

/* saved: the mask; dargs[0]: the scale. */
static dt_status
dt_dropout_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *m, *gc = NULL;
    DT_TRY(dt_node_saved(&m, n, 0));
    dt_dtype cdt = dt_compute_dtype(n->in_meta[0].dtype);
    double scale = n->dargs[0];
    dt_status s = dt_nnc_prep(&gc, go[0], cdt);
    if (s == DT_OK) {
        s = dt_tensor_empty(&gi[0], m->shape, m->ndim, cdt, DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        const uint8_t *mp = dt_tensor_data(m);
        int64_t nel = dt_tensor_numel(m);
        if (cdt == DT_FLOAT32) {
            DROPOUT_BACK(float);
        } else {
            DROPOUT_BACK(double);
        }
    }
    dt_tensor_release(gc);
    return s;
}

dt_status
dt_dropout(dt_tensor **out, const dt_tensor *x, double p)
{
    dt_tensor *m = NULL;
    DT_TRY(dt_dropout_forward(out, &m, x, p));
    dt_node *node = NULL;
    const dt_tensor *save[1] = {m};
    dt_status s = dt_nnc_record(out, &node, "NativeDropoutBackward0",
                                dt_dropout_backward, &x, 1, save, 1);
    if (node) {
        node->dargs[0] = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
    }
    dt_tensor_release(m);
    return s;
}
