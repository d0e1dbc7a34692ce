/* pg_reduce.c: the elementwise reductions Gloo calls between ring steps,
 * compiled with our flags: out[i] = a[i] op b[i] for every dtype and
 * ReduceOp. Gloo reduces in place (out == a), so each kernel has an
 * in-place loop the compiler can vectorise without an aliasing fallback.
 * float16/bfloat16 compute in float32 and round each partial result;
 * bool SUM/MAX/BOR are "or", PRODUCT/MIN/BAND are "and", as in torch. */
#include "pg_gloo.h"

#include "../dt_impl.h"

/* Defines name(out, a, b, n) for element type T and `x op y` in EXPR. */
#define DEF_KERNEL(name, T, EXPR)                                         \
    static void                                                           \
    name(void *out_, const void *a_, const void *b_, size_t n)            \
    {                                                                     \
        T *out = out_;                                                    \
        const T *a = a_, *b = b_;                                         \
        if (out == a) {                                                   \
            for (size_t i = 0; i < n; i++) {                              \
                T x = out[i], y = b[i];                                   \
                out[i] = (EXPR);                                          \
            }                                                             \
        } else {                                                          \
            for (size_t i = 0; i < n; i++) {                              \
                T x = a[i], y = b[i];                                     \
                out[i] = (EXPR);                                          \
            }                                                             \
        }                                                                 \
    }

/* Half types: widen, combine in float, round. */
#define DEF_HALF_KERNEL(name, T, TO_F, FROM_F, EXPR)                      \
    static void                                                           \
    name(void *out_, const void *a_, const void *b_, size_t n)            \
    {                                                                     \
        T *out = out_;                                                    \
        const T *a = a_, *b = b_;                                         \
        for (size_t i = 0; i < n; i++) {                                  \
            float x = TO_F(a[i]), y = TO_F(b[i]);                         \
            out[i] = FROM_F(EXPR);                                        \
        }                                                                 \
    }

#define ARITH_OPS(suffix, T)                                              \
    DEF_KERNEL(sum_##suffix, T, x + y)                                    \
    DEF_KERNEL(prod_##suffix, T, x * y)                                   \
    DEF_KERNEL(min_##suffix, T, y < x ? y : x)                            \
    DEF_KERNEL(max_##suffix, T, y > x ? y : x)

#define BIT_OPS(suffix, T)                                                \
    DEF_KERNEL(band_##suffix, T, x & y)                                   \
    DEF_KERNEL(bor_##suffix, T, x | y)                                    \
    DEF_KERNEL(bxor_##suffix, T, x ^ y)

#define HALF_OPS(suffix, T, TO_F, FROM_F)                                 \
    DEF_HALF_KERNEL(sum_##suffix, T, TO_F, FROM_F, x + y)                 \
    DEF_HALF_KERNEL(prod_##suffix, T, TO_F, FROM_F, x * y)                \
    DEF_HALF_KERNEL(min_##suffix, T, TO_F, FROM_F, y < x ? y : x)         \
    DEF_HALF_KERNEL(max_##suffix, T, TO_F, FROM_F, y > x ? y : x)

ARITH_OPS(f32, float)
ARITH_OPS(f64, double)
ARITH_OPS(i32, int32_t)
ARITH_OPS(i64, int64_t)
ARITH_OPS(u8, uint8_t)
BIT_OPS(i32, int32_t)
BIT_OPS(i64, int64_t)
BIT_OPS(u8, uint8_t)
HALF_OPS(f16, dt_half, dt_half_to_float, dt_float_to_half)
HALF_OPS(bf16, dt_bf16, dt_bf16_to_float, dt_float_to_bf16)
DEF_KERNEL(or_b, uint8_t, (uint8_t)(x | y))
DEF_KERNEL(and_b, uint8_t, (uint8_t)(x & y))
DEF_KERNEL(xor_b, uint8_t, (uint8_t)(x ^ y))

/* [dtype][op], in dt_dtype and dt_reduce_op order; AVG is SUM then a
 * division (floating only). */
static const dt_gloo_reduce_fn kernels[DT_DTYPE_COUNT][DT_REDUCE_OP_COUNT] = {
    [DT_BOOL] = {or_b, NULL, and_b, and_b, or_b, and_b, or_b, xor_b},
    [DT_UINT8] = {sum_u8, NULL, prod_u8, min_u8, max_u8, band_u8, bor_u8,
                  bxor_u8},
    [DT_INT32] = {sum_i32, NULL, prod_i32, min_i32, max_i32, band_i32,
                  bor_i32, bxor_i32},
    [DT_INT64] = {sum_i64, NULL, prod_i64, min_i64, max_i64, band_i64,
                  bor_i64, bxor_i64},
    [DT_FLOAT16] = {sum_f16, sum_f16, prod_f16, min_f16, max_f16},
    [DT_BFLOAT16] = {sum_bf16, sum_bf16, prod_bf16, min_bf16, max_bf16},
    [DT_FLOAT32] = {sum_f32, sum_f32, prod_f32, min_f32, max_f32},
    [DT_FLOAT64] = {sum_f64, sum_f64, prod_f64, min_f64, max_f64},
};

dt_gloo_reduce_fn
dt_gloo_reduce_fn_for(dt_dtype dtype, dt_reduce_op op)
{
    if ((unsigned)dtype >= DT_DTYPE_COUNT ||
        (unsigned)op >= DT_REDUCE_OP_COUNT) {
        return NULL;
    }
    return kernels[dtype][op];
}

void
dt_gloo_divide(void *data, size_t count, dt_dtype dtype, int divisor)
{
    switch (dtype) {
    case DT_FLOAT32: {
        float *p = data, d = (float)divisor;
        for (size_t i = 0; i < count; i++) {
            p[i] /= d;
        }
        break;
    }
    case DT_FLOAT64: {
        double *p = data, d = (double)divisor;
        for (size_t i = 0; i < count; i++) {
            p[i] /= d;
        }
        break;
    }
    case DT_FLOAT16: {
        dt_half *p = data;
        for (size_t i = 0; i < count; i++) {
            p[i] = dt_float_to_half(dt_half_to_float(p[i]) / divisor);
        }
        break;
    }
    case DT_BFLOAT16: {
        dt_bf16 *p = data;
        for (size_t i = 0; i < count; i++) {
            p[i] = dt_float_to_bf16(dt_bf16_to_float(p[i]) / divisor);
        }
        break;
    }
    default:
        DT_ASSERT(!"dt_gloo_divide: not a floating dtype");
    }
}
