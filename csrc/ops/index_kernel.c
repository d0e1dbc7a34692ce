/* index_kernel.c: the strided loops under every indexing op. An index
 * value becomes an element offset (dt_index_map); the gather reads
 * src[i + offset], the scatter writes (or adds into) dst[i + offset], for
 * each i of a dt_iter_run over restrided views. Also the mask scans
 * (nonzero, mask offsets) and the small helpers the indexing files share
 * (out preparation, overlap checks).
 */
#include "../dt_impl.h"
#include "index.h"

typedef struct index_ctx {
    int64_t isz;           /* element size of the data */
    dt_dtype dtype;        /* of the data, for accumulation */
    dt_index_map map;
    bool failed;
    int64_t bad;           /* the first out-of-range index value */
} index_ctx;

/* The element offset of index value v under map m, or -1 when it is out
 * of range (valid offsets are >= 0: strides are never negative). The
 * loops pass a local copy of the map: the build has -fno-strict-aliasing,
 * so fields read through c would be reloaded after every store. */
static inline int64_t
resolve(const dt_index_map *m, index_ctx *c, int64_t v)
{
    if (m->size < 0) {
        return v;
    }
    int64_t w = v < 0 && m->wrap ? v + m->size : v;
    if ((uint64_t)w >= (uint64_t)m->size) {
        if (!c->failed) {
            c->failed = true;
            c->bad = v;
        }
        return -1;
    }
    return w * m->stride;
}

#define IX(i) (*(const int64_t *)(ix + (i) * xs))

/* ---------------------------------------------------------------------- */
/* check                                                                   */

static void
check_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    const char *ix = ptrs[0];
    int64_t xs = strides[0];
    const dt_index_map m = ((index_ctx *)vctx)->map;
    for (int64_t i = 0; i < n; i++) {
        resolve(&m, vctx, IX(i));
    }
}

bool
dt_index_check(const dt_tensor *index, dt_index_map map, int64_t *bad)
{
    index_ctx c = {0, DT_INT64, map, false, 0};
    DT_ASSERT(index->dtype == DT_INT64);
    dt_tensor *ops[1] = {(dt_tensor *)index};
    dt_iter_run(ops, 1, check_loop, &c);
    *bad = c.bad;
    return !c.failed;
}

/* ---------------------------------------------------------------------- */
/* gather                                                                  */

#define GATHER_LOOP(T)                                                       \
    for (int64_t i = 0; i < n; i++) {                                        \
        int64_t o = resolve(&m, c, IX(i));                                   \
        if (o >= 0) {                                                        \
            *(T *)(dst + i * ds) = *(const T *)(src + i * ss + o * isz);     \
        }                                                                    \
    }                                                                        \
    break

static void
gather_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    index_ctx *c = vctx;
    const dt_index_map m = c->map;
    int64_t isz = c->isz, ds = strides[0], ss = strides[1], xs = strides[2];
    char *dst = ptrs[0];
    const char *src = ptrs[1], *ix = ptrs[2];
    if (xs == 0) {
        /* one index for the whole inner loop: a row of an embedding
         * table, say, which is a plain (often contiguous) copy */
        int64_t o = resolve(&m, c, IX(0));
        if (o < 0) {
            return;
        }
        dt_copy_strided(dst, ds, src + o * isz, ss, n, (size_t)isz);
        return;
    }
    switch (isz) {
    case 1: GATHER_LOOP(uint8_t);
    case 2: GATHER_LOOP(uint16_t);
    case 4: GATHER_LOOP(uint32_t);
    default: GATHER_LOOP(uint64_t);
    }
}

bool
dt_index_gather_(dt_tensor *out, const dt_tensor *src, const dt_tensor *index,
                 dt_index_map map, int64_t *bad)
{
    DT_ASSERT(out->dtype == src->dtype && index->dtype == DT_INT64);
    index_ctx c = {(int64_t)dt_dtype_size(out->dtype), out->dtype, map,
                   false, 0};
    dt_tensor *ops[3] = {out, (dt_tensor *)src, (dt_tensor *)index};
    dt_iter_run(ops, 3, gather_loop, &c);
    *bad = c.bad;
    return !c.failed;
}

/* ---------------------------------------------------------------------- */
/* scatter and accumulate                                                  */

#define SCATTER_LOOP(T)                                                      \
    for (int64_t i = 0; i < n; i++) {                                        \
        int64_t o = resolve(&m, c, IX(i));                                   \
        if (o >= 0) {                                                        \
            *(T *)(dst + i * ds + o * isz) = *(const T *)(val + i * vs);     \
        }                                                                    \
    }                                                                        \
    break

