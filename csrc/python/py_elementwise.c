/* py_elementwise.c: glue for unary and binary elementwise ops (stub). */
#include "glue.h"

PyObject *
dt_py_binary(PyObject *a, PyObject *b, int op)
{
    (void)a; (void)b; (void)op;
    Py_RETURN_NOTIMPLEMENTED;
}

PyObject *
dt_py_binary_inplace(PyObject *a, PyObject *b, int op)
{
    (void)a; (void)b; (void)op;
    Py_RETURN_NOTIMPLEMENTED;
}

PyObject *
dt_py_unary(PyObject *a, int op)
{
    (void)a; (void)op;
    PyErr_SetString(PyExc_NotImplementedError, "unary ops");
    return NULL;
}

PyMethodDef dt_py_elementwise_methods[] = {{NULL} /* sentinel */};
PyMethodDef dt_py_elementwise_functions[] = {{NULL} /* sentinel */};
