/* reduce_sum_backward.c: the backward of sum, mean, var, std and norm
 * (the forwards are in reduce_sum.c), and their recording entry points.
 *
 * sum's gradient is the incoming one expanded back over the reduced dims:
 * a stride-0 view, nothing materialised (the engine or the next backward
 * copies it only if it must). mean divides the small incoming gradient
 * first, then expands. var, std and norm write their gradient in one
 * fused pass (dt_reduce_grad_map) with PyTorch's formulas and
 * subgradients.
 */
#include "elementwise.h"
#include "reduce_grad.h"

/* ---------------------------------------------------------------------- */
/* sum, mean                                                               */

static dt_status
dt_sum_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    return dt_reduce_grad_expand(&gi[0], go[0], n, false);
}

dt_status
dt_sum(dt_tensor **out, const dt_tensor *t, const int64_t *dims, int ndims,
       bool keepdim, dt_dtype dtype)
{
    dt_node *n;
    DT_TRY(dt_reduce_check_out(*out, t, "sum"));
    DT_TRY(dt_sum_forward(out, t, dims, ndims, keepdim, dtype));
    return dt_reduce_record(&n, out, t, dims, ndims, keepdim,
                            ndims ? "SumBackward1" : "SumBackward0",
                            dt_sum_backward);
}

static dt_status
dt_mean_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_tensor *count = NULL, *scaled = NULL;
    DT_TRY(dt_tensor_scalar(&count, (double)dt_reduce_grad_count(n),
                            DT_FLOAT64));
    count->is_wrapped_number = true;   /* keeps the gradient's dtype */
    dt_status s = dt_div_forward(&scaled, go[0], count, DT_ROUND_NONE);
    dt_tensor_release(count);
    if (s == DT_OK) {
        s = dt_reduce_grad_expand(&gi[0], scaled, n, false);
    }
    dt_tensor_release(scaled);
    return s;
}

dt_status
dt_mean(dt_tensor **out, const dt_tensor *t, const int64_t *dims, int ndims,
        bool keepdim, dt_dtype dtype)
{
    dt_node *n;
    DT_TRY(dt_reduce_check_out(*out, t, "mean"));
    DT_TRY(dt_mean_forward(out, t, dims, ndims, keepdim, dtype));
    return dt_reduce_record(&n, out, t, dims, ndims, keepdim,
                            ndims ? "MeanBackward1" : "MeanBackward0",
                            dt_mean_backward);
}

/* ---------------------------------------------------------------------- */
/* var, std                                                                */

/* Per output: var's 2 / dof, std's 1 / (std * dof) (0 where std is 0);
 * without degrees of freedom over every dim, PyTorch's nan/inf. */
static void
var_scale(dt_tensor *g, const dt_tensor *std, double dof, bool dof0)
{
    double *gv = dt_tensor_data(g);
    const double *sv = std ? dt_tensor_data(std) : NULL;
    for (int64_t i = 0; i < dt_tensor_numel(g); i++) {
        double v = gv[i];
        if (sv) {
            v = sv[i] == 0.0 ? 0.0 : v / (2.0 * sv[i]);
        }
        gv[i] = dof0 ? v : (2.0 / dof) * v;
    }
}

/* saved: x, and for std the result. dargs[0]: the correction. */
static dt_status
var_grad(dt_node *n, dt_tensor **gi, dt_tensor *const *go, bool is_std)
{
    dt_tensor *x = NULL, *res = NULL, *mk = NULL, *mean = NULL, *g = NULL;
    dt_tensor *sd = NULL;
    DT_TRY(dt_node_saved(&x, n, 0));
    if (is_std) {
        DT_TRY(dt_node_saved(&res, n, 1));
    }
    int64_t dims[DT_MAX_DIMS];
    int nd = dt_reduce_grad_dims(dims, n);
    double dof = (double)dt_reduce_grad_count(n) - n->dargs[0];
    /* PyTorch's special case applies to dim=None only */
    bool dof0 = dof <= 0.0 && (!n->iargs[DT_RG_HASDIM] || x->ndim == 0);
    /* the mean in x's dtype, as PyTorch's formula has it */
    dt_status s = dt_mean_forward(&mk, x, dims, nd, true, DT_DTYPE_COUNT);
    if (s == DT_OK) {
        s = dt_reduce_grad_small(&mean, mk, n);
    }
    if (s == DT_OK) {
        s = dt_reduce_grad_small(&g, go[0], n);
    }
    if (s == DT_OK && is_std) {
        s = dt_reduce_grad_small(&sd, res, n);
    }
    if (s == DT_OK) {
        var_scale(g, sd, dof, dof0);
        s = dt_reduce_grad_map(&gi[0], x, mean, g, n,
                               dof0 ? DT_RG_VAR_DOF0 : DT_RG_VAR, 0.0);
    }
    dt_tensor_release(mk);
    dt_tensor_release(mean);
    dt_tensor_release(g);
    dt_tensor_release(sd);
    return s;
}