static void
scatter_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    index_ctx *c = vctx;
    const dt_index_map m = c->map;
    int64_t isz = c->isz, ds = strides[0], vs = strides[1], xs = strides[2];
    char *dst = ptrs[0];
    const char *val = ptrs[1], *ix = ptrs[2];
    if (xs == 0) {
        int64_t o = resolve(&m, c, IX(0));
        if (o < 0) {
            return;
        }
        dt_copy_strided(dst + o * isz, ds, val, vs, n, (size_t)isz);
        return;
    }
    switch (isz) {
    case 1: SCATTER_LOOP(uint8_t);
    case 2: SCATTER_LOOP(uint16_t);
    case 4: SCATTER_LOOP(uint32_t);
    default: SCATTER_LOOP(uint64_t);
    }
}

/* dst[i + o_i] += val[i] computed in C, converting with TO and FROM. With
 * one offset for the whole row (xs == 0) and contiguous data the loop is
 * plain enough to vectorise. */
#define ACCUMULATE_LOOP(T, C, TO, FROM)                                      \
    if (xs == 0 && ds == (int64_t)sizeof(T) && vs == (int64_t)sizeof(T)) {   \
        int64_t o = resolve(&m, c, IX(0));                                   \
        T *__restrict d = (T *)(dst + (o < 0 ? 0 : o) * isz);                \
        const T *__restrict v = (const T *)val;                              \
        for (int64_t i = 0; i < n && o >= 0; i++) {                          \
            d[i] = FROM((C)TO(d[i]) + (C)TO(v[i]));                          \
        }                                                                    \
        break;                                                               \
    }                                                                        \
    for (int64_t i = 0; i < n; i++) {                                        \
        int64_t o = resolve(&m, c, IX(i));                                   \
        if (o >= 0) {                                                        \
            T *d = (T *)(dst + i * ds + o * isz);                            \
            *d = FROM((C)TO(*d) + (C)TO(*(const T *)(val + i * vs)));        \
        }                                                                    \
    }                                                                        \
    break

#define DT_ID(x) (x)

static void
accumulate_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    index_ctx *c = vctx;
    const dt_index_map m = c->map;
    int64_t isz = c->isz, ds = strides[0], vs = strides[1], xs = strides[2];
    char *dst = ptrs[0];
    const char *val = ptrs[1], *ix = ptrs[2];
    switch (c->dtype) {
    case DT_BOOL: ACCUMULATE_LOOP(bool, int, DT_ID, (bool));
    case DT_UINT8: ACCUMULATE_LOOP(uint8_t, uint8_t, DT_ID, DT_ID);
    case DT_INT32:
        /* wraps like PyTorch; unsigned adds keep the overflow defined */
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
                  const dt_tensor *index, dt_index_map map, bool accumulate)
{
    DT_ASSERT(dst->dtype == values->dtype && index->dtype == DT_INT64);
    index_ctx c = {(int64_t)dt_dtype_size(dst->dtype), dst->dtype, map,
                   false, 0};
    dt_tensor *ops[3] = {dst, (dt_tensor *)values, (dt_tensor *)index};
    dt_iter_run(ops, 3, accumulate ? accumulate_loop : scatter_loop, &c);
}

/* ---------------------------------------------------------------------- */
/* nonzero and masks                                                       */

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

dt_status
dt_index_mask_offsets(dt_tensor **out, const dt_tensor *t,
                      const dt_tensor *mask, int d)
{
    dt_tensor *flags = NULL;
    DT_TRY(dt_contiguous(&flags, mask));
    const uint8_t *p = dt_tensor_data(flags);
    int64_t n = dt_tensor_numel(mask), nnz = count_nonzero(p, n);
    dt_status s = dt_tensor_empty(out, &nnz, 1, DT_INT64,
                                  dt_tensor_device(t));
    int k = mask->ndim;
    int64_t last = mask->shape[k - 1], ls = t->strides[d + k - 1];
    int64_t *o = s == DT_OK ? dt_tensor_data(*out) : NULL;
    int64_t idx[DT_MAX_DIMS] = {0}, base = 0;
    for (int64_t r = 0; o && n > 0 && r < n / last; r++, p += last) {
        for (int64_t i = 0; i < last; i++) {
            if (p[i]) {
                *o++ = base + i * ls;
            }
        }
        for (int j = k - 2; j >= 0; j--) {   /* odometer over outer dims */
            base += t->strides[d + j];
            if (++idx[j] < mask->shape[j]) {
                break;
            }
            base -= t->strides[d + j] * mask->shape[j];
            idx[j] = 0;
        }
    }
    dt_tensor_release(flags);
    return s;
}

/* ---------------------------------------------------------------------- */
/* helpers                                                                 */

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
