/* scatter.c: gather, scatter_add_ and index_select along one dim,
 * masked_fill, one_hot.
 *
 * All three run the kernels of index_kernel.c on the index as it is
 * (value * stride of `dim`, bounds-checked) over a restrided t: t viewed
 * at the index's shape with stride 0 on `dim`, so that
 * t[.., index[..], ..] = view[.. + index[..] * stride].
 */
#include <inttypes.h>

#include "../dt_impl.h"
#include "index.h"

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

/* ---------------------------------------------------------------------- */
/* index_select                                                            */

static dt_status
check_select_args(const dt_tensor *t, int64_t *dim, const dt_tensor *index)
{
    if (index->ndim > 1) {
        return dt_fail(DT_ERR_INDEX, "index_select(): Index is supposed to "
                       "be a vector");
    }
    if (index->dtype != DT_INT64 && index->dtype != DT_INT32) {
        return dt_fail(DT_ERR_RUNTIME, "index_select(): Expected dtype int32 "
                       "or int64 for index (got %s)",
                       dt_dtype_name(index->dtype));
    }
    DT_TRY(dt_wrap_dim(dim, t->ndim, "index_select"));
    return dt_check_same_device(t, index, "index_select");
}

dt_status
dt_index_select_forward(dt_tensor **out, const dt_tensor *t, int64_t dim,
                        const dt_tensor *index)
{
    DT_TRY(check_select_args(t, &dim, index));
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

/* ---------------------------------------------------------------------- */
/* masked_fill                                                             */

typedef struct fill_ctx {
    const char *value;   /* one element of the output's dtype */
    size_t isz;
} fill_ctx;

/* Contiguous rows use a branch-free bit select, which vectorises (random
 * masks defeat branch prediction); a mask broadcast along the row (stride
 * 0) fills it whole or not at all. */
#define MASKED_FILL_LOOP(T)                                                  \
    {                                                                        \
        T v;                                                                 \
        memcpy(&v, c->value, sizeof v);                                      \
        if (ms == 0) {                                                       \
            for (int64_t i = 0; i < n && *(const bool *)mask; i++) {         \
                *(T *)(dst + i * ds) = v;                                    \
            }                                                                \
        } else if (ds == (int64_t)sizeof(T) && ms == 1) {                    \
            T *__restrict d = (T *)dst;                                      \
            const uint8_t *__restrict m = (const uint8_t *)mask;             \
            for (int64_t i = 0; i < n; i++) {                                \
                T keep = (T)m[i] - 1;   /* all ones where m is false */      \
                d[i] = (d[i] & keep) | (v & (T)~keep);                       \
            }                                                                \
        } else {                                                             \
            for (int64_t i = 0; i < n; i++) {                                \
                if (*(const bool *)(mask + i * ms)) {                        \
                    *(T *)(dst + i * ds) = v;                                \
                }                                                            \
            }                                                                \
        }                                                                    \
    }                                                                        \
    break

static void
masked_fill_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    const fill_ctx *c = vctx;
    char *dst = ptrs[0];
    const char *mask = ptrs[1];
    int64_t ds = strides[0], ms = strides[1];
    switch (c->isz) {
    case 1: MASKED_FILL_LOOP(uint8_t);
    case 2: MASKED_FILL_LOOP(uint16_t);
    case 4: MASKED_FILL_LOOP(uint32_t);
    default: MASKED_FILL_LOOP(uint64_t);
    }
}

static dt_status
check_masked_fill_args(const dt_tensor *t, const dt_tensor *mask,
                       const dt_tensor *value)
{
    if (mask->dtype != DT_BOOL) {
        return dt_fail(DT_ERR_RUNTIME, "masked_fill_ only supports boolean "
                       "masks, but got mask with dtype %s",
                       dt_dtype_name(mask->dtype));
    }
    if (value->ndim != 0) {
        return dt_fail(DT_ERR_RUNTIME, "masked_fill_ only supports a "
                       "0-dimensional value tensor, but got tensor with %d "
                       "dimension(s).", value->ndim);
    }
    DT_TRY(dt_check_same_device(t, mask, "masked_fill"));
    return DT_OK;
}

/* out = t (broadcast), unless filling t in place. */
static dt_status
masked_fill_prepare(dt_tensor **out, const dt_tensor *t,
                    const dt_tensor *mask)
{
    int64_t shape[DT_MAX_DIMS];
    int nd;
    if (*out == t) {
        DT_TRY(dt_index_check_writable(t, "masked_fill_"));
        return DT_OK;
    }
    DT_TRY(dt_broadcast_shapes(shape, &nd, t->shape, t->ndim, mask->shape,
                               mask->ndim, "masked_fill"));
    DT_TRY(dt_index_prepare_out(out, shape, nd, t->dtype,
                                dt_tensor_device(t), "masked_fill"));
    return dt_copy_(*out, t);
}

