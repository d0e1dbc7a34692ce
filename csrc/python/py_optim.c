/* py_optim.c: glue for the fused optimizer updates (csrc/ops/optim.c).
 *
 * dtrain/optim (sgd.py, adam.py) gathers, per param group, the params
 * that have a grad and their state tensors, and hands the lists over in
 * one call; the loop over params runs here, one fused kernel call per
 * param.
 */
#include "glue.h"
#include "../ops/optim.h"

/* Borrowed items of a list or tuple of `n` entries (n < 0: any length).
 * Returns a new reference to the fast sequence, or NULL with TypeError. */
static PyObject *
as_list(PyObject *seq, Py_ssize_t n, const char *op, const char *arg)
{
    PyObject *fast = PySequence_Fast(seq, "");
    if (!fast) {
        PyErr_Format(PyExc_TypeError, "%s(): '%s' must be a list, got %s",
                     op, arg, Py_TYPE(seq)->tp_name);
        return NULL;
    }
    if (n >= 0 && PySequence_Fast_GET_SIZE(fast) != n) {
        PyErr_Format(PyExc_ValueError, "%s(): '%s' has %zd entries, "
                     "expected %zd", op, arg,
                     PySequence_Fast_GET_SIZE(fast), n);
        Py_DECREF(fast);
        return NULL;
    }
    return fast;
}

/* Entry i of a fast sequence as a tensor (borrowed); NULL and TypeError
 * if it is not one. */
static dt_tensor *
tensor_at(PyObject *fast, Py_ssize_t i, const char *op, const char *arg)
{
    PyObject *o = PySequence_Fast_GET_ITEM(fast, i);   /* borrowed */
    dt_tensor *t = dt_py_unwrap(o);
    if (!t) {
        PyErr_Format(PyExc_TypeError, "%s(): %s[%zd] must be a Tensor, "
                     "got %s", op, arg, i, Py_TYPE(o)->tp_name);
    }
    return t;
}

/* A new momentum buffer for `param` (its contents are set by the first
 * step), stored into bufs[i]. */
static dt_tensor *
new_buffer(PyObject *bufs, Py_ssize_t i, const dt_tensor *param)
{
    dt_tensor *b = NULL;
    dt_status s = dt_tensor_empty(&b, param->shape, param->ndim,
                                  param->dtype, dt_tensor_device(param));
    if (s != DT_OK) {
        dt_py_raise(s);
        return NULL;
    }
    PyObject *obj = dt_py_wrap(b);
    if (!obj || PySequence_SetItem(bufs, i, obj) < 0) {
        Py_XDECREF(obj);
        return NULL;
    }
    Py_DECREF(obj);   /* bufs holds it */
    return b;
}

/* Big updates run without the GIL (data-loading threads go on meanwhile).
 * The tensors are retained first: the lists they came from could change
 * under another thread. */
#define GIL_FREE_MIN_NUMEL (1 << 15)

static dt_status
sgd_one(dt_tensor *p, dt_tensor *g, dt_tensor *b, const dt_sgd_hparams *h,
        bool first)
{
    if (dt_tensor_numel(p) < GIL_FREE_MIN_NUMEL) {
        return dt_sgd_step(p, g, b, h, first);
    }
    dt_tensor *held[3] = {p, g, b};
    for (int i = 0; i < 3; i++) {
        if (held[i]) {
            dt_tensor_retain(held[i]);
        }
    }
    dt_status s;
    Py_BEGIN_ALLOW_THREADS
    s = dt_sgd_step(p, g, b, h, first);
    Py_END_ALLOW_THREADS
    for (int i = 0; i < 3; i++) {
        dt_tensor_release(held[i]);
    }
    return s;
}

PyDoc_STRVAR(sgd_step_doc,
"_sgd_step(params, grads, momentum_buffers, lr, momentum, dampening,\n"
"          weight_decay, nesterov, maximize)\n--\n\n"
"One SGD step over a group. momentum_buffers (a list, used when\n"
"momentum != 0) may hold None: a new buffer is stored in its place.");

static PyObject *
py_sgd_step(PyObject *module, PyObject *args)
{
    (void)module;
    const char *op = "_sgd_step";
    PyObject *params_o, *grads_o, *bufs, *params = NULL, *grads = NULL;
    dt_sgd_hparams h;
    int nesterov, maximize;
    if (!PyArg_ParseTuple(args, "OOOddddpp:_sgd_step", &params_o, &grads_o,
                          &bufs, &h.lr, &h.momentum, &h.dampening,
                          &h.weight_decay, &nesterov, &maximize)) {
        return NULL;
    }
    h.nesterov = nesterov;
    h.maximize = maximize;
    if (!(params = as_list(params_o, -1, op, "params"))) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(params);
    if (!(grads = as_list(grads_o, n, op, "grads"))) {
        goto fail;
    }
    if (h.momentum != 0 &&
        (!PyList_Check(bufs) || PyList_GET_SIZE(bufs) != n)) {
        PyErr_Format(PyExc_TypeError, "%s(): 'momentum_buffers' must be a "
                     "list of %zd entries", op, n);
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        dt_tensor *p = tensor_at(params, i, op, "params");
        dt_tensor *g = p ? tensor_at(grads, i, op, "grads") : NULL;
        if (!g) {
            goto fail;
        }
        dt_tensor *b = NULL;
        bool first = false;
        if (h.momentum != 0) {
            PyObject *bo = PyList_GET_ITEM(bufs, i);   /* borrowed */
            first = bo == Py_None;
            b = first ? new_buffer(bufs, i, p)
                      : tensor_at(bufs, i, op, "momentum_buffers");
            if (!b) {
                goto fail;
            }
        }
        dt_status s = sgd_one(p, g, b, &h, first);
        if (s != DT_OK) {
            dt_py_raise(s);
            goto fail;
        }
    }
    Py_DECREF(params);
    Py_DECREF(grads);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(params);
    Py_XDECREF(grads);
    return NULL;
}

