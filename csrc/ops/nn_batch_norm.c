/* nn_batch_norm.c: batch_norm over (N, C, *) in training (batch
 * statistics, running stats updated in place) and eval mode (running
 * stats): forward, backward, entry point, torch's checks. Kernels in
 * nn_bnorm_gen.h; per-channel arithmetic is done in double. */
#include <inttypes.h>
#include <stdlib.h>

#include "../autograd/autograd.h"
#include "nn_loss.h"

#define NN_GEN "nn_bnorm_gen.h"
#include "nn_types_gen.h"

/* ---------------------------------------------------------------------- */
/* batch_norm                                                              */

static dt_status
bn_check(const dt_tensor *x, const dt_tensor *rm, const dt_tensor *rv,
         const dt_tensor *w, const dt_tensor *b, bool training)
{
    if (x->ndim < 2) {
        return dt_fail(DT_ERR_RUNTIME, "batch_norm: expected an input of "
                       "shape (N, C, *), got %dD input", x->ndim);
    }
    if (!rm != !rv) {
        return dt_fail(DT_ERR_VALUE, "batch_norm: running_mean and "
                       "running_var must either both be None or neither be "
                       "None");
    }
    if (!training && !rm) {
        return dt_fail(DT_ERR_RUNTIME, "batch_norm: running_mean must be "
                       "defined in evaluation mode");
    }
    const dt_tensor *p[4] = {rm, rv, w, b};
    const char *names[4] = {"running_mean", "running_var", "weight", "bias"};
    for (int i = 0; i < 4; i++) {
        if (p[i] && dt_tensor_numel(p[i]) != x->shape[1]) {
            return dt_fail(DT_ERR_RUNTIME, "batch_norm: %s should contain %"
                           PRId64 " elements not %" PRId64, names[i],
                           x->shape[1], dt_tensor_numel(p[i]));
        }
    }
    return DT_OK;
}

/* What the forward made and the backward needs. */
typedef struct bn_state {
    dt_tensor *x;                /* contiguous, compute dtype */
    dt_tensor *mean, *invstd;    /* (c) float64: the statistics used */
    int64_t n, c, s;
} bn_state;

static void
bn_state_free(bn_state *s)
{
    dt_tensor_release(s->x);
    dt_tensor_release(s->mean);
    dt_tensor_release(s->invstd);
}

/* A new (c) float64 tensor (the caller may write it) of t's values, or
 * of `fill` when t is NULL. */
