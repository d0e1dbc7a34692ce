/* dtype_type.c: _C.dtype, the objects behind dtrain.float32 and friends. */
#include "glue.h"

static PyObject *
dtype_repr(PyObject *self)
{
    return PyUnicode_FromFormat("dtrain.%s",
                                dt_dtype_name(((dt_py_dtype *)self)->dtype));
}

static PyObject *
dtype_itemsize(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSize_t(dt_dtype_size(((dt_py_dtype *)self)->dtype));
}

static PyObject *
dtype_is_floating_point(PyObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(
        dt_dtype_is_floating(((dt_py_dtype *)self)->dtype));
}

static PyObject *
dtype_is_signed(PyObject *self, void *closure)
{
    (void)closure;
    dt_dtype d = ((dt_py_dtype *)self)->dtype;
    return PyBool_FromLong(d != DT_BOOL && d != DT_UINT8);
}

static PyObject *
dtype_index(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(((dt_py_dtype *)self)->dtype);
}

static PyObject *
dtype_reduce(PyObject *self, PyObject *unused)
{
    (void)unused;
    /* pickles as the attribute name in dtrain, like torch.float32 */
    return PyUnicode_FromString(dt_dtype_name(((dt_py_dtype *)self)->dtype));
}

static PyGetSetDef dtype_getset[] = {
    {"itemsize", dtype_itemsize, NULL, "size of one element in bytes", NULL},
    {"is_floating_point", dtype_is_floating_point, NULL, NULL, NULL},
    {"is_signed", dtype_is_signed, NULL, NULL, NULL},
    {"_index", dtype_index, NULL, "the core's dtype number", NULL},
    {NULL} /* sentinel */
};

static PyMethodDef dtype_methods[] = {
    {"__reduce__", dtype_reduce, METH_NOARGS, NULL},
    {NULL} /* sentinel */
};

static PyType_Slot dtype_slots[] = {
    {Py_tp_repr, dtype_repr},
    {Py_tp_getset, dtype_getset},
    {Py_tp_methods, dtype_methods},
    {0, NULL} /* sentinel */
};

static PyType_Spec dtype_spec = {
    .name = "dtrain._C.dtype",
    .basicsize = sizeof(dt_py_dtype),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = dtype_slots,
};

int
dt_py_dtype_init(PyObject *module)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &dtype_spec, NULL);
    if (!type || PyModule_AddObjectRef(module, "dtype", type) < 0) {
        Py_XDECREF(type);
        return -1;
    }
    dt_py_st->dtype_type = (PyTypeObject *)type;
    for (int i = 0; i < DT_DTYPE_COUNT; i++) {
        dt_py_dtype *d = PyObject_New(dt_py_dtype, (PyTypeObject *)type);
        if (!d) {
            return -1;
        }
        d->dtype = (dt_dtype)i;
        dt_py_st->dtypes[i] = (PyObject *)d;
        if (PyModule_AddObjectRef(module, dt_dtype_name((dt_dtype)i),
                                  (PyObject *)d) < 0) {
            return -1;
        }
    }
    return 0;
}

PyObject *
dt_py_dtype_object(dt_dtype dtype)
{
    return dt_py_st->dtypes[dtype];
}

int
dt_py_dtype_converter(PyObject *o, void *out)
{
    if (o == Py_None) {
        return 1;   /* leave the caller's default */
    }
    if (Py_TYPE(o) != dt_py_st->dtype_type) {
        PyErr_Format(PyExc_TypeError,
                     "dtype must be a dtrain.dtype (e.g. dtrain.float32), "
                     "not %s", Py_TYPE(o)->tp_name);
        return 0;
    }
    *(dt_dtype *)out = ((dt_py_dtype *)o)->dtype;
    return 1;
}
