/* index.c: advanced indexing. t[indices] is a gather through a table of
 * element offsets, index_put_ is its scatter twin; index_select and
 * nonzero (which turns boolean masks into index tensors) live here too,
 * with the offset/gather/scatter kernels that scatter.c shares.
 *
 * Letters: t is the indexed tensor, B the broadcast shape of the index
 * tensors, R the result's shape (B placed among t's unindexed dims).
 */
#include <inttypes.h>
#include <stdlib.h>

#include "../dt_impl.h"
#include "index.h"

/* ---------------------------------------------------------------------- */
/* shared kernels                                                          */

typedef struct offset_ctx {
    dt_dtype dtype;           /* of the index: int64 or int32 */
    int64_t size, stride;     /* of the indexed dim */
    bool wrap, failed;
    int64_t bad;
} offset_ctx;

static void
offset_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    offset_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) {
        const char *p = ptrs[1] + i * strides[1];
        int64_t v = c->dtype == DT_INT64 ? *(const int64_t *)p
                                         : *(const int32_t *)p;
        int64_t w = v < 0 && c->wrap ? v + c->size : v;
        if (w < 0 || w >= c->size) {
            if (!c->failed) {
                c->failed = true;
                c->bad = v;
            }
            continue;
        }
        *(int64_t *)(ptrs[0] + i * strides[0]) += w * c->stride;
    }
}

bool
dt_index_add_offsets(dt_tensor *off, const dt_tensor *index, int64_t size,
                     int64_t stride, bool wrap, int64_t *bad)
{
    dt_tensor *ix = NULL;
    /* callers broadcast-check first, so this only fails on memory */
    if (dt_expand(&ix, index, off->shape, off->ndim) != DT_OK) {
        *bad = 0;
        return false;
    }
    offset_ctx c = {index->dtype, size, stride, wrap, false, 0};
    dt_tensor *ops[2] = {off, ix};
    dt_iter_run(ops, 2, offset_loop, &c);
    dt_tensor_release(ix);
    *bad = c.bad;
    return !c.failed;
}

/* One loop body per element size: the data only moves. */
#define GATHER_LOOP(T)                                                    \
    for (int64_t i = 0; i < n; i++) {                                     \
        int64_t o = *(const int64_t *)(off + i * os) * isz;               \
        *(T *)(dst + i * ds) = *(const T *)(src + i * ss + o);            \
    }                                                                     \
    break

static void
gather_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    int64_t isz = *(const int64_t *)vctx;
    char *dst = ptrs[0];
    const char *src = ptrs[1], *off = ptrs[2];
    int64_t ds = strides[0], ss = strides[1], os = strides[2];
    if (os == 0 && ds == isz && ss == isz) {
        /* one offset for the whole inner loop: a row of an embedding
         * table, say, which is one memcpy */
        memcpy(dst, src + *(const int64_t *)off * isz, (size_t)(n * isz));
        return;
    }
    switch (isz) {
    case 1: GATHER_LOOP(uint8_t);
    case 2: GATHER_LOOP(uint16_t);
    case 4: GATHER_LOOP(uint32_t);
    default: GATHER_LOOP(uint64_t);
    }
}

void
dt_index_gather_(dt_tensor *out, const dt_tensor *src, const dt_tensor *off)
{
    DT_ASSERT(out->dtype == src->dtype && off->dtype == DT_INT64);
    int64_t isz = (int64_t)dt_dtype_size(out->dtype);
    dt_tensor *ops[3] = {out, (dt_tensor *)src, (dt_tensor *)off};
    dt_iter_run(ops, 3, gather_loop, &isz);
}

#define SCATTER_LOOP(T)                                                   \
    for (int64_t i = 0; i < n; i++) {                                     \
        int64_t o = *(const int64_t *)(off + i * os) * isz;               \
        *(T *)(dst + i * ds + o) = *(const T *)(val + i * vs);            \
    }                                                                     \
    break

