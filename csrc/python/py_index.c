/* py_index.c: glue for gather/scatter, index_select, index_put_,
 * masked_fill, nonzero, one_hot, and joining and splitting (cat, stack,
 * split, chunk, unbind). Subscripting itself is in py_index_key.c. */
#include "glue.h"

#include "../autograd/views.h"
#include "../ops/index.h"

#define SELF_T (((dt_py_tensor *)self)->t)

/* Wraps *out, or raises; takes the address so the call that fills *out
 * is sequenced before the read. */
static PyObject *
finish(dt_status s, dt_tensor **out)
{
    if (s != DT_OK) {
        dt_tensor_release(*out);
        return dt_py_raise(s);
    }
    return dt_py_wrap(*out);
}

/* Wraps outs[0..n) as a tuple, stealing them all. */
static PyObject *
wrap_tuple(dt_tensor **outs, int64_t n)
{
    PyObject *tup = PyTuple_New((Py_ssize_t)n);
    for (int64_t i = 0; i < n; i++) {
        PyObject *o = tup ? dt_py_wrap(outs[i]) : NULL;
        if (!tup) {
            dt_tensor_release(outs[i]);
        } else if (!o) {
            Py_CLEAR(tup);
        } else {
            PyTuple_SET_ITEM(tup, i, o);
        }
    }
    return tup;
}

/* ---------------------------------------------------------------------- */
/* gather, scatter_add, index_select                                       */

static PyObject *
tensor_gather(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"dim", "index", NULL};
    long long dim;
    dt_tensor *index, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "LO&:gather", kwlist,
                                     &dim, dt_py_tensor_converter, &index)) {
        return NULL;
    }
    return finish(dt_gather(&out, SELF_T, dim, index), &out);
}

/* scatter_add(dim, index, src) and scatter_add_: `inplace` picks. */
static PyObject *
scatter_add(PyObject *self, PyObject *args, PyObject *kwargs, bool inplace)
{
    static char *kwlist[] = {"dim", "index", "src", NULL};
    long long dim;
    dt_tensor *index, *src, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "LO&O&:scatter_add",
                                     kwlist, &dim, dt_py_tensor_converter,
                                     &index, dt_py_tensor_converter, &src)) {
        return NULL;
    }
    if (inplace) {
        dt_status s = dt_scatter_add_(SELF_T, dim, index, src);
        return s == DT_OK ? Py_NewRef(self) : dt_py_raise(s);
    }
    dt_status s = dt_ag_clone(&out, SELF_T);
    if (s == DT_OK) {
        s = dt_scatter_add_(out, dim, index, src);
    }
    return finish(s, &out);
}

static PyObject *
tensor_scatter_add(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return scatter_add(self, args, kwargs, false);
}

static PyObject *
tensor_scatter_add_(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return scatter_add(self, args, kwargs, true);
}

static PyObject *
tensor_index_select(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"dim", "index", NULL};
    long long dim;
    dt_tensor *index, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "LO&:index_select",
                                     kwlist, &dim, dt_py_tensor_converter,
                                     &index)) {
        return NULL;
    }
    return finish(dt_index_select(&out, SELF_T, dim, index), &out);
}

/* ---------------------------------------------------------------------- */
/* index_put_, masked_fill, nonzero                                        */

/* A tuple or list of tensors (None for ':') as an index list of borrowed
 * pointers; returns its length or -1. */
static int
parse_indices(PyObject *seq, dt_tensor **list, const char *op)
{
    if (!PyTuple_Check(seq) && !PyList_Check(seq)) {
        PyErr_Format(PyExc_TypeError, "%s(): argument 'indices' must be "
                     "tuple of Tensors, not %s", op, Py_TYPE(seq)->tp_name);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > DT_MAX_DIMS) {
        PyErr_Format(PyExc_IndexError, "%s(): too many indices (%zd)", op,
                     n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);   /* borrowed */
        list[i] = o == Py_None ? NULL : dt_py_unwrap(o);
        if (o != Py_None && !list[i]) {
            PyErr_Format(PyExc_TypeError, "%s(): expected Tensor as element "
                         "%zd in argument 'indices', but got %s", op, i,
                         Py_TYPE(o)->tp_name);
            return -1;
        }
    }
    return (int)n;
}

