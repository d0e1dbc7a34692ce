/* matmul.c: matmul, mm, bmm, mv, dot (see matmul.h for the letters).
 *
 * Strided operands go to BLAS without a copy when one of their two matrix
 * strides is 1 (a transposed view is just the other trans flag); anything
 * else is made contiguous first. A batch is a loop of 2-D calls, except
 * that (..., M, K) @ (K, N) folds the batch into M: one big GEMM.
 */
#include <cblas.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "matmul.h"

/* How BLAS should read one row-major matrix view. */
typedef struct blas_mat {
    CBLAS_TRANSPOSE trans;
    int64_t ld;
} blas_mat;

/* A (R, C) view with element strides (rs, cs) is BLAS-readable when one
 * stride is 1 and the other spans a whole row (size-1 dims take any). */
static bool
blas_layout(blas_mat *m, int64_t R, int64_t C, int64_t rs, int64_t cs)
{
    int64_t minr = R > 1 ? R : 1, minc = C > 1 ? C : 1;
    if ((cs == 1 || C == 1) && (R == 1 || rs >= minc)) {
        m->trans = CblasNoTrans;
        m->ld = R == 1 ? minc : rs;
    } else if ((rs == 1 || R == 1) && (C == 1 || cs >= minr)) {
        m->trans = CblasTrans;
        m->ld = C == 1 ? minr : cs;
    } else {
        return false;
    }
    return m->ld <= INT_MAX;
}

static bool
matrix_layout(blas_mat *m, const dt_tensor *t)
{
    int n = t->ndim;
    return blas_layout(m, t->shape[n - 2], t->shape[n - 1],
                       t->strides[n - 2], t->strides[n - 1]);
}

/* One (M, K) @ (K, N) product into a contiguous C. */
static void
gemm_2d(dt_dtype dt, int M, int N, int K, const char *A, blas_mat am,
        const char *B, blas_mat bm, char *C)
{
    int lda = (int)am.ld, ldb = (int)bm.ld;
    if (N == 1) {
        /* y = A x with x the column of B */
        int incx = bm.trans == CblasNoTrans ? ldb : 1;
        int rows = am.trans == CblasNoTrans ? M : K;
        int cols = am.trans == CblasNoTrans ? K : M;
        memset(C, 0, (size_t)M * dt_dtype_size(dt));
        if (dt == DT_FLOAT32) {
            cblas_sgemv(CblasRowMajor, am.trans, rows, cols, 1.0f,
                        (const float *)A, lda, (const float *)B, incx, 0.0f,
                        (float *)C, 1);
        } else {
            cblas_dgemv(CblasRowMajor, am.trans, rows, cols, 1.0,
                        (const double *)A, lda, (const double *)B, incx, 0.0,
                        (double *)C, 1);
        }
        return;
    }
    if (M == 1) {
        /* y = B^T x with x the row of A */
        int incx = am.trans == CblasNoTrans ? 1 : lda;
        CBLAS_TRANSPOSE t = bm.trans == CblasNoTrans ? CblasTrans
                                                     : CblasNoTrans;
        int rows = bm.trans == CblasNoTrans ? K : N;
        int cols = bm.trans == CblasNoTrans ? N : K;
        memset(C, 0, (size_t)N * dt_dtype_size(dt));
        if (dt == DT_FLOAT32) {
            cblas_sgemv(CblasRowMajor, t, rows, cols, 1.0f, (const float *)B,
                        ldb, (const float *)A, incx, 0.0f, (float *)C, 1);
        } else {
            cblas_dgemv(CblasRowMajor, t, rows, cols, 1.0, (const double *)B,
                        ldb, (const double *)A, incx, 0.0, (double *)C, 1);
        }
        return;
    }
    if (dt == DT_FLOAT32) {
        cblas_sgemm(CblasRowMajor, am.trans, bm.trans, M, N, K, 1.0f,
                    (const float *)A, lda, (const float *)B, ldb, 0.0f,
                    (float *)C, N);
    } else {
        cblas_dgemm(CblasRowMajor, am.trans, bm.trans, M, N, K, 1.0,
                    (const double *)A, lda, (const double *)B, ldb, 0.0,
                    (double *)C, N);
    }
}

