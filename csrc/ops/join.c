/* join.c: cat and stack (copies into slices of one output), and split,
 * chunk and unbind (views of the input along one dim). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "../dt_impl.h"
#include "index.h"

/* ---------------------------------------------------------------------- */
/* cat, stack                                                              */

/* PyTorch skips 1-D tensors of shape (0,) in cat: a legacy way of saying
 * "nothing yet" that predates 0-size dims of any shape. */
static bool
is_legacy_empty(const dt_tensor *t)
{
    return t->ndim == 1 && t->shape[0] == 0;
}

/* The output shape: ref's with `dim` summed over the non-skipped inputs,
 * whose other sizes must match ref's. */
static dt_status
cat_shape(int64_t *shape, dt_tensor *const *ts, int n, const dt_tensor *ref,
          int64_t dim)
{
    memcpy(shape, ref->shape, (size_t)ref->ndim * sizeof *shape);
    shape[dim] = 0;
    for (int i = 0; i < n; i++) {
        const dt_tensor *t = ts[i];
        if (is_legacy_empty(t)) {
            continue;
        }
        if (t->ndim != ref->ndim) {
            return dt_fail(DT_ERR_RUNTIME, "cat(): Tensors must have same "
                           "number of dimensions: got %d and %d (tensor "
                           "number %d in the list)", ref->ndim, t->ndim, i);
        }
        for (int d = 0; d < ref->ndim; d++) {
            if (d != dim && t->shape[d] != ref->shape[d]) {
                return dt_fail(DT_ERR_RUNTIME, "cat(): Sizes of tensors must "
                               "match except in dimension %" PRId64 ". "
                               "Expected size %" PRId64 " but got size %"
                               PRId64 " for tensor number %d in the list.",
                               dim, ref->shape[d], t->shape[d], i);
            }
        }
        shape[dim] += t->shape[dim];
    }
    return DT_OK;
}

/* Checks every input; finds the promoted dtype and the first input that
 * is not skipped (NULL if all are). */
static dt_status
cat_inputs(dt_dtype *dtype, const dt_tensor **ref, dt_tensor *const *ts,
           int n)
{
    if (n <= 0) {
        return dt_fail(DT_ERR_VALUE, "cat(): expected a non-empty list of "
                       "Tensors");
    }
    *dtype = ts[0]->dtype;
    *ref = NULL;
    for (int i = 0; i < n; i++) {
        if (ts[i]->ndim == 0) {
            return dt_fail(DT_ERR_RUNTIME, "cat(): zero-dimensional tensor "
                           "(at position %d) cannot be concatenated", i);
        }
        DT_TRY(dt_check_same_device(ts[0], ts[i], "cat"));
        /* skipped inputs still take part in type promotion, as in torch */
        *dtype = dt_promote_types(*dtype, ts[i]->dtype);
        if (!*ref && !is_legacy_empty(ts[i])) {
            *ref = ts[i];
        }
    }
    return DT_OK;
}

/* When out and every input are contiguous, of out's dtype and apart in
 * memory, copy slab by slab: for each outer index, each input's piece in
 * turn, so out is written once, front to back. */
static bool
cat_contiguous(dt_tensor *out, dt_tensor *const *ts, int n, int64_t dim)
{
    if (!dt_tensor_is_contiguous(out)) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (!is_legacy_empty(ts[i]) && (ts[i]->dtype != out->dtype ||
                                        !dt_tensor_is_contiguous(ts[i]) ||
                                        ts[i]->storage == out->storage)) {
            return false;
        }
    }
    int64_t outer = 1, inner = (int64_t)dt_dtype_size(out->dtype);
    for (int d = 0; d < out->ndim; d++) {
        outer *= d < dim ? out->shape[d] : 1;
        inner *= d > dim ? out->shape[d] : 1;
    }
    for (int i = 0; i < n && outer > 1; i++) {
        if (!is_legacy_empty(ts[i]) && ts[i]->shape[dim] * inner < 256) {
            return false;   /* many tiny memcpys: the strided copy wins */
        }
    }
    char *dst = dt_tensor_data(out);
    for (int64_t o = 0; o < outer; o++) {
        for (int i = 0; i < n; i++) {
            if (!is_legacy_empty(ts[i])) {
                size_t len = (size_t)(ts[i]->shape[dim] * inner);
                memcpy(dst, (char *)dt_tensor_data(ts[i]) + o * len, len);
                dst += len;
            }
        }
    }
    dt_tensor_bump_version(out);
    return true;
}

