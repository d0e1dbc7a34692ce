/* nn_norm.c: layer_norm (forward, backward, entry point, torch's shape
 * checks; kernels in nn_norm_gen.h). */
#include <inttypes.h>

#include "../autograd/autograd.h"
#include "nn_loss.h"

#define NN_GEN "nn_norm_gen.h"
#include "nn_types_gen.h"

static void *
data_or_null(const dt_tensor *t)
{
    return t ? dt_tensor_data(t) : NULL;
}

/* ---------------------------------------------------------------------- */
/* layer_norm                                                              */

static dt_status
ln_check(const dt_tensor *x, const int64_t *ns, int nns, const dt_tensor *w,
         const dt_tensor *b)
{
    char a[160], c[160];
    const char *op = "layer_norm";
    dt_nn_shape_str(a, sizeof a, ns, nns);
    if (nns < 1) {
        return dt_fail(DT_ERR_RUNTIME, "%s: Expected normalized_shape to be "
                       "at least 1-dimensional, i.e., containing at least one "
                       "element, but got normalized_shape = %s", op, a);
    }
    bool ok = x->ndim >= nns;
    for (int i = 0; ok && i < nns; i++) {
        ok = x->shape[x->ndim - nns + i] == ns[i];
    }
    if (!ok) {
        dt_nn_shape_str(c, sizeof c, x->shape, x->ndim);
        return dt_fail(DT_ERR_RUNTIME, "%s: Given normalized_shape=%s, "
                       "expected input with shape [*, %s, but got input of "
                       "size%s", op, a, a + 1, c);
    }
    const dt_tensor *p[2] = {w, b};
    for (int k = 0; k < 2; k++) {
        if (p[k] && (p[k]->ndim != nns ||
                     memcmp(p[k]->shape, ns, (size_t)nns * sizeof *ns))) {
            dt_nn_shape_str(c, sizeof c, p[k]->shape, p[k]->ndim);
            return dt_fail(DT_ERR_RUNTIME, "%s: Expected %s to be of same "
                           "shape as normalized_shape, but got %s of shape %s "
                           "and normalized_shape = %s", op,
                           k ? "bias" : "weight", k ? "bias" : "weight", c,
                           a);
        }
    }
    return DT_OK;
}

/* What the forward made and the backward needs. */
typedef struct ln_state {
    dt_tensor *x, *w, *b;     /* contiguous, compute dtype */
    dt_tensor *mean, *rstd;   /* (rows) */
    int64_t rows, m;
} ln_state;

static void
ln_state_free(ln_state *s)
{
    dt_tensor_release(s->x);
    dt_tensor_release(s->w);
    dt_tensor_release(s->b);
    dt_tensor_release(s->mean);
    dt_tensor_release(s->rstd);
}

static dt_status
ln_compute(dt_tensor **y, ln_state *s, const dt_tensor *x, const int64_t *ns,
           int nns, const dt_tensor *w, const dt_tensor *b, double eps)
{
    dt_dtype ct = DT_FLOAT32;
    memset(s, 0, sizeof *s);
    DT_TRY(dt_nn_compute_dtype(&ct, x, "layer_norm"));
    DT_TRY(ln_check(x, ns, nns, w, b));
    s->m = 1;
    for (int i = 0; i < nns; i++) {
        s->m *= ns[i];
    }
    s->rows = s->m ? dt_tensor_numel(x) / s->m : 0;
    dt_status st = dt_nn_contig(&s->x, x, ct);
    st = st == DT_OK && w ? dt_nn_contig(&s->w, w, ct) : st;
    st = st == DT_OK && b ? dt_nn_contig(&s->b, b, ct) : st;
    st = st == DT_OK ? dt_tensor_empty(&s->mean, &s->rows, 1, ct,
                                       DT_DEVICE_CPU) : st;
    st = st == DT_OK ? dt_tensor_empty(&s->rstd, &s->rows, 1, ct,
                                       DT_DEVICE_CPU) : st;
    st = st == DT_OK ? dt_tensor_empty(y, x->shape, x->ndim, ct,
                                       DT_DEVICE_CPU) : st;
    if (st != DT_OK) {
        ln_state_free(s);
        return st;
    }
    void *py = dt_tensor_data(*y), *pm = dt_tensor_data(s->mean);
    void *pr = dt_tensor_data(s->rstd);
    const void *px = dt_tensor_data(s->x), *pw = data_or_null(s->w);
    const void *pb = data_or_null(s->b);
    if (ct == DT_FLOAT32) {
        ln_forward_f32(py, pm, pr, px, pw, pb, s->rows, s->m, (float)eps);
    } else {
        ln_forward_f64(py, pm, pr, px, pw, pb, s->rows, s->m, eps);
    }
    return DT_OK;
}

