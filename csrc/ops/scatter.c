/* scatter.c: gather, scatter_add_, index_select and index_add_ along
 * one dim, with their gradients: each one's backward is its twin (gather
 * <-> scatter_add, index_select <-> index_add) into zeros.
 *
 * All run the kernels of index_kernel.c on the index as it is (value *
 * stride of `dim`, bounds-checked) over a restrided t: t viewed at the
 * index's shape with stride 0 on `dim`, so that
 * t[.., index[..], ..] = view[.. + index[..] * stride].
 */
#include <inttypes.h>

#include "../autograd/autograd.h"
#include "../dt_impl.h"
#include "index.h"

/* Zeros shaped like input i of n, in the gradient's dtype. */
static dt_status
zeros_like_input(dt_tensor **out, const dt_node *n, int i,
                 const dt_tensor *grad)
{
    const dt_input_meta *im = &n->in_meta[i];
    return dt_tensor_zeros(out, im->shape, im->ndim, grad->dtype,
                           dt_tensor_device(grad));
}

/* ---------------------------------------------------------------------- */
/* gather, scatter_add_                                                    */

/* A 0-dim tensor acts as a vector of one element (PyTorch's
 * ensure_nonempty_dim). */
static dt_status
as_vector_if_scalar(dt_tensor **out, const dt_tensor *t)
{
    int64_t one = 1, zero = 0;
    if (t->ndim > 0) {
        return dt_view_as_strided(out, t, t->shape, t->strides, t->ndim,
                                  t->offset);
    }
    return dt_view_as_strided(out, t, &one, &zero, 1, t->offset);
}

static int
nonempty_ndim(const dt_tensor *t)
{
    return t->ndim ? t->ndim : 1;
}

static int64_t
nonempty_size(const dt_tensor *t, int d)
{
    return t->ndim ? t->shape[d] : 1;
}

/* PyTorch's scatter/gather shape rules; src is NULL for gather. */
static dt_status
check_scatter_args(const char *op, const dt_tensor *t, int64_t *dim,
                   const dt_tensor *index, const dt_tensor *src)
{
    if (index->dtype != DT_INT64) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): Expected dtype int64 for "
                       "index (got %s)", op, dt_dtype_name(index->dtype));
    }
    DT_TRY(dt_wrap_dim(dim, t->ndim, op));
    DT_TRY(dt_check_same_device(t, index, op));
    int nd = nonempty_ndim(t);
    if (nonempty_ndim(index) != nd) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): Index tensor must have the "
                       "same number of dimensions as input tensor", op);
    }
    if (src && nonempty_ndim(src) != nd) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): Index tensor must have the "
                       "same number of dimensions as src tensor", op);
    }
    bool ok = true;
    for (int d = 0; d < nd && ok; d++) {
        int64_t is = nonempty_size(index, d);
        ok = (d == *dim || is <= nonempty_size(t, d)) &&
             (!src || is <= nonempty_size(src, d));
    }
    if (ok) {
        return DT_OK;
    }
    char is[160], ts[160], ss[160];
    dt_shape_format(is, sizeof is, index->shape, index->ndim);
    dt_shape_format(ts, sizeof ts, t->shape, t->ndim);
    if (!src) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): Size does not match: expected "
                       "index %s to be no larger than self %s apart from "
                       "dimension %" PRId64, op, is, ts, *dim);
    }
    dt_shape_format(ss, sizeof ss, src->shape, src->ndim);
    return dt_fail(DT_ERR_RUNTIME, "%s(): Expected index %s to be no larger "
                   "than self %s apart from dimension %" PRId64 " and to be "
                   "no larger size than src %s", op, is, ts, *dim, ss);
}

static dt_status
scatter_out_of_bounds(const char *op, int64_t bad, int64_t dim,
                      int64_t size)
{
    return dt_fail(DT_ERR_RUNTIME, "%s(): index %" PRId64 " is out of "
                   "bounds for dimension %" PRId64 " with size %" PRId64,
                   op, bad, dim, size);
}

