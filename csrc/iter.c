/* iter.c: the strided N-d loop under every elementwise kernel, and the
 * output preparation that the op families share. */
#include <inttypes.h>

#include "dt_impl.h"

void
dt_iter_run(dt_tensor *const *ops, int nops, dt_loop_fn fn, void *ctx)
{
    /* strides in bytes, per operand; dims of size 1 dropped */
    int64_t shape[DT_MAX_DIMS], strides[DT_MAX_DIMS][DT_ITER_MAX_OPS];
    char *ptrs[DT_ITER_MAX_OPS];
    int ndim = 0;
    DT_ASSERT(nops >= 1 && nops <= DT_ITER_MAX_OPS);
    const dt_tensor *o = ops[0];
    if (dt_tensor_numel(o) == 0) {
        return;
    }
    for (int k = 0; k < nops; k++) {
        DT_ASSERT(ops[k]->ndim == o->ndim);
        ptrs[k] = dt_tensor_data(ops[k]);
    }
    for (int d = 0; d < o->ndim; d++) {
        if (o->shape[d] == 1) {
            continue;
        }
        int64_t step[DT_ITER_MAX_OPS];   /* this dim's byte strides */
        for (int k = 0; k < nops; k++) {
            step[k] = ops[k]->strides[d] *
                      (int64_t)dt_dtype_size(ops[k]->dtype);
        }
        /* Merge with the previous kept dim when every operand steps over
         * both as one: the merged dim takes this dim's strides. */
        bool merge = ndim > 0;
        for (int k = 0; k < nops && merge; k++) {
            merge = strides[ndim - 1][k] == step[k] * o->shape[d];
        }
        if (merge) {
            shape[ndim - 1] *= o->shape[d];
        } else {
            shape[ndim++] = o->shape[d];
        }
        memcpy(strides[ndim - 1], step, (size_t)nops * sizeof *step);
    }
    if (ndim == 0) {
        int64_t zero[DT_ITER_MAX_OPS] = {0};
        fn(ptrs, zero, 1, ctx);
        return;
    }
    /* Odometer over the outer dims; the last dim is the inner loop. */
    int64_t idx[DT_MAX_DIMS] = {0};
    int64_t inner = shape[ndim - 1];
    for (;;) {
        fn(ptrs, strides[ndim - 1], inner, ctx);
        int d = ndim - 2;
        for (; d >= 0; d--) {
            for (int k = 0; k < nops; k++) {
                ptrs[k] += strides[d][k];
            }
            if (++idx[d] < shape[d]) {
                break;
            }
            for (int k = 0; k < nops; k++) {
                ptrs[k] -= strides[d][k] * shape[d];
            }
            idx[d] = 0;
        }
        if (d < 0) {
            return;
        }
    }
}

dt_status
dt_expand_to(dt_tensor **out, const dt_tensor *t, const int64_t *shape,
             int ndim, const char *op)
{
    if (dt_expand(out, t, shape, ndim) == DT_OK) {
        return DT_OK;
    }
    char a[160], b[160];
    dt_shape_format(a, sizeof a, t->shape, t->ndim);
    dt_shape_format(b, sizeof b, shape, ndim);
    return dt_fail(DT_ERR_RUNTIME, "%s: shape %s cannot be broadcast to %s",
                   op, a, b);
}

dt_status
dt_prepare_out(dt_tensor **out, const int64_t *shape, int ndim,
               dt_dtype dtype, dt_device device, const char *op)
{
    if (!*out) {
        return dt_tensor_empty(out, shape, ndim, dtype, device);
    }
    const dt_tensor *o = *out;
    bool same = o->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) {
        same = o->shape[i] == shape[i];
    }
    if (!same) {
        char a[160], b[160];
        dt_shape_format(a, sizeof a, o->shape, o->ndim);
        dt_shape_format(b, sizeof b, shape, ndim);
        return dt_fail(DT_ERR_RUNTIME,
                       "%s: output with shape %s doesn't match the broadcast "
                       "shape %s", op, a, b);
    }
    if (!dt_can_cast(dtype, o->dtype)) {
        return dt_fail(DT_ERR_RUNTIME,
                       "%s: result type %s can't be cast to the desired "
                       "output type %s", op, dt_dtype_name(dtype),
                       dt_dtype_name(o->dtype));
    }
    if (!dt_device_equal(device, dt_tensor_device(o))) {
        return dt_fail(DT_ERR_RUNTIME, "%s: output is on a different device "
                       "than the inputs", op);
    }
    return DT_OK;
}
