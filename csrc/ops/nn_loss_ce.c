/* nn_loss_ce.c: cross_entropy (log_softmax and nll fused into one pass,
 * with one fused backward: softmax - onehot, scaled) and nll_loss; their
 * shape checks, with torch's messages. Kernels in nn_ce_gen.h.
 *
 * An input (N, C, d1, ...) is seen as R = N d1 ... rows of C classes;
 * spatial inputs are transposed to that layout first and their
 * gradients transposed back.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "../autograd/autograd.h"
#include "nn_loss.h"

#define NN_GEN "nn_ce_gen.h"
#include "nn_types_gen.h"

/* torch's names for dtypes, which its messages use */
static const char *
torch_name(dt_dtype d)
{
    static const char *names[DT_DTYPE_COUNT] = {
        [DT_BOOL] = "Bool",    [DT_UINT8] = "Byte",
        [DT_INT32] = "Int",    [DT_INT64] = "Long",
        [DT_FLOAT16] = "Half", [DT_BFLOAT16] = "BFloat16",
        [DT_FLOAT32] = "Float", [DT_FLOAT64] = "Double",
    };
    return names[d];
}

/* ---------------------------------------------------------------------- */
/* shapes                                                                  */

typedef struct ce_plan {
    int64_t n, c, d;                /* input as (n, c, d) */
    bool prob;                      /* probability targets */
    int64_t out_shape[DT_MAX_DIMS]; /* the 'none' result's shape */
    int out_ndim;
} ce_plan;

/* Class-index target shapes, in torch's order of checks. */
static dt_status
ce_check_index_target(const dt_tensor *x, const dt_tensor *t,
                      const char *op)
{
    char a[160], b[160];
    if (t->dtype != DT_INT64 && t->dtype != DT_UINT8) {
        return dt_fail(DT_ERR_RUNTIME, "%s: expected target dtype to be "
                       "Long or Byte, but got %s", op, torch_name(t->dtype));
    }
    if (x->ndim == 1) {
        if (t->ndim == 1 && t->shape[0] != 1) {
            return dt_fail(DT_ERR_VALUE, "%s: For 1D input, 1D target must "
                           "have size 1, but got target size: %" PRId64, op,
                           t->shape[0]);
        }
    } else if (t->ndim == 0 || t->shape[0] != x->shape[0]) {
        return dt_fail(DT_ERR_VALUE, "%s: Expected input batch_size (%" PRId64
                       ") to match target batch_size (%" PRId64 ").", op,
                       x->shape[0], t->ndim ? t->shape[0] : 0);
    }
    if (x->ndim <= 2 && t->ndim > 1) {
        return dt_fail(DT_ERR_RUNTIME, "%s: 0D or 1D target tensor expected, "
                       "multi-target not supported", op);
    }
    bool same = x->ndim < 3 || t->ndim == x->ndim - 1;
    for (int i = 2; same && i < x->ndim; i++) {
        same = t->shape[i - 1] == x->shape[i];
    }
    if (!same) {
        int64_t want[DT_MAX_DIMS];
        want[0] = x->shape[0];
        memcpy(want + 1, x->shape + 2, (size_t)(x->ndim - 2) * sizeof *want);
        dt_nn_shape_str(a, sizeof a, want, x->ndim - 1);
        dt_nn_shape_str(b, sizeof b, t->shape, t->ndim);
        return dt_fail(DT_ERR_RUNTIME, "%s: Expected target size %s, got %s",
                       op, a, b);
    }
    return DT_OK;
}