dt_status
dt_layer_norm_forward(dt_tensor **out, const dt_tensor *input,
                      const int64_t *normalized_shape, int nshape,
                      const dt_tensor *weight, const dt_tensor *bias,
                      double eps)
{
    ln_state s;
    dt_tensor *y = NULL;
    DT_TRY(ln_compute(&y, &s, input, normalized_shape, nshape, weight, bias,
                      eps));
    ln_state_free(&s);
    return dt_nn_deliver(out, y, input->dtype, "layer_norm");
}

/* saved: x, w (or NULL), mean, rstd; iargs[0]: m. The kernel always
 * gets a weight and dw/db accumulators: ones and scratch stand in for
 * what the op does not have or need. */
static dt_status
dt_layer_norm_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *v[4], *g = NULL, *dx = NULL, *w = NULL, *dw = NULL;
    dt_tensor *db = NULL;
    for (int i = 0; i < 4; i++) {
        DT_TRY(dt_node_saved(&v[i], n, i));
    }
    dt_dtype ct = v[0]->dtype;
    int64_t m = n->iargs[0], rows = dt_tensor_numel(v[2]);
    dt_status s = dt_nn_contig(&g, go[0], ct);
    if (s == DT_OK && dt_node_needs_grad(n, 0)) {
        s = dt_tensor_empty(&dx, v[0]->shape, v[0]->ndim, ct, DT_DEVICE_CPU);
    }
    if (s == DT_OK && v[1]) {
        dt_tensor_retain(v[1]);
        w = v[1];
    } else if (s == DT_OK) {
        s = dt_tensor_empty(&w, &m, 1, ct, DT_DEVICE_CPU);
        s = s == DT_OK ? dt_fill_(w, 1.0) : s;
    }
    s = s == DT_OK ? dt_tensor_zeros(&dw, &m, 1, ct, DT_DEVICE_CPU) : s;
    s = s == DT_OK ? dt_tensor_zeros(&db, &m, 1, ct, DT_DEVICE_CPU) : s;
    if (s == DT_OK) {
        void *pdx = data_or_null(dx), *pdw = dt_tensor_data(dw);
        void *pdb = dt_tensor_data(db);
        const void *px = dt_tensor_data(v[0]), *pw = dt_tensor_data(w);
        const void *pm = dt_tensor_data(v[2]), *pr = dt_tensor_data(v[3]);
        const void *pg = dt_tensor_data(g);
        if (ct == DT_FLOAT32) {
            ln_backward_f32(pdx, pdw, pdb, px, pg, pm, pr, pw, rows, m);
        } else {
            ln_backward_f64(pdx, pdw, pdb, px, pg, pm, pr, pw, rows, m);
        }
    }
    gi[0] = dx;
    if (s == DT_OK && dt_node_needs_grad(n, 1)) {
        s = dt_reshape(&gi[1], dw, n->in_meta[1].shape, n->in_meta[1].ndim);
    }
    if (s == DT_OK && dt_node_needs_grad(n, 2)) {
        s = dt_reshape(&gi[2], db, n->in_meta[2].shape, n->in_meta[2].ndim);
    }
    dt_tensor_release(g);
    dt_tensor_release(w);
    dt_tensor_release(dw);
    dt_tensor_release(db);
    return s;
}

dt_status
dt_layer_norm(dt_tensor **out, const dt_tensor *input,
              const int64_t *normalized_shape, int nshape,
              const dt_tensor *weight, const dt_tensor *bias, double eps)
{
    const dt_tensor *in[3] = {input, weight, bias};
    bool record = dt_autograd_needed(in, 3);
    ln_state s;
    dt_tensor *y = NULL;
    dt_node *n = NULL;
    DT_TRY(dt_nn_check_out(out, record, "layer_norm"));
    DT_TRY(ln_compute(&y, &s, input, normalized_shape, nshape, weight, bias,
                      eps));
    dt_status st = dt_nn_deliver(out, y, input->dtype, "layer_norm");
    if (st == DT_OK && record) {
        st = dt_node_record(&n, "NativeLayerNormBackward0",
                            dt_layer_norm_backward, in, 3, out, 1);
    }
    if (st == DT_OK && record) {
        n->iargs[0] = s.m;
        n->num_iargs = 1;
        dt_tensor *save[4] = {s.x, s.w, s.mean, s.rstd};
        for (int i = 0; i < 4 && st == DT_OK; i++) {
            st = dt_node_save(n, save[i]);
        }
    }
    ln_state_free(&s);
    return st;
}