/* t1 seen at i1's shape with stride 0 on dim. */
static dt_status
restride(dt_tensor **out, const dt_tensor *t1, int64_t dim,
         const dt_tensor *i1)
{
    int64_t st[DT_MAX_DIMS];
    memcpy(st, t1->strides, sizeof st);
    st[dim] = 0;
    return dt_view_as_strided(out, t1, i1->shape, st, i1->ndim, t1->offset);
}

dt_status
dt_gather_forward(dt_tensor **out, const dt_tensor *t, int64_t dim,
                  const dt_tensor *index)
{
    dt_tensor *t1 = NULL, *i1 = NULL, *tv = NULL, *o1 = NULL;
    int64_t bad;
    DT_TRY(check_scatter_args("gather", t, &dim, index, NULL));
    dt_status s = as_vector_if_scalar(&t1, t);
    if (s == DT_OK) {
        s = as_vector_if_scalar(&i1, index);
    }
    if (s == DT_OK) {
        s = dt_index_prepare_out(out, index->shape, index->ndim, t->dtype,
                                 dt_tensor_device(t), "gather");
    }
    if (s == DT_OK) {
        s = restride(&tv, t1, dim, i1);
    }
    if (s == DT_OK) {
        s = as_vector_if_scalar(&o1, *out);
    }
    dt_index_map map = {t1 ? t1->shape[dim] : 0, t1 ? t1->strides[dim] : 0,
                        false};
    if (s == DT_OK && !dt_index_gather_(o1, tv, i1, map, &bad)) {
        s = scatter_out_of_bounds("gather", bad, dim, map.size);
    }
    if (s == DT_OK) {
        dt_tensor_bump_version(*out);
    }
    dt_tensor_release(t1);
    dt_tensor_release(i1);
    dt_tensor_release(tv);
    dt_tensor_release(o1);
    return s;
}

/* gi[0] = zeros like t, go[0] added at the gathered positions. */
static dt_status
dt_gather_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *index = NULL, *z = NULL;
    DT_TRY(dt_node_saved(&index, n, 0));
    DT_TRY(zeros_like_input(&z, n, 0, go[0]));
    dt_status s = dt_scatter_add_forward(z, n->iargs[0], index, go[0]);
    if (s != DT_OK) {
        dt_tensor_release(z);
        return s;
    }
    gi[0] = z;
    return DT_OK;
}

/* Records node `name` (input t, saving index, iargs[0] = dim) for *out;
 * releases *out on failure. */