static dt_status
bn_vec(dt_tensor **out, const dt_tensor *t, int64_t c, double fill)
{
    dt_tensor *flat = NULL;
    DT_TRY(dt_tensor_empty(out, &c, 1, DT_FLOAT64, DT_DEVICE_CPU));
    dt_status s = t ? dt_reshape(&flat, t, &c, 1) : DT_OK;
    s = s == DT_OK ? (t ? dt_copy_(*out, flat) : dt_fill_(*out, fill)) : s;
    dt_tensor_release(flat);
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

/* Batch mean and biased variance per channel, into mean and var (c),
 * from sums shifted by each channel's first value (no cancellation). */
static dt_status
bn_batch_stats(double *mean, double *var, const bn_state *st)
{
    /* k: each channel's first value, the shift */
    int64_t c = st->c, cnt = st->n * st->s;
    dt_tensor *k = NULL, *s1 = NULL, *s2 = NULL;
    dt_status s = dt_tensor_zeros(&k, &c, 1, st->x->dtype, DT_DEVICE_CPU);
    s = s == DT_OK ? dt_tensor_zeros(&s1, &c, 1, DT_FLOAT64, DT_DEVICE_CPU) : s;
    s = s == DT_OK ? dt_tensor_zeros(&s2, &c, 1, DT_FLOAT64, DT_DEVICE_CPU) : s;
    if (s == DT_OK) {
        double *a = dt_tensor_data(s1), *b = dt_tensor_data(s2);
        const void *x = dt_tensor_data(st->x);
        void *pk = dt_tensor_data(k);
        bool f32 = st->x->dtype == DT_FLOAT32;
        size_t isz = dt_dtype_size(st->x->dtype);
        for (int64_t j = 0; cnt && j < c; j++) {
            memcpy((char *)pk + j * isz, (const char *)x + j * st->s * isz,
                   isz);
        }
        if (f32) {
            bn_sums_f32(a, b, x, pk, x, pk, st->n, c, st->s);
        } else {
            bn_sums_f64(a, b, x, pk, x, pk, st->n, c, st->s);
        }
        for (int64_t j = 0; j < c; j++) {
            double kj = f32 ? ((float *)pk)[j] : ((double *)pk)[j];
            double m1 = a[j] / cnt, v = b[j] / cnt - m1 * m1;
            mean[j] = kj + m1;
            var[j] = v > 0 ? v : 0;
        }
    }
    dt_tensor_release(k);
    dt_tensor_release(s1);
    dt_tensor_release(s2);
    return s;
}

/* running = (1 - momentum) running + momentum batch, in place. */
static dt_status
bn_update(dt_tensor *running, const double *batch, double scale,
          double momentum, int64_t c)
{
    dt_tensor *r = NULL;
    DT_TRY(bn_vec(&r, running, c, 0));
    double *v = dt_tensor_data(r);
    for (int64_t j = 0; j < c; j++) {
        v[j] = (1 - momentum) * v[j] + momentum * batch[j] * scale;
    }
    int64_t shape = c;
    dt_tensor *view = NULL;
    dt_status s = dt_reshape(&view, running, &shape, 1);
    /* a reshape that had to copy would lose the update */
    if (s == DT_OK && view->storage != running->storage) {
        s = dt_fail(DT_ERR_RUNTIME, "batch_norm: running stats must be "
                    "viewable as (%" PRId64 ",)", c);
    }
    s = s == DT_OK ? dt_copy_(view, r) : s;
    dt_tensor_release(view);
    dt_tensor_release(r);
    return s;
}

/* The (c) float64 values v as a tensor of dtype ct. */
static dt_status
bn_to_ct(dt_tensor **out, const double *v, int64_t c, dt_dtype ct)
{
    dt_tensor *t = NULL;
    DT_TRY(dt_tensor_empty(&t, &c, 1, DT_FLOAT64, DT_DEVICE_CPU));
    memcpy(dt_tensor_data(t), v, (size_t)c * sizeof *v);
    dt_status s = dt_nn_contig(out, t, ct);
    dt_tensor_release(t);
    return s;
}

/* out = a[c] u + b[c] v + k[c] (u may be NULL), a, b, k in float64. */
static dt_status
bn_affine(dt_tensor *out, const dt_tensor *u, const dt_tensor *v,
          const double *a, const double *b, const double *k, int64_t n,
          int64_t c, int64_t s)
{
    dt_tensor *ta = NULL, *tb = NULL, *tk = NULL;
    dt_dtype ct = v->dtype;
    dt_status st = bn_to_ct(&ta, a, c, ct);
    st = st == DT_OK ? bn_to_ct(&tb, b, c, ct) : st;
    st = st == DT_OK ? bn_to_ct(&tk, k, c, ct) : st;
    if (st == DT_OK) {
        void *o = dt_tensor_data(out);
        const void *pu = u ? dt_tensor_data(u) : NULL, *pv = dt_tensor_data(v);
        const void *pa = dt_tensor_data(ta), *pb = dt_tensor_data(tb);
        const void *pk = dt_tensor_data(tk);
        if (ct == DT_FLOAT32) {
            bn_apply_f32(o, pu, pv, pa, pb, pk, n, c, s);
        } else {
            bn_apply_f64(o, pu, pv, pa, pb, pk, n, c, s);
        }
    }
    dt_tensor_release(ta);
    dt_tensor_release(tb);
    dt_tensor_release(tk);
    return st;
}

/* The statistics to normalise with (and the running stats' update). */
static dt_status
bn_stats(bn_state *st, dt_tensor *rm, dt_tensor *rv, bool training,
         double momentum, double eps)
{
    dt_tensor *var = NULL;
    int64_t c = st->c, cnt = st->n * st->s;
    dt_status s = bn_vec(&st->mean, training ? NULL : rm, c, 0);
    s = s == DT_OK ? bn_vec(&var, training ? NULL : rv, c, 0) : s;
    s = s == DT_OK ? bn_vec(&st->invstd, NULL, c, 0) : s;
    if (s != DT_OK) {
        dt_tensor_release(var);
        return s;
    }
    double *m = dt_tensor_data(st->mean), *v = dt_tensor_data(var);
    if (training) {
        s = bn_batch_stats(m, v, st);
    }
    if (s == DT_OK && training && rm) {
        /* the running variance is the unbiased one, as in torch */
        s = bn_update(rm, m, 1, momentum, c);
        s = s == DT_OK ? bn_update(rv, v, cnt / (cnt - 1.0), momentum, c)
                       : s;
    }
    double *is = dt_tensor_data(st->invstd);
    for (int64_t j = 0; j < c; j++) {
        is[j] = 1 / sqrt(v[j] + eps);
    }
    dt_tensor_release(var);
    return s;
}

static dt_status
bn_compute(dt_tensor **y, bn_state *st, const dt_tensor *x, dt_tensor *rm,
           dt_tensor *rv, const dt_tensor *w, const dt_tensor *b,
           bool training, double momentum, double eps)
{
    dt_dtype ct = DT_FLOAT32;
    dt_tensor *wv = NULL, *bv = NULL;
    memset(st, 0, sizeof *st);
    DT_TRY(dt_nn_compute_dtype(&ct, x, "batch_norm"));
    DT_TRY(bn_check(x, rm, rv, w, b, training));
    st->n = x->shape[0];
    st->c = x->shape[1];
    st->s = 1;
    for (int i = 2; i < x->ndim; i++) {
        st->s *= x->shape[i];
    }
    dt_status s = dt_nn_contig(&st->x, x, ct);
    s = s == DT_OK ? bn_stats(st, rm, rv, training, momentum, eps) : s;
    s = s == DT_OK ? bn_vec(&wv, w, st->c, 1) : s;
    s = s == DT_OK ? bn_vec(&bv, b, st->c, 0) : s;
    s = s == DT_OK ? dt_tensor_empty(y, x->shape, x->ndim, ct, DT_DEVICE_CPU)
                   : s;
    if (s == DT_OK) {
        /* y = x scale + shift per channel */
        double *sc = dt_tensor_data(wv), *sh = dt_tensor_data(bv);
        const double *m = dt_tensor_data(st->mean);
        const double *is = dt_tensor_data(st->invstd);
        for (int64_t j = 0; j < st->c; j++) {
            sc[j] *= is[j];
            sh[j] -= m[j] * sc[j];
        }
        s = bn_affine(*y, NULL, st->x, sc, sc, sh, st->n, st->c, st->s);
    }
    dt_tensor_release(wv);
    dt_tensor_release(bv);
    if (s != DT_OK) {
        bn_state_free(st);
        dt_tensor_release(*y);
        *y = NULL;
    }
    return s;
}

dt_status
dt_batch_norm_forward(dt_tensor **out, const dt_tensor *input,
                      dt_tensor *running_mean, dt_tensor *running_var,
                      const dt_tensor *weight, const dt_tensor *bias,
                      bool training, double momentum, double eps)
{
    bn_state st;
    dt_tensor *y = NULL;
    DT_TRY(bn_compute(&y, &st, input, running_mean, running_var, weight,
                      bias, training, momentum, eps));
    bn_state_free(&st);
    return dt_nn_deliver(out, y, input->dtype, "batch_norm");
}

/* s1 = sum(g), s2 = sum(g (x - mean)) per channel. */
static dt_status
bn_grad_sums(double *s1, double *s2, const dt_tensor *g, const dt_tensor *x,
             const double *mean, int64_t n, int64_t c, int64_t s)
{
    dt_tensor *ku = NULL, *kv = NULL;
    dt_status st = dt_tensor_zeros(&ku, &c, 1, x->dtype, DT_DEVICE_CPU);
    st = st == DT_OK ? bn_to_ct(&kv, mean, c, x->dtype) : st;
    if (st == DT_OK && x->dtype == DT_FLOAT32) {
        bn_sums_f32(s1, s2, dt_tensor_data(g), dt_tensor_data(ku),
                    dt_tensor_data(x), dt_tensor_data(kv), n, c, s);
    } else if (st == DT_OK) {
        bn_sums_f64(s1, s2, dt_tensor_data(g), dt_tensor_data(ku),
                    dt_tensor_data(x), dt_tensor_data(kv), n, c, s);
    }
    dt_tensor_release(ku);
    dt_tensor_release(kv);
    return st;
}

/* dx = a g + b x + k per channel: with batch statistics
 *   dx = w invstd (g - mean(g) - (x - mean) invstd^2 mean(g (x - mean)))
 * else dx = w invstd g. */
static dt_status
bn_grad_input(dt_tensor **dx, const dt_tensor *g, const dt_tensor *x,
              const double *w, const double *mean, const double *is,
              const double *s1, const double *s2, bool batch,
              const int64_t *ncs)
{
    int64_t c = ncs[1], cnt = ncs[0] * ncs[2];
    double *coef = malloc((size_t)(3 * c + 1) * sizeof *coef);
    if (!coef) {
        return dt_fail(DT_ERR_NOMEM, "batch_norm: out of memory");
    }
    double *a = coef, *b = coef + c, *k = coef + 2 * c;
    for (int64_t j = 0; j < c; j++) {
        a[j] = w[j] * is[j];
        b[j] = batch ? -a[j] * is[j] * is[j] * s2[j] / cnt : 0;
        k[j] = batch ? -a[j] * s1[j] / cnt - b[j] * mean[j] : 0;
    }
    dt_status s = dt_tensor_empty(dx, x->shape, x->ndim, x->dtype,
                                  DT_DEVICE_CPU);
    s = s == DT_OK ? bn_affine(*dx, g, x, a, b, k, ncs[0], c, ncs[2]) : s;
    free(coef);
    return s;
}

/* saved: x (compute dtype), the caller's weight (or NULL), mean and
 * invstd (float64); iargs: batch statistics?, n, c, s */
static dt_status
dt_batch_norm_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *v[4], *g = NULL, *wv = NULL, *s1 = NULL, *s2 = NULL;
    for (int i = 0; i < 4; i++) {
        DT_TRY(dt_node_saved(&v[i], n, i));
    }
    bool batch = n->iargs[0];
    int64_t c = n->iargs[2];
    const double *mean = dt_tensor_data(v[2]), *is = dt_tensor_data(v[3]);
    dt_status s = dt_nn_contig(&g, go[0], v[0]->dtype);
    s = s == DT_OK ? bn_vec(&wv, v[1], c, 1) : s;
    s = s == DT_OK ? bn_vec(&s1, NULL, c, 0) : s;
    s = s == DT_OK ? bn_vec(&s2, NULL, c, 0) : s;
    double *a = s == DT_OK ? dt_tensor_data(s1) : NULL;
    double *b = s == DT_OK ? dt_tensor_data(s2) : NULL;
    if (s == DT_OK && (batch || dt_node_needs_grad(n, 1) ||
                       dt_node_needs_grad(n, 2))) {
        s = bn_grad_sums(a, b, g, v[0], mean, n->iargs[1], c, n->iargs[3]);
    }
    if (s == DT_OK && dt_node_needs_grad(n, 0)) {
        s = bn_grad_input(&gi[0], g, v[0], dt_tensor_data(wv), mean, is, a,
                          b, batch, n->iargs + 1);
    }
    for (int64_t j = 0; s == DT_OK && j < c; j++) {
        b[j] *= is[j];   /* dweight = sum(g xhat) */
    }
    if (s == DT_OK && dt_node_needs_grad(n, 1)) {
        s = dt_reshape(&gi[1], s2, n->in_meta[1].shape, n->in_meta[1].ndim);
    }
    if (s == DT_OK && dt_node_needs_grad(n, 2)) {
        s = dt_reshape(&gi[2], s1, n->in_meta[2].shape, n->in_meta[2].ndim);
    }
    dt_tensor_release(g);
    dt_tensor_release(wv);
    dt_tensor_release(s1);
    dt_tensor_release(s2);
    return s;
}

