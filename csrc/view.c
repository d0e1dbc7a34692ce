/* view.c: ops that return views sharing the input's storage. */
#include <inttypes.h>
#include <stdlib.h>

#include "dt_impl.h"

dt_status
dt_view_as_strided(dt_tensor **out, const dt_tensor *t, const int64_t *shape,
                   const int64_t *strides, int ndim, int64_t offset)
{
    if (ndim < 0 || ndim > DT_MAX_DIMS) {
        return dt_fail(DT_ERR_VALUE,
                       "tensors have at most %d dimensions, got %d",
                       DT_MAX_DIMS, ndim);
    }
    dt_tensor *v = calloc(1, sizeof *v);
    if (!v) {
        return dt_fail(DT_ERR_NOMEM, "out of memory");
    }
    atomic_init(&v->refcount, 1);
    dt_count_tensor_(1);
    v->dtype = t->dtype;
    v->ndim = ndim;
    memcpy(v->shape, shape, (size_t)ndim * sizeof *shape);
    memcpy(v->strides, strides, (size_t)ndim * sizeof *strides);
    v->offset = offset;
    v->storage = t->storage;
    atomic_fetch_add(&t->storage->refcount, 1);
    *out = v;
    return DT_OK;
}

/* Resolves one -1 in `shape` against numel; checks the element count. */
static dt_status
infer_shape(int64_t *shape, int ndim, const dt_tensor *t, const char *op)
{
    int64_t numel = dt_tensor_numel(t), known = 1;
    int infer = -1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (infer >= 0) {
                return dt_fail(DT_ERR_RUNTIME,
                               "%s: only one dimension can be inferred", op);
            }
            infer = i;
        } else if (shape[i] < 0) {
            return dt_fail(DT_ERR_RUNTIME, "%s: invalid shape dimension %"
                           PRId64, op, shape[i]);
        } else {
            known *= shape[i];
        }
    }
    if (infer >= 0 && known == 0) {
        char sh[160];
        dt_shape_format(sh, sizeof sh, shape, ndim);
        return dt_fail(DT_ERR_RUNTIME,
                       "%s: cannot reshape tensor of 0 elements into shape "
                       "%s because the unspecified dimension size -1 can be "
                       "any value and is ambiguous", op, sh);
    }
    if (infer >= 0 && numel % known == 0) {
        shape[infer] = numel / known;
        known *= shape[infer];
    }
    if (known != numel || (infer >= 0 && shape[infer] < 0)) {
        char sh[160], tsh[160];
        dt_shape_format(sh, sizeof sh, shape, ndim);
        dt_shape_format(tsh, sizeof tsh, t->shape, t->ndim);
        return dt_fail(DT_ERR_RUNTIME,
                       "%s: shape '%s' is invalid for input of shape %s "
                       "(%" PRId64 " elements)",
                       op, sh, tsh, numel);
    }
    return DT_OK;
}

/* Strides that view t as `shape`, if any (PyTorch's computeStride): walk
 * chunks of t's dims that are contiguous with each other. */
