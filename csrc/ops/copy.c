/* copy.c: copy_ with broadcasting and dtype casts, contiguous, clone, to,
 * fill_. Every cast goes through a wide value (int64 for integral sources,
 * double for floating ones), which is exact for every dtype pair. */
#include "../dt_impl.h"

typedef struct cast_ctx {
    dt_dtype dst, src;
} cast_ctx;

/* One typed loop per (dst, src) pair. */
#define CAST_LOOP(D, S, CONVERT)                                          \
    for (int64_t i = 0; i < n; i++) {                                     \
        S s_;                                                             \
        memcpy(&s_, src + i * ss, sizeof s_);                             \
        D d_ = CONVERT;                                                   \
        memcpy(dst + i * ds, &d_, sizeof d_);                             \
    }

static int64_t
load_int64(const char *p, dt_dtype t)
{
    switch (t) {
    case DT_BOOL: return *(const bool *)p;
    case DT_UINT8: return *(const uint8_t *)p;
    case DT_INT32: return *(const int32_t *)p;
    default: return *(const int64_t *)p;
    }
}

static void
cast_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    cast_ctx *c = vctx;
    char *dst = ptrs[0];
    const char *src = ptrs[1];
    int64_t ds = strides[0], ss = strides[1];
    bool src_int = dt_dtype_is_integral(c->src);
    /* Integral and float32/float64 pairs get typed loops; half types and
     * the rest go through dt_load/store_double, which is exact. */
    if (c->src == DT_FLOAT32 && c->dst == DT_FLOAT64) {
        CAST_LOOP(double, float, (double)s_)
    } else if (c->src == DT_FLOAT64 && c->dst == DT_FLOAT32) {
        CAST_LOOP(float, double, (float)s_)
    } else if (c->src == DT_INT64 && c->dst == DT_FLOAT32) {
        CAST_LOOP(float, int64_t, (float)s_)
    } else if (c->src == DT_FLOAT32 && c->dst == DT_INT64) {
        CAST_LOOP(int64_t, float, (int64_t)s_)
    } else if (src_int && dt_dtype_is_integral(c->dst)) {
        for (int64_t i = 0; i < n; i++) {
            int64_t v = load_int64(src + i * ss, c->src);
            switch (c->dst) {
            case DT_BOOL: *(bool *)(dst + i * ds) = v != 0; break;
            case DT_UINT8: *(uint8_t *)(dst + i * ds) = (uint8_t)v; break;
            case DT_INT32: *(int32_t *)(dst + i * ds) = (int32_t)v; break;
            default: *(int64_t *)(dst + i * ds) = v; break;
            }
        }
    } else if (src_int) {
        for (int64_t i = 0; i < n; i++) {
            dt_store_double(dst + i * ds, c->dst,
                            (double)load_int64(src + i * ss, c->src));
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            double v = dt_load_double(src + i * ss, c->src);
            if (c->dst == DT_UINT8 && !isnan(v)) {
                /* wrap negatives like PyTorch does (via int64) */
                *(uint8_t *)(dst + i * ds) = (uint8_t)(int64_t)v;
            } else {
                dt_store_double(dst + i * ds, c->dst, v);
            }
        }
    }
}

void
dt_copy_strided(char *dst, int64_t ds, const char *src, int64_t ss,
                int64_t n, size_t isz)
{
    if (ds == (int64_t)isz && ss == (int64_t)isz) {
        memmove(dst, src, (size_t)n * isz);
        return;
    }
    if (ds == (int64_t)isz && ss == 0) {
        /* a broadcast source (an expanded gradient, a fill value): a typed
         * fill, which the compiler vectorises */
        switch (isz) {
#define FILL(T)                                                           \
    {                                                                     \
        T v_;                                                             \
        memcpy(&v_, src, sizeof v_);                                      \
        T *d_ = (T *)(void *)dst;                                         \
        for (int64_t i = 0; i < n; i++) {                                 \
            d_[i] = v_;                                                   \
        }                                                                 \
    }                                                                     \
    return
        case 1: FILL(uint8_t);
        case 2: FILL(uint16_t);
        case 4: FILL(uint32_t);
        default: FILL(uint64_t);
#undef FILL
        }
    }
    switch (isz) {
#define MOVE(T)                                                           \
    for (int64_t i = 0; i < n; i++) {                                     \
        *(T *)(dst + i * ds) = *(const T *)(src + i * ss);                \
    }                                                                     \
    break
    case 1: MOVE(uint8_t);
    case 2: MOVE(uint16_t);
    case 4: MOVE(uint32_t);
    default: MOVE(uint64_t);
#undef MOVE
    }
}

/* Same-dtype copy: element size is all that matters. */
static void
move_loop(char **ptrs, const int64_t *strides, int64_t n, void *vctx)
{
    dt_copy_strided(ptrs[0], strides[0], ptrs[1], strides[1], n,
                    *(size_t *)vctx);
}

dt_status
dt_copy_(dt_tensor *dst, const dt_tensor *src)
{
    dt_tensor *s = NULL;
    DT_TRY(dt_check_same_device(dst, src, "copy_"));
    DT_TRY(dt_expand_to(&s, src, dst->shape, dst->ndim, "copy_"));
    dt_tensor *ops[2] = {dst, s};
    if (dst->dtype == src->dtype) {
        size_t isz = dt_dtype_size(dst->dtype);
        dt_iter_run(ops, 2, move_loop, &isz);
    } else {
        cast_ctx c = {dst->dtype, src->dtype};
        dt_iter_run(ops, 2, cast_loop, &c);
    }
    dt_tensor_release(s);
    dt_tensor_bump_version(dst);
    return DT_OK;
}

dt_status
dt_clone(dt_tensor **out, const dt_tensor *t)
{
    dt_tensor *c = NULL;
    DT_TRY(dt_tensor_empty(&c, t->shape, t->ndim, t->dtype,
                           dt_tensor_device(t)));
    dt_status s = dt_copy_(c, t);
    if (s != DT_OK) {
        dt_tensor_release(c);
        return s;
    }
    *out = c;
    return DT_OK;
}

dt_status
dt_contiguous(dt_tensor **out, const dt_tensor *t)
{
    if (dt_tensor_is_contiguous(t)) {
        dt_tensor_retain((dt_tensor *)t);
        *out = (dt_tensor *)t;
        return DT_OK;
    }
    return dt_clone(out, t);
}

dt_status
dt_to_dtype(dt_tensor **out, const dt_tensor *t, dt_dtype dtype)
{
    if (t->dtype == dtype) {
        dt_tensor_retain((dt_tensor *)t);
        *out = (dt_tensor *)t;
        return DT_OK;
    }
    dt_tensor *c = NULL;
    DT_TRY(dt_tensor_empty(&c, t->shape, t->ndim, dtype,
                           dt_tensor_device(t)));
    dt_status s = dt_copy_(c, t);
    if (s != DT_OK) {
        dt_tensor_release(c);
        return s;
    }
    *out = c;
    return DT_OK;
}

dt_status
dt_fill_(dt_tensor *t, double value)
{
    /* a broadcast copy of one value of t's dtype: dt_copy_strided's fill */
    dt_tensor *v = NULL;
    DT_TRY(dt_tensor_scalar(&v, value, t->dtype));
    dt_status s = dt_copy_(t, v);
    dt_tensor_release(v);
    return s;
}
