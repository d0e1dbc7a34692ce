/* matmul_gemm.c: the batched GEMM under every matrix product, forward and
 * backward (see dt_gemm_batched in matmul.h), and OpenBLAS's thread count.
 *
 * Strided operands go to BLAS without a copy when one of their two matrix
 * strides is 1 (a transposed view is just the other trans flag); anything
 * else is made contiguous first. A batch is a loop of 2-D calls; where the
 * result's batch stride is 0 the calls accumulate (beta = 1) into the same
 * matrix, which is how a backward sums over broadcast batch dims without
 * materialising them.
 */
#include <cblas.h>
#include <inttypes.h>
#include <limits.h>
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

bool
dt_gemm_readable(const dt_tensor *t)
{
    blas_mat m;
    return matrix_layout(&m, t);
}

/* y (n elements, step inc) = 0: BLAS may read y even when beta is 0. */
static void
zero_vec(char *y, int n, int inc, size_t isz)
{
    if (inc == 1) {
        memset(y, 0, (size_t)n * isz);
        return;
    }
    for (int i = 0; i < n; i++) {
        memset(y + (size_t)i * (size_t)inc * isz, 0, isz);
    }
}

/* y (+)= op(A) x through gemv: A is a BLAS matrix of rows x cols. */
static void
gemv(dt_dtype dt, CBLAS_TRANSPOSE t, int rows, int cols, const char *A,
     int lda, const char *x, int incx, char *y, int incy, int ny, bool acc)
{
    if (!acc) {
        zero_vec(y, ny, incy, dt_dtype_size(dt));
    }
    if (dt == DT_FLOAT32) {
        cblas_sgemv(CblasRowMajor, t, rows, cols, 1.0f, (const float *)A, lda,
                    (const float *)x, incx, acc ? 1.0f : 0.0f, (float *)y,
                    incy);
    } else {
        cblas_dgemv(CblasRowMajor, t, rows, cols, 1.0, (const double *)A, lda,
                    (const double *)x, incx, acc ? 1.0 : 0.0, (double *)y,
                    incy);
    }
}

/* One (M, K) @ (K, N) product into C (row stride ldc, unit column
 * stride), added to C when acc. */
