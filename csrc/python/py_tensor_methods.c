/* py_tensor_methods.c: Tensor methods for shape queries, views, copies and
 * conversion to Python values. */
#include "../autograd/views.h"
#include "glue.h"

#define SELF_T (((dt_py_tensor *)self)->t)

/* Wraps the result of a core call that produced *out. It takes the
 * address because C does not order argument evaluation: finish(f(&out),
 * out) could read out before f writes it. */
static PyObject *
finish(dt_status s, dt_tensor **out)
{
    if (s != DT_OK) {
        dt_tensor_release(*out);
        return dt_py_raise(s);
    }
    return dt_py_wrap(*out);
}

static PyObject *
shape_tuple(const int64_t *v, int n)
{
    PyObject *tup = PyTuple_New(n);
    for (int i = 0; tup && i < n; i++) {
        PyObject *x = PyLong_FromLongLong(v[i]);
        if (!x) {
            Py_DECREF(tup);
            return NULL;
        }
        PyTuple_SET_ITEM(tup, i, x);
    }
    return tup;
}

/* size(dim=None) and stride(dim=None) share their argument handling. */
static PyObject *
dim_query(PyObject *self, PyObject *args, const int64_t *v, const char *op)
{
    PyObject *dim_obj = Py_None;
    if (!PyArg_ParseTuple(args, "|O", &dim_obj)) {
        return NULL;
    }
    if (dim_obj == Py_None) {
        return shape_tuple(v, SELF_T->ndim);
    }
    int64_t dim = PyLong_AsLongLong(dim_obj);
    if (dim == -1 && PyErr_Occurred()) {
        return NULL;
    }
    dt_status s = dt_wrap_dim(&dim, SELF_T->ndim, op);
    if (s != DT_OK || SELF_T->ndim == 0) {
        return s != DT_OK ? dt_py_raise(s)
                          : (PyErr_Format(PyExc_IndexError,
                                          "%s(): dimension specified as %lld "
                                          "but tensor has no dimensions",
                                          op, (long long)dim), NULL);
    }
    return PyLong_FromLongLong(v[dim]);
}

static PyObject *
tensor_size(PyObject *self, PyObject *args)
{
    return dim_query(self, args, SELF_T->shape, "size");
}

static PyObject *
tensor_stride(PyObject *self, PyObject *args)
{
    return dim_query(self, args, SELF_T->strides, "stride");
}

static PyObject *
tensor_numel(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLongLong(dt_tensor_numel(SELF_T));
}

static PyObject *
tensor_is_contiguous(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(dt_tensor_is_contiguous(SELF_T));
}

static PyObject *
tensor_storage_offset(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromLongLong(SELF_T->offset);
}

static PyObject *
tensor_data_ptr(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyLong_FromVoidPtr(dt_tensor_data(SELF_T));
}

static PyObject *
tensor_item(PyObject *self, PyObject *unused)
{
    (void)unused;
    dt_tensor *t = SELF_T;
    double v;
    dt_status s = dt_tensor_item(&v, t);
    if (s != DT_OK) {
        return dt_py_raise(s);
    }
    if (t->dtype == DT_BOOL) {
        return PyBool_FromLong(v != 0);
    }
    if (t->dtype == DT_INT64) {
        return PyLong_FromLongLong(*(int64_t *)dt_tensor_data(t));
    }
    return dt_dtype_is_integral(t->dtype) ? PyLong_FromDouble(v)
                                          : PyFloat_FromDouble(v);
}

/* ---------------------------------------------------------------------- */
/* views                                                                   */

