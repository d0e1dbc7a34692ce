/* py_reduce.c: glue for reductions and matrix products: the Tensor
 * methods (sum, mean, max, ..., matmul, mm, ...), the @ operator, the
 * (values, indices) result types, and OpenBLAS's thread count. Arguments
 * mirror PyTorch's signatures (dtrain/_ops/reduce.py forwards to these
 * methods); ops call the recording entry points (dt_sum, dt_matmul...). */
#include "glue.h"

#include "../ops/matmul.h"
#include "../ops/reduce.h"

#define SELF_T (((dt_py_tensor *)self)->t)

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

/* dim: None (every dim), an int, or a sequence of ints. Returns how many
 * dims it holds (0 for None) or -1 with an exception set. */
static int
parse_dims(PyObject *o, int64_t *dims, const char *op)
{
    if (!o || o == Py_None) {
        return 0;
    }
    if (PyIndex_Check(o) && !PyBool_Check(o)) {
        dims[0] = PyLong_AsLongLong(o);
        return dims[0] == -1 && PyErr_Occurred() ? -1 : 1;
    }
    if (PyTuple_Check(o) || PyList_Check(o)) {
        return dt_py_parse_int_list(o, dims, DT_MAX_DIMS, op);
    }
    PyErr_Format(PyExc_TypeError, "%s(): argument 'dim' must be int or "
                 "tuple of ints, not %s", op, Py_TYPE(o)->tp_name);
    return -1;
}

/* A single optional dim (max, argmax): returns 0 for None, 1 for an int. */
static int
parse_one_dim(PyObject *o, int64_t *dim, const char *op)
{
    if (!o || o == Py_None) {
        return 0;
    }
    if (!PyIndex_Check(o) || PyBool_Check(o)) {
        PyErr_Format(PyExc_TypeError, "%s(): argument 'dim' must be int, "
                     "not %s", op, Py_TYPE(o)->tp_name);
        return -1;
    }
    *dim = PyLong_AsLongLong(o);
    return *dim == -1 && PyErr_Occurred() ? -1 : 1;
}

/* ---------------------------------------------------------------------- */
/* sum, mean, amax, amin                                                   */

typedef dt_status (*sum_fn)(dt_tensor **, const dt_tensor *, const int64_t *,
                            int, bool, dt_dtype);

static PyObject *
sum_like(PyObject *self, PyObject *args, PyObject *kwargs, sum_fn fn,
         const char *op)
{
    static char *kwlist[] = {"dim", "keepdim", "dtype", NULL};
    PyObject *dim_obj = Py_None;
    int keepdim = 0;
    dt_dtype dtype = DT_DTYPE_COUNT;
    int64_t dims[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Op$O&", kwlist,
                                     &dim_obj, &keepdim,
                                     dt_py_dtype_converter, &dtype)) {
        return NULL;
    }
    int n = parse_dims(dim_obj, dims, op);
    return n < 0 ? NULL
                 : finish(fn(&out, SELF_T, dims, n, keepdim, dtype), &out);
}

static PyObject *
tensor_sum(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return sum_like(self, args, kwargs, dt_sum, "sum");
}

static PyObject *
tensor_mean(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return sum_like(self, args, kwargs, dt_mean, "mean");
}

typedef dt_status (*amax_fn)(dt_tensor **, const dt_tensor *,
                             const int64_t *, int, bool);

static PyObject *
amax_like(PyObject *self, PyObject *args, PyObject *kwargs, amax_fn fn,
          const char *op)
{
    static char *kwlist[] = {"dim", "keepdim", NULL};
    PyObject *dim_obj = Py_None;
    int keepdim = 0;
    int64_t dims[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Op", kwlist, &dim_obj,
                                     &keepdim)) {
        return NULL;
    }
    int n = parse_dims(dim_obj, dims, op);
    return n < 0 ? NULL : finish(fn(&out, SELF_T, dims, n, keepdim), &out);
}

static PyObject *
tensor_amax(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return amax_like(self, args, kwargs, dt_amax, "amax");
}

static PyObject *
tensor_amin(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return amax_like(self, args, kwargs, dt_amin, "amin");
}

