/* ew_impl.h: what the elementwise family's files share (not public).
 *
 * - dt_ew_run: the one driver under every elementwise op: devices,
 *   broadcasting, casting inputs, output checks, aliasing, then dt_iter_run.
 * - autograd plumbing: what the entry points do around their forward
 *   (dt_ew_rec_*), and dt_ew_grad_run for fused backward loops.
 * - loop generators: each op/dtype pair becomes one dt_loop_fn with tight
 *   branches for the contiguous and scalar-broadcast cases (so GCC
 *   vectorises them) and a strided fallback, compiled as runtime-picked
 *   AVX2/AVX-512 clones. Half types load to float32, compute, and round on
 *   store, as PyTorch does.
 */
#ifndef DT_EW_IMPL_H
#define DT_EW_IMPL_H

#include "../dt_impl.h"
#include "../autograd/autograd.h"
#include "elementwise.h"

/* ---------------------------------------------------------------------- */
/* the driver                                                              */

typedef struct dt_ew_spec {
    const char *name;            /* op name for errors ("add_" in place) */
    int nin;                     /* 1 to 3 inputs */
    const dt_tensor *in[3];
    dt_dtype in_dtype[3];        /* each input is cast to this first */
    dt_dtype out_dtype;          /* the dtype the loop writes */
    dt_loop_fn loop;
    void *ctx;
    /* Optional: runs after the loop to report errors found in it (integer
     * division by zero). */
    dt_status (*after)(void *ctx);
} dt_ew_spec;

/* Runs spec->loop over the broadcast shape of the inputs into *out (see
 * dt.h for the *out convention). If *out has another dtype than
 * out_dtype, the loop writes a temporary that is then cast into *out. */
dt_status dt_ew_run(dt_tensor **out, const dt_ew_spec *spec);

/* The name an op reports: `op`, or `op` + "_" when writing into its first
 * input. buf must hold 32 bytes. */
const char *dt_ew_name(char *buf, dt_tensor *const *out, const dt_tensor *self,
                       const char *op);

/* result_type over the non-NULL tensors among ts[0..n). */
dt_dtype dt_ew_result_type(const dt_tensor *const *ts, int n);

/* "not implemented for 'bool'" as a NotImplementedError. */
dt_status dt_ew_not_impl(const char *name, dt_dtype dtype);

/* ---------------------------------------------------------------------- */
/* loop generators                                                         */

/* Which clones (picked at load time; the build stays portable) a loop
 * gets, its first macro argument:
 * - EW_STREAM: arithmetic, compares, selects. Memory-bound, so AVX2 is
 *   enough; on Zen 4 its 256-bit streams even ran 5-10% faster than
 *   AVX-512's.
 * - EW_COMPUTE: the ew_math.h functions, compute-bound: AVX-512 too.
 * - EW_SCALAR: loops around libm calls or integer division, which do not
 *   vectorise anyway. */
#if defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define EW_STREAM __attribute__((target_clones("arch=x86-64-v3", "default")))
#define EW_COMPUTE                                                        \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3",      \
                                 "default")))
#else
#define EW_STREAM
#define EW_COMPUTE
#endif
#define EW_SCALAR

/* Elementwise ops carry no loop dependency, even in place (inputs that
 * partly overlap the output were copied by dt_ew_run). */
#if defined(__clang__)
#define EW_IVDEP _Pragma("clang loop vectorize(assume_safety)")
#else
#define EW_IVDEP _Pragma("GCC ivdep")
#endif

/* The float32 or float64 flavour of a math function, picked by the type
 * of its first argument: EW_F(expf, exp, x). */
#define EW_HEAD(x, ...) (x)
#define EW_F(fn32, fn64, ...)                                             \
    _Generic(EW_HEAD(__VA_ARGS__, 0), float: fn32, default: fn64)(__VA_ARGS__)

/* Integer power by squaring; unsigned so that overflow wraps. */
static inline uint64_t
ew_powi_u64(uint64_t base, uint64_t e)
{
    uint64_t r = 1;
    while (e) {
        if (e & 1) {
            r *= base;
        }
        e >>= 1;
        base *= base;
    }
    return r;
}

