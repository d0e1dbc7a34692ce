/* matmul_backward.c: the backward of matmul, mm, bmm, mv and dot (their
 * forwards are in matmul.c), and their recording entry points.
 *
 * One backward serves all five. With 1-D operands seen as matrices (a as
 * (1, K), b as (K, 1)) and the incoming gradient g as (B.., M, N):
 *     dA = g @ b^T        dB = a^T @ g
 * The transposes are views that BLAS reads through its trans flags, so
 * no operand is copied unless it was not BLAS-readable to begin with (an
 * expanded gradient from sum, say). The gradient of an operand broadcast
 * over batch dims is summed inside the GEMM loop (beta = 1 into a stride-0
 * result); when the other operand is a plain matrix the batch folds into
 * one big GEMM instead: into M for dA, into the summed K for dB.
 * float16/bfloat16 compute in float32; the engine rounds the result.
 */
#include "../autograd/autograd.h"
#include "matmul.h"

/* t in the compute dtype, as a matrix: a 1-D t gains a dim at `dim`. */
static dt_status
operand(dt_tensor **out, const dt_tensor *t, int64_t dim)
{
    dt_tensor *c = NULL;
    DT_TRY(dt_to_dtype(&c, t, dt_compute_dtype(t->dtype)));
    if (c->ndim != 1) {
        *out = c;
        return DT_OK;
    }
    dt_status s = dt_unsqueeze(out, c, dim);
    dt_tensor_release(c);
    return s;
}

/* The shapes one backward works with. */
typedef struct mm_grad {
    dt_tensor *a, *b;        /* (Ba.., M, K), (Bb.., K, N); NULL: unsaved */
    dt_tensor *g;            /* (B.., M, N) */
    dt_tensor *g2;           /* g as (B * M, N), made when a fold needs it */
    int64_t ash[DT_MAX_DIMS], bsh[DT_MAX_DIMS];   /* a and b as matrices */
    int a_nd, b_nd;
} mm_grad;

static void
mm_grad_release(mm_grad *m)
{
    dt_tensor_release(m->a);
    dt_tensor_release(m->b);
    dt_tensor_release(m->g);
    dt_tensor_release(m->g2);
}

/* meta's shape as a matrix operand (1-D gains a dim at `dim`). */
static int
matrix_shape(int64_t *shape, const dt_input_meta *meta, int dim)
{
    if (meta->ndim != 1) {
        memcpy(shape, meta->shape, (size_t)meta->ndim * sizeof *shape);
        return meta->ndim;
    }
    shape[dim] = 1;
    shape[1 - dim] = meta->shape[0];
    return 2;
}

static dt_status
mm_grad_init(mm_grad *m, dt_node *n, const dt_tensor *go)
{
    dt_tensor *sa = NULL, *sb = NULL, *g = NULL;
    const dt_input_meta *ma = &n->in_meta[0], *mb = &n->in_meta[1];
    DT_TRY(dt_node_saved(&sa, n, 0));
    DT_TRY(dt_node_saved(&sb, n, 1));
    m->a_nd = matrix_shape(m->ash, ma, 0);
    m->b_nd = matrix_shape(m->bsh, mb, 1);
    if (sa) {
        DT_TRY(operand(&m->a, sa, 0));
    }
    if (sb) {
        DT_TRY(operand(&m->b, sb, 1));
    }
    /* the dims a 1-D operand dropped from the result come back */
    DT_TRY(dt_to_dtype(&m->g, go, dt_compute_dtype(go->dtype)));
    if (ma->ndim == 1) {
        DT_TRY(dt_unsqueeze(&g, m->g, m->g->ndim - (mb->ndim == 1 ? 0 : 1)));
        dt_tensor_release(m->g);
        m->g = g;
    }
    if (mb->ndim == 1) {
        DT_TRY(dt_unsqueeze(&g, m->g, m->g->ndim));
        dt_tensor_release(m->g);
        m->g = g;
    }
    /* an expanded gradient (from sum) is copied once, not per product */
    if (!dt_gemm_readable(m->g)) {
        DT_TRY(dt_contiguous(&g, m->g));
        dt_tensor_release(m->g);
        m->g = g;
    }
    return DT_OK;
}