/* ---------------------------------------------------------------------- */
/* max, min (values and indices), argmax, argmin                           */

static PyStructSequence_Field minmax_fields[] = {
    {"values", "the extreme values"},
    {"indices", "where they are (int64)"},
    {NULL, NULL} /* sentinel */
};

/* torch.return_types.max / .min are struct sequences too: a tuple with
 * named fields. Made once, kept for the process. */
static PyTypeObject *
result_type(bool is_max)
{
    static PyTypeObject *types[2];
    static PyStructSequence_Desc descs[2] = {
        {"dtrain.return_types.min", "(values, indices) of min(dim)",
         minmax_fields, 2},
        {"dtrain.return_types.max", "(values, indices) of max(dim)",
         minmax_fields, 2},
    };
    if (!types[is_max]) {
        types[is_max] = PyStructSequence_NewType(&descs[is_max]);
    }
    return types[is_max];
}

static PyObject *
values_indices(dt_tensor *values, dt_tensor *indices, bool is_max)
{
    PyTypeObject *tp = result_type(is_max);
    PyObject *v = dt_py_wrap(values);
    PyObject *i = dt_py_wrap(indices);
    PyObject *res = tp && v && i ? PyStructSequence_New(tp) : NULL;
    if (!res) {
        Py_XDECREF(v);
        Py_XDECREF(i);
        return NULL;
    }
    PyStructSequence_SetItem(res, 0, v);   /* steals */
    PyStructSequence_SetItem(res, 1, i);
    return res;
}

static PyObject *
max_like(PyObject *self, PyObject *args, PyObject *kwargs, bool is_max)
{
    static char *kwlist[] = {"dim", "keepdim", NULL};
    const char *op = is_max ? "max" : "min";
    PyObject *dim_obj = Py_None;
    int keepdim = 0;
    int64_t dim;
    dt_tensor *values = NULL, *indices = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Op", kwlist, &dim_obj,
                                     &keepdim)) {
        return NULL;
    }
    if (dt_py_unwrap(dim_obj)) {
        /* max(other) is the elementwise maximum */
        return PyObject_CallMethod(self, is_max ? "maximum" : "minimum", "O",
                                   dim_obj);
    }
    int n = parse_one_dim(dim_obj, &dim, op);
    if (n <= 0) {
        return n < 0 ? NULL
                     : finish((is_max ? dt_max : dt_min)(
                                  &values, NULL, SELF_T, NULL, false),
                              &values);
    }
    dt_status s = (is_max ? dt_max : dt_min)(
        &values, &indices, SELF_T, &dim, keepdim);
    if (s != DT_OK) {
        dt_tensor_release(values);
        dt_tensor_release(indices);
        return dt_py_raise(s);
    }
    return values_indices(values, indices, is_max);
}

static PyObject *
tensor_max(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return max_like(self, args, kwargs, true);
}

static PyObject *
tensor_min(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return max_like(self, args, kwargs, false);
}

static PyObject *
argmax_like(PyObject *self, PyObject *args, PyObject *kwargs, bool is_max)
{
    static char *kwlist[] = {"dim", "keepdim", NULL};
    const char *op = is_max ? "argmax" : "argmin";
    PyObject *dim_obj = Py_None;
    int keepdim = 0;
    int64_t dim;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|Op", kwlist, &dim_obj,
                                     &keepdim)) {
        return NULL;
    }
    int n = parse_one_dim(dim_obj, &dim, op);
    if (n < 0) {
        return NULL;
    }
    return finish((is_max ? dt_argmax_forward : dt_argmin_forward)(
                      &out, SELF_T, n ? &dim : NULL, keepdim),
                  &out);
}

static PyObject *
tensor_argmax(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return argmax_like(self, args, kwargs, true);
}

static PyObject *
tensor_argmin(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return argmax_like(self, args, kwargs, false);
}

/* ---------------------------------------------------------------------- */
/* var, std, norm                                                          */

typedef dt_status (*var_fn)(dt_tensor **, const dt_tensor *, const int64_t *,
                            int, double, bool);