static dt_status
ce_plan_init(ce_plan *p, const dt_tensor *x, const dt_tensor *t,
             const dt_tensor *w, int64_t ignore, bool allow_prob,
             const char *op)
{
    char a[160];
    if (x->ndim < 1) {
        return dt_fail(DT_ERR_VALUE, "%s: Expected 1 or more dimensions "
                       "(got 0)", op);
    }
    p->prob = allow_prob && t->ndim == x->ndim &&
              !memcmp(t->shape, x->shape, (size_t)x->ndim * sizeof *x->shape);
    if (p->prob && !dt_dtype_is_floating(t->dtype)) {
        return dt_fail(DT_ERR_RUNTIME, "%s: Expected floating point type for "
                       "target with class probabilities, got %s", op,
                       torch_name(t->dtype));
    }
    if (p->prob && ignore >= 0) {
        return dt_fail(DT_ERR_RUNTIME, "%s: ignore_index is not supported for "
                       "floating point target", op);
    }
    if (!p->prob) {
        DT_TRY(ce_check_index_target(x, t, op));
    }
    p->n = x->ndim == 1 ? 1 : x->shape[0];
    p->c = x->shape[x->ndim == 1 ? 0 : 1];
    p->d = 1;
    p->out_ndim = x->ndim == 1 ? 0 : x->ndim - 1;
    p->out_shape[0] = p->n;
    for (int i = 2; i < x->ndim; i++) {
        p->d *= x->shape[i];
        p->out_shape[i - 1] = x->shape[i];
    }
    if (w && (w->ndim != 1 || w->shape[0] != p->c)) {
        dt_nn_shape_str(a, sizeof a, w->shape, w->ndim);
        return dt_fail(DT_ERR_RUNTIME, "%s: weight tensor should be defined "
                       "either for all %" PRId64 " classes or no classes but "
                       "got weight tensor of shape: %s", op, p->c, a);
    }
    return DT_OK;
}

/* x (n, c, d...) as contiguous rows (n d, c) of dtype ct. */
static dt_status
ce_rows(dt_tensor **out, const dt_tensor *x, const ce_plan *p, dt_dtype ct)
{
    if (p->d == 1) {
        return dt_nn_contig(out, x, ct);
    }
    int64_t ncd[3] = {p->n, p->c, p->d}, perm[3] = {0, 2, 1};
    dt_tensor *v = NULL, *tr = NULL;
    dt_status s = dt_reshape(&v, x, ncd, 3);
    s = s == DT_OK ? dt_permute(&tr, v, perm, 3) : s;
    s = s == DT_OK ? dt_nn_contig(out, tr, ct) : s;
    dt_tensor_release(v);
    dt_tensor_release(tr);
    return s;
}

/* The inverse of ce_rows for a gradient: rows (n d, c) -> shape. */
static dt_status
ce_unrows(dt_tensor **out, const dt_tensor *g, const dt_node *node,
          int64_t n, int64_t c, int64_t d)
{
    const dt_input_meta *im = &node->in_meta[0];
    if (d == 1) {
        return dt_reshape(out, g, im->shape, im->ndim);
    }
    int64_t ndc[3] = {n, d, c}, perm[3] = {0, 2, 1};
    dt_tensor *v = NULL, *tr = NULL;
    dt_status s = dt_view(&v, g, ndc, 3);
    s = s == DT_OK ? dt_permute(&tr, v, perm, 3) : s;
    s = s == DT_OK ? dt_reshape(out, tr, im->shape, im->ndim) : s;
    dt_tensor_release(v);
    dt_tensor_release(tr);
    return s;
}

static dt_status
ce_check_bounds(const dt_tensor *t, int64_t c, int64_t ignore,
                const char *op)
{
    const int64_t *v = dt_tensor_data(t);
    int64_t n = dt_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (v[i] != ignore && (v[i] < 0 || v[i] >= c)) {
            return dt_fail(DT_ERR_INDEX, "%s: Target %" PRId64 " is out of "
                           "bounds.", op, v[i]);
        }
    }
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* the shared forward                                                      */

/* What the forward made and the backward needs. */
typedef struct ce_state {
    ce_plan p;
    dt_tensor *x;      /* (R, C) rows */
    dt_tensor *t;      /* (R) int64 classes, or (R, C) probabilities */
    dt_tensor *w;      /* (C) or NULL */
    dt_tensor *lse;    /* (R, 2) each row's max and log(sum(exp(x - max)))
                        * (cross_entropy only) */
    double total, denom;
} ce_state;

static void
ce_state_free(ce_state *s)
{
    dt_tensor_release(s->x);
    dt_tensor_release(s->t);
    dt_tensor_release(s->w);
    dt_tensor_release(s->lse);
}

static dt_status
ce_prepare(ce_state *s, const dt_tensor *x, const dt_tensor *t,
           const dt_tensor *w, int64_t ignore, bool is_nll, const char *op)
{
    dt_dtype ct = DT_FLOAT32;
    memset(s, 0, sizeof *s);
    DT_TRY(dt_nn_compute_dtype(&ct, x, op));
    DT_TRY(ce_plan_init(&s->p, x, t, w, ignore, !is_nll, op));
    int64_t rows = s->p.n * s->p.d;
    dt_status st = ce_rows(&s->x, x, &s->p, ct);
    if (st == DT_OK && s->p.prob) {
        st = ce_rows(&s->t, t, &s->p, ct);
    } else if (st == DT_OK) {
        st = dt_nn_contig(&s->t, t, DT_INT64);
        st = st == DT_OK ? ce_check_bounds(s->t, s->p.c, ignore, op) : st;
    }
    if (st == DT_OK && w) {
        st = dt_nn_contig(&s->w, w, ct);
    }
    if (st == DT_OK && !is_nll) {
        int64_t shape[2] = {rows, 2};
        st = dt_tensor_empty(&s->lse, shape, 2, ct, dt_tensor_device(x));
    }
    if (st != DT_OK) {
        ce_state_free(s);
    }
    return st;
}

