/* dtype.c: dtype names and sizes, element load/store, type promotion. */
#include "dt_impl.h"

static const char *const dtype_names[] = {
    [DT_BOOL] = "bool",         [DT_UINT8] = "uint8",
    [DT_INT32] = "int32",       [DT_INT64] = "int64",
    [DT_FLOAT16] = "float16",   [DT_BFLOAT16] = "bfloat16",
    [DT_FLOAT32] = "float32",   [DT_FLOAT64] = "float64",
};
_Static_assert(sizeof dtype_names / sizeof dtype_names[0] == DT_DTYPE_COUNT,
               "every dtype needs a name");

static const size_t dtype_sizes[] = {
    [DT_BOOL] = 1,    [DT_UINT8] = 1,    [DT_INT32] = 4,   [DT_INT64] = 8,
    [DT_FLOAT16] = 2, [DT_BFLOAT16] = 2, [DT_FLOAT32] = 4, [DT_FLOAT64] = 8,
};
_Static_assert(sizeof dtype_sizes / sizeof dtype_sizes[0] == DT_DTYPE_COUNT,
               "every dtype needs a size");

size_t
dt_dtype_size(dt_dtype dtype)
{
    DT_ASSERT(dtype >= 0 && dtype < DT_DTYPE_COUNT);
    return dtype_sizes[dtype];
}

const char *
dt_dtype_name(dt_dtype dtype)
{
    DT_ASSERT(dtype >= 0 && dtype < DT_DTYPE_COUNT);
    return dtype_names[dtype];
}

bool
dt_dtype_is_floating(dt_dtype dtype)
{
    return dtype >= DT_FLOAT16;
}

bool
dt_dtype_is_integral(dt_dtype dtype)
{
    return dtype <= DT_INT64;
}

double
dt_load_double(const void *p, dt_dtype dtype)
{
    switch (dtype) {
    case DT_BOOL: return *(const bool *)p;
    case DT_UINT8: return *(const uint8_t *)p;
    case DT_INT32: return *(const int32_t *)p;
    case DT_INT64: return (double)*(const int64_t *)p;
    case DT_FLOAT16: return dt_half_to_float(*(const dt_half *)p);
    case DT_BFLOAT16: return dt_bf16_to_float(*(const dt_bf16 *)p);
    case DT_FLOAT32: return *(const float *)p;
    case DT_FLOAT64: return *(const double *)p;
    default: DT_ASSERT(!"bad dtype");
    }
}

void
dt_store_double(void *p, dt_dtype dtype, double v)
{
    switch (dtype) {
    case DT_BOOL: *(bool *)p = v != 0; break;
    case DT_UINT8: *(uint8_t *)p = (uint8_t)(int64_t)v; break;
    case DT_INT32: *(int32_t *)p = (int32_t)v; break;
    case DT_INT64: *(int64_t *)p = (int64_t)v; break;
    case DT_FLOAT16: *(dt_half *)p = dt_float_to_half((float)v); break;
    case DT_BFLOAT16: *(dt_bf16 *)p = dt_float_to_bf16((float)v); break;
    case DT_FLOAT32: *(float *)p = (float)v; break;
    case DT_FLOAT64: *(double *)p = v; break;
    default: DT_ASSERT(!"bad dtype");
    }
}

/* ---------------------------------------------------------------------- */
/* promotion                                                               */

dt_dtype
dt_promote_types(dt_dtype a, dt_dtype b)
{
    if (a == b) {
        return a;
    }
    /* float16 with bfloat16 has no common 16-bit type. */
    if ((a == DT_FLOAT16 && b == DT_BFLOAT16) ||
        (a == DT_BFLOAT16 && b == DT_FLOAT16)) {
        return DT_FLOAT32;
    }
    return a > b ? a : b;
}

enum { CAT_BOOL, CAT_INT, CAT_FLOAT };

static int
category(dt_dtype d)
{
    return d == DT_BOOL ? CAT_BOOL : dt_dtype_is_floating(d) ? CAT_FLOAT
                                                             : CAT_INT;
}

/* The dtype a wrapped Python scalar stands for when it wins. */
static dt_dtype
default_for_category(int cat)
{
    return cat == CAT_FLOAT ? DT_DEFAULT_FLOAT
           : cat == CAT_INT ? DT_INT64 : DT_BOOL;
}

dt_dtype
dt_result_type(const dt_tensor *const *ts, int n)
{
    /* tier 0: dimensioned tensors, 1: 0-dim tensors, 2: wrapped scalars */
    int have[3] = {0, 0, 0};
    dt_dtype tier[3] = {DT_BOOL, DT_BOOL, DT_BOOL};
    for (int i = 0; i < n; i++) {
        int k = ts[i]->is_wrapped_number ? 2 : ts[i]->ndim == 0 ? 1 : 0;
        tier[k] = have[k] ? dt_promote_types(tier[k], ts[i]->dtype)
                          : ts[i]->dtype;
        have[k] = 1;
    }
    if (have[2]) {
        tier[2] = default_for_category(category(tier[2]));
    }
    dt_dtype result = DT_BOOL;
    int seen = 0;
    for (int k = 0; k < 3; k++) {
        if (!have[k]) {
            continue;
        }
        if (!seen) {
            result = tier[k];
            seen = 1;
        } else if (category(tier[k]) > category(result)) {
            /* A lower tier wins only by category: 0-dim tensors bring
             * their own dtype, wrapped scalars the category's default
             * (int32 tensor + 2.5 is float32, float16 tensor + 2.5 is
             * float16). */
            result = k == 1 ? tier[1] : default_for_category(category(tier[k]));
        }
    }
    return result;
}

bool
dt_can_cast(dt_dtype from, dt_dtype to)
{
    return category(from) <= category(to);
}