dt_status
dt_masked_fill_forward(dt_tensor **out, const dt_tensor *t,
                       const dt_tensor *mask, const dt_tensor *value)
{
    dt_tensor *v = NULL, *u = NULL, *m = NULL;
    DT_TRY(check_masked_fill_args(t, mask, value));
    /* unalias before writing: the mask may be a view of the output */
    DT_TRY(dt_index_unalias(&u, mask, t));
    dt_status s = masked_fill_prepare(out, t, u);
    if (s == DT_OK) {
        s = dt_to_dtype(&v, value, (*out)->dtype);
    }
    if (s == DT_OK) {
        s = dt_expand_to(&m, u, (*out)->shape, (*out)->ndim, "masked_fill");
    }
    if (s == DT_OK) {
        fill_ctx c = {dt_tensor_data(v), dt_dtype_size(v->dtype)};
        dt_tensor *ops[2] = {*out, m};
        dt_iter_run(ops, 2, masked_fill_loop, &c);
        dt_tensor_bump_version(*out);
    }
    dt_tensor_release(v);
    dt_tensor_release(u);
    dt_tensor_release(m);
    return s;
}

/* ---------------------------------------------------------------------- */
/* one_hot                                                                 */

/* Range of a contiguous int64 tensor with n > 0 elements. */
static void
min_max(int64_t *lo, int64_t *hi, const int64_t *p, int64_t n)
{
    *lo = *hi = p[0];
    for (int64_t i = 1; i < n; i++) {
        *lo = p[i] < *lo ? p[i] : *lo;
        *hi = p[i] > *hi ? p[i] : *hi;
    }
}

static dt_status
one_hot_classes(int64_t *classes, const int64_t *p, int64_t n)
{
    int64_t lo, hi;
    if (n == 0) {
        if (*classes == -1) {
            return dt_fail(DT_ERR_RUNTIME, "one_hot: Can not infer total "
                           "number of classes from empty tensor.");
        }
        return DT_OK;
    }
    min_max(&lo, &hi, p, n);
    if (lo < 0) {
        return dt_fail(DT_ERR_RUNTIME, "one_hot: Class values must be "
                       "non-negative (got %" PRId64 ").", lo);
    }
    if (*classes == -1) {
        *classes = hi + 1;
    } else if (hi >= *classes) {
        return dt_fail(DT_ERR_RUNTIME, "one_hot: Class values must be "
                       "smaller than num_classes (got %" PRId64 " with "
                       "num_classes=%" PRId64 ").", hi, *classes);
    }
    return DT_OK;
}

dt_status
dt_one_hot_forward(dt_tensor **out, const dt_tensor *t, int64_t num_classes)
{
    int64_t shape[DT_MAX_DIMS];
    dt_tensor *c = NULL;
    if (t->dtype != DT_INT64) {
        return dt_fail(DT_ERR_RUNTIME, "one_hot is only applicable to index "
                       "tensor of type LongTensor (got %s).",
                       dt_dtype_name(t->dtype));
    }
    if (num_classes < -1) {
        return dt_fail(DT_ERR_RUNTIME, "one_hot: num_classes should be -1 or "
                       "non-negative, got %" PRId64, num_classes);
    }
    if (t->ndim >= DT_MAX_DIMS) {
        return dt_fail(DT_ERR_VALUE, "one_hot: the result would have more "
                       "than %d dimensions", DT_MAX_DIMS);
    }
    DT_TRY(dt_contiguous(&c, t));
    const int64_t *p = dt_tensor_data(c);
    int64_t n = dt_tensor_numel(c);
    dt_status s = one_hot_classes(&num_classes, p, n);
    memcpy(shape, t->shape, (size_t)t->ndim * sizeof *shape);
    shape[t->ndim] = num_classes;
    if (s == DT_OK && *out) {   /* an out= tensor: check, then clear */
        s = dt_index_prepare_out(out, shape, t->ndim + 1, DT_INT64,
                                 dt_tensor_device(t), "one_hot");
        s = s == DT_OK ? dt_fill_(*out, 0.0) : s;
    } else if (s == DT_OK) {
        s = dt_tensor_zeros(out, shape, t->ndim + 1, DT_INT64,
                            dt_tensor_device(t));
    }
    if (s == DT_OK) {
        /* out may be a strided out=; walk it by its own strides */
        dt_tensor *o = *out;
        int64_t *dst = dt_tensor_data(o), idx[DT_MAX_DIMS] = {0};
        for (int64_t i = 0; i < n; i++) {
            int64_t at = p[i] * o->strides[t->ndim];
            for (int d = 0; d < t->ndim; d++) {
                at += idx[d] * o->strides[d];
            }
            dst[at] = 1;
            for (int d = t->ndim - 1; d >= 0 && ++idx[d] == t->shape[d];
                 d--) {
                idx[d] = 0;
            }
        }
    }
    dt_tensor_release(c);
    return s;
}
