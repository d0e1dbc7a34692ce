/* compare.c: comparisons eq ne lt le gt ge (bool results), maximum and
 * minimum, and where: forwards, backwards and entry points. Comparisons
 * run in the promoted dtype of their inputs, so int64 < 2.5 compares as
 * float32, as in PyTorch; they record nothing, except in place, where
 * PyTorch gives the overwritten tensor a zero gradient. where only moves
 * bits, so its loops go by element size. */
#include "ew_impl.h"
#include "ew_math.h"

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

static const char *const compare_nodes[] = {
    "EqBackward0", "NeBackward0", "LtBackward0", "LeBackward0", "GtBackward0",
    "GeBackward0",
};

dt_status
dt_compare(dt_tensor **out, const dt_tensor *a, const dt_tensor *b, dt_op op)
{
    char name[32];
    dt_ew_rec r;
    const dt_tensor *in[2] = {a, b};
    DT_ASSERT(op >= DT_OP_EQ && op <= DT_OP_GE);
    if (!*out || *out != a) {
        return dt_compare_forward(out, a, b, op);   /* bool: no gradient */
    }
    dt_ew_name(name, out, a, dt_op_names[op]);
    DT_TRY(dt_ew_rec_begin(&r, out, in, 2, name));
    dt_node *n = NULL;
    dt_status s = dt_compare_forward(out, a, b, op);
    if (s == DT_OK && r.record && dt_dtype_is_floating(a->dtype)) {
        s = dt_ew_rec_node(&n, &r, out, compare_nodes[op - DT_OP_EQ],
                           dt_ew_zero_backward);
    }
    return dt_ew_rec_end(&r, out, s);
}

/* ---------------------------------------------------------------------- */
/* maximum, minimum                                                        */

/* NaN-propagating max and min */
#define FMAX(a, b) ((a) > (b) || __builtin_isnan(a) ? (a) : (b))
#define FMIN(a, b) ((a) < (b) || __builtin_isnan(a) ? (a) : (b))
#define IMAX(a, b) ((a) > (b) ? (a) : (b))
#define IMIN(a, b) ((a) < (b) ? (a) : (b))

#define GEN_BIN(SFX, T, C, LD, ST, NAME, ...)                             \
    EW_BINARY_LOOP(EW_STREAM, NAME##_##SFX, T, T, C, LD, ST, , __VA_ARGS__)
#define ALL_LOOPS(NAME)                                                   \
    static const dt_loop_fn NAME##_loops[DT_DTYPE_COUNT] = {              \
        EW_TABLE_BOOL(NAME), EW_TABLE_INTS(NAME), EW_TABLE_FLOATS(NAME)}

EW_BOOL(GEN_BIN, maximum, a | b)
EW_INTS(GEN_BIN, maximum, IMAX(a, b))
EW_FLOATS(GEN_BIN, maximum, FMAX(a, b))
EW_BOOL(GEN_BIN, minimum, a & b)
EW_INTS(GEN_BIN, minimum, IMIN(a, b))
EW_FLOATS(GEN_BIN, minimum, FMIN(a, b))
ALL_LOOPS(maximum);
ALL_LOOPS(minimum);

dt_status
dt_maxmin_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
                  dt_op op)
{
    char name[32];
    const dt_tensor *ab[2] = {a, b};
    dt_dtype d = dt_result_type(ab, 2);
    DT_ASSERT(op == DT_OP_MAXIMUM || op == DT_OP_MINIMUM);
    dt_ew_spec sp = {.name = dt_ew_name(name, out, a, dt_op_names[op]),
                     .nin = 2, .in = {a, b}, .in_dtype = {d, d},
                     .out_dtype = d,
                     .loop = (op == DT_OP_MAXIMUM ? maximum_loops
                                                  : minimum_loops)[d]};
    return dt_ew_run(out, &sp);
}

/* Backward, as PyTorch: the gradient goes to the winner, half to each on
 * a tie, and to both where either is NaN. Loops over (gradient, a, b);
 * "lose_lt" drops it where a < b, "lose_gt" where a > b. Saved: a, b. */
#define GEN_TERN(SFX, T, C, LD, ST, NAME, ...)                            \
    EW_TERNARY_LOOP(EW_STREAM, NAME##_##SFX, T, T, C, LD, ST, ,           \
                    __VA_ARGS__)
