/* dt_impl.h: helpers shared by the core's .c files (not part of the API).
 *
 * - half-precision conversions (float16 uses GCC's _Float16, bfloat16 is
 *   rounded to nearest even by hand, as PyTorch does),
 * - DT_DISPATCH: a switch over dtypes that binds `scalar_t`,
 * - type promotion (PyTorch's rules, wrapped numbers included),
 * - dt_iter: the strided N-d loop every elementwise kernel runs under.
 */
#ifndef DT_IMPL_H
#define DT_IMPL_H

#include <math.h>
#include <string.h>

#include "dt.h"

/* ---------------------------------------------------------------------- */
/* half types: stored as raw bits                                          */

typedef uint16_t dt_half;   /* IEEE float16 bits */
typedef uint16_t dt_bf16;   /* bfloat16 bits: the top half of a float32 */

static inline float
dt_half_to_float(dt_half h)
{
    _Float16 f;
    memcpy(&f, &h, sizeof f);
    return (float)f;
}

static inline dt_half
dt_float_to_half(float x)
{
    _Float16 f = (_Float16)x;
    dt_half h;
    memcpy(&h, &f, sizeof h);
    return h;
}

static inline float
dt_bf16_to_float(dt_bf16 b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline dt_bf16
dt_float_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (isnan(x)) {
        return 0x7FC0;
    }
    u += 0x7FFFu + ((u >> 16) & 1u);   /* round to nearest even */
    return (dt_bf16)(u >> 16);
}

/* Counts a tensor header made outside tensor.c (views). */
void dt_count_tensor_(int delta);

/* Counts a tensor header made outside tensor.c (views). */
void dt_count_tensor_(int delta);

/* ---------------------------------------------------------------------- */
/* dispatch                                                                */

/* Binds scalar_t to the C type of `dtype` and runs the statement. Half
 * types bind their raw-bit type: kernels that do arithmetic compute them
 * in float32 (see dt_compute_dtype). */
#define DT_DISPATCH_CASE(DT, T, ...)                                      \
    case DT: {                                                            \
        typedef T scalar_t;                                               \
        __VA_ARGS__;                                                      \
        break;                                                            \
    }

#define DT_DISPATCH_ALL(dtype, ...)                                       \
    switch (dtype) {                                                      \
        DT_DISPATCH_CASE(DT_BOOL, bool, __VA_ARGS__)                      \
        DT_DISPATCH_CASE(DT_UINT8, uint8_t, __VA_ARGS__)                  \
        DT_DISPATCH_CASE(DT_INT32, int32_t, __VA_ARGS__)                  \
        DT_DISPATCH_CASE(DT_INT64, int64_t, __VA_ARGS__)                  \
        DT_DISPATCH_CASE(DT_FLOAT16, dt_half, __VA_ARGS__)                \
        DT_DISPATCH_CASE(DT_BFLOAT16, dt_bf16, __VA_ARGS__)               \
        DT_DISPATCH_CASE(DT_FLOAT32, float, __VA_ARGS__)                  \
        DT_DISPATCH_CASE(DT_FLOAT64, double, __VA_ARGS__)                 \
    default:                                                              \
        DT_ASSERT(!"bad dtype");                                          \
    }

/* Reads or writes one element of any dtype as a double. */
double dt_load_double(const void *p, dt_dtype dtype);
void dt_store_double(void *p, dt_dtype dtype, double v);

/* Kernels compute float16/bfloat16 in float32 and round the result. */
static inline dt_dtype
dt_compute_dtype(dt_dtype dtype)
{
    return (dtype == DT_FLOAT16 || dtype == DT_BFLOAT16) ? DT_FLOAT32 : dtype;
}

/* ---------------------------------------------------------------------- */
/* type promotion (PyTorch's result_type)                                  */

/* Promotes two dtypes as if both were dimensioned tensors. */
dt_dtype dt_promote_types(dt_dtype a, dt_dtype b);
/* result_type over tensors: dimensioned tensors win over 0-dim ones, which
 * win over wrapped Python scalars; a lower tier only matters when its
 * category (bool < integer < float) is higher. */
dt_dtype dt_result_type(const dt_tensor *const *ts, int n);
/* Whether an op's result of `from` may be written into an `to` output
 * (no float into integer, no integer into bool). */
bool dt_can_cast(dt_dtype from, dt_dtype to);

/* ---------------------------------------------------------------------- */
/* elementwise iteration                                                   */

#define DT_ITER_MAX_OPS 4

/* The inner loop: n elements, operand k at ptrs[k], stepping strides[k]
 * bytes. Operand 0 is the output. */
typedef void (*dt_loop_fn)(char **ptrs, const int64_t *strides, int64_t n,
                           void *ctx);

/* Runs fn over every element of ops[0]'s shape. The other operands must
 * have that same shape (expand them first); their strides may be zero or
 * anything else. Dimensions are coalesced so contiguous data gets one long
 * inner loop. */
void dt_iter_run(dt_tensor *const *ops, int nops, dt_loop_fn fn, void *ctx);

/* dst[i * ds] = src[i * ss] for n elements of isz bytes (strides in
 * bytes; ss == 0 fills with one value). Contiguous runs and fills take
 * vectorised paths. */
void dt_copy_strided(char *dst, int64_t ds, const char *src, int64_t ss,
                     int64_t n, size_t isz);

/* Expands `t` to `shape` as a view (stride 0 on broadcast dims). */
dt_status dt_expand_to(dt_tensor **out, const dt_tensor *t,
                       const int64_t *shape, int ndim, const char *op);

/* Prepares an output: if *out is NULL, allocates shape/dtype on `device`;
 * otherwise checks that *out has exactly that shape (RuntimeError naming
 * the op) and a dtype the result can be cast to. */
dt_status dt_prepare_out(dt_tensor **out, const int64_t *shape, int ndim,
                         dt_dtype dtype, dt_device device, const char *op);

#endif /* DT_IMPL_H */