/* Rows when t's batch folds into its next-to-last dim. */
static int64_t
folded_rows(const dt_tensor *t)
{
    int64_t rows = 1;
    for (int d = 0; d < t->ndim - 1; d++) {
        rows *= t->shape[d];
    }
    return rows;
}

/* The batch folds when the other operand is a plain matrix and this one
 * has batch dims (the forward folded then too): g as (B * M, N). */
static dt_status
fold_g(mm_grad *m)
{
    int64_t shape[2] = {folded_rows(m->g), m->g->shape[m->g->ndim - 1]};
    return m->g2 ? DT_OK : dt_reshape(&m->g2, m->g, shape, 2);
}

/* c: a new tensor of `shape` seen as (B.., R, C), with stride 0 along the
 * batch dims it was broadcast over (the GEMM loop sums into it). */
static dt_status
grad_target(dt_tensor **res, dt_tensor **c, const int64_t *shape, int ndim,
            const dt_tensor *g, int64_t rows, int64_t cols)
{
    int64_t full[DT_MAX_DIMS];
    int nb = g->ndim - 2;
    memcpy(full, g->shape, (size_t)nb * sizeof *full);
    full[nb] = rows;
    full[nb + 1] = cols;
    DT_TRY(dt_tensor_empty(res, shape, ndim, g->dtype, DT_DEVICE_CPU));
    return dt_expand_to(c, *res, full, nb + 2, "matmul backward");
}

/* dA = g @ b^T, with a's matrix shape. */
static dt_status
grad_a(dt_tensor **res, mm_grad *m)
{
    dt_tensor *c = NULL, *be = NULL, *bt = NULL;
    int64_t K = m->ash[m->a_nd - 1], N = m->g->shape[m->g->ndim - 1];
    dt_status s;
    if (m->b_nd == 2 && m->a_nd > 2) {
        int64_t shape[2] = {folded_rows(m->g), K};
        s = fold_g(m);
        if (s == DT_OK) {
            s = dt_tensor_empty(res, shape, 2, m->g->dtype, DT_DEVICE_CPU);
        }
        if (s == DT_OK) {
            s = dt_transpose(&bt, m->b, 0, 1);
        }
        if (s == DT_OK) {
            s = dt_gemm_batched(*res, m->g2, bt, "matmul backward");
        }
        dt_tensor_release(bt);
        return s;
    }
    int64_t full[DT_MAX_DIMS];
    int nd = m->g->ndim;
    memcpy(full, m->g->shape, (size_t)(nd - 2) * sizeof *full);
    full[nd - 2] = K;
    full[nd - 1] = N;
    s = grad_target(res, &c, m->ash, m->a_nd, m->g, m->g->shape[nd - 2], K);
    if (s == DT_OK) {
        s = dt_expand_to(&be, m->b, full, nd, "matmul backward");
    }
    if (s == DT_OK) {
        s = dt_transpose(&bt, be, nd - 2, nd - 1);
    }
    if (s == DT_OK) {
        s = dt_gemm_batched(c, m->g, bt, "matmul backward");
    }
    dt_tensor_release(c);
    dt_tensor_release(be);
    dt_tensor_release(bt);
    return s;
}

/* dB = a^T @ g, with b's matrix shape. */
static dt_status
grad_b(dt_tensor **res, mm_grad *m)
{
    dt_tensor *c = NULL, *ae = NULL, *at = NULL, *a2 = NULL;
    int64_t K = m->bsh[m->b_nd - 2], M = m->ash[m->a_nd - 2];
    dt_status s;
    int nd = m->g->ndim;
    if (m->b_nd == 2 && m->a_nd > 2) {
        int64_t shape[2] = {folded_rows(m->a), K};
        s = fold_g(m);
        if (s == DT_OK) {
            s = dt_reshape(&a2, m->a, shape, 2);
        }
        if (s == DT_OK) {
            s = dt_transpose(&at, a2, 0, 1);
        }
        if (s == DT_OK) {
            s = dt_tensor_empty(res, m->bsh, 2, m->g->dtype, DT_DEVICE_CPU);
        }
        if (s == DT_OK) {
            s = dt_gemm_batched(*res, at, m->g2, "matmul backward");
        }
        dt_tensor_release(a2);
        dt_tensor_release(at);
        return s;
    }
    int64_t full[DT_MAX_DIMS];
    memcpy(full, m->g->shape, (size_t)(nd - 2) * sizeof *full);
    full[nd - 2] = M;
    full[nd - 1] = K;
    s = grad_target(res, &c, m->bsh, m->b_nd, m->g, K, m->g->shape[nd - 1]);
    if (s == DT_OK) {
        s = dt_expand_to(&ae, m->a, full, nd, "matmul backward");
    }
    if (s == DT_OK) {
        s = dt_transpose(&at, ae, nd - 2, nd - 1);
    }
    if (s == DT_OK) {
        s = dt_gemm_batched(c, at, m->g, "matmul backward");
    }
    dt_tensor_release(c);
    dt_tensor_release(ae);
    dt_tensor_release(at);
    return s;
}