/* Runs the kernel: per-row losses into `loss` (R) when not NULL, totals
 * into s. */
static void
ce_run(ce_state *s, dt_tensor *loss, int64_t ignore, double ls, bool is_nll)
{
    int64_t rows = s->p.n * s->p.d, c = s->p.c;
    void *lp = loss ? dt_tensor_data(loss) : NULL;
    void *lse = s->lse ? dt_tensor_data(s->lse) : NULL;
    const void *x = dt_tensor_data(s->x), *t = dt_tensor_data(s->t);
    const void *w = s->w ? dt_tensor_data(s->w) : NULL;
    bool f32 = s->x->dtype == DT_FLOAT32;
    if (is_nll && f32) {
        nll_forward_f32(lp, &s->total, &s->denom, x, t, w, rows, c, ignore);
    } else if (is_nll) {
        nll_forward_f64(lp, &s->total, &s->denom, x, t, w, rows, c, ignore);
    } else if (s->p.prob) {
        s->denom = (double)rows;
        if (f32) {
            ce_prob_forward_f32(lp, lse, &s->total, x, t, w, rows, c,
                                (float)ls);
        } else {
            ce_prob_forward_f64(lp, lse, &s->total, x, t, w, rows, c, ls);
        }
    } else if (f32) {
        ce_forward_f32(lp, lse, &s->total, &s->denom, x, t, w, rows, c,
                       ignore, (float)ls);
    } else {
        ce_forward_f64(lp, lse, &s->total, &s->denom, x, t, w, rows, c,
                       ignore, ls);
    }
}

/* The reduced result (compute dtype) of a prepared state. */
static dt_status
ce_compute(dt_tensor **r, ce_state *s, int64_t ignore, dt_reduction red,
           double ls, bool is_nll)
{
    dt_tensor *loss = NULL;
    int64_t rows = s->p.n * s->p.d;
    if (red == DT_REDUCTION_NONE) {
        DT_TRY(dt_tensor_empty(&loss, &rows, 1, s->x->dtype,
                               dt_tensor_device(s->x)));
    }
    ce_run(s, loss, ignore, ls, is_nll);
    if (loss) {
        dt_status st = dt_reshape(r, loss, s->p.out_shape, s->p.out_ndim);
        dt_tensor_release(loss);
        return st;
    }
    double v = red == DT_REDUCTION_SUM ? s->total : s->total / s->denom;
    return dt_tensor_scalar(r, v, s->x->dtype);
}

static dt_status
ce_forward_common(dt_tensor **out, ce_state *s, const dt_tensor *x,
                  const dt_tensor *t, const dt_tensor *w, int64_t ignore,
                  dt_reduction red, double ls, bool is_nll)
{
    const char *op = is_nll ? "nll_loss" : "cross_entropy";
    dt_tensor *r = NULL;
    DT_TRY(ce_prepare(s, x, t, w, ignore, is_nll, op));
    dt_status st = ce_compute(&r, s, ignore, red, ls, is_nll);
    st = st == DT_OK ? dt_nn_deliver(out, r, x->dtype, op) : st;
    if (st != DT_OK) {
        ce_state_free(s);
    }
    return st;
}

dt_status
dt_cross_entropy_forward(dt_tensor **out, const dt_tensor *input,
                         const dt_tensor *target, const dt_tensor *weight,
                         int64_t ignore_index, dt_reduction reduction,
                         double label_smoothing)
{
    ce_state s;
    DT_TRY(ce_forward_common(out, &s, input, target, weight, ignore_index,
                             reduction, label_smoothing, false));
    ce_state_free(&s);
    return DT_OK;
}

