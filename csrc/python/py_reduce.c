/* py_reduce.c: glue for reductions and matmul (stub). */
#include "glue.h"

PyObject *
dt_py_matmul(PyObject *a, PyObject *b)
{
    (void)a; (void)b;
    Py_RETURN_NOTIMPLEMENTED;
}

PyMethodDef dt_py_reduce_methods[] = {{NULL} /* sentinel */};
PyMethodDef dt_py_reduce_functions[] = {{NULL} /* sentinel */};
