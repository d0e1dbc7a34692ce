/* reduce.c: the reduction engine that reduce_sum.c and reduce_arg.c share.
 *
 * A plan splits the input into kept dims K (the output's) and reduced dims
 * R. The engine then runs one of two loop orders, chosen so the innermost
 * loop walks the densest input dim:
 *   inner: per output element, fold runs along the last reduced dim
 *          (sum over the last dim, or over everything);
 *   outer: per output row along the densest kept dim, fold every reduced
 *          row into a row of accumulators (sum over dim 0), which keeps
 *          the inner loop contiguous instead of striding down columns.
 * Accumulators are doubles (floating inputs) or int64 (integer inputs),
 * one per output element; dt_reduce_store casts them to the result dtype.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "reduce.h"

/* Fills mask[] from dims; RuntimeError on repeats, IndexError out of
 * range, both naming the op. */
static dt_status
reduce_mask(bool *mask, const dt_tensor *t, const int64_t *dims, int ndims,
            const char *op)
{
    int n = t->ndim ? t->ndim : 1;
    for (int d = 0; d < n; d++) {
        mask[d] = ndims == 0;
    }
    for (int i = 0; i < ndims; i++) {
        int64_t d = dims[i];
        DT_TRY(dt_wrap_dim(&d, t->ndim, op));
        if (mask[d]) {
            return dt_fail(DT_ERR_RUNTIME,
                           "%s: dim %" PRId64 " appears multiple times in "
                           "the list of dims", op, d);
        }
        mask[d] = true;
    }
    return DT_OK;
}

/* Merges neighbours that step as one: (a, b) with stride[a] ==
 * stride[b] * size[b]. extra, when given, must merge the same way. */
static int
coalesce(int64_t *size, int64_t *stride, int64_t *extra, int n)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (m > 0 && stride[m - 1] == stride[i] * size[i] &&
            (!extra || extra[m - 1] == extra[i] * size[i])) {
            size[m - 1] *= size[i];
            stride[m - 1] = stride[i];
            if (extra) {
                extra[m - 1] = extra[i];
            }
            continue;
        }
        size[m] = size[i];
        stride[m] = stride[i];
        if (extra) {
            extra[m] = extra[i];
        }
        m++;
    }
    return m;
}

/* Stable insertion sort of the reduced dims by stride, largest first. */
static void
sort_by_stride(int64_t *size, int64_t *stride, int n)
{
    for (int i = 1; i < n; i++) {
        int64_t sz = size[i], st = stride[i];
        int j = i;
        for (; j > 0 && llabs(stride[j - 1]) < llabs(st); j--) {
            size[j] = size[j - 1];
            stride[j] = stride[j - 1];
        }
        size[j] = sz;
        stride[j] = st;
    }
}

dt_status
dt_reduce_plan_init(dt_reduce_plan *p, const dt_tensor *t,
                    const int64_t *dims, int ndims, bool keepdim,
                    bool ordered, const char *op)
{
    bool mask[DT_MAX_DIMS];
    DT_TRY(reduce_mask(mask, t, dims, ndims, op));
    int64_t isz = (int64_t)dt_dtype_size(t->dtype);
    memset(p, 0, sizeof *p);
    p->data = dt_tensor_data(t);
    p->dtype = t->dtype;
    p->kn = p->rn = 1;
    for (int d = 0; d < t->ndim; d++) {
        if (mask[d]) {
            p->rn *= t->shape[d];
            if (keepdim) {
                p->out_shape[p->out_ndim++] = 1;
            }
            if (t->shape[d] != 1) {
                p->rsize[p->nr] = t->shape[d];
                p->rstride[p->nr++] = t->strides[d] * isz;
            }
        } else {
            p->kn *= t->shape[d];
            p->out_shape[p->out_ndim++] = t->shape[d];
            if (t->shape[d] != 1) {
                p->ksize[p->nk] = t->shape[d];
                p->kstride[p->nk++] = t->strides[d] * isz;
            }
        }
    }
    /* the output is contiguous in kept-dim order */
    int64_t step = 1;
    for (int i = p->nk - 1; i >= 0; i--) {
        p->kout[i] = step;
        step *= p->ksize[i];
    }
    p->nk = coalesce(p->ksize, p->kstride, p->kout, p->nk);
    if (!ordered) {
        sort_by_stride(p->rsize, p->rstride, p->nr);
    }
    p->nr = coalesce(p->rsize, p->rstride, NULL, p->nr);
    if (p->nr == 0) {
        /* every reduced dim had size 1: one element per output */
        p->rsize[0] = 1;
        p->rstride[0] = isz;
        p->nr = 1;
    }
    return DT_OK;
}

/* Advances an odometer over dims [0, n) of size[]; returns false when it
 * wraps around. *ptr moves by stride[] bytes. */
static bool
odometer_next(int64_t *idx, const int64_t *size, const int64_t *stride,
              int n, const char **ptr)
{
    for (int d = n - 1; d >= 0; d--) {
        *ptr += stride[d];
        if (++idx[d] < size[d]) {
            return true;
        }
        *ptr -= stride[d] * size[d];
        idx[d] = 0;
    }
    return false;
}