dt_status
dt_batch_norm(dt_tensor **out, const dt_tensor *input,
              dt_tensor *running_mean, dt_tensor *running_var,
              const dt_tensor *weight, const dt_tensor *bias, bool training,
              double momentum, double eps)
{
    const dt_tensor *in[3] = {input, weight, bias};
    bool record = dt_autograd_needed(in, 3);
    bn_state st;
    dt_tensor *y = NULL;
    dt_node *n = NULL;
    DT_TRY(dt_nn_check_out(out, record, "batch_norm"));
    DT_TRY(bn_compute(&y, &st, input, running_mean, running_var, weight,
                      bias, training, momentum, eps));
    dt_status s = dt_nn_deliver(out, y, input->dtype, "batch_norm");
    if (s == DT_OK && record) {
        s = dt_node_record(&n, "NativeBatchNormBackward0",
                           dt_batch_norm_backward, in, 3, out, 1);
    }
    if (s == DT_OK && record) {
        int64_t args[4] = {training, st.n, st.c, st.s};
        memcpy(n->iargs, args, sizeof args);
        n->num_iargs = 4;
        const dt_tensor *save[4] = {st.x, weight, st.mean, st.invstd};
        for (int i = 0; i < 4 && s == DT_OK; i++) {
            s = dt_node_save(n, save[i]);
        }
    }
    bn_state_free(&st);
    return s;
}
