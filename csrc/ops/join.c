/* join.c: cat and stack (copies into slices of one output) and their
 * gradients (slices of the output's gradient). */
#include <inttypes.h>
#include <stdlib.h>

#include "../autograd/autograd.h"
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

/* Each input's gradient is its slice of go[0] (the engine casts it to
 * the input's dtype); a skipped (0,) input gets an empty one. */
static dt_status
dt_cat_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    int64_t dim = n->iargs[0], at = 0, zero = 0;
    for (int i = 0; i < n->num_inputs; i++) {
        const dt_input_meta *im = &n->in_meta[i];
        if (im->ndim == 1 && im->shape[0] == 0) {
            if (dt_node_needs_grad(n, i)) {
                DT_TRY(dt_tensor_empty(&gi[i], &zero, 1, go[0]->dtype,
                                       dt_tensor_device(go[0])));
            }
            continue;
        }
        int64_t len = im->shape[dim];
        if (dt_node_needs_grad(n, i)) {
            DT_TRY(dt_slice(&gi[i], go[0], dim, at, at + len, 1));
        }
        at += len;
    }
    return DT_OK;
}

/* Records node `name` over every input for *out (iargs[0] = dim);
 * releases *out on failure. */
static dt_status
record_join(dt_tensor **out, const char *name, dt_backward_fn fn,
            dt_tensor *const *ts, int n, int64_t dim)
{
    dt_node *node = NULL;
    dt_status s = dt_node_record(&node, name, fn,
                                 (const dt_tensor *const *)ts, n, out, 1);
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
        return s;
    }
    node->iargs[0] = dim;
    node->num_iargs = 1;
    return DT_OK;
}

static dt_status
refuse_out(const char *op)
{
    return dt_fail(DT_ERR_RUNTIME, "%s(): functions with out=... arguments "
                   "don't support automatic differentiation, but one of "
                   "the arguments requires grad.", op);
}

dt_status
dt_cat(dt_tensor **out, dt_tensor *const *ts, int n, int64_t dim)
{
    bool record = dt_autograd_needed((const dt_tensor *const *)ts, n);
    if (record && *out) {
        return refuse_out("cat");
    }
    DT_TRY(dt_cat_forward(out, ts, n, dim));
    if (!record) {
        return DT_OK;
    }
    int ref = 0;
    while (ref < n - 1 && is_legacy_empty(ts[ref])) {
        ref++;
    }
    /* the forward checked dim against the first input it did not skip */
    if (!is_legacy_empty(ts[ref])) {
        dt_wrap_dim(&dim, ts[ref]->ndim, "cat");
    }
    return record_join(out, "CatBackward0", dt_cat_backward, ts, n, dim);
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

/* Each input's gradient is go[0] at its index along the new dim. */
static dt_status
dt_stack_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    for (int i = 0; i < n->num_inputs; i++) {
        if (dt_node_needs_grad(n, i)) {
            DT_TRY(dt_select(&gi[i], go[0], n->iargs[0], i));
        }
    }
    return DT_OK;
}

dt_status
dt_stack(dt_tensor **out, dt_tensor *const *ts, int n, int64_t dim)
{
    bool record = dt_autograd_needed((const dt_tensor *const *)ts, n);
    if (record && *out) {
        return refuse_out("stack");
    }
    DT_TRY(dt_stack_forward(out, ts, n, dim));
    if (!record) {
        return DT_OK;
    }
    dt_wrap_dim(&dim, ts[0]->ndim + 1, "stack");   /* checked already */
    return record_join(out, "StackBackward0", dt_stack_backward, ts, n, dim);
}