/* Integer products wrap like PyTorch's (unsigned: no overflow UB). */
#define INT_GEMM(T)                                                       \
    for (int64_t i = 0; i < M; i++) {                                     \
        for (int64_t j = 0; j < N; j++) {                                 \
            uint64_t acc = 0;                                             \
            for (int64_t k = 0; k < K; k++) {                             \
                acc += (uint64_t)(int64_t)*(const T *)(A + (i * as[0] +   \
                                                    k * as[1]) * isz) *   \
                       (uint64_t)(int64_t)*(const T *)(B + (k * bs[0] +   \
                                                    j * bs[1]) * isz);    \
            }                                                             \
            ((T *)C)[i * N + j] = (T)acc;                                 \
        }                                                                 \
    }

static void
int_gemm_2d(dt_dtype dt, int64_t M, int64_t N, int64_t K, const char *A,
            const int64_t *as, const char *B, const int64_t *bs, char *C)
{
    int64_t isz = (int64_t)dt_dtype_size(dt);
    switch (dt) {
    case DT_UINT8: INT_GEMM(uint8_t) break;
    case DT_INT32: INT_GEMM(int32_t) break;
    default: INT_GEMM(int64_t) break;
    }
}

/* Advances the batch odometer of c's leading dims, moving the a/b
 * element offsets along. */
static void
batch_next(int64_t *idx, const dt_tensor *c, const dt_tensor *a,
           const dt_tensor *b, int64_t *ao, int64_t *bo)
{
    for (int d = c->ndim - 3; d >= 0; d--) {
        *ao += a->strides[d];
        *bo += b->strides[d];
        if (++idx[d] < c->shape[d]) {
            return;
        }
        *ao -= a->strides[d] * c->shape[d];
        *bo -= b->strides[d] * c->shape[d];
        idx[d] = 0;
    }
}

/* c (B.., M, N), contiguous = a (B.., M, K) @ b (B.., K, N): same dtype,
 * batch dims already equal. a and b must be BLAS-readable for floats. */
static void
gemm_loop(dt_tensor *c, const dt_tensor *a, const dt_tensor *b,
          const blas_mat *am, const blas_mat *bm)
{
    int nb = c->ndim - 2;
    int64_t M = c->shape[nb], N = c->shape[nb + 1], K = a->shape[nb + 1];
    int64_t nbatch = dt_tensor_numel(c) / (M * N);
    int64_t idx[DT_MAX_DIMS] = {0}, ao = 0, bo = 0;
    size_t isz = dt_dtype_size(c->dtype);
    const char *A = dt_tensor_data(a), *B = dt_tensor_data(b);
    char *C = dt_tensor_data(c);
    for (int64_t e = 0; e < nbatch; e++) {
        char *Ce = C + (size_t)(e * M * N) * isz;
        if (am) {
            gemm_2d(c->dtype, (int)M, (int)N, (int)K, A + ao * (int64_t)isz,
                    *am, B + bo * (int64_t)isz, *bm, Ce);
        } else {
            int_gemm_2d(c->dtype, M, N, K, A + ao * (int64_t)isz,
                        a->strides + nb, B + bo * (int64_t)isz,
                        b->strides + nb, Ce);
        }
        batch_next(idx, c, a, b, &ao, &bo);
    }
}

static dt_status gemm_batched(dt_tensor *c, const dt_tensor *a,
                              const dt_tensor *b, const char *op);

