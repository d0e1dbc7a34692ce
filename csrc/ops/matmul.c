/* matmul.c: matmul, mm, bmm, mv, dot, forward (see matmul.h for the
 * letters). Shapes are checked and normalised here; the products run in
 * matmul_gemm.c. (..., M, K) @ (K, N) folds the batch into M: one big GEMM
 * instead of a loop of small ones. The backward is in matmul_backward.c.
 */
#include <inttypes.h>
#include <stdio.h>

#include "matmul.h"

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
        s = dt_gemm_batched(c, a, b, op);
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
