/* nn_linear.c: linear (y = x W^T + b) forward and backward, and the
 * helpers the other nn_*.c files share (compute dtypes, GEMM dispatch,
 * delivering results, recording nodes).
 *
 * The forward is one GEMM with W read transposed through the BLAS flag
 * and the bias pre-filled into C (beta = 1), so no extra pass adds it.
 * The backward is one GEMM for each of grad x and grad W, and a column
 * sum for grad b.
 */
#include <cblas.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>

#include "nn.h"

/* ---------------------------------------------------------------------- */
/* shared helpers                                                          */

dt_status
dt_nnc_compute_dtype(dt_dtype *cdt, dt_dtype dtype, const char *op)
{
    switch (dtype) {
    case DT_FLOAT32:
    case DT_FLOAT64:
        *cdt = dtype;
        return DT_OK;
    case DT_FLOAT16:
    case DT_BFLOAT16:
        *cdt = DT_FLOAT32;
        return DT_OK;
    case DT_BOOL:
        return dt_fail(DT_ERR_NOTIMPL, "%s: not implemented for 'bool'",
                       op);
    default:
        *cdt = DT_INT64;
        return DT_OK;
    }
}

dt_status
dt_nnc_prep(dt_tensor **out, const dt_tensor *t, dt_dtype cdt)
{
    if (t->dtype == cdt) {
        return dt_contiguous(out, t);
    }
    return dt_to_dtype(out, t, cdt);   /* a fresh, contiguous tensor */
}

dt_status
dt_nnc_deliver(dt_tensor **out, dt_tensor *res, dt_dtype dtype,
               const char *op)
{
    if (!*out && res->dtype == dtype) {
        *out = res;
        return DT_OK;
    }
    bool fresh = !*out;
    dt_status s = dt_prepare_out(out, res->shape, res->ndim, dtype,
                                 DT_DEVICE_CPU, op);
    if (s == DT_OK) {
        s = dt_copy_(*out, res);
    }
    if (s != DT_OK && fresh) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    dt_tensor_release(res);
    return s;
}

/* Integer GEMM that wraps like PyTorch's (unsigned: no overflow UB). */
static void
int_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K,
         const int64_t *A, int64_t lda, const int64_t *B, int64_t ldb,
         bool accumulate, int64_t *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            uint64_t acc = accumulate ? (uint64_t)C[i * ldc + j] : 0;
            for (int64_t k = 0; k < K; k++) {
                int64_t a = ta ? A[k * lda + i] : A[i * lda + k];
                int64_t b = tb ? B[j * ldb + k] : B[k * ldb + j];
                acc += (uint64_t)a * (uint64_t)b;
            }
            C[i * ldc + j] = (int64_t)acc;
        }
    }
}

void
dt_nnc_gemm(dt_dtype cdt, bool ta, bool tb, int64_t M, int64_t N,
            int64_t K, const void *A, int64_t lda, const void *B,
            int64_t ldb, bool accumulate, void *C, int64_t ldc)
{
    if (M == 0 || N == 0) {
        return;
    }
    if (K == 0) {
        size_t isz = dt_dtype_size(cdt);
        for (int64_t i = 0; i < M && !accumulate; i++) {
            memset((char *)C + (size_t)(i * ldc) * isz, 0, (size_t)N * isz);
        }
        return;
    }
    DT_ASSERT(M <= INT_MAX && N <= INT_MAX && K <= INT_MAX &&
              lda <= INT_MAX && ldb <= INT_MAX && ldc <= INT_MAX);
    CBLAS_TRANSPOSE TA = ta ? CblasTrans : CblasNoTrans;
    CBLAS_TRANSPOSE TB = tb ? CblasTrans : CblasNoTrans;
    if (cdt == DT_FLOAT32) {
        cblas_sgemm(CblasRowMajor, TA, TB, (int)M, (int)N, (int)K, 1.0f,
                    A, (int)lda, B, (int)ldb, accumulate ? 1.0f : 0.0f, C,
                    (int)ldc);
    } else if (cdt == DT_FLOAT64) {
        cblas_dgemm(CblasRowMajor, TA, TB, (int)M, (int)N, (int)K, 1.0, A,
                    (int)lda, B, (int)ldb, accumulate ? 1.0 : 0.0, C,
                    (int)ldc);
    } else {
        int_gemm(ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc);
    }
}

/* Sum of p[0..n): 16 independent lanes so the loop vectorises (a single
 * accumulator would have to add in order), then the lanes in double. */
DT_NNC_CLONES double
dt_nnc_sum_f32(const float *p, int64_t n)
{
    float lane[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int k = 0; k < 16; k++) {
            lane[k] += p[i + k];
        }
    }
    double acc = 0.0;
    for (int k = 0; k < 16; k++) {
        acc += lane[k];
    }
    for (; i < n; i++) {
        acc += p[i];
    }
    return acc;
}

