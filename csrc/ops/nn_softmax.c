/* nn_softmax.c: softmax and log_softmax along any dim (forward, backward,
 * entry points; kernels in nn_softmax_gen.h), and the helpers every nn
 * file shares (declared in nn_loss.h). */
#include <inttypes.h>
#include <stdio.h>

#include "../autograd/autograd.h"
#include "nn_loss.h"

#define NN_GEN "nn_softmax_gen.h"
#include "nn_types_gen.h"

/* ---------------------------------------------------------------------- */
/* shared helpers                                                          */

dt_status
dt_nn_compute_dtype(dt_dtype *ct, const dt_tensor *t, const char *op)
{
    if (!dt_dtype_is_floating(t->dtype)) {
        return dt_fail(DT_ERR_NOTIMPL, "%s: not implemented for '%s'", op,
                       dt_dtype_name(t->dtype));
    }
    *ct = dt_compute_dtype(t->dtype);
    return DT_OK;
}

dt_status
dt_nn_contig(dt_tensor **out, const dt_tensor *t, dt_dtype ct)
{
    if (t->dtype == ct && dt_tensor_is_contiguous(t)) {
        dt_tensor_retain((dt_tensor *)t);
        *out = (dt_tensor *)t;
        return DT_OK;
    }
    dt_tensor *c = NULL;
    DT_TRY(dt_tensor_empty(&c, t->shape, t->ndim, ct, dt_tensor_device(t)));
    dt_status s = dt_copy_(c, t);
    if (s != DT_OK) {
        dt_tensor_release(c);
        return s;
    }
    *out = c;
    return DT_OK;
}

dt_status
dt_nn_deliver(dt_tensor **out, dt_tensor *r, dt_dtype dtype, const char *op)
{
    dt_status s = DT_OK;
    if (!*out && r->dtype == dtype) {
        *out = r;
        return DT_OK;
    }
    if (!*out) {
        s = dt_to_dtype(out, r, dtype);
    } else {
        s = dt_prepare_out(out, r->shape, r->ndim, dtype, dt_tensor_device(r),
                           op);
        s = s == DT_OK ? dt_copy_(*out, r) : s;
    }
    dt_tensor_release(r);
    return s;
}

dt_status
dt_nn_check_out(dt_tensor *const *out, bool recording, const char *op)
{
    if (*out && recording) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): functions with out=... "
                       "arguments don't support automatic differentiation, "
                       "but one of the arguments requires grad.", op);
    }
    return DT_OK;
}

dt_status
dt_nn_no_grad_arg(const dt_tensor *t, const char *fn, const char *arg)
{
    if (t && dt_grad_enabled() && dt_requires_grad(t)) {
        return dt_fail(DT_ERR_RUNTIME, "The function '%s' is not "
                       "differentiable with respect to argument '%s'. This "
                       "input cannot have requires_grad True.", fn, arg);
    }
    return DT_OK;
}

void
dt_nn_shape_str(char *buf, size_t n, const int64_t *shape, int ndim)
{
    size_t at = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && at < n; i++) {
        at += (size_t)snprintf(buf + at, n - at, "%s%" PRId64,
                               i ? ", " : "", shape[i]);
    }
    if (at < n) {
        snprintf(buf + at, n - at, "]");
    }
}

/* ---------------------------------------------------------------------- */
/* softmax, log_softmax                                                    */

static void
softmax_kernel(dt_tensor *y, const dt_tensor *x, int dim, bool is_log)
{
    int64_t outer, n, inner;
    dt_nn_split(x, dim, &outer, &n, &inner);
    void *yp = dt_tensor_data(y);
    const void *xp = dt_tensor_data(x);
    if (x->dtype == DT_FLOAT32) {
        if (inner == 1) {
            softmax_rows_f32(yp, xp, outer, n, is_log);
        } else {
            softmax_cols_f32(yp, xp, outer, n, inner, is_log);
        }
    } else if (inner == 1) {
        softmax_rows_f64(yp, xp, outer, n, is_log);
    } else {
        softmax_cols_f64(yp, xp, outer, n, inner, is_log);
    }
}