/* g, halved on a tie, or 0 where it loses; bit selects, since GCC turns
 * ternaries here into branches it will not vectorise (a * 0.5 is a / 2
 * exactly). */
static inline float
lose_f(float g, int tie, int loses)
{
    return ew_select(loses, 0.0f, g * ew_select(tie, 0.5f, 1.0f));
}

static inline double
lose_d(double g, int tie, int loses)
{
    return ew_selectd(loses, 0.0, g * ew_selectd(tie, 0.5, 1.0));
}

#define LOSE(LOSES) EW_F(lose_f, lose_d, a, b == c, LOSES)
EW_FLOATS(GEN_TERN, lose_lt, LOSE(b < c))
EW_FLOATS(GEN_TERN, lose_gt, LOSE(b > c))
static const dt_loop_fn lose_lt_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_FLOATS(lose_lt)};
static const dt_loop_fn lose_gt_loops[DT_DTYPE_COUNT] = {
    EW_TABLE_FLOATS(lose_gt)};

static dt_status
dt_maxmin_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *a = NULL, *b = NULL;
    dt_dtype d = dt_ew_grad_dtype(go[0]);
    bool max = n->iargs[0] == DT_OP_MAXIMUM;
    DT_TRY(dt_node_saved(&a, n, 0));
    DT_TRY(dt_node_saved(&b, n, 1));
    for (int i = 0; i < 2; i++) {
        /* a loses to a larger b in maximum, b to a larger a */
        const dt_loop_fn *loops = (i == 0) == max ? lose_lt_loops
                                                  : lose_gt_loops;
        if (dt_node_needs_grad(n, i)) {
            DT_TRY(dt_ew_grad_run(&gi[i], d, loops[d], NULL, go[0], a, b));
        }
    }
    return DT_OK;
}

dt_status
dt_maxmin(dt_tensor **out, const dt_tensor *a, const dt_tensor *b, dt_op op)
{
    char name[32];
    dt_ew_rec r;
    const dt_tensor *in[2] = {a, b};
    DT_TRY(dt_ew_rec_begin(&r, out, in, 2,
                           dt_ew_name(name, out, a, dt_op_names[op])));
    if (!r.record) {
        return dt_maxmin_forward(out, a, b, op);
    }
    dt_node *n = NULL;
    dt_status s = dt_ew_rec_keep_self(&r);
    if (s == DT_OK) {
        s = dt_maxmin_forward(out, a, b, op);
    }
    if (s == DT_OK) {
        s = dt_ew_rec_node(&n, &r, out,
                           op == DT_OP_MAXIMUM ? "MaximumBackward0"
                                               : "MinimumBackward0",
                           dt_maxmin_backward);
    }
    if (s == DT_OK) {
        n->iargs[0] = op;
        n->num_iargs = 1;
        s = dt_ew_save_self(n, &r);
    }
    if (s == DT_OK) {
        s = dt_ew_save_input(n, &r, 1);
    }
    return dt_ew_rec_end(&r, out, s);
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

/* Backward: x gets the gradient where cond holds, y elsewhere; cond none.
 * Saved: cond. */
static dt_status
dt_where_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *cond = NULL, *zero = NULL;
    DT_TRY(dt_node_saved(&cond, n, 0));
    DT_TRY(dt_tensor_scalar(&zero, 0.0, go[0]->dtype));
    dt_status s = DT_OK;
    if (dt_node_needs_grad(n, 1)) {
        s = dt_where_forward(&gi[1], cond, go[0], zero);
    }
    if (s == DT_OK && dt_node_needs_grad(n, 2)) {
        s = dt_where_forward(&gi[2], cond, zero, go[0]);
    }
    dt_tensor_release(zero);
    return s;
}

dt_status
dt_where(dt_tensor **out, const dt_tensor *cond, const dt_tensor *x,
         const dt_tensor *y)
{
    dt_ew_rec r;
    const dt_tensor *in[3] = {cond, x, y};
    DT_TRY(dt_ew_rec_begin(&r, out, in, 3, "where"));
    if (!r.record) {
        return dt_where_forward(out, cond, x, y);
    }
    dt_node *n = NULL;
    dt_status s = dt_where_forward(out, cond, x, y);
    if (s == DT_OK) {
        s = dt_ew_rec_node(&n, &r, out, "WhereBackward0", dt_where_backward);
    }
    if (s == DT_OK) {
        s = dt_ew_save_input(n, &r, 0);
    }
    return dt_ew_rec_end(&r, out, s);
}
