/* py_nn_loss.c: glue for the nn ops of csrc/ops/nn_loss.h: softmax,
 * log_softmax, the losses, layer_norm and batch_norm, as module functions
 * with positional arguments. dtrain/nn/functional.py normalises torch's
 * signatures (reduction strings, size_average, defaults) into these. */
#include "../ops/nn_loss.h"
#include "glue.h"

/* Wraps the result of a core call that produced *out (takes the address:
 * C does not order argument evaluation). */
static PyObject *
finish(dt_status s, dt_tensor **out)
{
    if (s != DT_OK) {
        dt_tensor_release(*out);
        return dt_py_raise(s);
    }
    return dt_py_wrap(*out);
}

/* None -> NULL, a Tensor -> its dt_tensor (borrowed); else TypeError. */
static int
opt_tensor(PyObject *o, dt_tensor **t, const char *op, const char *arg)
{
    if (o == Py_None) {
        *t = NULL;
        return 0;
    }
    *t = dt_py_unwrap(o);
    if (!*t) {
        PyErr_Format(PyExc_TypeError, "%s(): argument '%s' must be Tensor "
                     "or None, not %s", op, arg, Py_TYPE(o)->tp_name);
        return -1;
    }
    return 0;
}

static int
check_reduction(int reduction, const char *op)
{
    if (reduction < DT_REDUCTION_NONE || reduction > DT_REDUCTION_SUM) {
        PyErr_Format(PyExc_ValueError, "%s(): reduction must be 0 (none), 1 "
                     "(mean) or 2 (sum), got %d", op, reduction);
        return -1;
    }
    return 0;
}

static PyObject *
py_softmax(PyObject *mod, PyObject *args)
{
    dt_tensor *x, *out = NULL;
    long long dim;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O&L:softmax", dt_py_tensor_converter, &x,
                          &dim)) {
        return NULL;
    }
    return finish(dt_softmax(&out, x, dim), &out);
}

static PyObject *
py_log_softmax(PyObject *mod, PyObject *args)
{
    dt_tensor *x, *out = NULL;
    long long dim;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O&L:log_softmax", dt_py_tensor_converter,
                          &x, &dim)) {
        return NULL;
    }
    return finish(dt_log_softmax(&out, x, dim), &out);
}

static PyObject *
py_cross_entropy(PyObject *mod, PyObject *args)
{
    const char *op = "cross_entropy";
    dt_tensor *x, *t, *w, *out = NULL;
    PyObject *w_obj;
    long long ignore;
    int red;
    double ls;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O&O&OLid:cross_entropy",
                          dt_py_tensor_converter, &x, dt_py_tensor_converter,
                          &t, &w_obj, &ignore, &red, &ls) ||
        opt_tensor(w_obj, &w, op, "weight") < 0 ||
        check_reduction(red, op) < 0) {
        return NULL;
    }
    return finish(dt_cross_entropy(&out, x, t, w, ignore, red, ls), &out);
}

static PyObject *
py_nll_loss(PyObject *mod, PyObject *args)
{
    const char *op = "nll_loss";
    dt_tensor *x, *t, *w, *out = NULL;
    PyObject *w_obj;
    long long ignore;
    int red;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O&O&OLi:nll_loss", dt_py_tensor_converter,
                          &x, dt_py_tensor_converter, &t, &w_obj, &ignore,
                          &red) ||
        opt_tensor(w_obj, &w, op, "weight") < 0 ||
        check_reduction(red, op) < 0) {
        return NULL;
    }
    return finish(dt_nll_loss(&out, x, t, w, ignore, red), &out);
}

static PyObject *
py_mse_loss(PyObject *mod, PyObject *args)
{
    dt_tensor *x, *t, *out = NULL;
    int red;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O&O&i:mse_loss", dt_py_tensor_converter, &x,
                          dt_py_tensor_converter, &t, &red) ||
        check_reduction(red, "mse_loss") < 0) {
        return NULL;
    }
    return finish(dt_mse_loss(&out, x, t, red), &out);
}

