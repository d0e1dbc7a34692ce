/* nn_loss.c: the elementwise losses, mse_loss and
 * binary_cross_entropy_with_logits (forward, backward, entry points;
 * kernels in nn_loss_gen.h). Operands broadcast as in torch; the kernels
 * see them expanded to one contiguous shape, and the backward returns
 * gradients of that shape for the engine to sum down. */
#include "../autograd/autograd.h"
#include "nn_loss.h"

#define NN_GEN "nn_loss_gen.h"
#include "nn_types_gen.h"

/* The operands of one elementwise loss, broadcast and contiguous. */
typedef struct loss_ops {
    dt_tensor *t[4];               /* NULL for absent optional operands */
    int64_t shape[DT_MAX_DIMS];
    int ndim;
    dt_dtype dtype;                /* the result's dtype */
    dt_dtype ct;                   /* the kernels' */
} loss_ops;

static void
loss_ops_free(loss_ops *o)
{
    for (int i = 0; i < 4; i++) {
        dt_tensor_release(o->t[i]);
    }
}

/* The result dtype comes from the first `ntyped` operands. With `fixed`
 * the broadcast shape must be the first operand's (the output is written
 * in its shape, as torch's in-place arithmetic does). */
static dt_status
loss_prepare(loss_ops *o, const dt_tensor *const *in, int nin, int ntyped,
             bool fixed, const char *op)
{
    char a[160], b[160];
    memset(o, 0, sizeof *o);
    o->dtype = dt_result_type(in, ntyped);
    if (!dt_dtype_is_floating(o->dtype)) {
        return dt_fail(DT_ERR_NOTIMPL, "%s: not implemented for '%s'", op,
                       dt_dtype_name(o->dtype));
    }
    o->ct = dt_compute_dtype(o->dtype);
    o->ndim = in[0]->ndim;
    memcpy(o->shape, in[0]->shape, sizeof o->shape);
    for (int i = 1; i < nin; i++) {
        int64_t prev[DT_MAX_DIMS];
        memcpy(prev, o->shape, sizeof prev);
        if (in[i]) {
            DT_TRY(dt_broadcast_shapes(o->shape, &o->ndim, prev, o->ndim,
                                       in[i]->shape, in[i]->ndim, op));
        }
    }
    if (fixed && (o->ndim != in[0]->ndim ||
                  memcmp(o->shape, in[0]->shape,
                         (size_t)o->ndim * sizeof *o->shape))) {
        dt_nn_shape_str(a, sizeof a, in[0]->shape, in[0]->ndim);
        dt_nn_shape_str(b, sizeof b, o->shape, o->ndim);
        return dt_fail(DT_ERR_RUNTIME, "%s: output with shape %s doesn't "
                       "match the broadcast shape %s", op, a, b);
    }
    dt_status s = DT_OK;
    for (int i = 0; i < nin && s == DT_OK; i++) {
        dt_tensor *e = NULL;
        if (!in[i]) {
            continue;
        }
        s = dt_expand_to(&e, in[i], o->shape, o->ndim, op);
        s = s == DT_OK ? dt_nn_contig(&o->t[i], e, o->ct) : s;
        dt_tensor_release(e);
    }
    if (s != DT_OK) {
        loss_ops_free(o);
    }
    return s;
}

static void *
data_or_null(const dt_tensor *t)
{
    return t ? dt_tensor_data(t) : NULL;
}

/* One loss kernel over the operands: per-element losses into `loss`
 * (NULL: only the total is wanted); returns their total. */
typedef double (*loss_kernel)(void *loss, const loss_ops *o, int64_t n);

/* Runs `kernel` once (into a per-element buffer for 'none'), reduces,
 * and delivers the result to *out as the operands' result dtype. */
static dt_status
loss_compute(dt_tensor **out, const loss_ops *o, dt_reduction red,
             loss_kernel kernel, const char *op)
{
    dt_tensor *loss = NULL, *r = NULL;
    int64_t n = dt_tensor_numel(o->t[0]);
    if (red == DT_REDUCTION_NONE) {
        DT_TRY(dt_tensor_empty(&loss, o->shape, o->ndim, o->ct,
                               DT_DEVICE_CPU));
    }
    double total = kernel(data_or_null(loss), o, n);
    if (red == DT_REDUCTION_NONE) {
        r = loss;
    } else {
        DT_TRY(dt_tensor_scalar(&r, red == DT_REDUCTION_SUM ? total
                                                            : total / n,
                                o->ct));
    }
    return dt_nn_deliver(out, r, o->dtype, op);
}