static PyObject *
index_put(PyObject *self, PyObject *args, PyObject *kwargs, bool inplace)
{
    static char *kwlist[] = {"indices", "values", "accumulate", NULL};
    PyObject *indices;
    dt_tensor *values, *list[DT_MAX_DIMS], *out = NULL;
    int accumulate = 0;
    const char *op = inplace ? "index_put_" : "index_put";
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OO&|p:index_put", kwlist,
                                     &indices, dt_py_tensor_converter,
                                     &values, &accumulate)) {
        return NULL;
    }
    int n = parse_indices(indices, list, op);
    if (n < 0) {
        return NULL;
    }
    if (inplace) {
        dt_status s = dt_index_put_(SELF_T, list, n, values, accumulate);
        return s == DT_OK ? Py_NewRef(self) : dt_py_raise(s);
    }
    dt_status s = dt_ag_clone(&out, SELF_T);
    if (s == DT_OK) {
        s = dt_index_put_(out, list, n, values, accumulate);
    }
    return finish(s, &out);
}

static PyObject *
tensor_index_put_(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return index_put(self, args, kwargs, true);
}

static PyObject *
tensor_index_put(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return index_put(self, args, kwargs, false);
}

static PyObject *
masked_fill(PyObject *self, PyObject *args, PyObject *kwargs, bool inplace)
{
    static char *kwlist[] = {"mask", "value", NULL};
    PyObject *value_obj;
    dt_tensor *mask, *value = NULL, *out = inplace ? SELF_T : NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O:masked_fill", kwlist,
                                     dt_py_tensor_converter, &mask,
                                     &value_obj) ||
        dt_py_as_tensor(value_obj, &value, "masked_fill", "value") < 0) {
        return NULL;
    }
    dt_status s = dt_masked_fill(&out, SELF_T, mask, value);
    dt_tensor_release(value);
    if (inplace) {
        return s == DT_OK ? Py_NewRef(self) : dt_py_raise(s);
    }
    return finish(s, &out);
}

static PyObject *
tensor_masked_fill(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return masked_fill(self, args, kwargs, false);
}

static PyObject *
tensor_masked_fill_(PyObject *self, PyObject *args, PyObject *kwargs)
{
    return masked_fill(self, args, kwargs, true);
}

static PyObject *
tensor_nonzero(PyObject *self, PyObject *unused)
{
    (void)unused;
    dt_tensor *out = NULL;
    return finish(dt_nonzero_forward(&out, SELF_T), &out);
}

/* ---------------------------------------------------------------------- */
/* split, chunk, unbind                                                    */

/* Cuts t into views with the given sizes and returns them as a tuple. */
static PyObject *
split_into(const dt_tensor *t, const int64_t *sizes, int64_t n,
           int64_t dim)
{
    dt_tensor **outs = PyMem_Calloc((size_t)(n ? n : 1), sizeof *outs);
    if (!outs) {
        return PyErr_NoMemory();
    }
    dt_status s = dt_split(outs, t, sizes, n, dim);
    PyObject *res = s == DT_OK ? wrap_tuple(outs, n) : dt_py_raise(s);
    PyMem_Free(outs);
    return res;
}

/* n even pieces of split_size (the last smaller). */
static PyObject *
split_even(const dt_tensor *t, int64_t n, int64_t split_size, int64_t dim)
{
    int64_t *sizes = PyMem_Calloc((size_t)(n ? n : 1), sizeof *sizes);
    if (!sizes) {
        return PyErr_NoMemory();
    }
    dt_split_even_sizes(sizes, n, t->shape[dim], split_size);
    PyObject *res = split_into(t, sizes, n, dim);
    PyMem_Free(sizes);
    return res;
}