static bool
view_strides(int64_t *strides, const dt_tensor *t, const int64_t *shape,
             int ndim)
{
    if (dt_tensor_numel(t) == 0 || t->ndim == 0) {
        int64_t s = 1;
        for (int i = ndim - 1; i >= 0; i--) {
            strides[i] = s;
            s *= shape[i] ? shape[i] : 1;
        }
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_base = t->strides[t->ndim - 1], tensor_numel = 1,
            view_numel = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        if (d == 0 || (t->shape[d - 1] != 1 &&
                       t->strides[d - 1] != tensor_numel * chunk_base)) {
            while (view_d >= 0 &&
                   (view_numel < tensor_numel || shape[view_d] == 1)) {
                strides[view_d] = view_numel * chunk_base;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel) {
                return false;
            }
            if (d > 0) {
                chunk_base = t->strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

dt_status
dt_view(dt_tensor **out, const dt_tensor *t, const int64_t *shape, int ndim)
{
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS];
    if (ndim > DT_MAX_DIMS) {
        return dt_fail(DT_ERR_VALUE, "view: at most %d dimensions",
                       DT_MAX_DIMS);
    }
    memcpy(sh, shape, (size_t)ndim * sizeof *shape);
    DT_TRY(infer_shape(sh, ndim, t, "view"));
    if (!view_strides(st, t, sh, ndim)) {
        return dt_fail(DT_ERR_RUNTIME,
                       "view size is not compatible with input tensor's "
                       "size and stride (at least one dimension spans "
                       "across two contiguous subspaces). Use .reshape(...) "
                       "instead.");
    }
    return dt_view_as_strided(out, t, sh, st, ndim, t->offset);
}

dt_status
dt_reshape(dt_tensor **out, const dt_tensor *t, const int64_t *shape,
           int ndim)
{
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS];
    if (ndim > DT_MAX_DIMS) {
        return dt_fail(DT_ERR_VALUE, "reshape: at most %d dimensions",
                       DT_MAX_DIMS);
    }
    memcpy(sh, shape, (size_t)ndim * sizeof *shape);
    DT_TRY(infer_shape(sh, ndim, t, "reshape"));
    if (view_strides(st, t, sh, ndim)) {
        return dt_view_as_strided(out, t, sh, st, ndim, t->offset);
    }
    dt_tensor *c = NULL;
    DT_TRY(dt_contiguous(&c, t));
    dt_status s = dt_view(out, c, sh, ndim);
    dt_tensor_release(c);
    return s;
}

dt_status
dt_transpose(dt_tensor **out, const dt_tensor *t, int64_t d0, int64_t d1)
{
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS];
    DT_TRY(dt_wrap_dim(&d0, t->ndim, "transpose"));
    DT_TRY(dt_wrap_dim(&d1, t->ndim, "transpose"));
    memcpy(sh, t->shape, sizeof sh);
    memcpy(st, t->strides, sizeof st);
    if (t->ndim > 0) {
        sh[d0] = t->shape[d1];
        sh[d1] = t->shape[d0];
        st[d0] = t->strides[d1];
        st[d1] = t->strides[d0];
    }
    return dt_view_as_strided(out, t, sh, st, t->ndim, t->offset);
}

dt_status
dt_permute(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
           int ndim)
{
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS];
    bool seen[DT_MAX_DIMS] = {false};
    if (ndim != t->ndim) {
        return dt_fail(DT_ERR_RUNTIME,
                       "permute: number of dims don't match (the input has "
                       "%d dims, but %d were given)",
                       t->ndim, ndim);
    }
    for (int i = 0; i < ndim; i++) {
        int64_t d = dims[i];
        DT_TRY(dt_wrap_dim(&d, ndim, "permute"));
        if (seen[d]) {
            return dt_fail(DT_ERR_RUNTIME, "permute: repeated dim %" PRId64,
                           dims[i]);
        }
        seen[d] = true;
        sh[i] = t->shape[d];
        st[i] = t->strides[d];
    }
    return dt_view_as_strided(out, t, sh, st, ndim, t->offset);
}

dt_status
dt_squeeze(dt_tensor **out, const dt_tensor *t, const int64_t *dim)
{
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS], d = -1;
    int n = 0;
    if (dim) {
        d = *dim;
        DT_TRY(dt_wrap_dim(&d, t->ndim, "squeeze"));
    }
    for (int i = 0; i < t->ndim; i++) {
        bool drop = t->shape[i] == 1 && (!dim || i == d);
        if (!drop) {
            sh[n] = t->shape[i];
            st[n++] = t->strides[i];
        }
    }
    return dt_view_as_strided(out, t, sh, st, n, t->offset);
}

dt_status
dt_unsqueeze(dt_tensor **out, const dt_tensor *t, int64_t dim)
{
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS];
    if (t->ndim >= DT_MAX_DIMS) {
        return dt_fail(DT_ERR_VALUE, "unsqueeze: at most %d dimensions",
                       DT_MAX_DIMS);
    }
    DT_TRY(dt_wrap_dim(&dim, t->ndim + 1, "unsqueeze"));
    for (int i = 0, j = 0; i <= t->ndim; i++) {
        if (i == dim) {
            sh[i] = 1;
            st[i] = j < t->ndim ? t->strides[j] * t->shape[j] : 1;
        } else {
            sh[i] = t->shape[j];
            st[i] = t->strides[j++];
        }
    }
    return dt_view_as_strided(out, t, sh, st, t->ndim + 1, t->offset);
}

dt_status
dt_expand(dt_tensor **out, const dt_tensor *t, const int64_t *shape, int ndim)
{
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS];
    if (ndim < t->ndim || ndim > DT_MAX_DIMS) {
        char a[160], b[160];
        dt_shape_format(a, sizeof a, t->shape, t->ndim);
        dt_shape_format(b, sizeof b, shape, ndim < 0 ? 0 : ndim);
        return dt_fail(DT_ERR_RUNTIME,
                       "expand: the number of sizes provided (%d) must be "
                       "greater or equal to the number of dimensions in the "
                       "tensor (%d); tensor %s, sizes %s",
                       ndim, t->ndim, a, b);
    }
    for (int i = ndim - 1; i >= 0; i--) {
        int j = i - (ndim - t->ndim);
        int64_t want = shape[i];
        if (j < 0) {
            if (want < 0) {
                return dt_fail(DT_ERR_RUNTIME,
                               "expand: -1 is not allowed in a leading, "
                               "non-existing dimension %d", i);
            }
            sh[i] = want;
            st[i] = 0;
        } else if (want == -1 || want == t->shape[j]) {
            sh[i] = t->shape[j];
            st[i] = t->strides[j];
        } else if (t->shape[j] == 1 && want >= 0) {
            sh[i] = want;
            st[i] = 0;
        } else {
            char a[160], b[160];
            dt_shape_format(a, sizeof a, t->shape, t->ndim);
            dt_shape_format(b, sizeof b, shape, ndim);
            return dt_fail(DT_ERR_RUNTIME,
                           "expand: the expanded size of the tensor (%" PRId64
                           ") must match the existing size (%" PRId64
                           ") at non-singleton dimension %d; tensor %s, "
                           "sizes %s", want, t->shape[j], i, a, b);
        }
    }
    return dt_view_as_strided(out, t, sh, st, ndim, t->offset);
}