static PyObject *
tensor_view(PyObject *self, PyObject *args)
{
    int64_t shape[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    int n = dt_py_parse_shape(args, shape, "view");
    return n < 0 ? NULL : finish(dt_ag_view(&out, SELF_T, shape, n), &out);
}

static PyObject *
tensor_reshape(PyObject *self, PyObject *args)
{
    int64_t shape[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    int n = dt_py_parse_shape(args, shape, "reshape");
    return n < 0 ? NULL : finish(dt_ag_reshape(&out, SELF_T, shape, n), &out);
}

static PyObject *
tensor_expand(PyObject *self, PyObject *args)
{
    int64_t shape[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    int n = dt_py_parse_shape(args, shape, "expand");
    return n < 0 ? NULL : finish(dt_ag_expand(&out, SELF_T, shape, n), &out);
}

static PyObject *
tensor_permute(PyObject *self, PyObject *args)
{
    int64_t dims[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    if (PyTuple_GET_SIZE(args) == 0) {
        PyErr_SetString(PyExc_TypeError,
                        "permute() missing 1 required positional arguments: "
                        "\"dims\"");
        return NULL;
    }
    int n = dt_py_parse_shape(args, dims, "permute");
    return n < 0 ? NULL : finish(dt_ag_permute(&out, SELF_T, dims, n), &out);
}

static PyObject *
tensor_transpose(PyObject *self, PyObject *args)
{
    long long d0, d1;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "LL:transpose", &d0, &d1)) {
        return NULL;
    }
    return finish(dt_ag_transpose(&out, SELF_T, d0, d1), &out);
}

static PyObject *
tensor_t(PyObject *self, PyObject *unused)
{
    (void)unused;
    dt_tensor *out = NULL;
    if (SELF_T->ndim > 2) {
        PyErr_Format(PyExc_RuntimeError,
                     "t() expects a tensor with <= 2 dimensions, but self "
                     "is %dD", SELF_T->ndim);
        return NULL;
    }
    if (SELF_T->ndim < 2) {
        return Py_NewRef(self);
    }
    return finish(dt_ag_transpose(&out, SELF_T, 0, 1), &out);
}

static PyObject *
tensor_squeeze(PyObject *self, PyObject *args)
{
    PyObject *dim_obj = Py_None;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "|O:squeeze", &dim_obj)) {
        return NULL;
    }
    if (dim_obj == Py_None) {
        return finish(dt_ag_squeeze(&out, SELF_T, NULL), &out);
    }
    int64_t dim = PyLong_AsLongLong(dim_obj);
    if (dim == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return finish(dt_ag_squeeze(&out, SELF_T, &dim), &out);
}

static PyObject *
tensor_unsqueeze(PyObject *self, PyObject *args)
{
    long long dim;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "L:unsqueeze", &dim)) {
        return NULL;
    }
    return finish(dt_ag_unsqueeze(&out, SELF_T, dim), &out);
}

static PyObject *
tensor_narrow(PyObject *self, PyObject *args)
{
    long long dim, start, length;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "LLL:narrow", &dim, &start, &length)) {
        return NULL;
    }
    return finish(dt_ag_narrow(&out, SELF_T, dim, start, length), &out);
}

static PyObject *
tensor_select(PyObject *self, PyObject *args)
{
    long long dim, index;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "LL:select", &dim, &index)) {
        return NULL;
    }
    return finish(dt_ag_select(&out, SELF_T, dim, index), &out);
}

static PyObject *
tensor_flatten(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"start_dim", "end_dim", NULL};
    long long start = 0, end = -1;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|LL:flatten", kwlist,
                                     &start, &end)) {
        return NULL;
    }
    return finish(dt_ag_flatten(&out, SELF_T, start, end), &out);
}