dt_status
dt_cat_forward(dt_tensor **out, dt_tensor *const *ts, int n, int64_t dim)
{
    int64_t shape[DT_MAX_DIMS];
    dt_dtype dtype = DT_BOOL;
    const dt_tensor *ref = NULL;
    DT_TRY(cat_inputs(&dtype, &ref, ts, n));
    dt_device device = dt_tensor_device(ts[0]);
    if (!ref) {
        int64_t zero = 0;
        return dt_prepare_out(out, &zero, 1, dtype, device, "cat");
    }
    DT_TRY(dt_wrap_dim(&dim, ref->ndim, "cat"));
    DT_TRY(cat_shape(shape, ts, n, ref, dim));
    DT_TRY(dt_prepare_out(out, shape, ref->ndim, dtype, device, "cat"));
    if (dt_tensor_numel(*out) == 0 || cat_contiguous(*out, ts, n, dim)) {
        return DT_OK;
    }
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        if (is_legacy_empty(ts[i])) {
            continue;
        }
        dt_tensor *slot = NULL;
        int64_t len = ts[i]->shape[dim];
        DT_TRY(dt_slice(&slot, *out, dim, at, at + len, 1));
        dt_status s = dt_copy_(slot, ts[i]);   /* casts to the out dtype */
        dt_tensor_release(slot);
        DT_TRY(s);
        at += len;
    }
    return DT_OK;
}

static dt_status
check_stack_shapes(dt_tensor *const *ts, int n)
{
    if (n <= 0) {
        return dt_fail(DT_ERR_RUNTIME, "stack expects a non-empty "
                       "TensorList");
    }
    for (int i = 1; i < n; i++) {
        bool same = ts[i]->ndim == ts[0]->ndim;
        for (int d = 0; same && d < ts[0]->ndim; d++) {
            same = ts[i]->shape[d] == ts[0]->shape[d];
        }
        if (!same) {
            char a[160], b[160];
            dt_shape_format(a, sizeof a, ts[0]->shape, ts[0]->ndim);
            dt_shape_format(b, sizeof b, ts[i]->shape, ts[i]->ndim);
            return dt_fail(DT_ERR_RUNTIME, "stack expects each tensor to be "
                           "equal size, but got %s at entry 0 and %s at "
                           "entry %d", a, b, i);
        }
    }
    return DT_OK;
}

dt_status
dt_stack_forward(dt_tensor **out, dt_tensor *const *ts, int n, int64_t dim)
{
    DT_TRY(check_stack_shapes(ts, n));
    DT_TRY(dt_wrap_dim(&dim, ts[0]->ndim + 1, "stack"));
    dt_tensor **views = calloc((size_t)n, sizeof *views);
    if (!views) {
        return dt_fail(DT_ERR_NOMEM, "stack: out of memory");
    }
    dt_status s = DT_OK;
    for (int i = 0; i < n && s == DT_OK; i++) {
        s = dt_unsqueeze(&views[i], ts[i], dim);
    }
    if (s == DT_OK) {
        s = dt_cat_forward(out, views, n, dim);
    }
    for (int i = 0; i < n; i++) {
        dt_tensor_release(views[i]);
    }
    free(views);
    return s;
}

/* ---------------------------------------------------------------------- */
/* split, chunk, unbind                                                    */

static dt_status
check_splittable(const dt_tensor *t, int64_t *dim, const char *op)
{
    if (t->ndim == 0) {
        return dt_fail(DT_ERR_RUNTIME, "%s expects at least a 1-dimensional "
                       "tensor", op);
    }
    return dt_wrap_dim(dim, t->ndim, op);
}