#define EW_ID(v) (v)
#define EW_LD_F16(v) dt_half_to_float(v)
#define EW_ST_F16(v) dt_float_to_half(v)
#define EW_LD_BF16(v) dt_bf16_to_float(v)
#define EW_ST_BF16(v) dt_float_to_bf16(v)
#define EW_LD_U32(v) ((uint32_t)(v))
#define EW_LD_U64(v) ((uint64_t)(v))
#define EW_ST_I32(v) ((int32_t)(v))
#define EW_ST_I64(v) ((int64_t)(v))
#define EW_ST_U8(v) ((uint8_t)(v))

/* The element at byte offset i * s from p. */
#define EW_AT(T, p, i, s) (*(T *)((p) + (i) * (s)))

/* One-input loop: `x` (type ew_t) -> the expression in the varargs (it
 * may hold commas). SETUP runs once per call and may read `ctx`. */
#define EW_UNARY_LOOP(ATTR, NAME, TO, TI, C, LD, ST, SETUP, ...)          \
    static ATTR void                                                      \
    NAME(char **p_, const int64_t *s_, int64_t n_, void *ctx)             \
    {                                                                     \
        typedef C ew_t;                                                   \
        (void)ctx;                                                        \
        SETUP;                                                            \
        if (s_[0] == sizeof(TO) && s_[1] == sizeof(TI)) {                 \
            TO *o_ = (TO *)p_[0];                                         \
            const TI *x_ = (const TI *)p_[1];                             \
            EW_IVDEP                                                      \
            for (int64_t i_ = 0; i_ < n_; i_++) {                         \
                ew_t x = LD(x_[i_]);                                      \
                o_[i_] = ST((__VA_ARGS__));                               \
            }                                                             \
            return;                                                       \
        }                                                                 \
        for (int64_t i_ = 0; i_ < n_; i_++) {                             \
            ew_t x = LD(EW_AT(const TI, p_[1], i_, s_[1]));               \
            EW_AT(TO, p_[0], i_, s_[0]) = ST((__VA_ARGS__));              \
        }                                                                 \
    }

/* Two-input loop: `a`, `b` (type ew_t) -> the expression. Branches for
 * contiguous data, a scalar b, a scalar a, then any strides. */
#define EW_BINARY_LOOP(ATTR, NAME, TO, TI, C, LD, ST, SETUP, ...)         \
    static ATTR void                                                      \
    NAME(char **p_, const int64_t *s_, int64_t n_, void *ctx)             \
    {                                                                     \
        typedef C ew_t;                                                   \
        (void)ctx;                                                        \
        SETUP;                                                            \
        TO *o_ = (TO *)p_[0];                                             \
        const TI *x_ = (const TI *)p_[1], *y_ = (const TI *)p_[2];        \
        const int64_t zo_ = sizeof(TO), zi_ = sizeof(TI);                 \
        if (s_[0] == zo_ && s_[1] == zi_ && s_[2] == zi_) {               \
            EW_IVDEP                                                      \
            for (int64_t i_ = 0; i_ < n_; i_++) {                         \
                ew_t a = LD(x_[i_]), b = LD(y_[i_]);                      \
                o_[i_] = ST((__VA_ARGS__));                               \
            }                                                             \
        } else if (s_[0] == zo_ && s_[1] == zi_ && s_[2] == 0) {          \
            const ew_t b = LD(y_[0]);                                     \
            EW_IVDEP                                                      \
            for (int64_t i_ = 0; i_ < n_; i_++) {                         \
                ew_t a = LD(x_[i_]);                                      \
                o_[i_] = ST((__VA_ARGS__));                               \
            }                                                             \
        } else if (s_[0] == zo_ && s_[1] == 0 && s_[2] == zi_) {          \
            const ew_t a = LD(x_[0]);                                     \
            EW_IVDEP                                                      \
            for (int64_t i_ = 0; i_ < n_; i_++) {                         \
                ew_t b = LD(y_[i_]);                                      \
                o_[i_] = ST((__VA_ARGS__));                               \
            }                                                             \
        } else {                                                          \
            for (int64_t i_ = 0; i_ < n_; i_++) {                         \
                ew_t a = LD(EW_AT(const TI, p_[1], i_, s_[1]));           \
                ew_t b = LD(EW_AT(const TI, p_[2], i_, s_[2]));           \
                EW_AT(TO, p_[0], i_, s_[0]) = ST((__VA_ARGS__));          \
            }                                                             \
        }                                                                 \
    }