dt_status
dt_nll_loss_forward(dt_tensor **out, const dt_tensor *input,
                    const dt_tensor *target, const dt_tensor *weight,
                    int64_t ignore_index, dt_reduction reduction)
{
    ce_state s;
    DT_TRY(ce_forward_common(out, &s, input, target, weight, ignore_index,
                             reduction, 0, true));
    ce_state_free(&s);
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* backward                                                                */

/* iargs: n, c, d, ignore_index, reduction, prob, nll; dargs: smoothing, the
 * mean's denominator. saved: rows x, targets, weight, lse (see
 * ce_state). */
static void
ce_grad_scale(const dt_node *n, int64_t *gstride, double *gscale)
{
    dt_reduction red = (dt_reduction)n->iargs[4];
    *gstride = red == DT_REDUCTION_NONE;
    *gscale = red == DT_REDUCTION_MEAN ? 1.0 / n->dargs[1] : 1.0;
}

/* Allocates the (R, C) gradient when input i needs one. */
static dt_status
ce_grad_buf(dt_tensor **g, const dt_node *n, int i, dt_dtype ct, bool zero)
{
    int64_t shape[2] = {n->iargs[0] * n->iargs[2], n->iargs[1]};
    if (!dt_node_needs_grad(n, i)) {
        return DT_OK;
    }
    return (zero ? dt_tensor_zeros : dt_tensor_empty)(g, shape, 2, ct,
                                                      DT_DEVICE_CPU);
}

static dt_status
ce_prob_grads(dt_node *n, dt_tensor **gi, dt_tensor *const *saved,
              const dt_tensor *g)
{
    dt_tensor *dx = NULL, *dt = NULL, *dw = NULL;
    dt_dtype ct = saved[0]->dtype;
    int64_t rows = n->iargs[0] * n->iargs[2], c = n->iargs[1], gs;
    double sc, ls = n->dargs[0];
    ce_grad_scale(n, &gs, &sc);
    dt_status s = ce_grad_buf(&dx, n, 0, ct, false);
    s = s == DT_OK ? ce_grad_buf(&dt, n, 1, ct, false) : s;
    if (s == DT_OK && saved[2] && dt_node_needs_grad(n, 2)) {
        s = dt_tensor_zeros(&dw, &c, 1, DT_FLOAT64, DT_DEVICE_CPU);
    }
    void *px = dx ? dt_tensor_data(dx) : NULL;
    void *pt = dt ? dt_tensor_data(dt) : NULL;
    double *pw = dw ? dt_tensor_data(dw) : NULL;
    const void *x = dt_tensor_data(saved[0]), *lse = dt_tensor_data(saved[3]);
    const void *tp = dt_tensor_data(saved[1]), *gp = dt_tensor_data(g);
    const void *w = saved[2] ? dt_tensor_data(saved[2]) : NULL;
    if (s == DT_OK && ct == DT_FLOAT32) {
        ce_prob_backward_f32(px, pt, pw, x, lse, tp, w, gp, gs, sc, rows, c,
                             (float)ls);
    } else if (s == DT_OK) {
        ce_prob_backward_f64(px, pt, pw, x, lse, tp, w, gp, gs, sc, rows, c,
                             ls);
    }
    int64_t nn = n->iargs[0], d = n->iargs[2];
    s = s == DT_OK && dx ? ce_unrows(&gi[0], dx, n, nn, c, d) : s;
    s = s == DT_OK && dt ? ce_unrows(&gi[1], dt, n, nn, c, d) : s;
    if (s == DT_OK && dw) {
        gi[2] = dw;
        dw = NULL;
    }
    dt_tensor_release(dx);
    dt_tensor_release(dt);
    dt_tensor_release(dw);
    return s;
}

static dt_status
ce_index_grads(dt_node *n, dt_tensor **gi, dt_tensor *const *saved,
               const dt_tensor *g, bool is_nll)
{
    dt_tensor *dx = NULL;
    dt_dtype ct = is_nll ? g->dtype : saved[0]->dtype;
    int64_t rows = n->iargs[0] * n->iargs[2], c = n->iargs[1], gs;
    int64_t ignore = n->iargs[3];
    double sc, ls = n->dargs[0];
    ce_grad_scale(n, &gs, &sc);
    DT_TRY(ce_grad_buf(&dx, n, 0, ct, is_nll));
    if (!dx) {
        return DT_OK;
    }
    const void *t = dt_tensor_data(saved[1]), *gp = dt_tensor_data(g);
    const void *w = saved[2] ? dt_tensor_data(saved[2]) : NULL;
    void *px = dt_tensor_data(dx);
    if (is_nll && ct == DT_FLOAT32) {
        nll_backward_f32(px, t, w, gp, gs, sc, rows, c, ignore);
    } else if (is_nll) {
        nll_backward_f64(px, t, w, gp, gs, sc, rows, c, ignore);
    } else if (ct == DT_FLOAT32) {
        ce_backward_f32(px, dt_tensor_data(saved[0]),
                        dt_tensor_data(saved[3]), t, w, gp, gs, sc, rows, c,
                        ignore, (float)ls);
    } else {
        ce_backward_f64(px, dt_tensor_data(saved[0]),
                        dt_tensor_data(saved[3]), t, w, gp, gs, sc, rows, c,
                        ignore, ls);
    }
    dt_status s = ce_unrows(&gi[0], dx, n, n->iargs[0], c, n->iargs[2]);
    dt_tensor_release(dx);
    return s;
}

/* The backward of both cross_entropy and nll_loss (iargs[6]: nll). */
static dt_status
dt_cross_entropy_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    bool is_nll = n->iargs[6];
    dt_tensor *saved[4] = {NULL, NULL, NULL, NULL}, *g = NULL;
    for (int i = 0; i < 4; i++) {
        DT_TRY(dt_node_saved(&saved[i], n, i));
    }
    /* nll saves no rows; its gradient takes the input's compute dtype */
    dt_dtype ct = saved[0] ? saved[0]->dtype
                           : dt_compute_dtype(n->in_meta[0].dtype);
    DT_TRY(dt_nn_contig(&g, go[0], ct));
    dt_status s = n->iargs[5] ? ce_prob_grads(n, gi, saved, g)
                              : ce_index_grads(n, gi, saved, g, is_nll);
    dt_tensor_release(g);
    return s;
}