static PyObject *
tensor_as_strided(PyObject *self, PyObject *args)
{
    PyObject *size, *stride;
    long long offset = -1;
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "OO|L:as_strided", &size, &stride,
                          &offset)) {
        return NULL;
    }
    int n = dt_py_parse_int_list(size, sh, DT_MAX_DIMS, "as_strided");
    int m = n < 0 ? -1 : dt_py_parse_int_list(stride, st, DT_MAX_DIMS,
                                               "as_strided");
    if (m < 0) {
        return NULL;
    }
    if (m != n) {
        PyErr_SetString(PyExc_RuntimeError,
                        "as_strided: size and stride must have the same "
                        "length");
        return NULL;
    }
    /* the view must stay inside the storage */
    int64_t lo = offset < 0 ? SELF_T->offset : offset, last = lo, numel = 1;
    for (int i = 0; i < n; i++) {
        if (sh[i] < 0 || st[i] < 0) {
            PyErr_SetString(PyExc_RuntimeError,
                            "as_strided: negative size or stride");
            return NULL;
        }
        numel *= sh[i];
        last += sh[i] ? (sh[i] - 1) * st[i] : 0;
    }
    int64_t cap = (int64_t)(SELF_T->storage->nbytes /
                            dt_dtype_size(SELF_T->dtype));
    if (lo < 0 || (numel ? last >= cap : lo > cap)) {
        PyErr_Format(PyExc_RuntimeError,
                     "as_strided: view reaches element %lld of a storage "
                     "holding %lld", (long long)last, (long long)cap);
        return NULL;
    }
    return finish(dt_ag_as_strided(&out, SELF_T, sh, st, n, lo), &out);
}

/* ---------------------------------------------------------------------- */
/* copies                                                                  */

static PyObject *
tensor_contiguous(PyObject *self, PyObject *unused)
{
    (void)unused;
    dt_tensor *out = NULL;
    if (dt_tensor_is_contiguous(SELF_T)) {
        return Py_NewRef(self);
    }
    return finish(dt_ag_contiguous(&out, SELF_T), &out);
}

static PyObject *
tensor_clone(PyObject *self, PyObject *unused)
{
    (void)unused;
    dt_tensor *out = NULL;
    return finish(dt_ag_clone(&out, SELF_T), &out);
}

static PyObject *
tensor_to_dtype(PyObject *self, PyObject *args)
{
    dt_dtype dtype = SELF_T->dtype;
    int copy = 0;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTuple(args, "O&|p:to", dt_py_dtype_converter, &dtype,
                          &copy)) {
        return NULL;
    }
    if (dtype == SELF_T->dtype) {
        /* torch returns self itself when nothing changes */
        return copy ? finish(dt_ag_clone(&out, SELF_T), &out) : Py_NewRef(self);
    }
    return finish(dt_ag_to_dtype(&out, SELF_T, dtype), &out);
}

static PyObject *
tensor_copy_(PyObject *self, PyObject *src)
{
    dt_tensor *s = NULL;
    if (dt_py_as_tensor(src, &s, "copy_", "src") < 0) {
        return NULL;
    }
    dt_status st = dt_ag_copy_(SELF_T, s);
    dt_tensor_release(s);
    return st == DT_OK ? Py_NewRef(self) : dt_py_raise(st);
}

static PyObject *
tensor_fill_(PyObject *self, PyObject *value)
{
    dt_tensor *v = NULL;
    if (dt_py_as_tensor(value, &v, "fill_", "value") < 0) {
        return NULL;
    }
    if (dt_tensor_numel(v) != 1 || v->ndim != 0) {
        dt_tensor_release(v);
        PyErr_SetString(PyExc_RuntimeError,
                        "fill_ only supports 0-dimension value tensor");
        return NULL;
    }
    dt_status s = dt_ag_fill_(SELF_T, v);   /* exact for int64 values */
    dt_tensor_release(v);
    return s == DT_OK ? Py_NewRef(self) : dt_py_raise(s);
}

static PyObject *
tensor_zero_(PyObject *self, PyObject *unused)
{
    (void)unused;
    dt_tensor *zero = NULL;
    dt_status s = dt_tensor_scalar(&zero, 0.0, SELF_T->dtype);
    if (s == DT_OK) {
        s = dt_ag_fill_(SELF_T, zero);
    }
    dt_tensor_release(zero);
    return s == DT_OK ? Py_NewRef(self) : dt_py_raise(s);
}

/* ---------------------------------------------------------------------- */
/* to Python                                                               */

