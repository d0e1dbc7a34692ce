/* reduce_arg_backward.c: the backward of amax/amin and max/min (the
 * forwards are in reduce_arg.c), and their recording entry points.
 * argmax/argmin and the indices of max/min are integers: not
 * differentiable, nothing is recorded for them.
 *
 * PyTorch's conventions, which these follow:
 *   amax/amin: ties share the gradient evenly (a nan result gives nan);
 *   max()/min() over everything: ties share it too, nans being ties;
 *   max(dim)/min(dim): all of it goes to the returned index.
 */
#include "reduce_grad.h"

/* ---------------------------------------------------------------------- */
/* amax, amin, and max/min without a dim: split among the ties             */

/* saved: x, the result. mode and kind: see dt_reduce_grad_ties and
 * dt_rg_kind. */
static dt_status
ties_grad(dt_node *n, dt_tensor **gi, dt_tensor *const *go, int mode,
          dt_rg_kind kind)
{
    dt_tensor *x = NULL, *res = NULL, *g = NULL, *r = NULL, *count = NULL;
    DT_TRY(dt_node_saved(&x, n, 0));
    DT_TRY(dt_node_saved(&res, n, 1));
    dt_status s = dt_reduce_grad_small(&g, go[0], n);
    if (s == DT_OK) {
        s = dt_reduce_grad_small(&r, res, n);
    }
    if (s == DT_OK) {
        s = dt_reduce_grad_ties(&count, x, r, n, mode);
    }
    if (s == DT_OK) {
        double *gv = dt_tensor_data(g);
        const double *cv = dt_tensor_data(count);
        for (int64_t i = 0; i < dt_tensor_numel(g); i++) {
            gv[i] /= cv[i];
        }
        s = dt_reduce_grad_map(&gi[0], x, r, g, n, kind, 0.0);
    }
    dt_tensor_release(g);
    dt_tensor_release(r);
    dt_tensor_release(count);
    return s;
}

static dt_status
dt_amax_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    return ties_grad(n, gi, go, 0, DT_RG_MASK_MUL);
}

static dt_status
dt_max_all_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    return ties_grad(n, gi, go, 1, DT_RG_MASK_SEL);
}

/* Records for a result that ties share; saves x and the result. */
static dt_status
record_ties(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
            int ndims, bool keepdim, const char *name, dt_backward_fn fn)
{
    dt_node *n;
    DT_TRY(dt_reduce_record(&n, out, t, dims, ndims, keepdim, name, fn));
    if (!n) {
        return DT_OK;
    }
    dt_status s = dt_node_save(n, t);
    if (s == DT_OK) {
        s = dt_node_save(n, *out);
    }
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

dt_status
dt_amax(dt_tensor **out, const dt_tensor *t, const int64_t *dims, int ndims,
        bool keepdim)
{
    DT_TRY(dt_reduce_check_out(*out, t, "amax"));
    DT_TRY(dt_amax_forward(out, t, dims, ndims, keepdim));
    return record_ties(out, t, dims, ndims, keepdim, "AmaxBackward0",
                       dt_amax_backward);
}

dt_status
dt_amin(dt_tensor **out, const dt_tensor *t, const int64_t *dims, int ndims,
        bool keepdim)
{
    DT_TRY(dt_reduce_check_out(*out, t, "amin"));
    DT_TRY(dt_amin_forward(out, t, dims, ndims, keepdim));
    return record_ties(out, t, dims, ndims, keepdim, "AminBackward0",
                       dt_amax_backward);
}

/* ---------------------------------------------------------------------- */
/* max/min with a dim: the gradient goes to the returned index             */

typedef struct scatter_ctx {
    int64_t step;     /* bytes between neighbours along the dim */
    size_t isz;
} scatter_ctx;

/* ptrs: the gradient's slot 0 along the dim, the incoming value, its
 * index along the dim. */
static void
scatter_loop(char **ptrs, const int64_t *st, int64_t n, void *vctx)
{
    const scatter_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) {
        int64_t k = *(const int64_t *)(ptrs[2] + i * st[2]);
        memcpy(ptrs[0] + i * st[0] + k * c->step, ptrs[1] + i * st[1],
               c->isz);
    }
}

/* gi = zeros(x); gi[..., idx, ...] = g along dim; g and idx have the
 * keepdim shape. */