static void
run_inner(const dt_reduce_plan *p, dt_reduce_fn fn, dt_reduce_args *a,
          char *val, int64_t *idx, const double *center)
{
    int64_t kidx[DT_MAX_DIMS] = {0};
    const char *kp = p->data;
    int last = p->nr - 1;
    a->n = p->rsize[last];
    a->stride = p->rstride[last];
    a->vstride = 0;
    /* the output is contiguous in kept order, so element e is output e */
    for (int64_t e = 0; e < p->kn; e++) {
        int64_t ridx[DT_MAX_DIMS] = {0};
        const char *rp = kp;
        a->val = val + e * 8;
        a->idx = idx ? idx + e : NULL;
        a->center = center ? center + e : NULL;
        a->pos = 0;
        do {
            a->in = rp;
            fn(a);
            a->pos += a->n;
        } while (odometer_next(ridx, p->rsize, p->rstride, last, &rp));
        odometer_next(kidx, p->ksize, p->kstride, p->nk, &kp);
    }
}

static void
run_outer(const dt_reduce_plan *p, int j, dt_reduce_fn fn, dt_reduce_args *a,
          char *val, int64_t *idx, const double *center)
{
    /* the kept dims other than j, with their output strides */
    int64_t size[DT_MAX_DIMS], stride[DT_MAX_DIMS], ostride[DT_MAX_DIMS];
    int64_t kidx[DT_MAX_DIMS] = {0};
    int n = 0;
    for (int d = 0; d < p->nk; d++) {
        if (d != j) {
            size[n] = p->ksize[d];
            stride[n] = p->kstride[d];
            ostride[n++] = p->kout[d];
        }
    }
    a->n = p->ksize[j];
    a->stride = p->kstride[j];
    a->vstride = p->kout[j];
    const char *kp = p->data;
    do {
        int64_t o = 0;
        for (int d = 0; d < n; d++) {
            o += kidx[d] * ostride[d];
        }
        a->val = val + o * 8;
        a->idx = idx ? idx + o : NULL;
        a->center = center ? center + o : NULL;
        int64_t ridx[DT_MAX_DIMS] = {0};
        const char *rp = kp;
        a->pos = 0;
        do {
            a->in = rp;
            fn(a);
            a->pos++;
        } while (odometer_next(ridx, p->rsize, p->rstride, p->nr, &rp));
    } while (odometer_next(kidx, size, stride, n, &kp));
}

void
dt_reduce_run(const dt_reduce_plan *p, dt_reduce_fn inner,
              dt_reduce_fn outer, void *val, int64_t *idx,
              const double *center, double norm_p)
{
    if (p->kn == 0 || p->rn == 0) {
        return;   /* nothing to fold: the accumulators hold the identity */
    }
    dt_reduce_args a = {.p = norm_p};
    /* Outer order when some kept dim is denser than the inner run. */
    int j = -1;
    int64_t best = llabs(p->rstride[p->nr - 1]);
    for (int d = 0; d < p->nk; d++) {
        /* an expanded (stride 0) kept dim is no reason to switch */
        if (p->kstride[d] != 0 && llabs(p->kstride[d]) < best) {
            best = llabs(p->kstride[d]);
            j = d;
        }
    }
    if (j >= 0) {
        run_outer(p, j, outer, &a, val, idx, center);
    } else {
        run_inner(p, inner, &a, val, idx, center);
    }
}

static void
store_int(char *dst, dt_dtype dtype, int64_t v)
{
    switch (dtype) {
    case DT_BOOL: *(bool *)dst = v != 0; break;
    case DT_UINT8: *(uint8_t *)dst = (uint8_t)v; break;
    case DT_INT32: *(int32_t *)dst = (int32_t)(uint32_t)v; break;
    case DT_INT64: *(int64_t *)dst = v; break;
    default: dt_store_double(dst, dtype, (double)v); break;
    }
}

dt_status
dt_reduce_store(dt_tensor **out, const dt_reduce_plan *p, const void *val,
                bool is_int, dt_dtype dtype, const char *op)
{
    DT_TRY(dt_prepare_out(out, p->out_shape, p->out_ndim, dtype,
                          DT_DEVICE_CPU, op));
    dt_tensor *dst = *out;
    bool direct = dst->dtype == dtype && dt_tensor_is_contiguous(dst);
    if (!direct) {
        dst = NULL;
        DT_TRY(dt_tensor_empty(&dst, p->out_shape, p->out_ndim, dtype,
                               DT_DEVICE_CPU));
    }
    char *d = dt_tensor_data(dst);
    size_t isz = dt_dtype_size(dtype);
    if (is_int) {
        const int64_t *v = val;
        for (int64_t i = 0; i < p->kn; i++) {
            store_int(d + i * isz, dtype, v[i]);
        }
    } else if (dtype == DT_FLOAT32) {
        const double *v = val;
        for (int64_t i = 0; i < p->kn; i++) {
            ((float *)d)[i] = (float)v[i];
        }
    } else {
        const double *v = val;
        for (int64_t i = 0; i < p->kn; i++) {
            dt_store_double(d + i * isz, dtype, v[i]);
        }
    }
    if (!direct) {
        dt_status s = dt_copy_(*out, dst);
        dt_tensor_release(dst);
        return s;
    }
    dt_tensor_bump_version(dst);
    return DT_OK;
}