static PyObject *
py_bce_with_logits(PyObject *mod, PyObject *args)
{
    const char *op = "binary_cross_entropy_with_logits";
    dt_tensor *x, *t, *w, *pw, *out = NULL;
    PyObject *w_obj, *pw_obj;
    int red;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O&O&OOi:binary_cross_entropy_with_logits",
                          dt_py_tensor_converter, &x, dt_py_tensor_converter,
                          &t, &w_obj, &pw_obj, &red) ||
        opt_tensor(w_obj, &w, op, "weight") < 0 ||
        opt_tensor(pw_obj, &pw, op, "pos_weight") < 0 ||
        check_reduction(red, op) < 0) {
        return NULL;
    }
    return finish(dt_bce_with_logits(&out, x, t, w, pw, red), &out);
}

static PyObject *
py_layer_norm(PyObject *mod, PyObject *args)
{
    const char *op = "layer_norm";
    dt_tensor *x, *w, *b, *out = NULL;
    PyObject *shape_obj, *w_obj, *b_obj;
    int64_t shape[DT_MAX_DIMS];
    double eps;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O&OOOd:layer_norm", dt_py_tensor_converter,
                          &x, &shape_obj, &w_obj, &b_obj, &eps) ||
        opt_tensor(w_obj, &w, op, "weight") < 0 ||
        opt_tensor(b_obj, &b, op, "bias") < 0) {
        return NULL;
    }
    int n = dt_py_parse_int_list(shape_obj, shape, DT_MAX_DIMS, op);
    if (n < 0) {
        return NULL;
    }
    return finish(dt_layer_norm(&out, x, shape, n, w, b, eps), &out);
}

static PyObject *
py_batch_norm(PyObject *mod, PyObject *args)
{
    const char *op = "batch_norm";
    dt_tensor *x, *rm, *rv, *w, *b, *out = NULL;
    PyObject *rm_obj, *rv_obj, *w_obj, *b_obj;
    int training;
    double momentum, eps;
    (void)mod;
    if (!PyArg_ParseTuple(args, "O&OOOOpdd:batch_norm",
                          dt_py_tensor_converter, &x, &rm_obj, &rv_obj,
                          &w_obj, &b_obj, &training, &momentum, &eps) ||
        opt_tensor(rm_obj, &rm, op, "running_mean") < 0 ||
        opt_tensor(rv_obj, &rv, op, "running_var") < 0 ||
        opt_tensor(w_obj, &w, op, "weight") < 0 ||
        opt_tensor(b_obj, &b, op, "bias") < 0) {
        return NULL;
    }
    return finish(dt_batch_norm(&out, x, rm, rv, w, b, training, momentum,
                                eps), &out);
}

PyMethodDef dt_py_nn_loss_functions[] = {
    {"softmax", py_softmax, METH_VARARGS,
     "softmax(input, dim)\n--\n\nsoftmax along dim."},
    {"log_softmax", py_log_softmax, METH_VARARGS,
     "log_softmax(input, dim)\n--\n\nlog of softmax along dim."},
    {"cross_entropy", py_cross_entropy, METH_VARARGS,
     "cross_entropy(input, target, weight, ignore_index, reduction, "
     "label_smoothing)\n--\n\nreduction: 0 none, 1 mean, 2 sum."},
    {"nll_loss", py_nll_loss, METH_VARARGS,
     "nll_loss(input, target, weight, ignore_index, reduction)\n--\n\n"
     "Negative log-likelihood of log-probabilities."},
    {"mse_loss", py_mse_loss, METH_VARARGS,
     "mse_loss(input, target, reduction)\n--\n\nSquared error."},
    {"binary_cross_entropy_with_logits", py_bce_with_logits, METH_VARARGS,
     "binary_cross_entropy_with_logits(input, target, weight, pos_weight, "
     "reduction)\n--\n\nBinary cross entropy on logits."},
    {"layer_norm", py_layer_norm, METH_VARARGS,
     "layer_norm(input, normalized_shape, weight, bias, eps)\n--\n\n"
     "Layer normalisation over the trailing dims."},
    {"batch_norm", py_batch_norm, METH_VARARGS,
     "batch_norm(input, running_mean, running_var, weight, bias, training, "
     "momentum, eps)\n--\n\nBatch normalisation over (N, C, *)."},
    {NULL, NULL, 0, NULL} /* sentinel */
};