/* dst += val in the compute type C, converting with TO and FROM. */
#define ACCUMULATE_LOOP(T, C, TO, FROM)                                   \
    for (int64_t i = 0; i < n; i++) {                                     \
        T *d = (T *)(dst + i * ds + *(const int64_t *)(off + i * os) *   \
                     isz);                                                \
        C sum = (C)TO(*d) + (C)TO(*(const T *)(val + i * vs));            \
        *d = FROM(sum);                                                   \
    }                                                                     \
    break

#define DT_ID(x) (x)

static void
scatter_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    int64_t isz = *(const int64_t *)vctx;
    char *dst = ptrs[0];
    const char *val = ptrs[1], *off = ptrs[2];
    int64_t ds = strides[0], vs = strides[1], os = strides[2];
    switch (isz) {
    case 1: SCATTER_LOOP(uint8_t);
    case 2: SCATTER_LOOP(uint16_t);
    case 4: SCATTER_LOOP(uint32_t);
    default: SCATTER_LOOP(uint64_t);
    }
}

static void
accumulate_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    dt_dtype dtype = *(const dt_dtype *)vctx;
    int64_t isz = (int64_t)dt_dtype_size(dtype);
    char *dst = ptrs[0];
    const char *val = ptrs[1], *off = ptrs[2];
    int64_t ds = strides[0], vs = strides[1], os = strides[2];
    switch (dtype) {
    case DT_BOOL: ACCUMULATE_LOOP(bool, int, DT_ID, (bool));
    case DT_UINT8: ACCUMULATE_LOOP(uint8_t, uint8_t, DT_ID, DT_ID);
    case DT_INT32:
        /* wraps like PyTorch; unsigned add keeps overflow defined */
        ACCUMULATE_LOOP(int32_t, uint32_t, DT_ID, (int32_t));
    case DT_INT64: ACCUMULATE_LOOP(int64_t, uint64_t, DT_ID, (int64_t));
    case DT_FLOAT16:
        ACCUMULATE_LOOP(dt_half, float, dt_half_to_float, dt_float_to_half);
    case DT_BFLOAT16:
        ACCUMULATE_LOOP(dt_bf16, float, dt_bf16_to_float, dt_float_to_bf16);
    case DT_FLOAT32: ACCUMULATE_LOOP(float, float, DT_ID, DT_ID);
    default: ACCUMULATE_LOOP(double, double, DT_ID, DT_ID);
    }
}

void
dt_index_scatter_(dt_tensor *dst, const dt_tensor *values,
                  const dt_tensor *off, bool accumulate)
{
    DT_ASSERT(dst->dtype == values->dtype && off->dtype == DT_INT64);
    dt_tensor *ops[3] = {dst, (dt_tensor *)values, (dt_tensor *)off};
    if (accumulate) {
        dt_dtype dtype = dst->dtype;
        dt_iter_run(ops, 3, accumulate_loop, &dtype);
    } else {
        int64_t isz = (int64_t)dt_dtype_size(dst->dtype);
        dt_iter_run(ops, 3, scatter_loop, &isz);
    }
}

dt_status
dt_index_prepare_out(dt_tensor **out, const int64_t *shape, int ndim,
                     dt_dtype dtype, dt_device device, const char *op)
{
    if (*out && (*out)->dtype != dtype) {
        return dt_fail(DT_ERR_RUNTIME, "%s: expected out tensor to have "
                       "dtype %s, but got %s instead", op,
                       dt_dtype_name(dtype), dt_dtype_name((*out)->dtype));
    }
    return dt_prepare_out(out, shape, ndim, dtype, device, op);
}

dt_status
dt_index_check_writable(const dt_tensor *t, const char *op)
{
    for (int i = 0; i < t->ndim && dt_tensor_numel(t) > 0; i++) {
        if (t->shape[i] > 1 && t->strides[i] == 0) {
            return dt_fail(DT_ERR_RUNTIME,
                           "%s: unsupported operation: more than one "
                           "element of the written-to tensor refers to a "
                           "single memory location. Please clone() the "
                           "tensor before performing the operation.", op);
        }
    }
    return DT_OK;
}