dt_status
dt_split_count(int64_t *n, const dt_tensor *t, int64_t split_size,
               int64_t *dim)
{
    DT_TRY(check_splittable(t, dim, "split"));
    int64_t size = t->shape[*dim];
    if (split_size < 0) {
        return dt_fail(DT_ERR_RUNTIME, "split expects split_size be "
                       "non-negative, but got split_size=%" PRId64,
                       split_size);
    }
    if (split_size == 0 && size != 0) {
        return dt_fail(DT_ERR_RUNTIME, "split_size can only be 0 if "
                       "dimension size is 0, but got dimension size of %"
                       PRId64, size);
    }
    *n = split_size ? (size + split_size - 1) / split_size : 1;
    *n = *n ? *n : 1;   /* an empty dim still gives one (empty) piece */
    return DT_OK;
}

dt_status
dt_chunk_count(int64_t *n, int64_t *split_size, const dt_tensor *t,
               int64_t chunks, int64_t *dim)
{
    DT_TRY(check_splittable(t, dim, "chunk"));
    if (chunks <= 0) {
        return dt_fail(DT_ERR_RUNTIME, "chunk expects `chunks` to be greater "
                       "than 0, got: %" PRId64, chunks);
    }
    int64_t size = t->shape[*dim];
    *split_size = (size + chunks - 1) / chunks;
    if (*split_size == 0 && size == 0) {
        *n = chunks;   /* PyTorch gives `chunks` empty pieces */
        return DT_OK;
    }
    return dt_split_count(n, t, *split_size, dim);
}

void
dt_split_even_sizes(int64_t *sizes, int64_t n, int64_t dim_size,
                    int64_t split_size)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t left = dim_size - i * split_size;
        sizes[i] = left < split_size ? (left > 0 ? left : 0) : split_size;
    }
}

/* "[1, 2, 3]" (cut short with "..." past the buffer) */
static void
format_sizes(char *buf, size_t cap, const int64_t *sizes, int64_t n)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int64_t i = 0; i < n && used + 24 < cap; i++) {
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64,
                                 i ? ", " : "", sizes[i]);
    }
    snprintf(buf + used, cap - used, "%s", used + 24 < cap ? "]" : "...]");
}

static dt_status
check_split_sizes(const int64_t *sizes, int64_t n, int64_t size, int64_t dim)
{
    int64_t sum = 0;
    bool negative = false;
    for (int64_t i = 0; i < n; i++) {
        negative |= sizes[i] < 0;
        sum += sizes[i];
    }
    if (!negative && sum == size) {
        return DT_OK;
    }
    char buf[256];
    format_sizes(buf, sizeof buf, sizes, n);
    if (negative) {
        return dt_fail(DT_ERR_RUNTIME, "split_with_sizes expects split_sizes "
                       "have only non-negative entries, but got "
                       "split_sizes=%s", buf);
    }
    return dt_fail(DT_ERR_RUNTIME, "split_with_sizes expects split_sizes to "
                   "sum exactly to %" PRId64 " (input tensor's size at "
                   "dimension %" PRId64 "), but got split_sizes=%s", size,
                   dim, buf);
}

dt_status
dt_split_forward(dt_tensor **outs, const dt_tensor *t, const int64_t *sizes,
                 int64_t n, int64_t dim)
{
    DT_TRY(check_splittable(t, &dim, "split"));
    DT_TRY(check_split_sizes(sizes, n, t->shape[dim], dim));
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        outs[i] = NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        dt_status s = dt_slice(&outs[i], t, dim, at, at + sizes[i], 1);
        if (s != DT_OK) {
            for (int64_t j = 0; j < i; j++) {
                dt_tensor_release(outs[j]);
                outs[j] = NULL;
            }
            return s;
        }
        at += sizes[i];
    }
    return DT_OK;
}

dt_status
dt_unbind_forward(dt_tensor **outs, const dt_tensor *t, int64_t dim)
{
    if (t->ndim == 0) {
        return dt_fail(DT_ERR_INDEX, "unbind: Dimension specified as %"
                       PRId64 " but tensor has no dimensions", dim);
    }
    DT_TRY(dt_wrap_dim(&dim, t->ndim, "unbind"));
    for (int64_t i = 0; i < t->shape[dim]; i++) {
        dt_status s = dt_select(&outs[i], t, dim, i);
        if (s != DT_OK) {
            for (int64_t j = 0; j < i; j++) {
                dt_tensor_release(outs[j]);
                outs[j] = NULL;
            }
            return s;
        }
    }
    return DT_OK;
}