/* var(dim=None, unbiased=True, keepdim=False, *, correction=None), where
 * a lone bool first argument is `unbiased` (PyTorch's old overload). */
static PyObject *
var_like(PyObject *self, PyObject *args, PyObject *kwargs, var_fn fn,
         const char *op)
{
    static char *kwlist[] = {"dim", "unbiased", "keepdim", "correction",
                             NULL};
    PyObject *dim_obj = Py_None, *unbiased = NULL, *correction = Py_None;
    int keepdim = 0;
    int64_t dims[DT_MAX_DIMS];
    dt_tensor *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOp$O", kwlist,
                                     &dim_obj, &unbiased, &keepdim,
                                     &correction)) {
        return NULL;
    }
    if (PyBool_Check(dim_obj) && !unbiased) {
        unbiased = dim_obj;
        dim_obj = Py_None;
    }
    if (unbiased && correction != Py_None) {
        PyErr_Format(PyExc_TypeError, "%s(): pass either unbiased or "
                     "correction, not both", op);
        return NULL;
    }
    double corr = 1.0;
    if (correction != Py_None) {
        corr = PyFloat_AsDouble(correction);
        if (corr == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
    } else if (unbiased) {
        int u = PyObject_IsTrue(unbiased);
        if (u < 0) {
            return NULL;
        }
        corr = u ? 1.0 : 0.0;
    }
    int n = parse_dims(dim_obj, dims, op);
    return n < 0 ? NULL
                 : finish(fn(&out, SELF_T, dims, n, corr, keepdim), &out);
}

static PyObject *
tensor_var(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return var_like(self, args, kwargs, dt_var, "var");
}

static PyObject *
tensor_std(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return var_like(self, args, kwargs, dt_std, "std");
}

/* p: None or 'fro' (the 2-norm of the flattened dims), or a number. */
static int
parse_norm_p(PyObject *o, double *p, int ndims)
{
    if (o == Py_None) {
        *p = 2.0;
        return 0;
    }
    if (PyUnicode_Check(o)) {
        if (PyUnicode_CompareWithASCIIString(o, "fro") == 0) {
            if (ndims > 2) {
                PyErr_Format(PyExc_RuntimeError, "norm(): 'fro' norm needs "
                             "at most 2 dims, got %d", ndims);
                return -1;
            }
            *p = 2.0;
            return 0;
        }
        if (PyUnicode_CompareWithASCIIString(o, "nuc") == 0) {
            PyErr_SetString(PyExc_NotImplementedError,
                            "norm(): the nuclear norm is not supported");
            return -1;
        }
        PyErr_Format(PyExc_RuntimeError, "norm(): order %R not supported",
                     o);
        return -1;
    }
    *p = PyFloat_AsDouble(o);
    return *p == -1.0 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *
tensor_norm(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"p", "dim", "keepdim", "dtype", NULL};
    PyObject *p_obj = Py_None, *dim_obj = Py_None;
    int keepdim = 0;
    dt_dtype dtype = DT_DTYPE_COUNT;
    int64_t dims[DT_MAX_DIMS];
    double p;
    dt_tensor *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOp$O&", kwlist, &p_obj,
                                     &dim_obj, &keepdim,
                                     dt_py_dtype_converter, &dtype)) {
        return NULL;
    }
    int n = parse_dims(dim_obj, dims, "norm");
    if (n < 0 || parse_norm_p(p_obj, &p, n) < 0) {
        return NULL;
    }
    return finish(dt_norm(&out, SELF_T, p, dims, n, keepdim, dtype),
                  &out);
}

/* ---------------------------------------------------------------------- */
/* matrix products                                                         */

typedef dt_status (*binary_fn)(dt_tensor **, const dt_tensor *,
                               const dt_tensor *);

static PyObject *
product(PyObject *self, PyObject *other, binary_fn fn, const char *op,
        const char *arg)
{
    dt_tensor *b = dt_py_unwrap(other), *out = NULL;   /* borrowed */
    if (!b) {
        PyErr_Format(PyExc_TypeError, "%s(): argument '%s' must be Tensor, "
                     "not %s", op, arg, Py_TYPE(other)->tp_name);
        return NULL;
    }
    return finish(fn(&out, SELF_T, b), &out);
}

