/* module.c: the dtrain._C module: init, module state, errors -> exceptions,
 * argument helpers shared by every glue file. */
#include "glue.h"

dt_py_state *dt_py_st;

PyObject *
dt_py_raise(dt_status s)
{
    PyObject *exc;
    switch (s) {
    case DT_ERR_VALUE: exc = PyExc_ValueError; break;
    case DT_ERR_TYPE: exc = PyExc_TypeError; break;
    case DT_ERR_INDEX: exc = PyExc_IndexError; break;
    case DT_ERR_NOMEM: exc = PyExc_MemoryError; break;
    case DT_ERR_NOTIMPL: exc = PyExc_NotImplementedError; break;
    default: exc = PyExc_RuntimeError; break;
    }
    PyErr_SetString(exc, dt_last_error());
    return NULL;
}

int
dt_py_parse_int_list(PyObject *seq, int64_t *out, int max, const char *op)
{
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of ints");
    if (!fast) {
        PyErr_Format(PyExc_TypeError, "%s(): expected a sequence of ints, "
                     "got %s", op, Py_TYPE(seq)->tp_name);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    if (n > max) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "%s(): at most %d sizes, got %zd", op,
                     max, n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);   /* borrowed */
        if (!PyIndex_Check(item) || PyBool_Check(item)) {
            PyErr_Format(PyExc_TypeError,
                         "%s(): expected ints, but element %zd is %s", op, i,
                         Py_TYPE(item)->tp_name);
            Py_DECREF(fast);
            return -1;
        }
        out[i] = PyLong_AsLongLong(item);
        if (out[i] == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
    }
    Py_DECREF(fast);
    return (int)n;
}

int
dt_py_parse_shape(PyObject *args, int64_t *shape, const char *op)
{
    if (PyTuple_GET_SIZE(args) == 1 &&
        PySequence_Check(PyTuple_GET_ITEM(args, 0))) {
        return dt_py_parse_int_list(PyTuple_GET_ITEM(args, 0), shape,
                                    DT_MAX_DIMS, op);
    }
    return dt_py_parse_int_list(args, shape, DT_MAX_DIMS, op);
}

int
dt_py_as_tensor(PyObject *o, dt_tensor **out, const char *op,
                const char *arg)
{
    dt_tensor *t = dt_py_unwrap(o);
    if (t) {
        dt_tensor_retain(t);
        *out = t;
        return 0;
    }
    dt_dtype dtype;
    double value;
    if (PyBool_Check(o)) {
        dtype = DT_BOOL;
        value = o == Py_True;
    } else if (PyLong_Check(o)) {
        dtype = DT_INT64;
        long long v = PyLong_AsLongLong(o);
        if (v == -1 && PyErr_Occurred()) {
            return -1;
        }
        value = (double)v;
    } else if (PyFloat_Check(o)) {
        dtype = DT_FLOAT64;
        value = PyFloat_AS_DOUBLE(o);
    } else {
        PyErr_Format(PyExc_TypeError,
                     "%s(): argument '%s' must be Tensor or number, not %s",
                     op, arg, Py_TYPE(o)->tp_name);
        return -1;
    }
    dt_status s = dt_tensor_scalar(out, value, dtype);
    if (s != DT_OK) {
        dt_py_raise(s);
        return -1;
    }
    if (dtype == DT_INT64) {
        /* exact even past 2**53 */
        *(int64_t *)dt_tensor_data(*out) = PyLong_AsLongLong(o);
    }
    (*out)->is_wrapped_number = true;
    return 0;
}

int
dt_py_tensor_converter(PyObject *o, void *out)
{
    dt_tensor *t = dt_py_unwrap(o);
    if (!t) {
        PyErr_Format(PyExc_TypeError, "expected a Tensor, got %s",
                     Py_TYPE(o)->tp_name);
        return 0;
    }
    *(dt_tensor **)out = t;
    return 1;
}

/* ---------------------------------------------------------------------- */
/* module                                                                  */

int dt_py_dtype_init(PyObject *module);          /* dtype_type.c */
int dt_py_tensor_type_init(PyObject *module);    /* tensor_type.c */
int dt_py_autograd_init(PyObject *module);       /* py_autograd.c */
int dt_py_store_init(PyObject *module);          /* py_store.c */
int dt_py_pg_init(PyObject *module);             /* py_pg.c */
int dt_py_reducer_init(PyObject *module);        /* py_reducer.c */

static int
add_functions(PyObject *module)
{
    PyMethodDef *tables[] = {
        dt_py_core_functions,   dt_py_elementwise_functions,
        dt_py_reduce_functions, dt_py_index_functions,
        dt_py_creation_functions, dt_py_optim_functions,
        dt_py_nn_loss_functions,  dt_py_nn_conv_functions,
        dt_py_function_functions,
    };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        if (PyModule_AddFunctions(module, tables[i]) < 0) {
            return -1;
        }
    }
    return 0;
}

static int
dt_module_exec(PyObject *module)
{
    dt_py_st = PyModule_GetState(module);
    if (dt_py_numpy_init() < 0 || dt_py_dtype_init(module) < 0 ||
        dt_py_tensor_type_init(module) < 0 || add_functions(module) < 0 ||
        dt_py_autograd_init(module) < 0 || dt_py_store_init(module) < 0 ||
        dt_py_pg_init(module) < 0 || dt_py_reducer_init(module) < 0) {
        return -1;
    }
    return 0;
}

static int
dt_module_traverse(PyObject *module, visitproc visit, void *arg)
{
    dt_py_state *st = PyModule_GetState(module);
    Py_VISIT(st->tensor_base);
    Py_VISIT(st->tensor_class);
    Py_VISIT(st->dtype_type);
    for (int i = 0; i < DT_DTYPE_COUNT; i++) {
        Py_VISIT(st->dtypes[i]);
    }
    return 0;
}

static int
dt_module_clear(PyObject *module)
{
    dt_py_state *st = PyModule_GetState(module);
    Py_CLEAR(st->tensor_base);
    Py_CLEAR(st->tensor_class);
    Py_CLEAR(st->dtype_type);
    for (int i = 0; i < DT_DTYPE_COUNT; i++) {
        Py_CLEAR(st->dtypes[i]);
    }
    return 0;
}

static PyModuleDef_Slot dt_module_slots[] = {
    {Py_mod_exec, dt_module_exec},
    {0, NULL} /* sentinel */
};

PyDoc_STRVAR(dt_module_doc, "dtrain's C core: tensors, ops and kernels.");

static struct PyModuleDef dt_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dtrain._C",
    .m_doc = dt_module_doc,
    .m_size = sizeof(dt_py_state),
    .m_slots = dt_module_slots,
    .m_traverse = dt_module_traverse,
    .m_clear = dt_module_clear,
};

PyMODINIT_FUNC
PyInit__C(void)
{
    return PyModuleDef_Init(&dt_module);
}