static dt_status
record_indexed(dt_tensor **out, const char *name, dt_backward_fn fn,
               const dt_tensor *t, int64_t dim, const dt_tensor *index)
{
    dt_node *n = NULL;
    dt_status s = dt_wrap_dim(&dim, t->ndim ? t->ndim : 1, name);
    if (s == DT_OK) {
        s = dt_node_record(&n, name, fn, &t, 1, out, 1);
    }
    if (s == DT_OK) {
        n->iargs[0] = dim;
        n->num_iargs = 1;
        s = dt_node_save(n, index);
    }
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

dt_status
dt_gather(dt_tensor **out, const dt_tensor *t, int64_t dim,
          const dt_tensor *index)
{
    DT_TRY(dt_gather_forward(out, t, dim, index));
    if (!dt_autograd_needed1(t)) {
        return DT_OK;
    }
    return record_indexed(out, "GatherBackward0", dt_gather_backward, t, dim,
                          index);
}

/* src narrowed to index's shape (same strides, smaller sizes), read from
 * a copy if it shares memory with t */
static dt_status
scatter_source(dt_tensor **out, const dt_tensor *src, const dt_tensor *t,
               const dt_tensor *i1)
{
    dt_tensor *u = NULL, *s1 = NULL;
    DT_TRY(dt_index_unalias(&u, src, t));
    dt_status s = as_vector_if_scalar(&s1, u);
    if (s == DT_OK) {
        s = dt_view_as_strided(out, s1, i1->shape, s1->strides, i1->ndim,
                               s1->offset);
    }
    dt_tensor_release(u);
    dt_tensor_release(s1);
    return s;
}

dt_status
dt_scatter_add_forward(dt_tensor *t, int64_t dim, const dt_tensor *index,
                       const dt_tensor *src)
{
    dt_tensor *t1 = NULL, *u = NULL, *i1 = NULL, *tv = NULL, *sv = NULL;
    int64_t bad;
    if (src->dtype != t->dtype) {
        return dt_fail(DT_ERR_RUNTIME, "scatter_add(): Expected self.dtype "
                       "to be equal to src.dtype (got %s and %s)",
                       dt_dtype_name(t->dtype), dt_dtype_name(src->dtype));
    }
    DT_TRY(check_scatter_args("scatter_add", t, &dim, index, src));
    DT_TRY(dt_check_same_device(t, src, "scatter_add"));
    DT_TRY(dt_index_check_writable(t, "scatter_add_"));
    dt_status s = as_vector_if_scalar(&t1, t);
    if (s == DT_OK) {
        s = dt_index_unalias(&u, index, t);
    }
    if (s == DT_OK) {
        s = as_vector_if_scalar(&i1, u);
    }
    dt_index_map map = {t1 ? t1->shape[dim] : 0, t1 ? t1->strides[dim] : 0,
                        false};
    /* every index is checked before the first write */
    if (s == DT_OK && !dt_index_check(i1, map, &bad)) {
        s = scatter_out_of_bounds("scatter_add", bad, dim, map.size);
    }
    if (s == DT_OK) {
        s = restride(&tv, t1, dim, i1);
    }
    if (s == DT_OK) {
        s = scatter_source(&sv, src, t, i1);
    }
    if (s == DT_OK) {
        dt_index_scatter_(tv, sv, i1, map, true);
        dt_tensor_bump_version(t);
    }
    dt_tensor *owned[] = {t1, u, i1, tv, sv};
    for (size_t k = 0; k < sizeof owned / sizeof owned[0]; k++) {
        dt_tensor_release(owned[k]);
    }
    return s;
}

/* g (index's shape) placed at the front of zeros of src's shape: a src
 * larger than the index has its other elements unused. */
static dt_status
fit_src_grad(dt_tensor **out, dt_tensor *g, const dt_input_meta *sm)
{
    bool same = g->ndim == sm->ndim;
    for (int d = 0; same && d < sm->ndim; d++) {
        same = g->shape[d] == sm->shape[d];
    }
    if (same) {
        *out = g;
        return DT_OK;
    }
    if (g->ndim != sm->ndim) {   /* a 0-dim src, a one-element index */
        dt_status s = dt_reshape(out, g, sm->shape, sm->ndim);
        dt_tensor_release(g);
        return s;
    }
    dt_tensor *z = NULL, *part = NULL;
    dt_status s = dt_tensor_zeros(&z, sm->shape, sm->ndim, g->dtype,
                                  dt_tensor_device(g));
    if (s == DT_OK) {
        s = dt_view_as_strided(&part, z, g->shape, z->strides, z->ndim, 0);
    }
    s = s == DT_OK ? dt_copy_(part, g) : s;
    dt_tensor_release(part);
    dt_tensor_release(g);
    if (s != DT_OK) {
        dt_tensor_release(z);
        return s;
    }
    *out = z;
    return DT_OK;
}

/* t's gradient passes through; src's is gathered from it. */
static dt_status
dt_scatter_add_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *index = NULL, *g = NULL;
    if (dt_node_needs_grad(n, 0)) {
        dt_tensor_retain(go[0]);
        gi[0] = go[0];
    }
    if (!dt_node_needs_grad(n, 1)) {
        return DT_OK;
    }
    DT_TRY(dt_node_saved(&index, n, 0));
    DT_TRY(dt_gather_forward(&g, go[0], n->iargs[0], index));
    return fit_src_grad(&gi[1], g, &n->in_meta[1]);
}

dt_status
dt_scatter_add_(dt_tensor *t, int64_t dim, const dt_tensor *index,
                const dt_tensor *src)
{
    bool record = dt_autograd_needed2(t, src);
    dt_node *n = NULL;
    if (record) {
        DT_TRY(dt_autograd_check_inplace(t, "scatter_add_"));
    }
    DT_TRY(dt_scatter_add_forward(t, dim, index, src));
    if (!record) {
        return DT_OK;
    }
    const dt_tensor *in[2] = {t, src};
    DT_TRY(dt_wrap_dim(&dim, t->ndim ? t->ndim : 1, "scatter_add"));
    DT_TRY(dt_node_record(&n, "ScatterAddBackward0", dt_scatter_add_backward,
                          in, 2, &t, 1));
    n->iargs[0] = dim;
    n->num_iargs = 1;
    return dt_node_save(n, index);
}