/* The result in the compute dtype; *dim comes back wrapped. */
static dt_status
softmax_compute(dt_tensor **y, const dt_tensor *x, int64_t *dim, bool is_log)
{
    const char *op = is_log ? "log_softmax" : "softmax";
    dt_dtype ct = DT_FLOAT32;
    DT_TRY(dt_nn_compute_dtype(&ct, x, op));
    DT_TRY(dt_wrap_dim(dim, x->ndim, op));
    dt_tensor *xc = NULL;
    DT_TRY(dt_nn_contig(&xc, x, ct));
    dt_status s = dt_tensor_empty(y, x->shape, x->ndim, ct,
                                  dt_tensor_device(x));
    if (s == DT_OK) {
        softmax_kernel(*y, xc, (int)*dim, is_log);
    }
    dt_tensor_release(xc);
    return s;
}

dt_status
dt_softmax_forward(dt_tensor **out, const dt_tensor *x, int64_t dim)
{
    dt_tensor *r = NULL;
    DT_TRY(softmax_compute(&r, x, &dim, false));
    return dt_nn_deliver(out, r, x->dtype, "softmax");
}

dt_status
dt_log_softmax_forward(dt_tensor **out, const dt_tensor *x, int64_t dim)
{
    dt_tensor *r = NULL;
    DT_TRY(softmax_compute(&r, x, &dim, true));
    return dt_nn_deliver(out, r, x->dtype, "log_softmax");
}

/* The backward of both softmax and log_softmax. saved[0]: the forward's
 * output y; iargs[0]: the dim (wrapped); iargs[1]: log_softmax. */
static dt_status
dt_softmax_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    bool is_log = n->iargs[1];
    dt_tensor *y = NULL, *yc = NULL, *gc = NULL, *dx = NULL;
    DT_TRY(dt_node_saved(&y, n, 0));
    dt_dtype ct = dt_compute_dtype(y->dtype);
    dt_status s = dt_nn_contig(&yc, y, ct);
    s = s == DT_OK ? dt_nn_contig(&gc, go[0], ct) : s;
    s = s == DT_OK ? dt_tensor_empty(&dx, y->shape, y->ndim, ct,
                                     dt_tensor_device(y))
                   : s;
    if (s == DT_OK) {
        int64_t outer, len, inner;
        dt_nn_split(y, (int)n->iargs[0], &outer, &len, &inner);
        void *d = dt_tensor_data(dx);
        const void *yp = dt_tensor_data(yc), *gp = dt_tensor_data(gc);
        if (ct == DT_FLOAT32) {
            if (inner == 1) {
                softmax_back_rows_f32(d, yp, gp, outer, len, is_log);
            } else {
                softmax_back_cols_f32(d, yp, gp, outer, len, inner, is_log);
            }
        } else if (inner == 1) {
            softmax_back_rows_f64(d, yp, gp, outer, len, is_log);
        } else {
            softmax_back_cols_f64(d, yp, gp, outer, len, inner, is_log);
        }
        gi[0] = dx;
    }
    dt_tensor_release(yc);
    dt_tensor_release(gc);
    return s;
}

static dt_status
softmax_entry(dt_tensor **out, const dt_tensor *x, int64_t dim, bool is_log)
{
    const char *op = is_log ? "log_softmax" : "softmax";
    bool record = dt_autograd_needed1(x);
    DT_TRY(dt_nn_check_out(out, record, op));
    DT_TRY(is_log ? dt_log_softmax_forward(out, x, dim)
               : dt_softmax_forward(out, x, dim));
    if (!record) {
        return DT_OK;
    }
    dt_node *n = NULL;
    DT_TRY(dt_wrap_dim(&dim, x->ndim, op));
    DT_TRY(dt_node_record(&n, is_log ? "LogSoftmaxBackward0"
                                  : "SoftmaxBackward0",
                          dt_softmax_backward, &x, 1, out, 1));
    n->iargs[0] = dim;
    n->iargs[1] = is_log;
    n->num_iargs = 2;
    return dt_node_save(n, *out);
}

dt_status
dt_softmax(dt_tensor **out, const dt_tensor *x, int64_t dim)
{
    return softmax_entry(out, x, dim, false);
}

dt_status
dt_log_softmax(dt_tensor **out, const dt_tensor *x, int64_t dim)
{
    return softmax_entry(out, x, dim, true);
}