dt_status
dt_slice(dt_tensor **out, const dt_tensor *t, int64_t dim, int64_t start,
         int64_t stop, int64_t step)
{
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS];
    DT_TRY(dt_wrap_dim(&dim, t->ndim, "slice"));
    if (t->ndim == 0) {
        return dt_fail(DT_ERR_INDEX, "slice() cannot be applied to a 0-dim "
                       "tensor.");
    }
    if (step <= 0) {
        return dt_fail(DT_ERR_VALUE, "slice step must be positive, got %"
                       PRId64, step);
    }
    int64_t n = t->shape[dim];
    start = start < 0 ? 0 : start > n ? n : start;
    stop = stop < start ? start : stop > n ? n : stop;
    memcpy(sh, t->shape, sizeof sh);
    memcpy(st, t->strides, sizeof st);
    sh[dim] = (stop - start + step - 1) / step;
    st[dim] = t->strides[dim] * step;
    int64_t offset = t->offset + (sh[dim] ? start * t->strides[dim] : 0);
    return dt_view_as_strided(out, t, sh, st, t->ndim, offset);
}

dt_status
dt_narrow(dt_tensor **out, const dt_tensor *t, int64_t dim, int64_t start,
          int64_t length)
{
    DT_TRY(dt_wrap_dim(&dim, t->ndim, "narrow"));
    if (t->ndim == 0) {
        return dt_fail(DT_ERR_RUNTIME, "narrow() cannot be applied to a "
                       "0-dim tensor.");
    }
    int64_t n = t->shape[dim];
    if (start < 0) {
        start += n;
    }
    if (start < 0 || start > n || length < 0 || start + length > n) {
        return dt_fail(DT_ERR_INDEX,
                       "narrow: start (%" PRId64 ") + length (%" PRId64
                       ") exceeds dimension size (%" PRId64 ") of dim %"
                       PRId64, start, length, n, dim);
    }
    return dt_slice(out, t, dim, start, start + length, 1);
}

dt_status
dt_select(dt_tensor **out, const dt_tensor *t, int64_t dim, int64_t index)
{
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS];
    if (t->ndim == 0) {
        return dt_fail(DT_ERR_INDEX, "invalid index of a 0-dim tensor. Use "
                       "`tensor.item()` to convert a 0-dim tensor to a "
                       "number");
    }
    DT_TRY(dt_wrap_dim(&dim, t->ndim, "select"));
    int64_t n = t->shape[dim];
    if (index < -n || index >= n) {
        return dt_fail(DT_ERR_INDEX,
                       "index %" PRId64 " is out of bounds for dimension %"
                       PRId64 " with size %" PRId64, index, dim, n);
    }
    if (index < 0) {
        index += n;
    }
    for (int i = 0, j = 0; i < t->ndim; i++) {
        if (i != dim) {
            sh[j] = t->shape[i];
            st[j++] = t->strides[i];
        }
    }
    return dt_view_as_strided(out, t, sh, st, t->ndim - 1,
                              t->offset + index * t->strides[dim]);
}

dt_status
dt_flatten(dt_tensor **out, const dt_tensor *t, int64_t start, int64_t end)
{
    int64_t sh[DT_MAX_DIMS];
    if (t->ndim == 0) {
        int64_t one = 1;
        return dt_reshape(out, t, &one, 1);
    }
    DT_TRY(dt_wrap_dim(&start, t->ndim, "flatten"));
    DT_TRY(dt_wrap_dim(&end, t->ndim, "flatten"));
    if (start > end) {
        return dt_fail(DT_ERR_RUNTIME, "flatten() has invalid args: "
                       "start_dim cannot come after end_dim");
    }
    int n = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i <= start || i > end) {
            sh[n++] = t->shape[i];
        } else {
            sh[n - 1] *= t->shape[i];
        }
    }
    return dt_reshape(out, t, sh, n);
}