dt_status
dt_index_unalias(dt_tensor **out, const dt_tensor *t, const dt_tensor *dst)
{
    if (t->storage == dst->storage) {
        return dt_clone(out, t);
    }
    dt_tensor_retain((dt_tensor *)t);
    *out = (dt_tensor *)t;
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* nonzero                                                                 */

/* The number of non-zero bytes in a contiguous 1-byte tensor. */
static int64_t
count_nonzero(const uint8_t *p, int64_t n)
{
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i++) {
        nnz += p[i] != 0;
    }
    return nnz;
}

dt_status
dt_nonzero_forward(dt_tensor **out, const dt_tensor *t)
{
    dt_tensor *flags = NULL;
    /* bool and uint8 are tested byte by byte; anything else becomes a
     * contiguous bool tensor first (-0.0 is zero, NaN is not) */
    if (t->dtype == DT_BOOL || t->dtype == DT_UINT8) {
        DT_TRY(dt_contiguous(&flags, t));
    } else {
        DT_TRY(dt_to_dtype(&flags, t, DT_BOOL));
    }
    const uint8_t *p = dt_tensor_data(flags);
    int64_t n = dt_tensor_numel(t), k = t->ndim;
    int64_t shape[2] = {count_nonzero(p, n), k};
    dt_status s = dt_index_prepare_out(out, shape, 2, DT_INT64,
                                       dt_tensor_device(t), "nonzero");
    if (s != DT_OK) {
        dt_tensor_release(flags);
        return s;
    }
    int64_t *dst = dt_tensor_data(*out), idx[DT_MAX_DIMS] = {0};
    int64_t rs = (*out)->strides[0], cs = (*out)->strides[1];
    for (int64_t i = 0, row = 0; i < n; i++) {
        if (p[i]) {
            for (int64_t d = 0; d < k; d++) {
                dst[row * rs + d * cs] = idx[d];
            }
            row++;
        }
        for (int64_t d = k - 1; d >= 0 && ++idx[d] == t->shape[d]; d--) {
            idx[d] = 0;   /* odometer over t's row-major positions */
        }
    }
    dt_tensor_release(flags);
    dt_tensor_bump_version(*out);
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* the indexing plan                                                       */

typedef struct index_plan {
    dt_tensor *list[DT_MAX_DIMS];  /* per dim of t: int index or NULL */
    int rnd;                       /* result dims */
    int64_t rshape[DT_MAX_DIMS];   /* R */
    int64_t tstrides[DT_MAX_DIMS]; /* t restrided to R: 0 on B dims */
    int64_t ostrides[DT_MAX_DIMS]; /* off expanded to R: 0 off B dims */
    dt_tensor *off;                /* (B) int64 element offsets into t */
} index_plan;

static void
plan_free(index_plan *p)
{
    for (int i = 0; i < DT_MAX_DIMS; i++) {
        dt_tensor_release(p->list[i]);
    }
    dt_tensor_release(p->off);
}

static bool
is_mask(dt_dtype d)
{
    return d == DT_BOOL || d == DT_UINT8;
}

/* Places a k-dim mask at dims d.. of t as the k columns of nonzero(). */
static dt_status
mask_to_list(index_plan *p, const dt_tensor *t, const dt_tensor *mask,
             int d)
{
    if (mask->ndim == 0) {
        return dt_fail(DT_ERR_INDEX, "index: a 0-dim bool index is only "
                       "supported as a Python bool key (t[True])");
    }
    for (int j = 0; j < mask->ndim; j++) {
        if (mask->shape[j] != t->shape[d + j]) {
            char ms[160], ts[160];
            dt_shape_format(ms, sizeof ms, mask->shape, mask->ndim);
            dt_shape_format(ts, sizeof ts, t->shape, t->ndim);
            return dt_fail(DT_ERR_INDEX,
                           "The shape of the mask %s at index %d does not "
                           "match the shape of the indexed tensor %s at "
                           "index %d", ms, j, ts, d + j);
        }
    }
    dt_tensor *nz = NULL;
    DT_TRY(dt_nonzero_forward(&nz, mask));
    dt_status s = DT_OK;
    for (int j = 0; j < mask->ndim && s == DT_OK; j++) {
        s = dt_select(&p->list[d + j], nz, 1, j);
    }
    dt_tensor_release(nz);
    return s;
}

/* Fills p->list: one entry per dim of t, masks expanded. */
static dt_status
plan_list(index_plan *p, const dt_tensor *t, dt_tensor *const *indices,
          int n)
{
    int d = 0;
    for (int j = 0; j < n; j++) {
        const dt_tensor *ix = indices[j];
        if (ix && !is_mask(ix->dtype) && ix->dtype != DT_INT64 &&
            ix->dtype != DT_INT32) {
            return dt_fail(DT_ERR_INDEX, "tensors used as indices must be "
                           "long, int, byte or bool tensors (got %s)",
                           dt_dtype_name(ix->dtype));
        }
        int width = ix && is_mask(ix->dtype) ? ix->ndim : 1;
        if (d + width > t->ndim) {
            return dt_fail(DT_ERR_INDEX, "too many indices for tensor of "
                           "dimension %d", t->ndim);
        }
        if (ix && is_mask(ix->dtype)) {
            DT_TRY(mask_to_list(p, t, ix, d));
        } else if (ix) {
            DT_TRY(dt_check_same_device(t, ix, "index"));
            dt_tensor_retain((dt_tensor *)ix);
            p->list[d] = (dt_tensor *)ix;
        }
        d += width;
    }
    return DT_OK;
}

/* B: the broadcast shape of the index tensors. */
static dt_status
plan_broadcast(const index_plan *p, int ndim, int64_t *bshape, int *bnd)
{
    int64_t prev[DT_MAX_DIMS];
    *bnd = 0;
    for (int d = 0; d < ndim; d++) {
        const dt_tensor *ix = p->list[d];
        memcpy(prev, bshape, (size_t)*bnd * sizeof *prev);
        if (ix && dt_broadcast_shapes(bshape, bnd, prev, *bnd, ix->shape,
                                      ix->ndim, "index") != DT_OK) {
            char msg[1024] = "";
            size_t used = 0;
            for (int e = 0; e < ndim; e++) {
                if (!p->list[e] || used + 3 >= sizeof msg) {
                    continue;
                }
                if (used) {
                    memcpy(msg + used, ", ", 3);
                    used += 2;
                }
                dt_shape_format(msg + used, sizeof msg - used,
                                p->list[e]->shape, p->list[e]->ndim);
                used += strlen(msg + used);
            }
            return dt_fail(DT_ERR_INDEX, "shape mismatch: indexing tensors "
                           "could not be broadcast together with shapes %s",
                           msg);
        }
    }
    return DT_OK;
}

/* R and the strides that map it onto t and onto the offsets. */
static dt_status
plan_layout(index_plan *p, const dt_tensor *t, const int64_t *bshape,
            int bnd)
{
    int first = 0, last = -1, nadv = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (p->list[d]) {
            first = nadv ? first : d;
            last = d;
            nadv++;
        }
    }
    /* NumPy's rule: adjacent indexed dims keep their place, separated
     * ones go in front */
    bool adjacent = last - first + 1 == nadv;
    p->rnd = t->ndim - nadv + bnd;
    if (p->rnd > DT_MAX_DIMS) {
        return dt_fail(DT_ERR_INDEX, "index: the result would have %d "
                       "dimensions, more than the %d supported", p->rnd,
                       DT_MAX_DIMS);
    }
    int r = 0, before = adjacent ? first : 0;
    for (int d = 0; d < before; d++, r++) {
        p->rshape[r] = t->shape[d];
        p->tstrides[r] = t->strides[d];
        p->ostrides[r] = 0;
    }
    int64_t stride = 1;
    for (int b = bnd - 1; b >= 0; b--) {
        p->rshape[r + b] = bshape[b];
        p->tstrides[r + b] = 0;
        p->ostrides[r + b] = stride;
        stride *= bshape[b] ? bshape[b] : 1;
    }
    r += bnd;
    for (int d = before; d < t->ndim; d++) {
        if (!p->list[d]) {
            p->rshape[r] = t->shape[d];
            p->tstrides[r] = t->strides[d];
            p->ostrides[r++] = 0;
        }
    }
    return DT_OK;
}