/* ---------------------------------------------------------------------- */
/* index_select, index_add_                                                */

static dt_status
check_select_args(const dt_tensor *t, int64_t *dim, const dt_tensor *index,
                  const char *op)
{
    if (index->ndim > 1) {
        return dt_fail(DT_ERR_INDEX, "%s(): Index is supposed to be a "
                       "vector", op);
    }
    if (index->dtype != DT_INT64 && index->dtype != DT_INT32) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): Expected dtype int32 or int64 "
                       "for index (got %s)", op, dt_dtype_name(index->dtype));
    }
    DT_TRY(dt_wrap_dim(dim, t->ndim, op));
    return dt_check_same_device(t, index, op);
}

dt_status
dt_index_select_forward(dt_tensor **out, const dt_tensor *t, int64_t dim,
                        const dt_tensor *index)
{
    DT_TRY(check_select_args(t, &dim, index, "index_select"));
    int64_t m = dt_tensor_numel(index), one = 1, zero = 0, bad;
    /* a 0-dim t acts as a vector of one element */
    int nd = t->ndim ? t->ndim : 1;
    const int64_t *tsh = t->ndim ? t->shape : &one;
    const int64_t *tst = t->ndim ? t->strides : &zero;
    int64_t rshape[DT_MAX_DIMS], tstrides[DT_MAX_DIMS], xstrides[DT_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        rshape[d] = d == dim ? m : tsh[d];
        tstrides[d] = d == dim ? 0 : tst[d];
        xstrides[d] = d == dim && index->ndim ? index->strides[0] : 0;
    }
    dt_tensor *ix = NULL, *tv = NULL, *xv = NULL, *o = NULL;
    int rnd = t->ndim == 0 && m == 1 ? 0 : nd;
    dt_status s = dt_to_dtype(&ix, index, DT_INT64);
    if (s == DT_OK) {
        s = dt_index_prepare_out(out, rshape, rnd, t->dtype,
                                 dt_tensor_device(t), "index_select");
    }
    if (s == DT_OK) {
        s = dt_view_as_strided(&tv, t, rshape, tstrides, nd, t->offset);
    }
    if (s == DT_OK) {
        s = dt_view_as_strided(&xv, ix, rshape, xstrides, nd, ix->offset);
    }
    if (s == DT_OK) {
        s = dt_view_as_strided(&o, *out, rshape, (*out)->ndim ?
                               (*out)->strides : &zero, nd, (*out)->offset);
    }
    dt_index_map map = {tsh[dim], tst[dim], false};
    if (s == DT_OK && !dt_index_gather_(o, tv, xv, map, &bad)) {
        s = dt_fail(DT_ERR_INDEX, "index_select(): index %" PRId64 " is out "
                    "of bounds for dimension %" PRId64 " with size %" PRId64,
                    bad, dim, tsh[dim]);
    }
    if (s == DT_OK) {
        dt_tensor_bump_version(*out);
    }
    dt_tensor *owned[] = {ix, tv, xv, o};
    for (size_t k = 0; k < sizeof owned / sizeof owned[0]; k++) {
        dt_tensor_release(owned[k]);
    }
    return s;
}

/* src must be t's shape with the index's length on dim (0-dim t and src
 * act as vectors of one element). */