/* Two-input loop for same-type arithmetic whose expression also works on
 * GCC vectors (a + b, a * b, a + al * b): contiguous and scalar-operand
 * cases load two 32-byte vectors per input before storing both, a pattern
 * that streamed ~10% faster here than the auto-vectoriser's
 * load-add-store (measured on broadcast rows of 1024 floats). */
#define EW_BINARY_VLOOP(NAME, T, SETUP, ...)                              \
    static EW_STREAM void                                                 \
    NAME(char **p_, const int64_t *s_, int64_t n_, void *ctx)             \
    {                                                                     \
        typedef T ew_t;                                                   \
        typedef T ew_v                                                    \
            __attribute__((vector_size(32), aligned(sizeof(T))));         \
        const int64_t w_ = 32 / sizeof(T), z_ = sizeof(T);                \
        (void)ctx;                                                        \
        SETUP;                                                            \
        T *o_ = (T *)p_[0];                                               \
        const T *x_ = (const T *)p_[1], *y_ = (const T *)p_[2];           \
        int64_t i_ = 0;                                                   \
        if (s_[0] != z_ || (s_[1] != z_ && s_[1] != 0) ||                 \
            (s_[2] != z_ && s_[2] != 0) || (!s_[1] && !s_[2])) {          \
            for (; i_ < n_; i_++) {                                       \
                ew_t a = EW_AT(const T, p_[1], i_, s_[1]);                \
                ew_t b = EW_AT(const T, p_[2], i_, s_[2]);                \
                EW_AT(T, p_[0], i_, s_[0]) = (__VA_ARGS__);               \
            }                                                             \
        } else if (s_[1] && s_[2]) {                                      \
            for (; i_ + 2 * w_ <= n_; i_ += 2 * w_) {                     \
                ew_v a0 = *(const ew_v *)(x_ + i_);                       \
                ew_v a1 = *(const ew_v *)(x_ + i_ + w_);                  \
                ew_v b0 = *(const ew_v *)(y_ + i_);                       \
                ew_v b1 = *(const ew_v *)(y_ + i_ + w_);                  \
                EW_VSTORE2(o_ + i_, w_, a0, b0, a1, b1, __VA_ARGS__);     \
            }                                                             \
            for (; i_ < n_; i_++) {                                       \
                ew_t a = x_[i_], b = y_[i_];                              \
                o_[i_] = (__VA_ARGS__);                                   \
            }                                                             \
        } else if (s_[1]) {                                               \
            const ew_t b0 = y_[0], b1 = b0;                               \
            for (; i_ + 2 * w_ <= n_; i_ += 2 * w_) {                     \
                ew_v a0 = *(const ew_v *)(x_ + i_);                       \
                ew_v a1 = *(const ew_v *)(x_ + i_ + w_);                  \
                EW_VSTORE2(o_ + i_, w_, a0, b0, a1, b1, __VA_ARGS__);     \
            }                                                             \
            for (; i_ < n_; i_++) {                                       \
                ew_t a = x_[i_], b = b0;                                  \
                o_[i_] = (__VA_ARGS__);                                   \
            }                                                             \
        } else {                                                          \
            const ew_t a0 = x_[0], a1 = a0;                               \
            for (; i_ + 2 * w_ <= n_; i_ += 2 * w_) {                     \
                ew_v b0 = *(const ew_v *)(y_ + i_);                       \
                ew_v b1 = *(const ew_v *)(y_ + i_ + w_);                  \
                EW_VSTORE2(o_ + i_, w_, a0, b0, a1, b1, __VA_ARGS__);     \
            }                                                             \
            for (; i_ < n_; i_++) {                                       \
                ew_t a = a0, b = y_[i_];                                  \
                o_[i_] = (__VA_ARGS__);                                   \
            }                                                             \
        }                                                                 \
    }