static dt_status
plan_build(index_plan *p, const dt_tensor *t, dt_tensor *const *indices,
           int n)
{
    int64_t bshape[DT_MAX_DIMS];
    int bnd;
    memset(p, 0, sizeof *p);
    DT_TRY(plan_list(p, t, indices, n));
    DT_TRY(plan_broadcast(p, t->ndim, bshape, &bnd));
    DT_TRY(plan_layout(p, t, bshape, bnd));
    DT_TRY(dt_tensor_zeros(&p->off, bshape, bnd, DT_INT64,
                           dt_tensor_device(t)));
    int64_t rnumel = 1;
    for (int r = 0; r < p->rnd; r++) {
        rnumel *= p->rshape[r];
    }
    /* an empty result reads nothing, so PyTorch checks no bounds; but
     * it still refuses a non-empty index into an empty dim */
    for (int d = 0; d < t->ndim; d++) {
        int64_t bad;
        if (p->list[d] && t->shape[d] == 0 &&
            dt_tensor_numel(p->off) > 0) {
            return dt_fail(DT_ERR_INDEX, "index is out of bounds for "
                           "dimension %d with size 0", d);
        }
        if (p->list[d] && rnumel > 0 &&
            !dt_index_add_offsets(p->off, p->list[d], t->shape[d],
                                  t->strides[d], true, &bad)) {
            return dt_fail(DT_ERR_INDEX, "index %" PRId64 " is out of "
                           "bounds for dimension %d with size %" PRId64,
                           bad, d, t->shape[d]);
        }
    }
    return DT_OK;
}