static dt_status
check_add_src(const dt_tensor *t, int64_t dim, int64_t m,
              const dt_tensor *src)
{
    bool ok = src->dtype == t->dtype &&
              (src->ndim ? src->ndim : 1) == (t->ndim ? t->ndim : 1);
    for (int d = 0; ok && d < (t->ndim ? t->ndim : 1); d++) {
        int64_t want = d == dim ? m : (t->ndim ? t->shape[d] : 1);
        ok = (src->ndim ? src->shape[d] : 1) == want;
    }
    if (ok) {
        return dt_check_same_device(t, src, "index_add_");
    }
    char ts[160], ss[160];
    dt_shape_format(ts, sizeof ts, t->shape, t->ndim);
    dt_shape_format(ss, sizeof ss, src->shape, src->ndim);
    return dt_fail(DT_ERR_RUNTIME, "index_add_(): source %s %s does not "
                   "match self %s %s with %" PRId64 " indices on dimension %"
                   PRId64, dt_dtype_name(src->dtype), ss,
                   dt_dtype_name(t->dtype), ts, m, dim);
}

/* The three views index_add_ runs on: t restrided to src's shape (stride
 * 0 on dim), the int64 index spread along dim, src. */
static dt_status
index_add_views(dt_tensor **v, const dt_tensor *t, int64_t dim,
                const dt_tensor *ix, const dt_tensor *src)
{
    int64_t one = 1, zero = 0;
    int nd = t->ndim ? t->ndim : 1;
    const int64_t *shape = src->ndim ? src->shape : &one;
    int64_t tst[DT_MAX_DIMS], xst[DT_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        tst[d] = d == dim || !t->ndim ? 0 : t->strides[d];
        xst[d] = d == dim && ix->ndim ? ix->strides[0] : 0;
    }
    DT_TRY(dt_view_as_strided(&v[0], t, shape, tst, nd, t->offset));
    DT_TRY(dt_view_as_strided(&v[1], ix, shape, xst, nd, ix->offset));
    return dt_view_as_strided(&v[2], src, shape,
                              src->ndim ? src->strides : &zero, nd,
                              src->offset);
}

dt_status
dt_index_add_forward(dt_tensor *t, int64_t dim, const dt_tensor *index,
                     const dt_tensor *src)
{
    DT_TRY(check_select_args(t, &dim, index, "index_add_"));
    int64_t m = dt_tensor_numel(index), bad;
    DT_TRY(check_add_src(t, dim, m, src));
    DT_TRY(dt_index_check_writable(t, "index_add_"));
    dt_tensor *ix = NULL, *u = NULL, *v[3] = {NULL, NULL, NULL};
    dt_index_map map = {t->ndim ? t->shape[dim] : 1,
                        t->ndim ? t->strides[dim] : 0, false};
    dt_status s = dt_to_dtype(&ix, index, DT_INT64);
    if (s == DT_OK && !dt_index_check(ix, map, &bad)) {
        s = dt_fail(DT_ERR_INDEX, "index_add_(): index %" PRId64 " is out "
                    "of bounds for dimension %" PRId64 " with size %" PRId64,
                    bad, dim, map.size);
    }
    if (s == DT_OK) {
        s = dt_index_unalias(&u, src, t);
    }
    if (s == DT_OK) {
        s = index_add_views(v, t, dim, ix, u);
    }
    if (s == DT_OK) {
        dt_index_scatter_(v[0], v[2], v[1], map, true);
        dt_tensor_bump_version(t);
    }
    dt_tensor *owned[] = {ix, u, v[0], v[1], v[2]};
    for (size_t k = 0; k < sizeof owned / sizeof owned[0]; k++) {
        dt_tensor_release(owned[k]);
    }
    return s;
}

/* gi[0] = zeros like t, go[0] added at the selected positions. */
static dt_status
dt_index_select_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *index = NULL, *z = NULL;
    DT_TRY(dt_node_saved(&index, n, 0));
    DT_TRY(zeros_like_input(&z, n, 0, go[0]));
    dt_status s = dt_index_add_forward(z, n->iargs[0], index, go[0]);
    if (s != DT_OK) {
        dt_tensor_release(z);
        return s;
    }
    gi[0] = z;
    return DT_OK;
}

dt_status
dt_index_select(dt_tensor **out, const dt_tensor *t, int64_t dim,
                const dt_tensor *index)
{
    DT_TRY(dt_index_select_forward(out, t, dim, index));
    if (!dt_autograd_needed1(t)) {
        return DT_OK;
    }
    return record_indexed(out, "IndexSelectBackward0",
                          dt_index_select_backward, t, dim, index);
}