/* saved: a (when b needs a gradient), b (when a needs one). */
static dt_status
dt_matmul_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    mm_grad m = {0};
    dt_tensor *ra = NULL, *rb = NULL;
    dt_status s = mm_grad_init(&m, n, go[0]);
    if (s == DT_OK && dt_node_needs_grad(n, 0)) {
        s = grad_a(&ra, &m);
    }
    if (s == DT_OK && dt_node_needs_grad(n, 1)) {
        s = grad_b(&rb, &m);
    }
    /* back to the inputs' own shapes (1-D operands lose their extra dim) */
    if (s == DT_OK && ra) {
        s = dt_reshape(&gi[0], ra, n->in_meta[0].shape, n->in_meta[0].ndim);
    }
    if (s == DT_OK && rb) {
        s = dt_reshape(&gi[1], rb, n->in_meta[1].shape, n->in_meta[1].ndim);
    }
    dt_tensor_release(ra);
    dt_tensor_release(rb);
    mm_grad_release(&m);
    return s;
}

/* ---------------------------------------------------------------------- */
/* entry points                                                            */

typedef dt_status (*product_fn)(dt_tensor **, const dt_tensor *,
                                const dt_tensor *);

/* PyTorch's node names where its matmul would make one node. */
static const char *
node_name(const dt_tensor *a, const dt_tensor *b)
{
    if (a->ndim == 1 && b->ndim == 1) {
        return "DotBackward0";
    }
    if (a->ndim == 2 && b->ndim == 1) {
        return "MvBackward0";
    }
    return a->ndim == 2 && b->ndim == 2 ? "MmBackward0" : "MatmulBackward0";
}

static dt_status
record_product(dt_tensor **out, const dt_tensor *a, const dt_tensor *b,
               product_fn fn, const char *name, const char *op)
{
    bool record = dt_autograd_needed2(a, b);
    if (record && *out) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): functions with out=... "
                       "arguments don't support automatic differentiation, "
                       "but one of the arguments requires grad.", op);
    }
    DT_TRY(fn(out, a, b));
    if (!record) {
        return DT_OK;
    }
    dt_node *n = NULL;
    const dt_tensor *in[2] = {a, b};
    dt_status s = dt_node_record(&n, name, dt_matmul_backward, in, 2, out,
                                 1);
    /* each operand is needed only for the other's gradient */
    if (s == DT_OK) {
        s = dt_node_save(n, dt_node_needs_grad(n, 1) ? a : NULL);
    }
    if (s == DT_OK) {
        s = dt_node_save(n, dt_node_needs_grad(n, 0) ? b : NULL);
    }
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

dt_status
dt_matmul(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    return record_product(out, a, b, dt_matmul_forward, node_name(a, b),
                          "matmul");
}

dt_status
dt_mm(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    return record_product(out, a, b, dt_mm_forward, "MmBackward0", "mm");
}

dt_status
dt_bmm(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    return record_product(out, a, b, dt_bmm_forward, "BmmBackward0", "bmm");
}

dt_status
dt_mv(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    return record_product(out, a, b, dt_mv_forward, "MvBackward0", "mv");
}

dt_status
dt_dot(dt_tensor **out, const dt_tensor *a, const dt_tensor *b)
{
    return record_product(out, a, b, dt_dot_forward, "DotBackward0", "dot");
}