/* float16/bfloat16: compute in float32, round once at the end. */
static dt_status
gemm_via_float(dt_tensor *c, const dt_tensor *a, const dt_tensor *b,
               const char *op)
{
    dt_tensor *a32 = NULL, *b32 = NULL, *c32 = NULL;
    dt_status s = dt_to_dtype(&a32, a, DT_FLOAT32);
    if (s == DT_OK) {
        s = dt_to_dtype(&b32, b, DT_FLOAT32);
    }
    if (s == DT_OK) {
        s = dt_tensor_empty(&c32, c->shape, c->ndim, DT_FLOAT32,
                            DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        s = gemm_batched(c32, a32, b32, op);
    }
    if (s == DT_OK) {
        s = dt_copy_(c, c32);
    }
    dt_tensor_release(a32);
    dt_tensor_release(b32);
    dt_tensor_release(c32);
    return s;
}

static dt_status
gemm_batched(dt_tensor *c, const dt_tensor *a, const dt_tensor *b,
             const char *op)
{
    int nb = c->ndim - 2;
    int64_t M = c->shape[nb], N = c->shape[nb + 1], K = a->shape[nb + 1];
    if (dt_tensor_numel(c) == 0) {
        return DT_OK;
    }
    if (K == 0) {
        return dt_fill_(c, 0.0);   /* an empty sum */
    }
    if (c->dtype == DT_FLOAT16 || c->dtype == DT_BFLOAT16) {
        return gemm_via_float(c, a, b, op);
    }
    if (dt_dtype_is_integral(c->dtype)) {
        gemm_loop(c, a, b, NULL, NULL);
        return DT_OK;
    }
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX) {
        return dt_fail(DT_ERR_RUNTIME, "%s: sizes M=%" PRId64 ", N=%" PRId64
                       ", K=%" PRId64 " are too large for BLAS", op, M, N, K);
    }
    /* operands BLAS can't read as they are get a contiguous copy */
    dt_tensor *ac = NULL, *bc = NULL;
    blas_mat am, bm;
    dt_status s = DT_OK;
    if (!matrix_layout(&am, a)) {
        s = dt_contiguous(&ac, a);
        if (s == DT_OK && !matrix_layout(&am, ac)) {
            s = dt_fail(DT_ERR_RUNTIME, "%s: matrix too large for BLAS", op);
        }
    }
    if (s == DT_OK && !matrix_layout(&bm, b)) {
        s = dt_contiguous(&bc, b);
        if (s == DT_OK && !matrix_layout(&bm, bc)) {
            s = dt_fail(DT_ERR_RUNTIME, "%s: matrix too large for BLAS", op);
        }
    }
    if (s == DT_OK) {
        gemm_loop(c, ac ? ac : a, bc ? bc : b, &am, &bm);
    }
    dt_tensor_release(ac);
    dt_tensor_release(bc);
    return s;
}

/* ---------------------------------------------------------------------- */
/* checks shared by the entry points                                       */

/* "2x3" for error messages. */
static void
shape_x(char *buf, size_t n, const dt_tensor *t)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->ndim && used < n; i++) {
        used += (size_t)snprintf(buf + used, n - used, "%s%" PRId64,
                                 i ? "x" : "", t->shape[i]);
    }
}

static dt_status
check_pair(const dt_tensor *a, const dt_tensor *b, const char *op)
{
    DT_TRY(dt_check_same_device(a, b, op));
    if (a->dtype != b->dtype) {
        return dt_fail(DT_ERR_RUNTIME, "%s: expected m1 and m2 to have the "
                       "same dtype, but got: %s != %s", op,
                       dt_dtype_name(a->dtype), dt_dtype_name(b->dtype));
    }
    if (a->dtype == DT_BOOL) {
        return dt_fail(DT_ERR_NOTIMPL, "%s: not implemented for 'bool'", op);
    }
    return DT_OK;
}

static dt_status
mismatch(const dt_tensor *a, const dt_tensor *b, const char *op)
{
    char sa[160], sb[160];
    shape_x(sa, sizeof sa, a);
    shape_x(sb, sizeof sb, b);
    return dt_fail(DT_ERR_RUNTIME, "%s: mat1 and mat2 shapes cannot be "
                   "multiplied (%s and %s)", op, sa, sb);
}

/* Computes a @ b (same batch dims) into a fresh contiguous tensor, handed
 * out as a view with `shape`, or copied into a given *out. */
static dt_status
product(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
        const int64_t *shape, int ndim, const char *op)
{
    int64_t cs[DT_MAX_DIMS];
    int n = a->ndim;
    memcpy(cs, a->shape, (size_t)(n - 1) * sizeof *cs);
    cs[n - 1] = b->shape[n - 1];
    dt_tensor *c = NULL, *v = NULL;
    if (*out) {
        DT_TRY(dt_prepare_out(out, shape, ndim, a->dtype, DT_DEVICE_CPU,
                              op));
    }
    dt_status s = dt_tensor_empty(&c, cs, n, a->dtype, DT_DEVICE_CPU);
    if (s == DT_OK) {
        s = gemm_batched(c, a, b, op);
    }
    if (s == DT_OK) {
        s = dt_view(&v, c, shape, ndim);
    }
    if (s == DT_OK && *out) {
        s = dt_copy_(*out, v);
        dt_tensor_release(v);
    } else if (s == DT_OK) {
        *out = v;
    }
    dt_tensor_release(c);
    return s;
}

