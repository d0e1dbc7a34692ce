/* py_nn_conv.c: glue for the nn layers of csrc/ops/nn.h: linear, conv2d,
 * the 2-D pools, embedding and dropout. dtrain/nn/functional.py has
 * already normalised the arguments (pairs as 2-tuples, None spelled as
 * the C-side default); these wrappers parse and call the entry points,
 * which record autograd nodes. */
#include "../ops/nn.h"
#include "glue.h"

/* See py_tensor_methods.c: takes &out because C does not order argument
 * evaluation. */
static PyObject *
finish(dt_status s, dt_tensor **out)
{
    if (s != DT_OK) {
        dt_tensor_release(*out);
        return dt_py_raise(s);
    }
    return dt_py_wrap(*out);
}

/* "O&" converter: None -> NULL, else a Tensor (borrowed). */
static int
optional_tensor(PyObject *o, void *out)
{
    if (o == Py_None) {
        *(dt_tensor **)out = NULL;
        return 1;
    }
    return dt_py_tensor_converter(o, out);
}

static PyObject *
py_linear(PyObject *module, PyObject *args)
{
    (void)module;
    dt_tensor *x, *w, *b, *out = NULL;
    if (!PyArg_ParseTuple(args, "O&O&O&:linear", dt_py_tensor_converter, &x,
                          dt_py_tensor_converter, &w, optional_tensor, &b)) {
        return NULL;
    }
    dt_status s = dt_linear(&out, x, w, b);
    return finish(s, &out);
}

static PyObject *
py_conv2d(PyObject *module, PyObject *args)
{
    (void)module;
    dt_tensor *x, *w, *b, *out = NULL;
    long long st[2], pad[2], dil[2], groups;
    if (!PyArg_ParseTuple(args, "O&O&O&(LL)(LL)(LL)L:conv2d",
                          dt_py_tensor_converter, &x, dt_py_tensor_converter,
                          &w, optional_tensor, &b, &st[0], &st[1], &pad[0],
                          &pad[1], &dil[0], &dil[1], &groups)) {
        return NULL;
    }
    int64_t s2[2] = {st[0], st[1]}, p2[2] = {pad[0], pad[1]};
    int64_t d2[2] = {dil[0], dil[1]};
    dt_status s = dt_conv2d(&out, x, w, b, s2, p2, d2, groups);
    return finish(s, &out);
}

static PyObject *
py_max_pool2d(PyObject *module, PyObject *args)
{
    (void)module;
    dt_tensor *x, *out = NULL, *ind = NULL;
    long long k[2], st[2], pad[2], dil[2];
    int ceil_mode;
    if (!PyArg_ParseTuple(args, "O&(LL)(LL)(LL)(LL)p:max_pool2d",
                          dt_py_tensor_converter, &x, &k[0], &k[1], &st[0],
                          &st[1], &pad[0], &pad[1], &dil[0], &dil[1],
                          &ceil_mode)) {
        return NULL;
    }
    int64_t k2[2] = {k[0], k[1]}, s2[2] = {st[0], st[1]};
    int64_t p2[2] = {pad[0], pad[1]}, d2[2] = {dil[0], dil[1]};
    dt_status s = dt_max_pool2d(&out, &ind, x, k2, s2, p2, d2, ceil_mode);
    if (s != DT_OK) {
        dt_tensor_release(out);
        dt_tensor_release(ind);
        return dt_py_raise(s);
    }
    PyObject *po = dt_py_wrap(out);
    PyObject *pi = dt_py_wrap(ind);
    if (!po || !pi) {
        Py_XDECREF(po);
        Py_XDECREF(pi);
        return NULL;
    }
    return Py_BuildValue("(NN)", po, pi);
}

static PyObject *
py_avg_pool2d(PyObject *module, PyObject *args)
{
    (void)module;
    dt_tensor *x, *out = NULL;
    long long k[2], st[2], pad[2], divisor;
    int ceil_mode, include_pad;
    if (!PyArg_ParseTuple(args, "O&(LL)(LL)(LL)ppL:avg_pool2d",
                          dt_py_tensor_converter, &x, &k[0], &k[1], &st[0],
                          &st[1], &pad[0], &pad[1], &ceil_mode, &include_pad,
                          &divisor)) {
        return NULL;
    }
    int64_t k2[2] = {k[0], k[1]}, s2[2] = {st[0], st[1]};
    int64_t p2[2] = {pad[0], pad[1]};
    dt_status s = dt_avg_pool2d(&out, x, k2, s2, p2, ceil_mode, include_pad,
                                divisor);
    return finish(s, &out);
}

static PyObject *
py_adaptive_avg_pool2d(PyObject *module, PyObject *args)
{
    (void)module;
    dt_tensor *x, *out = NULL;
    long long size[2];
    if (!PyArg_ParseTuple(args, "O&(LL):adaptive_avg_pool2d",
                          dt_py_tensor_converter, &x, &size[0], &size[1])) {
        return NULL;
    }
    int64_t s2[2] = {size[0], size[1]};
    dt_status s = dt_adaptive_avg_pool2d(&out, x, s2);
    return finish(s, &out);
}

static PyObject *
py_embedding(PyObject *module, PyObject *args)
{
    (void)module;
    dt_tensor *idx, *w, *out = NULL;
    long long pad;
    if (!PyArg_ParseTuple(args, "O&O&L:embedding", dt_py_tensor_converter,
                          &idx, dt_py_tensor_converter, &w, &pad)) {
        return NULL;
    }
    dt_status s = dt_embedding(&out, idx, w, pad);
    return finish(s, &out);
}

static PyObject *
py_dropout(PyObject *module, PyObject *args)
{
    (void)module;
    dt_tensor *x, *out = NULL;
    double p;
    if (!PyArg_ParseTuple(args, "O&d:dropout", dt_py_tensor_converter, &x,
                          &p)) {
        return NULL;
    }
    dt_status s = dt_dropout(&out, x, p);
    return finish(s, &out);
}

PyMethodDef dt_py_nn_conv_functions[] = {
    {"linear", py_linear, METH_VARARGS, "linear(input, weight, bias)"},
    {"conv2d", py_conv2d, METH_VARARGS,
     "conv2d(input, weight, bias, stride, padding, dilation, groups)"},
    {"max_pool2d", py_max_pool2d, METH_VARARGS,
     "max_pool2d(input, kernel, stride, padding, dilation, ceil_mode) -> "
     "(out, indices)"},
    {"avg_pool2d", py_avg_pool2d, METH_VARARGS,
     "avg_pool2d(input, kernel, stride, padding, ceil_mode, "
     "count_include_pad, divisor_or_0)"},
    {"adaptive_avg_pool2d", py_adaptive_avg_pool2d, METH_VARARGS,
     "adaptive_avg_pool2d(input, (oh, ow))"},
    {"embedding", py_embedding, METH_VARARGS,
     "embedding(indices, weight, padding_idx_or_-1)"},
    {"dropout", py_dropout, METH_VARARGS,
     "dropout(input, p): training mode"},
    {NULL, NULL, 0, NULL},
};