/* t restrided to R, and the offsets expanded to R (both views). */
static dt_status
plan_views(dt_tensor **tv, dt_tensor **ov, const index_plan *p,
           const dt_tensor *t)
{
    DT_TRY(dt_view_as_strided(tv, t, p->rshape, p->tstrides, p->rnd,
                              t->offset));
    return dt_view_as_strided(ov, p->off, p->rshape, p->ostrides, p->rnd,
                              p->off->offset);
}

/* ---------------------------------------------------------------------- */
/* index, index_put_, index_select                                         */

dt_status
dt_index_forward(dt_tensor **out, const dt_tensor *t,
                 dt_tensor *const *indices, int n)
{
    index_plan p;
    dt_tensor *tv = NULL, *ov = NULL;
    dt_status s = plan_build(&p, t, indices, n);
    if (s == DT_OK) {
        s = dt_index_prepare_out(out, p.rshape, p.rnd, t->dtype,
                                 dt_tensor_device(t), "index");
    }
    if (s == DT_OK) {
        s = plan_views(&tv, &ov, &p, t);
    }
    if (s == DT_OK) {
        dt_index_gather_(*out, tv, ov);
        dt_tensor_bump_version(*out);
    }
    dt_tensor_release(tv);
    dt_tensor_release(ov);
    plan_free(&p);
    return s;
}

/* values without leading size-1 dims (PyTorch's slicePrefix1sSize), so
 * a (1, 1, 3) value fits a (3,) slot */
static dt_status
strip_leading_ones(dt_tensor **out, const dt_tensor *v)
{
    int k = 0;
    while (k < v->ndim && v->shape[k] == 1) {
        k++;
    }
    return dt_view_as_strided(out, v, v->shape + k, v->strides + k,
                              v->ndim - k, v->offset);
}

/* values stripped, unaliased from t and expanded to R */
static dt_status
put_values(dt_tensor **out, const dt_tensor *t, const dt_tensor *values,
           const index_plan *p)
{
    dt_tensor *v = NULL, *u = NULL;
    DT_TRY(strip_leading_ones(&v, values));
    dt_status s = dt_index_unalias(&u, v, t);
    dt_tensor_release(v);
    if (s != DT_OK) {
        return s;
    }
    s = dt_expand(out, u, p->rshape, p->rnd);
    if (s != DT_OK) {
        char vs[160], rs[160];
        dt_shape_format(vs, sizeof vs, values->shape, values->ndim);
        dt_shape_format(rs, sizeof rs, p->rshape, p->rnd);
        s = dt_fail(DT_ERR_RUNTIME, "index_put_: shape mismatch: value "
                    "tensor of shape %s cannot be broadcast to indexing "
                    "result of shape %s", vs, rs);
    }
    dt_tensor_release(u);
    return s;
}