PyObject *
dt_py_matmul(PyObject *a, PyObject *b)
{
    dt_tensor *ta = dt_py_unwrap(a), *tb = dt_py_unwrap(b), *out = NULL;
    if (!ta || !tb) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    return finish(dt_matmul(&out, ta, tb), &out);
}

static PyObject *
tensor_matmul(PyObject *self, PyObject *other)
{
    return product(self, other, dt_matmul, "matmul", "other");
}

static PyObject *
tensor_mm(PyObject *self, PyObject *other)
{
    return product(self, other, dt_mm, "mm", "mat2");
}

static PyObject *
tensor_bmm(PyObject *self, PyObject *other)
{
    return product(self, other, dt_bmm, "bmm", "mat2");
}

static PyObject *
tensor_mv(PyObject *self, PyObject *other)
{
    return product(self, other, dt_mv, "mv", "vec");
}

static PyObject *
tensor_dot(PyObject *self, PyObject *other)
{
    return product(self, other, dt_dot, "dot", "tensor");
}

/* ---------------------------------------------------------------------- */
/* module functions                                                        */

static PyObject *
set_num_threads(PyObject *module, PyObject *arg)
{
    (void)module;
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (n < 1 || n > INT_MAX) {
        PyErr_Format(PyExc_ValueError, "set_num_threads(): expected a "
                     "positive number of threads, got %ld", n);
        return NULL;
    }
    dt_blas_set_num_threads((int)n);
    Py_RETURN_NONE;
}

static PyObject *
get_num_threads(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyLong_FromLong(dt_blas_get_num_threads());
}

static PyObject *
return_types(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    PyTypeObject *mx = result_type(true), *mn = result_type(false);
    return mx && mn ? Py_BuildValue("{sOsO}", "max", mx, "min", mn) : NULL;
}

#define KW(f) (PyCFunction)(void (*)(void))(f), METH_VARARGS | METH_KEYWORDS

PyMethodDef dt_py_reduce_methods[] = {
    {"sum", KW(tensor_sum), "sum(dim=None, keepdim=False, *, dtype=None)"},
    {"mean", KW(tensor_mean), "mean(dim=None, keepdim=False, *, dtype=None)"},
    {"amax", KW(tensor_amax), "amax(dim=(), keepdim=False)"},
    {"amin", KW(tensor_amin), "amin(dim=(), keepdim=False)"},
    {"max", KW(tensor_max), "max(), max(dim, keepdim=False), max(other)"},
    {"min", KW(tensor_min), "min(), min(dim, keepdim=False), min(other)"},
    {"argmax", KW(tensor_argmax), "argmax(dim=None, keepdim=False)"},
    {"argmin", KW(tensor_argmin), "argmin(dim=None, keepdim=False)"},
    {"var", KW(tensor_var),
     "var(dim=None, unbiased=True, keepdim=False, *, correction=None)"},
    {"std", KW(tensor_std),
     "std(dim=None, unbiased=True, keepdim=False, *, correction=None)"},
    {"norm", KW(tensor_norm),
     "norm(p='fro', dim=None, keepdim=False, *, dtype=None)"},
    {"matmul", tensor_matmul, METH_O, "matmul(other)"},
    {"mm", tensor_mm, METH_O, "mm(mat2)"},
    {"bmm", tensor_bmm, METH_O, "bmm(mat2)"},
    {"mv", tensor_mv, METH_O, "mv(vec)"},
    {"dot", tensor_dot, METH_O, "dot(tensor)"},
    {NULL} /* sentinel */
};

PyMethodDef dt_py_reduce_functions[] = {
    {"set_num_threads", set_num_threads, METH_O,
     "Sets OpenBLAS's thread count (matmul)."},
    {"get_num_threads", get_num_threads, METH_NOARGS,
     "OpenBLAS's thread count."},
    {"_return_types", return_types, METH_NOARGS,
     "The (values, indices) result types of max/min, by name."},
    {NULL} /* sentinel */
};