/* ---------------------------------------------------------------------- */
/* entry points                                                            */

/* a (..., M, K) @ b (K, N) for a with batch dims: the batch folds into M,
 * one GEMM instead of a loop of small ones. keep_n: b was not 1-D. */
static dt_status
folded(dt_tensor **out, const dt_tensor *a, const dt_tensor *b, bool keep_n,
       const char *op)
{
    int64_t flat[2] = {1, a->shape[a->ndim - 1]}, shape[DT_MAX_DIMS];
    for (int i = 0; i < a->ndim - 1; i++) {
        flat[0] *= a->shape[i];
        shape[i] = a->shape[i];
    }
    shape[a->ndim - 1] = b->shape[1];
    dt_tensor *a2 = NULL;
    DT_TRY(dt_reshape(&a2, a, flat, 2));
    dt_status s = product(out, a2, b, shape, a->ndim - 1 + keep_n, op);
    dt_tensor_release(a2);
    return s;
}

/* a (..., M, K) @ b (..., K, N): broadcast the batch dims, then loop. The
 * result drops M or N where that operand was 1-D (keep_m, keep_n). */
static dt_status
batched(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
        bool keep_m, bool keep_n, const char *op)
{
    int64_t sa[DT_MAX_DIMS], sb[DT_MAX_DIMS], shape[DT_MAX_DIMS];
    int nb;
    DT_TRY(dt_broadcast_shapes(shape, &nb, a->shape, a->ndim - 2, b->shape,
                               b->ndim - 2, op));
    if (nb + 2 > DT_MAX_DIMS) {
        return dt_fail(DT_ERR_VALUE, "%s: at most %d dims", op, DT_MAX_DIMS);
    }
    memcpy(sa, shape, (size_t)nb * sizeof *sa);
    memcpy(sb, shape, (size_t)nb * sizeof *sb);
    memcpy(sa + nb, a->shape + a->ndim - 2, 2 * sizeof *sa);
    memcpy(sb + nb, b->shape + b->ndim - 2, 2 * sizeof *sb);
    int ndim = nb;
    if (keep_m) {
        shape[ndim++] = sa[nb];
    }
    if (keep_n) {
        shape[ndim++] = sb[nb + 1];
    }
    dt_tensor *ea = NULL, *eb = NULL;
    dt_status s = dt_expand_to(&ea, a, sa, nb + 2, op);
    if (s == DT_OK) {
        s = dt_expand_to(&eb, b, sb, nb + 2, op);
    }
    if (s == DT_OK) {
        s = product(out, ea, eb, shape, ndim, op);
    }
    dt_tensor_release(ea);
    dt_tensor_release(eb);
    return s;
}

/* A new reference to t, with a size-1 dim inserted at `dim` if t is 1-D. */
static dt_status
as_matrix(dt_tensor **out, const dt_tensor *t, int64_t dim)
{
    if (t->ndim != 1) {
        dt_tensor_retain((dt_tensor *)t);
        *out = (dt_tensor *)t;
        return DT_OK;
    }
    return dt_unsqueeze(out, t, dim);
}

dt_status
dt_matmul_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    const char *op = "matmul";
    if (a->ndim == 0 || b->ndim == 0) {
        return dt_fail(DT_ERR_RUNTIME, "matmul: both arguments to matmul "
                       "need to be at least 1D, but they are %dD and %dD",
                       a->ndim, b->ndim);
    }
    DT_TRY(check_pair(a, b, op));
    if (a->shape[a->ndim - 1] != b->shape[b->ndim > 1 ? b->ndim - 2 : 0]) {
        return mismatch(a, b, op);
    }
    if (a->ndim == 1 && b->ndim == 1) {
        return dt_dot_forward(out, a, b);
    }
    /* 1-D operands gain a dim for the product and lose it in the result */
    dt_tensor *a2 = NULL, *b2 = NULL;
    dt_status s = as_matrix(&a2, a, 0);
    if (s == DT_OK) {
        s = as_matrix(&b2, b, 1);
    }
    if (s == DT_OK && a2->ndim > 2 && b2->ndim == 2) {
        s = folded(out, a2, b2, b->ndim > 1, op);
    } else if (s == DT_OK) {
        s = batched(out, a2, b2, a->ndim > 1, b->ndim > 1, op);
    }
    dt_tensor_release(a2);
    dt_tensor_release(b2);
    return s;
}