/* iargs[0]: reduction; dargs[0]: the broadcast numel (mean's divisor).
 * Sets the upstream gradient's stride (0: one shared value) and scale. */
static dt_status
loss_upstream(dt_tensor **g, int64_t *gstride, double *gscale,
              const dt_node *n, const dt_tensor *go, dt_dtype ct)
{
    dt_reduction red = (dt_reduction)n->iargs[0];
    *gstride = red == DT_REDUCTION_NONE;
    *gscale = red == DT_REDUCTION_MEAN ? 1.0 / n->dargs[0] : 1.0;
    return dt_nn_contig(g, go, ct);
}

/* An uninitialised gradient like `like` when input i needs one. */
static dt_status
loss_grad_buf(dt_tensor **g, const dt_node *n, int i, const dt_tensor *like)
{
    if (!dt_node_needs_grad(n, i)) {
        return DT_OK;
    }
    return dt_tensor_empty(g, like->shape, like->ndim, like->dtype,
                           DT_DEVICE_CPU);
}

/* Records `name` over inputs in[0..2) and saves the operands. */
static dt_status
loss_record(dt_tensor **out, const char *name, dt_backward_fn fn,
            const dt_tensor *const *in, const loss_ops *o, int nsave,
            dt_reduction red)
{
    dt_node *n = NULL;
    DT_TRY(dt_node_record(&n, name, fn, in, 2, out, 1));
    n->iargs[0] = red;
    n->num_iargs = 1;
    n->dargs[0] = (double)dt_tensor_numel(o->t[0]);
    for (int i = 0; i < nsave; i++) {
        DT_TRY(dt_node_save(n, o->t[i]));
    }
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* mse_loss                                                                */

/* the per-element squared errors into loss (NULL: only their total) */
static double
mse_kernel(void *loss, const loss_ops *o, int64_t n)
{
    const void *a = dt_tensor_data(o->t[0]), *b = dt_tensor_data(o->t[1]);
    return o->ct == DT_FLOAT32 ? mse_forward_f32(loss, a, b, n)
                               : mse_forward_f64(loss, a, b, n);
}

dt_status
dt_mse_loss_forward(dt_tensor **out, const dt_tensor *input,
                    const dt_tensor *target, dt_reduction reduction)
{
    const dt_tensor *in[2] = {input, target};
    loss_ops o;
    DT_TRY(loss_prepare(&o, in, 2, 2, false, "mse_loss"));
    dt_status s = loss_compute(out, &o, reduction, mse_kernel, "mse_loss");
    loss_ops_free(&o);
    return s;
}

/* saved: input and target, broadcast and contiguous */
static dt_status
dt_mse_loss_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *a = NULL, *b = NULL, *g = NULL;
    DT_TRY(dt_node_saved(&a, n, 0));
    DT_TRY(dt_node_saved(&b, n, 1));
    int64_t gs;
    double sc;
    DT_TRY(loss_upstream(&g, &gs, &sc, n, go[0], a->dtype));
    dt_status s = loss_grad_buf(&gi[0], n, 0, a);
    s = s == DT_OK ? loss_grad_buf(&gi[1], n, 1, a) : s;
    if (s == DT_OK) {
        void *da = data_or_null(gi[0]), *db = data_or_null(gi[1]);
        const void *pa = dt_tensor_data(a), *pb = dt_tensor_data(b);
        const void *pg = dt_tensor_data(g);
        int64_t cnt = dt_tensor_numel(a);
        if (a->dtype == DT_FLOAT32) {
            mse_backward_f32(da, db, pa, pb, pg, gs, sc, cnt);
        } else {
            mse_backward_f64(da, db, pa, pb, pg, gs, sc, cnt);
        }
    }
    dt_tensor_release(g);
    return s;
}