/* Three-input loop: `a`, `b`, `c` (type ew_t) -> the expression; a fast
 * branch for contiguous data, then any strides. */
#define EW_TERNARY_LOOP(ATTR, NAME, TO, TI, C, LD, ST, SETUP, ...)        \
    static ATTR void                                                      \
    NAME(char **p_, const int64_t *s_, int64_t n_, void *ctx)             \
    {                                                                     \
        typedef C ew_t;                                                   \
        (void)ctx;                                                        \
        SETUP;                                                            \
        const int64_t zo_ = sizeof(TO), zi_ = sizeof(TI);                 \
        if (s_[0] == zo_ && s_[1] == zi_ && s_[2] == zi_ &&               \
            s_[3] == zi_) {                                               \
            TO *o_ = (TO *)p_[0];                                         \
            const TI *x_ = (const TI *)p_[1], *y_ = (const TI *)p_[2];    \
            const TI *z_ = (const TI *)p_[3];                             \
            EW_IVDEP                                                      \
            for (int64_t i_ = 0; i_ < n_; i_++) {                         \
                ew_t a = LD(x_[i_]), b = LD(y_[i_]), c = LD(z_[i_]);      \
                o_[i_] = ST((__VA_ARGS__));                               \
            }                                                             \
            return;                                                       \
        }                                                                 \
        for (int64_t i_ = 0; i_ < n_; i_++) {                             \
            ew_t a = LD(EW_AT(const TI, p_[1], i_, s_[1]));               \
            ew_t b = LD(EW_AT(const TI, p_[2], i_, s_[2]));               \
            ew_t c = LD(EW_AT(const TI, p_[3], i_, s_[3]));               \
            EW_AT(TO, p_[0], i_, s_[0]) = ST((__VA_ARGS__));              \
        }                                                                 \
    }

/* Stores the expression of (a0, b0) at o and of (a1, b1) at o + w. */
#define EW_VSTORE2(o, w, a0, b0, a1, b1, ...)                             \
    do {                                                                  \
        {                                                                 \
            __auto_type a = (a0);                                         \
            __auto_type b = (b0);                                         \
            *(ew_v *)(o) = (__VA_ARGS__);                                 \
        }                                                                 \
        {                                                                 \
            __auto_type a = (a1);                                         \
            __auto_type b = (b1);                                         \
            *(ew_v *)((o) + (w)) = (__VA_ARGS__);                         \
        }                                                                 \
    } while (0)

/* Instantiates GEN(suffix, storage type, compute type, load, store, ...)
 * for each dtype of a family. */
#define EW_FLOATS(GEN, ...)                                               \
    GEN(f16, dt_half, float, EW_LD_F16, EW_ST_F16, __VA_ARGS__)           \
    GEN(bf16, dt_bf16, float, EW_LD_BF16, EW_ST_BF16, __VA_ARGS__)        \
    GEN(f32, float, float, EW_ID, EW_ID, __VA_ARGS__)                     \
    GEN(f64, double, double, EW_ID, EW_ID, __VA_ARGS__)
/* integers computed as unsigned, so overflow wraps (as in PyTorch)
 * without undefined behaviour */
#define EW_INTS_WRAP(GEN, ...)                                            \
    GEN(u8, uint8_t, uint32_t, EW_LD_U32, EW_ST_U8, __VA_ARGS__)          \
    GEN(i32, int32_t, uint32_t, EW_LD_U32, EW_ST_I32, __VA_ARGS__)        \
    GEN(i64, int64_t, uint64_t, EW_LD_U64, EW_ST_I64, __VA_ARGS__)
/* integers computed in their own type (compare, min/max, divide) */
#define EW_INTS(GEN, ...)                                                 \
    GEN(u8, uint8_t, uint8_t, EW_ID, EW_ID, __VA_ARGS__)                  \
    GEN(i32, int32_t, int32_t, EW_ID, EW_ID, __VA_ARGS__)                 \
    GEN(i64, int64_t, int64_t, EW_ID, EW_ID, __VA_ARGS__)
#define EW_BOOL(GEN, ...) GEN(b, bool, bool, EW_ID, EW_ID, __VA_ARGS__)

