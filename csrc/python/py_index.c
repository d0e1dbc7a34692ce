/* py_index.c: glue for indexing, joining and scatter/gather (stub). */
#include "glue.h"

PyObject *
dt_py_getitem(PyObject *self, PyObject *key)
{
    (void)self; (void)key;
    PyErr_SetString(PyExc_NotImplementedError, "indexing");
    return NULL;
}

int
dt_py_setitem(PyObject *self, PyObject *key, PyObject *value)
{
    (void)self; (void)key; (void)value;
    PyErr_SetString(PyExc_NotImplementedError, "index assignment");
    return -1;
}

PyMethodDef dt_py_index_methods[] = {{NULL} /* sentinel */};
PyMethodDef dt_py_index_functions[] = {{NULL} /* sentinel */};