dt_status
dt_index_put_forward(dt_tensor *t, dt_tensor *const *indices, int n,
                     const dt_tensor *values, bool accumulate)
{
    index_plan p;
    dt_tensor *tv = NULL, *ov = NULL, *v = NULL;
    if (values->dtype != t->dtype) {
        return dt_fail(DT_ERR_RUNTIME, "index_put_: Index put requires the "
                       "source and destination dtypes match, got %s for "
                       "the destination and %s for the source.",
                       dt_dtype_name(t->dtype), dt_dtype_name(values->dtype));
    }
    DT_TRY(dt_check_same_device(t, values, "index_put_"));
    DT_TRY(dt_index_check_writable(t, "index_put_"));
    dt_status s = plan_build(&p, t, indices, n);
    if (s == DT_OK) {
        s = put_values(&v, t, values, &p);
    }
    if (s == DT_OK) {
        s = plan_views(&tv, &ov, &p, t);
    }
    if (s == DT_OK) {
        dt_index_scatter_(tv, v, ov, accumulate);
        dt_tensor_bump_version(t);
    }
    dt_tensor_release(v);
    dt_tensor_release(tv);
    dt_tensor_release(ov);
    plan_free(&p);
    return s;
}

dt_status
dt_index_select_forward(dt_tensor **out, const dt_tensor *t, int64_t dim,
                        const dt_tensor *index)
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
    DT_TRY(dt_wrap_dim(&dim, t->ndim, "index_select"));
    DT_TRY(dt_check_same_device(t, index, "index_select"));
    int64_t m = dt_tensor_numel(index), one = 1, zero = 0;
    /* a 0-dim t acts as a vector of one element */
    int nd = t->ndim ? t->ndim : 1;
    const int64_t *tsh = t->ndim ? t->shape : &one;
    const int64_t *tst = t->ndim ? t->strides : &zero;
    int64_t rshape[DT_MAX_DIMS], tstrides[DT_MAX_DIMS], ostrides[DT_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        rshape[d] = d == dim ? m : tsh[d];
        tstrides[d] = d == dim ? 0 : tst[d];
        ostrides[d] = d == dim;
    }
    dt_tensor *off = NULL, *tv = NULL, *ov = NULL;
    int64_t bad;
    DT_TRY(dt_tensor_zeros(&off, &m, 1, DT_INT64, dt_tensor_device(t)));
    dt_status s = DT_OK;
    if (!dt_index_add_offsets(off, index, tsh[dim], tst[dim], false, &bad)) {
        s = dt_fail(DT_ERR_INDEX, "index_select(): index %" PRId64 " is out "
                    "of bounds for dimension %" PRId64 " with size %" PRId64,
                    bad, dim, tsh[dim]);
    }
    int rnd = t->ndim == 0 && m == 1 ? 0 : nd;
    if (s == DT_OK) {
        s = dt_index_prepare_out(out, rshape, rnd, t->dtype,
                                 dt_tensor_device(t), "index_select");
    }
    if (s == DT_OK) {
        s = dt_view_as_strided(&tv, t, rshape, tstrides, nd, t->offset);
    }
    if (s == DT_OK) {
        s = dt_view_as_strided(&ov, off, rshape, ostrides, nd, 0);
    }
    if (s == DT_OK) {
        dt_tensor *o = NULL;
        s = dt_view_as_strided(&o, *out, rshape, (*out)->ndim ?
                               (*out)->strides : &zero, nd, (*out)->offset);
        if (s == DT_OK) {
            dt_index_gather_(o, tv, ov);
            dt_tensor_bump_version(*out);
        }
        dt_tensor_release(o);
    }
    dt_tensor_release(off);
    dt_tensor_release(tv);
    dt_tensor_release(ov);
    return s;
}
