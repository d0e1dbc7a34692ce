/* index_plan.c: the plan behind advanced indexing. It turns an index
 * list (index tensors, masks, ':') into the result's layout and one table
 * of element offsets or one index tensor, which index.c's gather and
 * scatter then read (see dt_index_plan in index.h).
 *
 * Letters: t is the indexed tensor, B the broadcast shape of the index
 * tensors, R the result's shape (B placed among t's unindexed dims).
 */
#include <inttypes.h>

#include "../dt_impl.h"
#include "index.h"

/* ---------------------------------------------------------------------- */
/* masks                                                                   */

static bool
is_mask(dt_dtype d)
{
    return d == DT_BOOL || d == DT_UINT8;
}

/* A k-dim mask must match dims d.. of t exactly. */
static dt_status
check_mask(const dt_tensor *t, const dt_tensor *mask, int d)
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
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* the indexing plan                                                       */

void
dt_index_plan_free(dt_index_plan *p)
{
    for (int i = 0; i < DT_MAX_DIMS; i++) {
        dt_tensor_release(p->list[i]);
    }
    dt_tensor_release(p->index);
}

/* A lone mask (the only index) becomes element offsets at once: every
 * dim it covers holds them, and they are what p->index reads. */
static dt_status
plan_lone_mask(dt_index_plan *p, const dt_tensor *t, const dt_tensor *mask,
               int d)
{
    DT_TRY(check_mask(t, mask, d));
    DT_TRY(dt_index_mask_offsets(&p->index, t, mask, d));
    for (int j = 0; j < mask->ndim; j++) {
        dt_tensor_retain(p->index);
        p->list[d + j] = p->index;
    }
    p->map = (dt_index_map){-1, 1, false};
    return DT_OK;
}

/* Places a k-dim mask at dims d.. of t as the k columns of nonzero(). */
static dt_status
plan_mask(dt_index_plan *p, const dt_tensor *t, const dt_tensor *mask, int d)
{
    dt_tensor *nz = NULL;
    DT_TRY(check_mask(t, mask, d));
    DT_TRY(dt_nonzero_forward(&nz, mask));
    dt_status s = DT_OK;
    for (int j = 0; j < mask->ndim && s == DT_OK; j++) {
        s = dt_select(&p->list[d + j], nz, 1, j);
    }
    dt_tensor_release(nz);
    return s;
}

static dt_status
check_index_dtype(const dt_tensor *ix)
{
    if (!is_mask(ix->dtype) && ix->dtype != DT_INT64 &&
        ix->dtype != DT_INT32) {
        return dt_fail(DT_ERR_INDEX, "tensors used as indices must be long, "
                       "int, byte or bool tensors (got %s)",
                       dt_dtype_name(ix->dtype));
    }
    return DT_OK;
}

/* Fills p->list: one entry per dim of t, masks expanded. */
static dt_status
plan_list(dt_index_plan *p, const dt_tensor *t, dt_tensor *const *indices,
          int n)
{
    int d = 0, nindex = 0;
    for (int j = 0; j < n; j++) {
        nindex += indices[j] != NULL;
    }
    for (int j = 0; j < n; j++) {
        const dt_tensor *ix = indices[j];
        if (ix) {
            DT_TRY(check_index_dtype(ix));
            DT_TRY(dt_check_same_device(t, ix, "index"));
        }
        int width = ix && is_mask(ix->dtype) ? ix->ndim : 1;
        if (d + width > t->ndim) {
            return dt_fail(DT_ERR_INDEX, "too many indices for tensor of "
                           "dimension %d", t->ndim);
        }
        if (ix && is_mask(ix->dtype)) {
            DT_TRY(nindex == 1 ? plan_lone_mask(p, t, ix, d)
                               : plan_mask(p, t, ix, d));
        } else if (ix) {
            /* int32 indices are rare: one copy lets the kernels read
             * int64 only */
            DT_TRY(dt_to_dtype(&p->list[d], ix, DT_INT64));
        }
        d += width;
    }
    return DT_OK;
}

/* B: the broadcast shape of the index tensors. */
static dt_status
plan_broadcast(const dt_index_plan *p, int ndim, int64_t *bshape, int *bnd)
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

/* R, t's strides in it, and where B goes. */
static dt_status
plan_layout(dt_index_plan *p, const dt_tensor *t, const int64_t *bshape,
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
    p->bpos = last - first + 1 == nadv ? first : 0;
    p->bnd = bnd;
    p->rnd = t->ndim - nadv + bnd;
    if (p->rnd > DT_MAX_DIMS) {
        return dt_fail(DT_ERR_INDEX, "index: the result would have %d "
                       "dimensions, more than the %d supported", p->rnd,
                       DT_MAX_DIMS);
    }
    int r = 0;
    for (int d = 0; d < p->bpos; d++, r++) {
        p->rshape[r] = t->shape[d];
        p->tstrides[r] = t->strides[d];
    }
    for (int b = 0; b < bnd; b++, r++) {
        p->rshape[r] = bshape[b];
        p->tstrides[r] = 0;
    }
    for (int d = p->bpos; d < t->ndim; d++) {
        if (!p->list[d]) {
            p->rshape[r] = t->shape[d];
            p->tstrides[r++] = t->strides[d];
        }
    }
    return DT_OK;
}