static void
gemm_2d(dt_dtype dt, int M, int N, int K, const char *A, blas_mat am,
        const char *B, blas_mat bm, char *C, int ldc, bool acc)
{
    int lda = (int)am.ld, ldb = (int)bm.ld;
    if (N == 1) {
        /* y = A x with x the column of B, y the column of C */
        int incx = bm.trans == CblasNoTrans ? ldb : 1;
        int rows = am.trans == CblasNoTrans ? M : K;
        int cols = am.trans == CblasNoTrans ? K : M;
        gemv(dt, am.trans, rows, cols, A, lda, B, incx, C, ldc, M, acc);
        return;
    }
    if (M == 1) {
        /* y = B^T x with x the row of A, y the row of C */
        int incx = am.trans == CblasNoTrans ? 1 : lda;
        CBLAS_TRANSPOSE t = bm.trans == CblasNoTrans ? CblasTrans
                                                     : CblasNoTrans;
        int rows = bm.trans == CblasNoTrans ? K : N;
        int cols = bm.trans == CblasNoTrans ? N : K;
        gemv(dt, t, rows, cols, B, ldb, A, incx, C, 1, N, acc);
        return;
    }
    if (dt == DT_FLOAT32) {
        cblas_sgemm(CblasRowMajor, am.trans, bm.trans, M, N, K, 1.0f,
                    (const float *)A, lda, (const float *)B, ldb,
                    acc ? 1.0f : 0.0f, (float *)C, ldc);
    } else {
        cblas_dgemm(CblasRowMajor, am.trans, bm.trans, M, N, K, 1.0,
                    (const double *)A, lda, (const double *)B, ldb,
                    acc ? 1.0 : 0.0, (double *)C, ldc);
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

/* Advances the batch odometer of c's leading dims, moving the a/b/c
 * element offsets along. */
static void
batch_next(int64_t *idx, const dt_tensor *c, const dt_tensor *a,
           const dt_tensor *b, int64_t *off)
{
    for (int d = c->ndim - 3; d >= 0; d--) {
        off[0] += a->strides[d];
        off[1] += b->strides[d];
        off[2] += c->strides[d];
        if (++idx[d] < c->shape[d]) {
            return;
        }
        off[0] -= a->strides[d] * c->shape[d];
        off[1] -= b->strides[d] * c->shape[d];
        off[2] -= c->strides[d] * c->shape[d];
        idx[d] = 0;
    }
}

/* Whether this batch element adds to a matrix an earlier one wrote: the
 * first visit of a matrix shared along stride-0 dims is the one with all
 * those indices 0 (the odometer reaches it first). */
static bool
revisits(const int64_t *idx, const dt_tensor *c)
{
    for (int d = 0; d < c->ndim - 2; d++) {
        if (c->strides[d] == 0 && idx[d] > 0) {
            return true;
        }
    }
    return false;
}

/* c (B.., M, N) = a (B.., M, K) @ b (B.., K, N): same dtype, batch dims
 * already equal. Floats: a and b BLAS-readable (am, bm), c rows unit
 * stride. Integers (am == NULL): c contiguous. */
static void
gemm_loop(dt_tensor *c, const dt_tensor *a, const dt_tensor *b,
          const blas_mat *am, const blas_mat *bm)
{
    int nb = c->ndim - 2;
    int64_t M = c->shape[nb], N = c->shape[nb + 1], K = a->shape[nb + 1];
    int64_t nbatch = 1, idx[DT_MAX_DIMS] = {0}, off[3] = {0, 0, 0};
    for (int d = 0; d < nb; d++) {
        nbatch *= c->shape[d];
    }
    int64_t isz = (int64_t)dt_dtype_size(c->dtype);
    int ldc = (int)(M > 1 ? c->strides[nb] : N);
    const char *A = dt_tensor_data(a), *B = dt_tensor_data(b);
    char *C = dt_tensor_data(c);
    for (int64_t e = 0; e < nbatch; e++) {
        if (am) {
            gemm_2d(c->dtype, (int)M, (int)N, (int)K, A + off[0] * isz, *am,
                    B + off[1] * isz, *bm, C + off[2] * isz, ldc,
                    revisits(idx, c));
        } else {
            int_gemm_2d(c->dtype, M, N, K, A + off[0] * isz, a->strides + nb,
                        B + off[1] * isz, b->strides + nb, C + off[2] * isz);
        }
        batch_next(idx, c, a, b, off);
    }
}

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
        s = dt_gemm_batched(c32, a32, b32, op);
    }
    if (s == DT_OK) {
        s = dt_copy_(c, c32);
    }
    dt_tensor_release(a32);
    dt_tensor_release(b32);
    dt_tensor_release(c32);
    return s;
}

/* *m for t, or for a contiguous copy of t (held in *copy) when BLAS
 * can't read t as it is. */
static dt_status
blas_operand(blas_mat *m, dt_tensor **copy, const dt_tensor *t,
             const char *op)
{
    if (matrix_layout(m, t)) {
        return DT_OK;
    }
    DT_TRY(dt_contiguous(copy, t));
    if (!matrix_layout(m, *copy)) {
        return dt_fail(DT_ERR_RUNTIME, "%s: matrix too large for BLAS", op);
    }
    return DT_OK;
}

dt_status
dt_gemm_batched(dt_tensor *c, const dt_tensor *a, const dt_tensor *b,
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
    if (M > INT_MAX || N > INT_MAX || K > INT_MAX ||
        c->strides[nb] > INT_MAX) {
        return dt_fail(DT_ERR_RUNTIME, "%s: sizes M=%" PRId64 ", N=%" PRId64
                       ", K=%" PRId64 " are too large for BLAS", op, M, N, K);
    }
    dt_tensor *ac = NULL, *bc = NULL;
    blas_mat am, bm;
    dt_status s = blas_operand(&am, &ac, a, op);
    if (s == DT_OK) {
        s = blas_operand(&bm, &bc, b, op);
    }
    if (s == DT_OK) {
        gemm_loop(c, ac ? ac : a, bc ? bc : b, &am, &bm);
    }
    dt_tensor_release(ac);
    dt_tensor_release(bc);
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