dt_status
dt_mse_loss(dt_tensor **out, const dt_tensor *input, const dt_tensor *target,
            dt_reduction reduction)
{
    const dt_tensor *in[2] = {input, target};
    bool record = dt_autograd_needed(in, 2);
    loss_ops o;
    DT_TRY(dt_nn_check_out(out, record, "mse_loss"));
    DT_TRY(loss_prepare(&o, in, 2, 2, false, "mse_loss"));
    dt_status s = loss_compute(out, &o, reduction, mse_kernel, "mse_loss");
    if (s == DT_OK && record) {
        s = loss_record(out, "MseLossBackward0", dt_mse_loss_backward, in,
                        &o, 2, reduction);
    }
    loss_ops_free(&o);
    return s;
}

/* ---------------------------------------------------------------------- */
/* binary_cross_entropy_with_logits                                        */

/* the per-element losses into loss (NULL: only their total) */
static double
bce_kernel(void *loss, const loss_ops *o, int64_t n)
{
    const void *x = dt_tensor_data(o->t[0]), *t = dt_tensor_data(o->t[1]);
    const void *w = data_or_null(o->t[2]), *pw = data_or_null(o->t[3]);
    return o->ct == DT_FLOAT32 ? bce_forward_f32(loss, x, t, w, pw, n)
                               : bce_forward_f64(loss, x, t, w, pw, n);
}

dt_status
dt_bce_with_logits_forward(dt_tensor **out, const dt_tensor *input,
                           const dt_tensor *target, const dt_tensor *weight,
                           const dt_tensor *pos_weight,
                           dt_reduction reduction)
{
    const char *op = "binary_cross_entropy_with_logits";
    const dt_tensor *in[4] = {input, target, weight, pos_weight};
    loss_ops o;
    DT_TRY(loss_prepare(&o, in, 4, 2, true, op));
    dt_status s = loss_compute(out, &o, reduction, bce_kernel, op);
    loss_ops_free(&o);
    return s;
}

/* saved: input, target, weight, pos_weight (broadcast, contiguous) */
static dt_status
dt_bce_with_logits_backward(dt_node *n, dt_tensor **gi,
                            dt_tensor *const *go)
{
    dt_tensor *v[4] = {NULL, NULL, NULL, NULL}, *g = NULL;
    for (int i = 0; i < 4; i++) {
        DT_TRY(dt_node_saved(&v[i], n, i));
    }
    int64_t gs;
    double sc;
    DT_TRY(loss_upstream(&g, &gs, &sc, n, go[0], v[0]->dtype));
    dt_status s = loss_grad_buf(&gi[0], n, 0, v[0]);
    s = s == DT_OK ? loss_grad_buf(&gi[1], n, 1, v[0]) : s;
    if (s == DT_OK) {
        void *dx = data_or_null(gi[0]), *dt = data_or_null(gi[1]);
        const void *x = dt_tensor_data(v[0]), *t = dt_tensor_data(v[1]);
        const void *w = data_or_null(v[2]), *pw = data_or_null(v[3]);
        const void *pg = dt_tensor_data(g);
        int64_t cnt = dt_tensor_numel(v[0]);
        if (v[0]->dtype == DT_FLOAT32) {
            bce_backward_f32(dx, dt, x, t, w, pw, pg, gs, sc, cnt);
        } else {
            bce_backward_f64(dx, dt, x, t, w, pw, pg, gs, sc, cnt);
        }
    }
    dt_tensor_release(g);
    return s;
}

dt_status
dt_bce_with_logits(dt_tensor **out, const dt_tensor *input,
                   const dt_tensor *target, const dt_tensor *weight,
                   const dt_tensor *pos_weight, dt_reduction reduction)
{
    const char *op = "binary_cross_entropy_with_logits";
    const dt_tensor *in[4] = {input, target, weight, pos_weight};
    bool record = dt_autograd_needed(in, 2);
    loss_ops o;
    DT_TRY(dt_nn_check_out(out, record, op));
    DT_TRY(dt_nn_no_grad_arg(weight, op, "weight"));
    DT_TRY(dt_nn_no_grad_arg(pos_weight, op, "pos_weight"));
    DT_TRY(loss_prepare(&o, in, 4, 2, true, op));
    dt_status s = loss_compute(out, &o, reduction, bce_kernel, op);
    if (s == DT_OK && record) {
        s = loss_record(out, "BinaryCrossEntropyWithLogitsBackward0",
                        dt_bce_with_logits_backward, in, &o, 4, reduction);
    }
    loss_ops_free(&o);
    return s;
}