static PyObject *
split_sections(const dt_tensor *t, PyObject *seq, int64_t dim)
{
    PyObject *fast = PySequence_Fast(seq, "split(): split_size_or_sections "
                                     "must be an int or a list of ints");
    if (!fast) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    int64_t *sizes = PyMem_Calloc((size_t)(n ? n : 1), sizeof *sizes);
    PyObject *res = sizes ? NULL : PyErr_NoMemory();
    for (Py_ssize_t i = 0; sizes && i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(fast, i);   /* borrowed */
        sizes[i] = PyIndex_Check(o) ? PyLong_AsLongLong(o) : -1;
        if (!PyIndex_Check(o) || (sizes[i] == -1 && PyErr_Occurred())) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError, "split(): split_sizes must "
                             "be ints, but element %zd is %s", i,
                             Py_TYPE(o)->tp_name);
            }
            goto done;
        }
    }
    if (sizes) {
        res = split_into(t, sizes, n, dim);
    }
done:
    PyMem_Free(sizes);
    Py_DECREF(fast);
    return res;
}

static PyObject *
tensor_split(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"split_size_or_sections", "dim", NULL};
    PyObject *how;
    long long dim = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|L:split", kwlist, &how,
                                     &dim)) {
        return NULL;
    }
    if (PySequence_Check(how)) {
        return split_sections(SELF_T, how, dim);
    }
    long long size = PyLong_AsLongLong(how);
    int64_t n, d = dim;
    if (size == -1 && PyErr_Occurred()) {
        return NULL;
    }
    dt_status s = dt_split_count(&n, SELF_T, size, &d);
    return s == DT_OK ? split_even(SELF_T, n, size, d) : dt_py_raise(s);
}

static PyObject *
tensor_chunk(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"chunks", "dim", NULL};
    long long chunks, dim = 0;
    int64_t n, size, d;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "L|L:chunk", kwlist,
                                     &chunks, &dim)) {
        return NULL;
    }
    d = dim;
    dt_status s = dt_chunk_count(&n, &size, SELF_T, chunks, &d);
    return s == DT_OK ? split_even(SELF_T, n, size, d) : dt_py_raise(s);
}

static PyObject *
tensor_unbind(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"dim", NULL};
    long long dim = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|L:unbind", kwlist,
                                     &dim)) {
        return NULL;
    }
    int64_t d = dim, n = 0;
    dt_tensor *t = SELF_T;
    if (t->ndim > 0 && dt_wrap_dim(&d, t->ndim, "unbind") == DT_OK) {
        n = t->shape[d];
    }
    dt_tensor **outs = PyMem_Calloc((size_t)(n ? n : 1), sizeof *outs);
    if (!outs) {
        return PyErr_NoMemory();
    }
    dt_status s = dt_unbind(outs, t, dim);
    PyObject *res = s == DT_OK ? wrap_tuple(outs, n) : dt_py_raise(s);
    PyMem_Free(outs);
    return res;
}

/* ---------------------------------------------------------------------- */
/* module functions: cat, stack, one_hot                                   */

/* cat(tensors, dim=0, out=None) and stack: `stack` picks. */
static PyObject *
join(PyObject *args, PyObject *kwargs, bool stack)
{
    static char *kwlist[] = {"tensors", "dim", "out", NULL};
    const char *op = stack ? "stack" : "cat";
    PyObject *seq, *out_obj = Py_None, *res = NULL;
    long long dim = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|LO:cat", kwlist, &seq,
                                     &dim, &out_obj)) {
        return NULL;
    }
    dt_tensor *out = out_obj == Py_None ? NULL : dt_py_unwrap(out_obj);
    if (out_obj != Py_None && !out) {
        PyErr_Format(PyExc_TypeError, "%s(): argument 'out' must be Tensor, "
                     "not %s", op, Py_TYPE(out_obj)->tp_name);
        return NULL;
    }
    if (!PyTuple_Check(seq) && !PyList_Check(seq)) {
        PyErr_Format(PyExc_TypeError, "%s(): argument 'tensors' must be "
                     "tuple of Tensors, not %s", op, Py_TYPE(seq)->tp_name);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    dt_tensor **ts = PyMem_Calloc((size_t)(n ? n : 1), sizeof *ts);
    if (!ts || n > INT32_MAX) {
        PyMem_Free(ts);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);   /* borrowed */
        if (!(ts[i] = dt_py_unwrap(o))) {
            PyErr_Format(PyExc_TypeError, "%s(): expected Tensor as element "
                         "%zd in argument 'tensors', but got %s", op, i,
                         Py_TYPE(o)->tp_name);
            goto done;
        }
    }
    dt_status s = stack ? dt_stack(&out, ts, (int)n, dim)
                        : dt_cat(&out, ts, (int)n, dim);
    if (s != DT_OK) {
        if (out_obj == Py_None) {
            dt_tensor_release(out);
        }
        dt_py_raise(s);
    } else {
        res = out_obj == Py_None ? dt_py_wrap(out) : Py_NewRef(out_obj);
    }
