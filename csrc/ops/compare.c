/* compare.c: comparisons eq ne lt le gt ge (bool results) and where
 * (forward). Comparisons run in the promoted dtype of their inputs, so
 * int64 < 2.5 compares as float32, as in PyTorch; where only moves bits,
 * so its loops go by element size. */
#include "ew_impl.h"

#define GEN_CMP(SFX, T, C, LD, ST, NAME, ...)                             \
    EW_BINARY_LOOP(EW_STREAM, NAME##_##SFX, bool, T, C, LD, EW_ID, ,      \
                   __VA_ARGS__)
#define GEN_CMP_ALL(NAME, ...)                                            \
    EW_BOOL(GEN_CMP, NAME, __VA_ARGS__)                                   \
    EW_INTS(GEN_CMP, NAME, __VA_ARGS__)                                   \
    EW_FLOATS(GEN_CMP, NAME, __VA_ARGS__)                                 \
    static const dt_loop_fn NAME##_loops[DT_DTYPE_COUNT] = {              \
        EW_TABLE_BOOL(NAME), EW_TABLE_INTS(NAME), EW_TABLE_FLOATS(NAME)};

GEN_CMP_ALL(eq, a == b)
GEN_CMP_ALL(ne, a != b)
GEN_CMP_ALL(lt, a < b)
GEN_CMP_ALL(le, a <= b)
GEN_CMP_ALL(gt, a > b)
GEN_CMP_ALL(ge, a >= b)

static const dt_loop_fn *const compare_loops[] = {
    [DT_OP_EQ - DT_OP_EQ] = eq_loops, [DT_OP_NE - DT_OP_EQ] = ne_loops,
    [DT_OP_LT - DT_OP_EQ] = lt_loops, [DT_OP_LE - DT_OP_EQ] = le_loops,
    [DT_OP_GT - DT_OP_EQ] = gt_loops, [DT_OP_GE - DT_OP_EQ] = ge_loops,
};
_Static_assert(sizeof compare_loops / sizeof compare_loops[0] ==
               DT_OP_GE - DT_OP_EQ + 1, "a comparison lacks its loops");

dt_status
dt_compare_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
                   dt_op op)
{
    char name[32];
    const dt_tensor *ab[2] = {a, b};
    DT_ASSERT(op >= DT_OP_EQ && op <= DT_OP_GE);
    dt_dtype d = dt_result_type(ab, 2);
    dt_ew_spec sp = {.name = dt_ew_name(name, out, a, dt_op_names[op]),
                     .nin = 2, .in = {a, b}, .in_dtype = {d, d},
                     .out_dtype = DT_BOOL,
                     .loop = compare_loops[op - DT_OP_EQ][d]};
    return dt_ew_run(out, &sp);
}

/* ---------------------------------------------------------------------- */
/* where                                                                   */

/* operands (out, cond, x, y); fast paths for contiguous data and for a
 * scalar y (where(mask, x, 0)) */
#define GEN_WHERE(SFX, T)                                                 \
    static EW_STREAM void                                                 \
    where_##SFX(char **p, const int64_t *s, int64_t n, void *ctx)         \
    {                                                                     \
        (void)ctx;                                                        \
        const int64_t z = sizeof(T);                                      \
        T *o = (T *)p[0];                                                 \
        const uint8_t *c = (const uint8_t *)p[1];                         \
        const T *x = (const T *)p[2], *y = (const T *)p[3];               \
        if (s[0] == z && s[1] == 1 && s[2] == z && s[3] == z) {           \
            EW_IVDEP                                                      \
            for (int64_t i = 0; i < n; i++) {                             \
                o[i] = c[i] ? x[i] : y[i];                                \
            }                                                             \
        } else if (s[0] == z && s[1] == 1 && s[2] == z && s[3] == 0) {    \
            const T y0 = y[0];                                            \
            EW_IVDEP                                                      \
            for (int64_t i = 0; i < n; i++) {                             \
                o[i] = c[i] ? x[i] : y0;                                  \
            }                                                             \
        } else {                                                          \
            for (int64_t i = 0; i < n; i++) {                             \
                EW_AT(T, p[0], i, s[0]) =                                 \
                    EW_AT(const uint8_t, p[1], i, s[1])                   \
                        ? EW_AT(const T, p[2], i, s[2])                   \
                        : EW_AT(const T, p[3], i, s[3]);                  \
            }                                                             \
        }                                                                 \
    }

GEN_WHERE(1, uint8_t)
GEN_WHERE(2, uint16_t)
GEN_WHERE(4, uint32_t)
GEN_WHERE(8, uint64_t)

dt_status
dt_where_forward(dt_tensor **out, const dt_tensor *cond, const dt_tensor *x,
                 const dt_tensor *y)
{
    const dt_tensor *xy[2] = {x, y};
    if (cond->dtype != DT_BOOL) {
        return dt_fail(DT_ERR_RUNTIME, "where: expected condition to be a "
                       "boolean tensor, but got a tensor with dtype %s",
                       dt_dtype_name(cond->dtype));
    }
    dt_dtype d = dt_result_type(xy, 2);
    size_t isz = dt_dtype_size(d);
    dt_ew_spec sp = {.name = "where", .nin = 3, .in = {cond, x, y},
                     .in_dtype = {DT_BOOL, d, d}, .out_dtype = d,
                     .loop = isz == 1   ? where_1
                             : isz == 2 ? where_2
                             : isz == 4 ? where_4
                                        : where_8};
    return dt_ew_run(out, &sp);
}