static PyObject *
element_to_py(const char *p, dt_dtype dtype)
{
    switch (dtype) {
    case DT_BOOL: return PyBool_FromLong(*(const bool *)p);
    case DT_UINT8: return PyLong_FromLong(*(const uint8_t *)p);
    case DT_INT32: return PyLong_FromLong(*(const int32_t *)p);
    case DT_INT64: return PyLong_FromLongLong(*(const int64_t *)p);
    default: return PyFloat_FromDouble(dt_load_double(p, dtype));
    }
}

static PyObject *
tolist_rec(const dt_tensor *t, const char *p, int d)
{
    if (d == t->ndim) {
        return element_to_py(p, t->dtype);
    }
    int64_t step = t->strides[d] * (int64_t)dt_dtype_size(t->dtype);
    PyObject *list = PyList_New((Py_ssize_t)t->shape[d]);
    for (int64_t i = 0; list && i < t->shape[d]; i++) {
        PyObject *item = tolist_rec(t, p + i * step, d + 1);
        if (!item) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, i, item);
    }
    return list;
}

static PyObject *
tensor_tolist(PyObject *self, PyObject *unused)
{
    (void)unused;
    return tolist_rec(SELF_T, dt_tensor_data(SELF_T), 0);
}

static PyObject *
tensor_numpy(PyObject *self, PyObject *unused)
{
    (void)unused;
    return dt_py_to_numpy(self);
}

PyMethodDef dt_py_core_methods[] = {
    {"size", tensor_size, METH_VARARGS, "size(dim=None)"},
    {"stride", tensor_stride, METH_VARARGS, "stride(dim=None)"},
    {"numel", tensor_numel, METH_NOARGS, NULL},
    {"is_contiguous", tensor_is_contiguous, METH_NOARGS, NULL},
    {"storage_offset", tensor_storage_offset, METH_NOARGS, NULL},
    {"data_ptr", tensor_data_ptr, METH_NOARGS, NULL},
    {"item", tensor_item, METH_NOARGS, NULL},
    {"view", tensor_view, METH_VARARGS, "view(*shape)"},
    {"reshape", tensor_reshape, METH_VARARGS, "reshape(*shape)"},
    {"expand", tensor_expand, METH_VARARGS, "expand(*sizes)"},
    {"permute", tensor_permute, METH_VARARGS, "permute(*dims)"},
    {"transpose", tensor_transpose, METH_VARARGS, "transpose(dim0, dim1)"},
    {"t", tensor_t, METH_NOARGS, NULL},
    {"squeeze", tensor_squeeze, METH_VARARGS, "squeeze(dim=None)"},
    {"unsqueeze", tensor_unsqueeze, METH_VARARGS, "unsqueeze(dim)"},
    {"narrow", tensor_narrow, METH_VARARGS, "narrow(dim, start, length)"},
    {"select", tensor_select, METH_VARARGS, "select(dim, index)"},
    {"flatten", (PyCFunction)(void (*)(void))tensor_flatten,
     METH_VARARGS | METH_KEYWORDS, "flatten(start_dim=0, end_dim=-1)"},
    {"as_strided", tensor_as_strided, METH_VARARGS,
     "as_strided(size, stride, storage_offset=None)"},
    {"contiguous", tensor_contiguous, METH_NOARGS, NULL},
    {"clone", tensor_clone, METH_NOARGS, NULL},
    {"_to_dtype", tensor_to_dtype, METH_VARARGS, "_to_dtype(dtype, copy)"},
    {"copy_", tensor_copy_, METH_O, "copy_(src)"},
    {"fill_", tensor_fill_, METH_O, "fill_(value)"},
    {"zero_", tensor_zero_, METH_NOARGS, NULL},
    {"tolist", tensor_tolist, METH_NOARGS, NULL},
    {"numpy", tensor_numpy, METH_NOARGS, NULL},
    {NULL} /* sentinel */
};