static dt_status
scatter_index(dt_tensor **gi, const dt_input_meta *im, int64_t dim,
              const dt_tensor *g, const dt_tensor *idx)
{
    dt_tensor *z = NULL, *slot = NULL;
    DT_TRY(dt_tensor_zeros(&z, im->shape, im->ndim, g->dtype,
                           DT_DEVICE_CPU));
    dt_status s = dt_narrow(&slot, z, dim, 0, 1);
    if (s == DT_OK) {
        size_t isz = dt_dtype_size(g->dtype);
        scatter_ctx ctx = {z->strides[dim] * (int64_t)isz, isz};
        dt_tensor *ops[3] = {slot, (dt_tensor *)g, (dt_tensor *)idx};
        dt_iter_run(ops, 3, scatter_loop, &ctx);
        *gi = z;
    } else {
        dt_tensor_release(z);
    }
    dt_tensor_release(slot);
    return s;
}

/* t itself with keepdim, else t with the reduced dim put back. */
static dt_status
keepdim_view(dt_tensor **out, const dt_tensor *t, int64_t dim, bool keepdim)
{
    if (!keepdim) {
        return dt_unsqueeze(out, t, dim);
    }
    dt_tensor_retain((dt_tensor *)t);
    *out = (dt_tensor *)t;
    return DT_OK;
}

/* saved: the indices. */
static dt_status
dt_max_dim_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    const dt_input_meta *im = &n->in_meta[0];
    dt_tensor *idx = NULL, *gk = NULL, *ik = NULL;
    int64_t dim;
    DT_TRY(dt_node_saved(&idx, n, 0));
    if (im->ndim == 0) {
        dt_tensor_retain(go[0]);
        gi[0] = go[0];
        return DT_OK;
    }
    DT_ASSERT(dt_reduce_grad_dims(&dim, n) == 1);
    bool keepdim = n->iargs[DT_RG_KEEPDIM];
    dt_status s = keepdim_view(&gk, go[0], dim, keepdim);
    if (s == DT_OK) {
        s = keepdim_view(&ik, idx, dim, keepdim);
    }
    if (s == DT_OK) {
        s = scatter_index(&gi[0], im, dim, gk, ik);
    }
    dt_tensor_release(gk);
    dt_tensor_release(ik);
    return s;
}

static dt_status
max_min(dt_tensor **values, dt_tensor **indices, const dt_tensor *t,
        const int64_t *dim, bool keepdim, bool is_max)
{
    const char *op = is_max ? "max" : "min";
    dt_node *n;
    DT_TRY(dt_reduce_check_out(*values, t, op));
    DT_TRY((is_max ? dt_max_forward : dt_min_forward)(values, indices, t,
                                                        dim, keepdim));
    if (!dim) {
        return record_ties(values, t, NULL, 0, false,
                           is_max ? "MaxBackward1" : "MinBackward1",
                           dt_max_all_backward);
    }
    DT_TRY(dt_reduce_record(&n, values, t, dim, 1, keepdim,
                            is_max ? "MaxBackward0" : "MinBackward0",
                            dt_max_dim_backward));
    dt_status s = n ? dt_node_save(n, *indices) : DT_OK;
    if (s != DT_OK) {
        dt_tensor_release(*values);
        *values = NULL;
    }
    return s;
}

static dt_status
max_min_entry(dt_tensor **values, dt_tensor **indices, const dt_tensor *t,
              const int64_t *dim, bool keepdim, bool is_max)
{
    if (indices || !dim) {
        return max_min(values, indices, t, dim, keepdim, is_max);
    }
    /* the backward needs the indices even when the caller doesn't */
    dt_tensor *own = NULL;
    dt_status s = max_min(values, &own, t, dim, keepdim, is_max);
    dt_tensor_release(own);
    return s;
}

dt_status
dt_max(dt_tensor **values, dt_tensor **indices, const dt_tensor *t,
       const int64_t *dim, bool keepdim)
{
    return max_min_entry(values, indices, t, dim, keepdim, true);
}

dt_status
dt_min(dt_tensor **values, dt_tensor **indices, const dt_tensor *t,
       const int64_t *dim, bool keepdim)
{
    return max_min_entry(values, indices, t, dim, keepdim, false);
}