/* Dispatch-table entries for the functions a family generated. */
#define EW_TABLE_FLOATS(NAME)                                             \
    [DT_FLOAT16] = NAME##_f16, [DT_BFLOAT16] = NAME##_bf16,               \
    [DT_FLOAT32] = NAME##_f32, [DT_FLOAT64] = NAME##_f64
#define EW_TABLE_INTS(NAME)                                               \
    [DT_UINT8] = NAME##_u8, [DT_INT32] = NAME##_i32, [DT_INT64] = NAME##_i64
#define EW_TABLE_BOOL(NAME) [DT_BOOL] = NAME##_b

/* ---------------------------------------------------------------------- */
/* autograd (elementwise.c)                                                */

/* What an entry point knows around its forward when it records. */
typedef struct dt_ew_rec {
    bool record;            /* grad mode is on and an input requires grad */
    bool inplace;           /* *out is the first input */
    bool fresh;             /* *out was NULL: the forward allocates it */
    int nin;
    const dt_tensor *in[3];
    uint32_t version[3];    /* the inputs' versions before the forward */
    dt_tensor *old_self;    /* clone of self before an in-place write */
} dt_ew_rec;

/* Before the forward: decides whether to record and applies PyTorch's
 * refusals (out= with autograd; in place on a leaf that requires grad),
 * before anything is written. in[0] is self. */
dt_status dt_ew_rec_begin(dt_ew_rec *r, dt_tensor *const *out,
                          const dt_tensor *const *in, int nin,
                          const char *name);
/* In place, keeps a clone of self's current value (r->old_self). */
dt_status dt_ew_rec_keep_self(dt_ew_rec *r);
/* After a successful forward: records `name` with r's inputs and *out as
 * the output. */
dt_status dt_ew_rec_node(dt_node **n, const dt_ew_rec *r, dt_tensor **out,
                         const char *name, dt_backward_fn fn);
/* Saves input k as it was before the forward (an in-place write to it
 * then fails the backward's version check, as in PyTorch). */
dt_status dt_ew_save_input(dt_node *n, const dt_ew_rec *r, int k);
/* Saves self's value from before an in-place write: the clone, or self
 * itself when not in place. */
dt_status dt_ew_save_self(dt_node *n, const dt_ew_rec *r);
/* Releases what r holds and, when s failed, a result the forward
 * allocated. Returns s. */
dt_status dt_ew_rec_end(dt_ew_rec *r, dt_tensor **out, dt_status s);

/* The dtype a backward kernel computes and returns: the incoming
 * gradient's (half types load to float32 inside the loops). */
dt_dtype dt_ew_grad_dtype(const dt_tensor *grad);
/* A new tensor: loop over the broadcast inputs (up to three, NULL ends
 * the list), each cast to d first. */
dt_status dt_ew_grad_run(dt_tensor **out, dt_dtype d, dt_loop_fn loop,
                         void *ctx, const dt_tensor *a, const dt_tensor *b,
                         const dt_tensor *c);
/* A backward for ops whose gradient is zero (rounding division, in-place
 * comparisons): zeros for every input that needs a gradient. */
dt_status dt_ew_zero_backward(dt_node *n, dt_tensor **gi,
                              dt_tensor *const *go);
/* A 0-dim float64 tensor marked as a Python number: multiplies a half
 * gradient at float precision, as PyTorch's Scalar operands do. */
dt_status dt_ew_number(dt_tensor **out, double v);

/* ---------------------------------------------------------------------- */
/* forwards and entry points shared across the family's files             */

/* a ** b, both tensors (pow.c) */
dt_status dt_pow_forward(dt_tensor **out, const dt_tensor *a,
                         const dt_tensor *b);
dt_status dt_pow_tensor(dt_tensor **out, const dt_tensor *a,
                        const dt_tensor *b);
/* maximum, minimum (compare.c) */
dt_status dt_maxmin_forward(dt_tensor **out, const dt_tensor *a,
                            const dt_tensor *b, dt_op op);
dt_status dt_maxmin(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
                    dt_op op);
/* comparisons, recording only in place (compare.c) */
dt_status dt_compare(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
                     dt_op op);

#endif /* DT_EW_IMPL_H */
