/* views.c: backward of the view and copy ops, and their recording entry
 * points (see views.h). Most backwards are one call: a view's gradient is
 * the inverse view of the incoming gradient; expand's is summed back by
 * the engine; slices scatter into zeros. */
#include "views.h"

/* Records `name` for out = view of t when t requires grad. On failure
 * releases *out. */
static dt_status
record_view(dt_tensor **out, const dt_tensor *t, const char *name,
            dt_backward_fn fn, const int64_t *iargs, int nargs)
{
    if (!dt_autograd_needed1(t)) {
        return DT_OK;
    }
    dt_node *n = NULL;
    dt_status s = (*out)->storage == t->storage
                      ? dt_node_record_view(&n, name, fn, t, *out)
                      : dt_node_record(&n, name, fn, &t, 1, out, 1);
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
        return s;
    }
    if (nargs) {   /* iargs may be NULL: memcpy(dst, NULL, 0) is UB */
        memcpy(n->iargs, iargs, (size_t)nargs * sizeof *iargs);
    }
    n->num_iargs = nargs;
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* view, reshape, squeeze, unsqueeze, flatten: reshape the gradient back   */

static dt_status
dt_reshape_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *c = NULL;
    DT_TRY(dt_contiguous(&c, go[0]));
    dt_status s = dt_reshape(&gi[0], c, n->in_meta[0].shape,
                             n->in_meta[0].ndim);
    dt_tensor_release(c);
    return s;
}

dt_status
dt_ag_view(dt_tensor **out, const dt_tensor *t, const int64_t *shape,
           int ndim)
{
    DT_TRY(dt_view(out, t, shape, ndim));
    return record_view(out, t, "ViewBackward0", dt_reshape_backward, NULL, 0);
}

dt_status
dt_ag_reshape(dt_tensor **out, const dt_tensor *t, const int64_t *shape,
              int ndim)
{
    DT_TRY(dt_reshape(out, t, shape, ndim));
    return record_view(out, t, "ViewBackward0", dt_reshape_backward, NULL, 0);
}

dt_status
dt_ag_squeeze(dt_tensor **out, const dt_tensor *t, const int64_t *dim)
{
    DT_TRY(dt_squeeze(out, t, dim));
    return record_view(out, t, "SqueezeBackward0", dt_reshape_backward,
                       NULL, 0);
}

dt_status
dt_ag_unsqueeze(dt_tensor **out, const dt_tensor *t, int64_t dim)
{
    DT_TRY(dt_unsqueeze(out, t, dim));
    return record_view(out, t, "UnsqueezeBackward0", dt_reshape_backward,
                       NULL, 0);
}

dt_status
dt_ag_flatten(dt_tensor **out, const dt_tensor *t, int64_t start,
              int64_t end)
{
    DT_TRY(dt_flatten(out, t, start, end));
    return record_view(out, t, "ViewBackward0", dt_reshape_backward, NULL, 0);
}

/* ---------------------------------------------------------------------- */
/* transpose, permute: the inverse permutation                             */

static dt_status
dt_transpose_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    return dt_transpose(&gi[0], go[0], n->iargs[0], n->iargs[1]);
}

dt_status
dt_ag_transpose(dt_tensor **out, const dt_tensor *t, int64_t d0, int64_t d1)
{
    DT_TRY(dt_transpose(out, t, d0, d1));
    int64_t args[2] = {d0, d1};
    return record_view(out, t, "TransposeBackward0", dt_transpose_backward,
                       args, 2);
}

static dt_status
dt_permute_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    int64_t inverse[DT_MAX_DIMS];
    int nd = n->num_iargs;
    for (int i = 0; i < nd; i++) {
        int64_t d = n->iargs[i] < 0 ? n->iargs[i] + nd : n->iargs[i];
        inverse[d] = i;
    }
    return dt_permute(&gi[0], go[0], inverse, nd);
}

dt_status
dt_ag_permute(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
              int ndim)
{
    DT_TRY(dt_permute(out, t, dims, ndim));
    return record_view(out, t, "PermuteBackward0", dt_permute_backward, dims,
                       ndim);
}

/* ---------------------------------------------------------------------- */
/* expand: the engine sums the gradient back to the input's shape          */

static dt_status
dt_expand_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    (void)n;
    dt_tensor_retain(go[0]);
    gi[0] = go[0];
    return DT_OK;
}

dt_status
dt_ag_expand(dt_tensor **out, const dt_tensor *t, const int64_t *shape,
             int ndim)
{
    DT_TRY(dt_expand(out, t, shape, ndim));
    return record_view(out, t, "ExpandBackward0", dt_expand_backward, NULL,
                       0);
}

/* ---------------------------------------------------------------------- */
/* slice, narrow, select: scatter the gradient into zeros                  */

/* gi[0] = zeros(input); gi[0][the same slice] = go[0]. iargs: kind,
 * dim, start, stop, step (kind 0: slice, 1: select with start = index). */
