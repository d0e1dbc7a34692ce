/* masked.c: masked_fill (forward, gradient, entry point) and one_hot
 * (integer: no gradient). */
#include <inttypes.h>

#include "../autograd/autograd.h"
#include "../dt_impl.h"
#include "elementwise.h"
#include "index.h"
#include "reduce.h"

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

/* t's gradient is go with the filled positions zeroed (the engine sums a
 * broadcast one down); value's is the sum of go over them. */
static dt_status
dt_masked_fill_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *mask = NULL, *zero = NULL, *picked = NULL;
    DT_TRY(dt_node_saved(&mask, n, 0));
    DT_TRY(dt_tensor_scalar(&zero, 0.0, go[0]->dtype));
    dt_status s = DT_OK;
    if (dt_node_needs_grad(n, 0)) {
        s = dt_masked_fill_forward(&gi[0], go[0], mask, zero);
    }
    if (s == DT_OK && dt_node_needs_grad(n, 1)) {
        s = dt_where_forward(&picked, mask, go[0], zero);
    }
    if (s == DT_OK && picked) {
        s = dt_sum_forward(&gi[1], picked, NULL, 0, false, DT_DTYPE_COUNT);
    }
    dt_tensor_release(zero);
    dt_tensor_release(picked);
    return s;
}

dt_status
dt_masked_fill(dt_tensor **out, const dt_tensor *t, const dt_tensor *mask,
               const dt_tensor *value)
{
    /* the result has t's dtype: an integer one carries no gradient */
    bool inplace = *out == t, record = dt_autograd_needed2(t, value) &&
                                       dt_dtype_is_floating(t->dtype);
    dt_node *n = NULL;
    if (record && inplace) {
        DT_TRY(dt_autograd_check_inplace(t, "masked_fill_"));
    }
    DT_TRY(dt_masked_fill_forward(out, t, mask, value));
    if (!record) {
        return DT_OK;
    }
    const dt_tensor *in[2] = {t, value};
    dt_status s = dt_node_record(&n, "MaskedFillBackward0",
                                 dt_masked_fill_backward, in, 2, out, 1);
    if (s == DT_OK) {
        s = dt_node_save(n, mask);
    }
    if (s != DT_OK && !inplace) {
        dt_tensor_release(*out);
        *out = NULL;
    }
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