PyDoc_STRVAR(adam_step_doc,
"_adam_step(params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs,\n"
"           state_steps, lr, beta1, beta2, eps, weight_decay,\n"
"           decoupled, amsgrad, maximize)\n--\n\n"
"One Adam (decoupled: AdamW) step over a group; max_exp_avg_sqs is\n"
"used only with amsgrad.");

/* The lists one Adam call walks, as fast sequences (owned). */
enum { A_PARAM, A_GRAD, A_AVG, A_SQ, A_MAX, A_STEP, A_COUNT };
static const char *const adam_names[A_COUNT] = {
    "params", "grads", "exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs",
    "state_steps",
};

/* t: the A_COUNT tensors of one param (t[A_MAX] may be NULL). */
static dt_status
adam_one(dt_tensor **t, const dt_adam_hparams *h)
{
    if (dt_tensor_numel(t[A_PARAM]) < GIL_FREE_MIN_NUMEL) {
        return dt_adam_step(t[A_PARAM], t[A_GRAD], t[A_AVG], t[A_SQ],
                            t[A_MAX], t[A_STEP], h);
    }
    for (int k = 0; k < A_COUNT; k++) {
        if (t[k]) {
            dt_tensor_retain(t[k]);
        }
    }
    dt_status s;
    Py_BEGIN_ALLOW_THREADS
    s = dt_adam_step(t[A_PARAM], t[A_GRAD], t[A_AVG], t[A_SQ], t[A_MAX],
                     t[A_STEP], h);
    Py_END_ALLOW_THREADS
    for (int k = 0; k < A_COUNT; k++) {
        dt_tensor_release(t[k]);
    }
    return s;
}

static PyObject *
py_adam_step(PyObject *module, PyObject *args)
{
    (void)module;
    const char *op = "_adam_step";
    PyObject *in[A_COUNT], *seq[A_COUNT] = {NULL};
    dt_adam_hparams h;
    int decoupled, amsgrad, maximize;
    if (!PyArg_ParseTuple(args, "OOOOOOdddddppp:_adam_step", &in[A_PARAM],
                          &in[A_GRAD], &in[A_AVG], &in[A_SQ], &in[A_MAX],
                          &in[A_STEP], &h.lr, &h.beta1, &h.beta2, &h.eps,
                          &h.weight_decay, &decoupled, &amsgrad,
                          &maximize)) {
        return NULL;
    }
    h.decoupled = decoupled;
    h.amsgrad = amsgrad;
    h.maximize = maximize;
    Py_ssize_t n = -1;
    for (int k = 0; k < A_COUNT; k++) {
        if (k == A_MAX && !amsgrad) {
            continue;
        }
        if (!(seq[k] = as_list(in[k], n, op, adam_names[k]))) {
            goto fail;
        }
        n = PySequence_Fast_GET_SIZE(seq[k]);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        dt_tensor *t[A_COUNT] = {NULL};
        for (int k = 0; k < A_COUNT; k++) {
            if (seq[k] &&
                !(t[k] = tensor_at(seq[k], i, op, adam_names[k]))) {
                goto fail;
            }
        }
        dt_status s = adam_one(t, &h);
        if (s != DT_OK) {
            dt_py_raise(s);
            goto fail;
        }
    }
    for (int k = 0; k < A_COUNT; k++) {
        Py_XDECREF(seq[k]);
    }
    Py_RETURN_NONE;
fail:
    for (int k = 0; k < A_COUNT; k++) {
        Py_XDECREF(seq[k]);
    }
    return NULL;
}

static PyObject *
py_optim_fused(PyObject *module, PyObject *args)
{
    (void)module;
    int mode = -2;
    if (!PyArg_ParseTuple(args, "|i:_optim_fused", &mode)) {
        return NULL;
    }
    bool was = dt_optim_fused();
    if (mode != -2) {
        dt_optim_set_flavour(mode);
    }
    return PyBool_FromLong(was);
}

PyMethodDef dt_py_optim_functions[] = {
    {"_sgd_step", py_sgd_step, METH_VARARGS, sgd_step_doc},
    {"_adam_step", py_adam_step, METH_VARARGS, adam_step_doc},
    {"_optim_fused", py_optim_fused, METH_VARARGS,
     "_optim_fused([mode]): whether optimizer steps use fused multiply-adds;"
     " mode 0 forces the plain flavour, -1 restores the default (tests)."},
    {NULL, NULL, 0, NULL} /* sentinel */
};