DT_NNC_CLONES double
dt_nnc_sum_f64(const double *p, int64_t n)
{
    double lane[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; k++) {
            lane[k] += p[i + k];
        }
    }
    double acc = 0.0;
    for (int k = 0; k < 8; k++) {
        acc += lane[k];
    }
    for (; i < n; i++) {
        acc += p[i];
    }
    return acc;
}

dt_status
dt_nnc_record(dt_tensor **out, dt_node **node, const char *name,
              dt_backward_fn fn, const dt_tensor *const *in, int nin,
              const dt_tensor *const *save, int nsave)
{
    if (node) {
        *node = NULL;
    }
    if (!dt_autograd_needed(in, nin)) {
        return DT_OK;
    }
    dt_node *n = NULL;
    dt_status s = dt_node_record(&n, name, fn, in, nin, out, 1);
    for (int i = 0; s == DT_OK && i < nsave; i++) {
        s = dt_node_save(n, save[i]);
    }
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
        return s;
    }
    if (node) {
        *node = n;
    }
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* linear                                                                  */

static dt_status
linear_check(const dt_tensor *x, const dt_tensor *w, const dt_tensor *b)
{
    if (x->ndim < 1 || w->ndim < 1) {
        return dt_fail(DT_ERR_RUNTIME, "linear: both arguments to linear "
                       "need to be at least 1D, but they are %dD and %dD",
                       x->ndim, w->ndim);
    }
    if (w->ndim != 2) {
        return dt_fail(DT_ERR_RUNTIME, "linear: weight must be a matrix, "
                       "got %d-D tensor", w->ndim);
    }
    if (x->dtype != w->dtype) {
        return dt_fail(DT_ERR_RUNTIME, "linear: expected m1 and m2 to have "
                       "the same dtype, but got: %s != %s",
                       dt_dtype_name(x->dtype), dt_dtype_name(w->dtype));
    }
    if (b && b->dtype != w->dtype) {
        return dt_fail(DT_ERR_RUNTIME, "linear: self and mat2 must have the "
                       "same dtype, but got %s and %s",
                       dt_dtype_name(b->dtype), dt_dtype_name(w->dtype));
    }
    int64_t K = x->shape[x->ndim - 1], M = dt_tensor_numel(x);
    M = K ? M / K : 1;
    for (int i = 0; !K && i < x->ndim - 1; i++) {
        M *= x->shape[i];
    }
    if (K != w->shape[1]) {
        return dt_fail(DT_ERR_RUNTIME, "linear: mat1 and mat2 shapes cannot "
                       "be multiplied (%" PRId64 "x%" PRId64 " and %" PRId64
                       "x%" PRId64 ")", M, K, w->shape[1], w->shape[0]);
    }
    if (M > INT_MAX || w->shape[0] > INT_MAX || K > INT_MAX) {
        return dt_fail(DT_ERR_RUNTIME, "linear: sizes are too large for "
                       "BLAS");
    }
    int64_t O = w->shape[0];
    if (b && (b->ndim > 1 || (b->ndim == 1 && b->shape[0] != O &&
                              b->shape[0] != 1))) {
        char sb[160];
        dt_shape_format(sb, sizeof sb, b->shape, b->ndim);
        return dt_fail(DT_ERR_RUNTIME, "linear: bias of shape %s cannot be "
                       "broadcast to the output features (%" PRId64 ")", sb,
                       O);
    }
    DT_TRY(dt_check_same_device(x, w, "linear"));
    return b ? dt_check_same_device(x, b, "linear") : DT_OK;
}

/* Each of the M rows of c (M, O) = the bias (numel 1 or O). */
static void
fill_bias(char *c, const dt_tensor *b, int64_t M, int64_t O)
{
    size_t isz = dt_dtype_size(b->dtype);
    const char *bp = dt_tensor_data(b);
    if (dt_tensor_numel(b) == 1) {
        for (int64_t j = 0; j < O; j++) {
            memcpy(c + (size_t)j * isz, bp, isz);
        }
    } else {
        memcpy(c, bp, (size_t)O * isz);
    }
    for (int64_t i = 1; i < M; i++) {
        memcpy(c + (size_t)(i * O) * isz, c, (size_t)O * isz);
    }
}