static dt_status
dt_var_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    return var_grad(n, gi, go, false);
}

static dt_status
dt_std_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    return var_grad(n, gi, go, true);
}

static dt_status
var_entry(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
          int ndims, double correction, bool keepdim, bool is_std)
{
    dt_node *n;
    const char *op = is_std ? "std" : "var";
    DT_TRY(dt_reduce_check_out(*out, t, op));
    DT_TRY((is_std ? dt_std_forward : dt_var_forward)(out, t, dims, ndims,
                                                        correction, keepdim));
    DT_TRY(dt_reduce_record(&n, out, t, dims, ndims, keepdim,
                            is_std ? "StdBackward0" : "VarBackward0",
                            is_std ? dt_std_backward : dt_var_backward));
    if (!n) {
        return DT_OK;
    }
    n->dargs[0] = correction;
    dt_status s = dt_node_save(n, t);
    if (s == DT_OK && is_std) {
        s = dt_node_save(n, *out);
    }
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

dt_status
dt_var(dt_tensor **out, const dt_tensor *t, const int64_t *dims, int ndims,
       double correction, bool keepdim)
{
    return var_entry(out, t, dims, ndims, correction, keepdim, false);
}

dt_status
dt_std(dt_tensor **out, const dt_tensor *t, const int64_t *dims, int ndims,
       double correction, bool keepdim)
{
    return var_entry(out, t, dims, ndims, correction, keepdim, true);
}

/* ---------------------------------------------------------------------- */
/* norm                                                                    */

/* The per-output factor of PyTorch's norm_backward for p, applied to g
 * (r: the norm); returns the elementwise kind that finishes it. */
static dt_rg_kind
norm_scale(dt_tensor *g, const dt_tensor *r, const dt_tensor *ties, double p)
{
    double *gv = dt_tensor_data(g);
    const double *rv = dt_tensor_data(r);
    const double *tv = ties ? dt_tensor_data(ties) : NULL;
    for (int64_t i = 0; i < dt_tensor_numel(g); i++) {
        if (tv) {
            gv[i] /= tv[i];                      /* ties share */
        } else if (p < 1.0) {
            gv[i] *= pow(rv[i], 1.0 - p);
        } else if (p != 1.0 && p != 2.0) {
            gv[i] = rv[i] == 0.0 ? 0.0 : gv[i] / pow(rv[i], p - 1.0);
        }
    }
    return isinf(p) ? DT_RG_NORM_INF : p < 1.0 ? DT_RG_NORM_LT1
           : p == 1.0 ? DT_RG_NORM_1 : p < 2.0 ? DT_RG_NORM_LT2
           : p == 2.0 ? DT_RG_NORM_2 : DT_RG_NORM_GE2;
}

/* saved: x, the result. dargs[0]: p. */
static dt_status
dt_norm_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    double p = n->dargs[0];
    if (p == 0.0) {
        return DT_OK;   /* PyTorch gives no gradient at all */
    }
    dt_tensor *x = NULL, *res = NULL, *xc = NULL, *g = NULL, *r = NULL;
    dt_tensor *ties = NULL;
    DT_TRY(dt_node_saved(&x, n, 0));
    DT_TRY(dt_node_saved(&res, n, 1));
    /* norm(dtype=) casts the input first */
    dt_status s = dt_to_dtype(&xc, x, res->dtype);
    if (s == DT_OK) {
        s = dt_reduce_grad_small(&g, go[0], n);
    }
    if (s == DT_OK) {
        s = dt_reduce_grad_small(&r, res, n);
    }
    if (s == DT_OK && isinf(p)) {
        s = dt_reduce_grad_ties(&ties, xc, r, n, 2);
    }
    if (s == DT_OK) {
        dt_rg_kind kind = norm_scale(g, r, ties, p);
        s = dt_reduce_grad_map(&gi[0], xc, r, g, n, kind, p);
    }
    dt_tensor_release(xc);
    dt_tensor_release(g);
    dt_tensor_release(r);
    dt_tensor_release(ties);
    return s;
}

dt_status
dt_norm(dt_tensor **out, const dt_tensor *t, double p, const int64_t *dims,
        int ndims, bool keepdim, dt_dtype dtype)
{
    dt_node *n;
    DT_TRY(dt_reduce_check_out(*out, t, "norm"));
    DT_TRY(dt_norm_forward(out, t, p, dims, ndims, keepdim, dtype));
    DT_TRY(dt_reduce_record(&n, out, t, dims, ndims, keepdim,
                            "LinalgVectorNormBackward0", dt_norm_backward));
    if (!n) {
        return DT_OK;
    }
    n->dargs[0] = p;
    dt_status s = dt_node_save(n, t);
    if (s == DT_OK) {
        s = dt_node_save(n, *out);
    }
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    return s;
}
