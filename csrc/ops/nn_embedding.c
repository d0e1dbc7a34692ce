/* nn_embedding.c: embedding (a row gather) and its backward (rows of the
 * incoming gradient summed into a zero weight gradient; repeated indices
 * accumulate, and the padding_idx row gets none).
 */
#include <inttypes.h>

#include "nn.h"

static dt_status
check_embedding(const dt_tensor *idx, const dt_tensor *w)
{
    if (idx->dtype != DT_INT64 && idx->dtype != DT_INT32) {
        return dt_fail(DT_ERR_RUNTIME, "embedding: Expected tensor for "
                       "argument #1 'indices' to have one of the following "
                       "scalar types: Long, Int; but got %s instead",
                       dt_dtype_name(idx->dtype));
    }
    if (w->ndim != 2) {
        return dt_fail(DT_ERR_RUNTIME, "embedding: 'weight' must be 2-D");
    }
    if (idx->ndim + 1 > DT_MAX_DIMS) {
        return dt_fail(DT_ERR_VALUE, "embedding: at most %d dims",
                       DT_MAX_DIMS);
    }
    return dt_check_same_device(idx, w, "embedding");
}

/* The indices as contiguous int64, each checked against [0, V). */
static dt_status
checked_indices(dt_tensor **out, const dt_tensor *idx, int64_t V)
{
    DT_TRY(dt_nnc_prep(out, idx, DT_INT64));
    const int64_t *ip = dt_tensor_data(*out);
    int64_t n = dt_tensor_numel(*out);
    bool bad = false;
    for (int64_t i = 0; i < n; i++) {
        bad |= (uint64_t)ip[i] >= (uint64_t)V;
    }
    if (bad) {
        dt_tensor_release(*out);
        *out = NULL;
        return dt_fail(DT_ERR_INDEX, "embedding: index out of range in "
                       "self");
    }
    return DT_OK;
}

dt_status
dt_embedding_forward(dt_tensor **out, const dt_tensor *idx,
                     const dt_tensor *w)
{
    DT_TRY(check_embedding(idx, w));
    int64_t V = w->shape[0], D = w->shape[1], shape[DT_MAX_DIMS];
    memcpy(shape, idx->shape, (size_t)idx->ndim * sizeof *shape);
    shape[idx->ndim] = D;
    dt_tensor *ic = NULL, *wc = NULL, *res = NULL;
    dt_status s = checked_indices(&ic, idx, V);
    if (s == DT_OK) {
        s = dt_contiguous(&wc, w);
    }
    if (s == DT_OK) {
        s = dt_tensor_empty(&res, shape, idx->ndim + 1, w->dtype,
                            DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        size_t row = (size_t)D * dt_dtype_size(w->dtype);
        const int64_t *ip = dt_tensor_data(ic);
        const char *wp = dt_tensor_data(wc);
        char *o = dt_tensor_data(res);
        int64_t n = dt_tensor_numel(ic);
        for (int64_t i = 0; i < n && row; i++) {
            memcpy(o + (size_t)i * row, wp + (size_t)ip[i] * row, row);
        }
        s = dt_nnc_deliver(out, res, w->dtype, "embedding");
        res = NULL;
    }
    dt_tensor_release(ic);
    dt_tensor_release(wc);
    dt_tensor_release(res);
    return s;
}

#define EMBED_BACK(T)                                                     \
    do {                                                                  \
        const T *g = dt_tensor_data(gc);                                  \
        T *o = dt_tensor_data(gi[0]);                                     \
        for (int64_t i = 0; i < n; i++) {                                 \
            if (ip[i] == pad) {                                           \
                continue;                                                 \
            }                                                             \
            T *dst = o + ip[i] * D;                                       \
            const T *src = g + i * D;                                     \
            for (int64_t j = 0; j < D; j++) {                             \
                dst[j] += src[j];                                         \
            }                                                             \
        }                                                                 \
    } while (0)

/* saved: indices; iargs[0]: padding_idx (-1: none). */
static dt_status
dt_embedding_backward(dt_node *n_, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *idx, *ic = NULL, *gc = NULL;
    DT_TRY(dt_node_saved(&idx, n_, 0));
    const dt_input_meta *im = &n_->in_meta[0];
    dt_dtype cdt = dt_compute_dtype(im->dtype);
    int64_t D = im->shape[1], pad = n_->iargs[0];
    dt_status s = dt_nnc_prep(&ic, idx, DT_INT64);
    if (s == DT_OK) {
        s = dt_nnc_prep(&gc, go[0], cdt);
    }
    if (s == DT_OK) {
        s = dt_tensor_zeros(&gi[0], im->shape, 2, cdt, DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        const int64_t *ip = dt_tensor_data(ic);
        int64_t n = dt_tensor_numel(ic);
        if (cdt == DT_FLOAT32) {
            EMBED_BACK(float);
        } else {
            EMBED_BACK(double);
        }
    }
    dt_tensor_release(ic);
    dt_tensor_release(gc);
    return s;
}

dt_status
dt_embedding(dt_tensor **out, const dt_tensor *idx, const dt_tensor *w,
             int64_t padding_idx)
{
    if (w->ndim == 2 && (padding_idx < -1 || padding_idx >= w->shape[0])) {
        return dt_fail(DT_ERR_VALUE, "embedding: Padding_idx must be within "
                       "num_embeddings");
    }
    DT_TRY(dt_embedding_forward(out, idx, w));
    dt_node *node = NULL;
    DT_TRY(dt_nnc_record(out, &node, "EmbeddingBackward0",
                         dt_embedding_backward, &w, 1, &idx, 1));
    if (node) {
        node->iargs[0] = padding_idx;
        node->num_iargs = 1;
    }
    return DT_OK;
}