dt_status
dt_linear_forward(dt_tensor **out, const dt_tensor *x, const dt_tensor *w,
                  const dt_tensor *b)
{
    dt_dtype cdt = DT_FLOAT32;
    DT_TRY(linear_check(x, w, b));
    DT_TRY(dt_nnc_compute_dtype(&cdt, x->dtype, "linear"));
    int64_t K = w->shape[1], O = w->shape[0], shape[DT_MAX_DIMS], M = 1;
    for (int i = 0; i < x->ndim - 1; i++) {
        shape[i] = x->shape[i];
        M *= x->shape[i];
    }
    shape[x->ndim - 1] = O;
    dt_tensor *xc = NULL, *wc = NULL, *bc = NULL, *res = NULL;
    dt_status s = dt_nnc_prep(&xc, x, cdt);
    if (s == DT_OK) {
        s = dt_nnc_prep(&wc, w, cdt);
    }
    if (s == DT_OK && b) {
        s = dt_nnc_prep(&bc, b, cdt);
    }
    if (s == DT_OK) {
        s = dt_tensor_empty(&res, shape, x->ndim, cdt, DT_DEVICE_CPU);
    }
    if (s == DT_OK) {
        if (bc && M * O > 0) {
            fill_bias(dt_tensor_data(res), bc, M, O);
        }
        dt_nnc_gemm(cdt, false, true, M, O, K, dt_tensor_data(xc), K,
                    dt_tensor_data(wc), K, bc != NULL, dt_tensor_data(res),
                    O);
        s = dt_nnc_deliver(out, res, x->dtype, "linear");
    }
    dt_tensor_release(xc);
    dt_tensor_release(wc);
    dt_tensor_release(bc);
    return s;
}

/* gb[j] = sum over rows i of g[i, j], accumulated in double. */
static dt_status
column_sum(dt_tensor **gb, const dt_tensor *g, int64_t M, int64_t O,
           dt_dtype cdt)
{
    double *acc = calloc((size_t)(O ? O : 1), sizeof *acc);
    if (!acc) {
        return dt_fail(DT_ERR_NOMEM, "linear: out of memory");
    }
    dt_status s = dt_tensor_empty(gb, &O, 1, cdt, DT_DEVICE_CPU);
    if (s == DT_OK && cdt == DT_FLOAT32) {
        const float *gp = dt_tensor_data(g);
        for (int64_t i = 0; i < M; i++) {
            for (int64_t j = 0; j < O; j++) {
                acc[j] += gp[i * O + j];
            }
        }
        float *o = dt_tensor_data(*gb);
        for (int64_t j = 0; j < O; j++) {
            o[j] = (float)acc[j];
        }
    } else if (s == DT_OK) {
        const double *gp = dt_tensor_data(g);
        for (int64_t i = 0; i < M; i++) {
            for (int64_t j = 0; j < O; j++) {
                acc[j] += gp[i * O + j];
            }
        }
        memcpy(dt_tensor_data(*gb), acc, (size_t)O * sizeof *acc);
    }
    free(acc);
    return s;
}

/* saved: x, w. Gradients in the compute dtype; the engine casts. */
static dt_status
dt_linear_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *x, *w, *xc = NULL, *wc = NULL, *gc = NULL;
    DT_TRY(dt_node_saved(&x, n, 0));
    DT_TRY(dt_node_saved(&w, n, 1));
    dt_dtype cdt = DT_FLOAT32;
    DT_TRY(dt_nnc_compute_dtype(&cdt, x->dtype, "linear"));
    int64_t K = w->shape[1], O = w->shape[0], M = 1, wshape[2] = {O, K};
    for (int i = 0; i < x->ndim - 1; i++) {
        M *= x->shape[i];
    }
    dt_status s = dt_nnc_prep(&gc, go[0], cdt);
    if (s == DT_OK && dt_node_needs_grad(n, 0)) {
        s = dt_nnc_prep(&wc, w, cdt);
        if (s == DT_OK) {
            s = dt_tensor_empty(&gi[0], x->shape, x->ndim, cdt,
                                DT_DEVICE_CPU);
        }
        if (s == DT_OK) {
            dt_nnc_gemm(cdt, false, false, M, K, O, dt_tensor_data(gc), O,
                        dt_tensor_data(wc), K, false,
                        dt_tensor_data(gi[0]), K);
        }
    }
    if (s == DT_OK && dt_node_needs_grad(n, 1)) {
        s = dt_nnc_prep(&xc, x, cdt);
        if (s == DT_OK) {
            s = dt_tensor_empty(&gi[1], wshape, 2, cdt, DT_DEVICE_CPU);
        }
        if (s == DT_OK) {
            dt_nnc_gemm(cdt, true, false, O, K, M, dt_tensor_data(gc), O,
                        dt_tensor_data(xc), K, false,
                        dt_tensor_data(gi[1]), K);
        }
    }
    if (s == DT_OK && n->num_inputs > 2 && dt_node_needs_grad(n, 2)) {
        s = column_sum(&gi[2], gc, M, O, cdt);
    }
    dt_tensor_release(xc);
    dt_tensor_release(wc);
    dt_tensor_release(gc);
    return s;
}

dt_status
dt_linear(dt_tensor **out, const dt_tensor *x, const dt_tensor *w,
          const dt_tensor *b)
{
    DT_TRY(dt_linear_forward(out, x, w, b));
    const dt_tensor *in[3] = {x, w, b}, *save[2] = {x, w};
    return dt_nnc_record(out, NULL, b ? "AddmmBackward0" : "MmBackward0",
                         dt_linear_backward, in, b ? 3 : 2, save, 2);
}