/* ---------------------------------------------------------------------- */
/* entry points                                                            */

static dt_status
ce_record(dt_tensor **out, ce_state *s, const dt_tensor *const *in,
          int64_t ignore, dt_reduction red, double ls, bool is_nll)
{
    dt_node *n = NULL;
    DT_TRY(dt_node_record(&n, is_nll ? "NllLossBackward0"
                                     : "CrossEntropyLossBackward0",
                          dt_cross_entropy_backward, in, 3, out, 1));
    int64_t args[7] = {s->p.n, s->p.c, s->p.d, ignore, red, s->p.prob,
                       is_nll};
    memcpy(n->iargs, args, sizeof args);
    n->num_iargs = 7;
    n->dargs[0] = ls;
    n->dargs[1] = s->denom;
    DT_TRY(dt_node_save(n, is_nll ? NULL : s->x));
    DT_TRY(dt_node_save(n, s->t));
    DT_TRY(dt_node_save(n, s->w));
    return dt_node_save(n, s->lse);
}

static dt_status
ce_entry(dt_tensor **out, const dt_tensor *x, const dt_tensor *t,
         const dt_tensor *w, int64_t ignore, dt_reduction red, double ls,
         bool is_nll)
{
    const char *op = is_nll ? "nll_loss" : "cross_entropy";
    const dt_tensor *in[3] = {x, t, w};
    bool record = dt_autograd_needed(in, 3);
    ce_state s;
    DT_TRY(dt_nn_check_out(out, record, op));
    /* torch differentiates class weights only with probability targets */
    bool prob = !is_nll && t->ndim == x->ndim && x->ndim > 0 &&
                !memcmp(t->shape, x->shape, (size_t)x->ndim * sizeof *x->shape);
    if (!prob) {
        DT_TRY(dt_nn_no_grad_arg(w, "nll_loss_forward", "weight"));
    }
    DT_TRY(ce_forward_common(out, &s, x, t, w, ignore, red, ls, is_nll));
    dt_status st = record ? ce_record(out, &s, in, ignore, red, ls, is_nll)
                          : DT_OK;
    ce_state_free(&s);
    return st;
}

dt_status
dt_cross_entropy(dt_tensor **out, const dt_tensor *input,
                 const dt_tensor *target, const dt_tensor *weight,
                 int64_t ignore_index, dt_reduction reduction,
                 double label_smoothing)
{
    return ce_entry(out, input, target, weight, ignore_index, reduction,
                    label_smoothing, false);
}

dt_status
dt_nll_loss(dt_tensor **out, const dt_tensor *input, const dt_tensor *target,
            const dt_tensor *weight, int64_t ignore_index,
            dt_reduction reduction)
{
    return ce_entry(out, input, target, weight, ignore_index, reduction, 0,
                    true);
}