dt_status
dt_mm_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    if (a->ndim != 2 || b->ndim != 2) {
        return dt_fail(DT_ERR_RUNTIME, "mm: %s must be a matrix",
                       a->ndim != 2 ? "self" : "mat2");
    }
    DT_TRY(check_pair(a, b, "mm"));
    if (a->shape[1] != b->shape[0]) {
        return mismatch(a, b, "mm");
    }
    int64_t shape[2] = {a->shape[0], b->shape[1]};
    return product(out, a, b, shape, 2, "mm");
}

dt_status
dt_bmm_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    if (a->ndim != 3 || b->ndim != 3) {
        return dt_fail(DT_ERR_RUNTIME, "bmm: %s must be a 3D tensor",
                       a->ndim != 3 ? "batch1" : "batch2");
    }
    DT_TRY(check_pair(a, b, "bmm"));
    if (a->shape[0] != b->shape[0] || a->shape[2] != b->shape[1]) {
        return dt_fail(DT_ERR_RUNTIME, "bmm: Expected size for first two "
                       "dimensions of batch2 tensor to be: [%" PRId64 ", %"
                       PRId64 "] but got: [%" PRId64 ", %" PRId64 "].",
                       a->shape[0], a->shape[2], b->shape[0], b->shape[1]);
    }
    int64_t shape[3] = {a->shape[0], a->shape[1], b->shape[2]};
    return product(out, a, b, shape, 3, "bmm");
}

dt_status
dt_mv_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    if (a->ndim != 2 || b->ndim != 1) {
        return dt_fail(DT_ERR_RUNTIME, "mv: matrix @ vector expected, got "
                       "%dD and %dD", a->ndim, b->ndim);
    }
    DT_TRY(check_pair(a, b, "mv"));
    if (a->shape[1] != b->shape[0]) {
        return dt_fail(DT_ERR_RUNTIME, "mv: size mismatch, got mat (%" PRId64
                       "x%" PRId64 "), vec (%" PRId64 ")", a->shape[0],
                       a->shape[1], b->shape[0]);
    }
    dt_tensor *b2 = NULL;
    DT_TRY(dt_unsqueeze(&b2, b, 1));
    dt_status s = product(out, a, b2, a->shape, 1, "mv");
    dt_tensor_release(b2);
    return s;
}

dt_status
dt_dot_forward(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    if (a->ndim != 1 || b->ndim != 1) {
        return dt_fail(DT_ERR_RUNTIME, "dot: 1D tensors expected, but got "
                       "%dD and %dD tensors", a->ndim, b->ndim);
    }
    DT_TRY(check_pair(a, b, "dot"));
    if (a->shape[0] != b->shape[0]) {
        return dt_fail(DT_ERR_RUNTIME, "dot: inconsistent tensor size, "
                       "expected tensor [%" PRId64 "] and src [%" PRId64
                       "] to have the same number of elements, but got %"
                       PRId64 " and %" PRId64 " elements respectively",
                       a->shape[0], b->shape[0], a->shape[0], b->shape[0]);
    }
    /* (1, K) @ (K, 1), seen as a 0-dim result */
    dt_tensor *a2 = NULL, *b2 = NULL;
    dt_status s = dt_unsqueeze(&a2, a, 0);
    if (s == DT_OK) {
        s = dt_unsqueeze(&b2, b, 1);
    }
    if (s == DT_OK) {
        int64_t none[1] = {0};
        s = product(out, a2, b2, none, 0, "dot");
    }
    dt_tensor_release(a2);
    dt_tensor_release(b2);
    return s;
}

void
dt_blas_set_num_threads(int n)
{
    openblas_set_num_threads(n);
}

int
dt_blas_get_num_threads(void)
{
    return openblas_get_num_threads();
}