done:
    PyMem_Free(ts);
    return res;
}

static PyObject *
fn_cat(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    return join(args, kwargs, false);
}

static PyObject *
fn_stack(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    return join(args, kwargs, true);
}

static PyObject *
fn_one_hot(PyObject *module, PyObject *args, PyObject *kwargs)
{
    (void)module;
    static char *kwlist[] = {"tensor", "num_classes", NULL};
    dt_tensor *t, *out = NULL;
    long long classes = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|L:one_hot", kwlist,
                                     dt_py_tensor_converter, &t, &classes)) {
        return NULL;
    }
    return finish(dt_one_hot_forward(&out, t, classes), &out);
}

#define KW(f) ((PyCFunction)(void (*)(void))(f))

PyMethodDef dt_py_index_methods[] = {
    {"gather", KW(tensor_gather), METH_VARARGS | METH_KEYWORDS,
     "gather(dim, index)"},
    {"scatter_add", KW(tensor_scatter_add), METH_VARARGS | METH_KEYWORDS,
     "scatter_add(dim, index, src)"},
    {"scatter_add_", KW(tensor_scatter_add_), METH_VARARGS | METH_KEYWORDS,
     "scatter_add_(dim, index, src)"},
    {"index_select", KW(tensor_index_select), METH_VARARGS | METH_KEYWORDS,
     "index_select(dim, index)"},
    {"index_put_", KW(tensor_index_put_), METH_VARARGS | METH_KEYWORDS,
     "index_put_(indices, values, accumulate=False)"},
    {"index_put", KW(tensor_index_put), METH_VARARGS | METH_KEYWORDS,
     "index_put(indices, values, accumulate=False)"},
    {"masked_fill", KW(tensor_masked_fill), METH_VARARGS | METH_KEYWORDS,
     "masked_fill(mask, value)"},
    {"masked_fill_", KW(tensor_masked_fill_), METH_VARARGS | METH_KEYWORDS,
     "masked_fill_(mask, value)"},
    {"nonzero", tensor_nonzero, METH_NOARGS, NULL},
    {"split", KW(tensor_split), METH_VARARGS | METH_KEYWORDS,
     "split(split_size_or_sections, dim=0)"},
    {"chunk", KW(tensor_chunk), METH_VARARGS | METH_KEYWORDS,
     "chunk(chunks, dim=0)"},
    {"unbind", KW(tensor_unbind), METH_VARARGS | METH_KEYWORDS,
     "unbind(dim=0)"},
    {NULL} /* sentinel */
};

PyMethodDef dt_py_index_functions[] = {
    {"cat", KW(fn_cat), METH_VARARGS | METH_KEYWORDS,
     "cat(tensors, dim=0, out=None)"},
    {"stack", KW(fn_stack), METH_VARARGS | METH_KEYWORDS,
     "stack(tensors, dim=0, out=None)"},
    {"one_hot", KW(fn_one_hot), METH_VARARGS | METH_KEYWORDS,
     "one_hot(tensor, num_classes=-1) -> int64 tensor"},
    {NULL} /* sentinel */
};