static dt_status
dt_slice_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    const dt_input_meta *im = &n->in_meta[0];
    dt_tensor *z = NULL, *part = NULL;
    DT_TRY(dt_tensor_zeros(&z, im->shape, im->ndim, go[0]->dtype,
                           dt_tensor_device(go[0])));
    const int64_t *a = n->iargs;
    dt_status s = a[0] ? dt_select(&part, z, a[1], a[2])
                       : dt_slice(&part, z, a[1], a[2], a[3], a[4]);
    if (s == DT_OK) {
        s = dt_copy_(part, go[0]);
    }
    dt_tensor_release(part);
    if (s != DT_OK) {
        dt_tensor_release(z);
        return s;
    }
    gi[0] = z;
    return DT_OK;
}

dt_status
dt_ag_slice(dt_tensor **out, const dt_tensor *t, int64_t dim, int64_t start,
            int64_t stop, int64_t step)
{
    DT_TRY(dt_slice(out, t, dim, start, stop, step));
    int64_t args[5] = {0, dim, start, stop, step};
    return record_view(out, t, "SliceBackward0", dt_slice_backward, args, 5);
}

dt_status
dt_ag_narrow(dt_tensor **out, const dt_tensor *t, int64_t dim, int64_t start,
             int64_t length)
{
    DT_TRY(dt_narrow(out, t, dim, start, length));
    if (start < 0 && t->ndim > 0) {
        int64_t d = dim;
        DT_TRY(dt_wrap_dim(&d, t->ndim, "narrow"));
        start += t->shape[d];
    }
    int64_t args[5] = {0, dim, start, start + length, 1};
    return record_view(out, t, "SliceBackward0", dt_slice_backward, args, 5);
}

dt_status
dt_ag_select(dt_tensor **out, const dt_tensor *t, int64_t dim, int64_t index)
{
    DT_TRY(dt_select(out, t, dim, index));
    int64_t args[5] = {1, dim, index, 0, 0};
    return record_view(out, t, "SelectBackward0", dt_slice_backward, args, 5);
}

dt_status
dt_ag_as_strided(dt_tensor **out, const dt_tensor *t, const int64_t *shape,
                 const int64_t *strides, int ndim, int64_t offset)
{
    if (dt_autograd_needed1(t)) {
        return dt_fail(DT_ERR_NOTIMPL, "as_strided: differentiating through "
                       "as_strided is not supported");
    }
    return dt_view_as_strided(out, t, shape, strides, ndim, offset);
}

/* ---------------------------------------------------------------------- */
/* clone, contiguous, to(dtype): the gradient passes through (the engine
 * casts it back to the input's dtype)                                     */

static dt_status
dt_identity_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    (void)n;
    dt_tensor_retain(go[0]);
    gi[0] = go[0];
    return DT_OK;
}

dt_status
dt_ag_clone(dt_tensor **out, const dt_tensor *t)
{
    DT_TRY(dt_clone(out, t));
    return record_view(out, t, "CloneBackward0", dt_identity_backward, NULL,
                       0);
}

dt_status
dt_ag_contiguous(dt_tensor **out, const dt_tensor *t)
{
    if (dt_tensor_is_contiguous(t)) {
        dt_tensor_retain((dt_tensor *)t);
        *out = (dt_tensor *)t;
        return DT_OK;
    }
    return dt_ag_clone(out, t);
}

dt_status
dt_ag_to_dtype(dt_tensor **out, const dt_tensor *t, dt_dtype dtype)
{
    if (t->dtype == dtype) {
        dt_tensor_retain((dt_tensor *)t);
        *out = (dt_tensor *)t;
        return DT_OK;
    }
    DT_TRY(dt_to_dtype(out, t, dtype));
    if (!dt_dtype_is_floating(dtype)) {
        return DT_OK;   /* integer results carry no gradient */
    }
    return record_view(out, t, "ToCopyBackward0", dt_identity_backward, NULL,
                       0);
}

/* ---------------------------------------------------------------------- */
/* copy_ and fill_: in place; the overwritten value gets no gradient       */

static dt_status
dt_copy_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    (void)n;
    if (dt_node_needs_grad(n, 1)) {
        dt_tensor_retain(go[0]);
        gi[1] = go[0];
    }
    return DT_OK;
}

dt_status
dt_ag_copy_(dt_tensor *dst, const dt_tensor *src)
{
    bool record = dt_autograd_needed2(dst, src);
    const dt_tensor *in[2] = {dst, src};
    dt_node *n = NULL;
    if (record) {
        DT_TRY(dt_autograd_check_inplace(dst, "copy_"));
    }
    DT_TRY(dt_copy_(dst, src));
    return record ? dt_node_record(&n, "CopyBackwards", dt_copy_backward,
                                   in, 2, &dst, 1)
                  : DT_OK;
}

static dt_status
dt_fill_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    (void)n;
    (void)gi;
    (void)go;
    return DT_OK;
}

dt_status
dt_ag_fill_(dt_tensor *t, const dt_tensor *value)
{
    bool record = dt_autograd_needed1(t);
    dt_node *n = NULL;
    if (record) {
        DT_TRY(dt_autograd_check_inplace(t, "fill_"));
    }
    /* cast the one value first, so the fill is a same-dtype broadcast */
    dt_tensor *v = NULL;
    DT_TRY(dt_to_dtype(&v, value, t->dtype));
    dt_status s = dt_copy_(t, v);
    dt_tensor_release(v);
    DT_TRY(s);
    return record ? dt_node_record(&n, "FillBackward0", dt_fill_backward,
                                   (const dt_tensor *const *)&t, 1, &t, 1)
                  : DT_OK;
}