typedef struct offset_ctx {
    int64_t size, stride;
    bool failed;
    int64_t bad;
} offset_ctx;

static void
offset_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    offset_ctx *c = vctx;
    for (int64_t i = 0; i < n; i++) {
        int64_t v = *(const int64_t *)(ptrs[1] + i * strides[1]);
        int64_t w = v < 0 ? v + c->size : v;
        if ((uint64_t)w >= (uint64_t)c->size) {
            c->bad = c->failed ? c->bad : v;
            c->failed = true;
            continue;
        }
        *(int64_t *)(ptrs[0] + i * strides[0]) += w * c->stride;
    }
}

/* Several index tensors: sum their element offsets into one (B) table. */
static dt_status
plan_offsets(dt_index_plan *p, const dt_tensor *t, const int64_t *bshape)
{
    DT_TRY(dt_tensor_zeros(&p->index, bshape, p->bnd, DT_INT64,
                           dt_tensor_device(t)));
    p->map = (dt_index_map){-1, 1, false};
    for (int d = 0; d < t->ndim; d++) {
        dt_tensor *ix = NULL;
        if (!p->list[d]) {
            continue;
        }
        DT_TRY(dt_expand(&ix, p->list[d], bshape, p->bnd));
        offset_ctx c = {t->shape[d], t->strides[d], false, 0};
        dt_tensor *ops[2] = {p->index, ix};
        dt_iter_run(ops, 2, offset_loop, &c);
        dt_tensor_release(ix);
        if (c.failed) {
            return dt_fail(DT_ERR_INDEX, "index %" PRId64 " is out of "
                           "bounds for dimension %d with size %" PRId64,
                           c.bad, d, t->shape[d]);
        }
    }
    return DT_OK;
}

static int64_t
numel_of(const int64_t *shape, int ndim)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        n *= shape[i];
    }
    return n;
}

/* p->index and p->map: a lone mask set them already; one index tensor is
 * read as it is (checked by the kernel); several are summed. */
static dt_status
plan_index(dt_index_plan *p, const dt_tensor *t, const int64_t *bshape)
{
    int lone = -1, nidx = 0;
    for (int d = 0; d < t->ndim; d++) {
        if (p->list[d]) {
            /* PyTorch refuses a non-empty index into an empty dim even
             * when the result is empty */
            if (t->shape[d] == 0 && numel_of(bshape, p->bnd) > 0) {
                return dt_fail(DT_ERR_INDEX, "index is out of bounds for "
                               "dimension %d with size 0", d);
            }
            lone = d;
            nidx++;
        }
    }
    if (p->index) {
        return DT_OK;
    }
    if (nidx == 1) {
        dt_tensor_retain(p->list[lone]);
        p->index = p->list[lone];
        p->map = (dt_index_map){t->shape[lone], t->strides[lone], true};
        return DT_OK;
    }
    if (numel_of(p->rshape, p->rnd) == 0) {
        /* nothing is read, so PyTorch checks no bounds: offsets of 0 */
        p->map = (dt_index_map){-1, 1, false};
        return dt_tensor_zeros(&p->index, bshape, p->bnd, DT_INT64,
                               dt_tensor_device(t));
    }
    return plan_offsets(p, t, bshape);
}

dt_status
dt_index_plan_build(dt_index_plan *p, const dt_tensor *t,
                    dt_tensor *const *indices, int n)
{
    int64_t bshape[DT_MAX_DIMS];
    int bnd;
    memset(p, 0, sizeof *p);
    DT_TRY(plan_list(p, t, indices, n));
    DT_TRY(plan_broadcast(p, t->ndim, bshape, &bnd));
    DT_TRY(plan_layout(p, t, bshape, bnd));
    return plan_index(p, t, bshape);
}

/* t restrided to R, and p->index expanded to R (both views). */
dt_status
dt_index_plan_views(dt_tensor **tv, dt_tensor **xv, const dt_index_plan *p,
                    const dt_tensor *t)
{
    int64_t xstrides[DT_MAX_DIMS] = {0};
    const dt_tensor *x = p->index;
    for (int b = 0; b < p->bnd; b++) {
        /* x has B's shape, or broadcasts to it from the right */
        int j = b - (p->bnd - x->ndim);
        xstrides[p->bpos + b] = j >= 0 && x->shape[j] != 1 ? x->strides[j]
                                                            : 0;
    }
    DT_TRY(dt_view_as_strided(tv, t, p->rshape, p->tstrides, p->rnd,
                              t->offset));
    return dt_view_as_strided(xv, x, p->rshape, xstrides, p->rnd,
                              x->offset);
}

dt_status
dt_index_plan_oob(const dt_index_plan *p, const dt_tensor *t, int64_t bad)
{
    int d = 0;
    while (d < t->ndim && !p->list[d]) {
        d++;   /* only a lone index tensor is checked by the kernels */
    }
    return dt_fail(DT_ERR_INDEX, "index %" PRId64 " is out of bounds for "
                   "dimension %d with size %" PRId64, bad, d, p->map.size);
}
