/* tensor_type.c: _C.TensorBase, the C half of dtrain.Tensor: lifetime,
 * attributes, the buffer protocol, operator slots. Methods come from the
 * family glue files (glue.h); dtrain/_tensor.py subclasses this type. */
#include "glue.h"

PyObject *
dt_py_wrap(dt_tensor *t)
{
    PyTypeObject *cls = dt_py_st->tensor_class ? dt_py_st->tensor_class
                                               : dt_py_st->tensor_base;
    dt_py_tensor *self = (dt_py_tensor *)cls->tp_alloc(cls, 0);
    if (!self) {
        dt_tensor_release(t);
        return NULL;
    }
    self->t = t;
    return (PyObject *)self;
}

dt_tensor *
dt_py_unwrap(PyObject *o)
{
    if (!PyObject_TypeCheck(o, dt_py_st->tensor_base)) {
        return NULL;
    }
    return ((dt_py_tensor *)o)->t;
}

static void
tensor_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    dt_tensor_release(((dt_py_tensor *)self)->t);
    tp->tp_free(self);
    Py_DECREF(tp);
}

/* ---------------------------------------------------------------------- */
/* attributes                                                              */

static PyObject *
tensor_get_shape(PyObject *self, void *closure)
{
    (void)closure;
    dt_tensor *t = ((dt_py_tensor *)self)->t;
    PyObject *shape = PyTuple_New(t->ndim);
    for (int i = 0; shape && i < t->ndim; i++) {
        PyObject *v = PyLong_FromLongLong(t->shape[i]);
        if (!v) {
            Py_DECREF(shape);
            return NULL;
        }
        PyTuple_SET_ITEM(shape, i, v);
    }
    return shape;
}

static PyObject *
tensor_get_dtype(PyObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(dt_py_dtype_object(((dt_py_tensor *)self)->t->dtype));
}

static PyObject *
tensor_get_device_str(PyObject *self, void *closure)
{
    (void)closure;
    char buf[32];
    dt_device_format(buf, sizeof buf,
                     dt_tensor_device(((dt_py_tensor *)self)->t));
    return PyUnicode_FromString(buf);
}

static PyObject *
tensor_get_ndim(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromLong(((dt_py_tensor *)self)->t->ndim);
}

static PyObject *
tensor_get_version(PyObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(
        atomic_load(&((dt_py_tensor *)self)->t->storage->version));
}

static PyGetSetDef core_getset[] = {
    {"_shape", tensor_get_shape, NULL, "shape as a tuple", NULL},
    {"dtype", tensor_get_dtype, NULL, "the element type", NULL},
    {"_device", tensor_get_device_str, NULL, "device as a string", NULL},
    {"ndim", tensor_get_ndim, NULL, "number of dimensions", NULL},
    {"_version", tensor_get_version, NULL, "in-place write counter", NULL},
    {NULL} /* sentinel */
};

/* ---------------------------------------------------------------------- */
/* buffer protocol: CPU tensors export their memory zero-copy              */

static const char *
buffer_format(dt_dtype d)
{
    switch (d) {
    case DT_BOOL: return "?";
    case DT_UINT8: return "B";
    case DT_INT32: return "i";
    case DT_INT64: return "q";
    case DT_FLOAT16: return "e";
    case DT_FLOAT32: return "f";
    case DT_FLOAT64: return "d";
    default: return NULL;
    }
}

static int
tensor_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
    dt_tensor *t = ((dt_py_tensor *)self)->t;
    const char *fmt = buffer_format(t->dtype);
    if (dt_tensor_device(t).type != DT_CPU || !fmt) {
        PyErr_Format(PyExc_BufferError,
                     "only CPU tensors of a NumPy-compatible dtype export a "
                     "buffer (got %s)", dt_dtype_name(t->dtype));
        return -1;
    }
    Py_ssize_t isz = (Py_ssize_t)dt_dtype_size(t->dtype);
    if ((flags & PyBUF_ND) != PyBUF_ND && !dt_tensor_is_contiguous(t)) {
        PyErr_SetString(PyExc_BufferError, "tensor is not contiguous");
        return -1;
    }
    if ((flags & PyBUF_STRIDES) != PyBUF_STRIDES &&
        !dt_tensor_is_contiguous(t)) {
        PyErr_SetString(PyExc_BufferError, "tensor is not C-contiguous");
        return -1;
    }
    /* shape then strides in one allocation, freed in releasebuffer */
    Py_ssize_t *dims = PyMem_Malloc(sizeof(Py_ssize_t) * 2 *
                                    (size_t)(t->ndim ? t->ndim : 1));
    if (!dims) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < t->ndim; i++) {
        dims[i] = (Py_ssize_t)t->shape[i];
        dims[t->ndim + i] = (Py_ssize_t)(t->strides[i] * isz);
    }
    view->buf = dt_tensor_data(t);
    view->obj = Py_NewRef(self);
    view->len = (Py_ssize_t)dt_tensor_numel(t) * isz;
    view->readonly = 0;
    view->itemsize = isz;
    view->format = (flags & PyBUF_FORMAT) ? (char *)fmt : NULL;
    view->ndim = t->ndim;
    view->shape = (flags & PyBUF_ND) ? dims : NULL;
    view->strides = (flags & PyBUF_STRIDES) ? dims + t->ndim : NULL;
    view->suboffsets = NULL;
    view->internal = dims;
    ((dt_py_tensor *)self)->exports++;
    return 0;
}

static void
tensor_releasebuffer(PyObject *self, Py_buffer *view)
{
    PyMem_Free(view->internal);
    ((dt_py_tensor *)self)->exports--;
}

/* ---------------------------------------------------------------------- */
/* operators                                                               */

#include "../ops/ops.h"

#define BINARY_SLOT(name, op)                                             \
    static PyObject *name(PyObject *a, PyObject *b)                       \
    {                                                                     \
        return dt_py_binary(a, b, op);                                    \
    }
#define INPLACE_SLOT(name, op)                                            \
    static PyObject *name(PyObject *a, PyObject *b)                       \
    {                                                                     \
        return dt_py_binary_inplace(a, b, op);                            \
    }

BINARY_SLOT(tensor_add, DT_OP_ADD)
BINARY_SLOT(tensor_sub, DT_OP_SUB)
BINARY_SLOT(tensor_mul, DT_OP_MUL)
BINARY_SLOT(tensor_div, DT_OP_DIV)
INPLACE_SLOT(tensor_iadd, DT_OP_ADD)
INPLACE_SLOT(tensor_isub, DT_OP_SUB)
INPLACE_SLOT(tensor_imul, DT_OP_MUL)
INPLACE_SLOT(tensor_idiv, DT_OP_DIV)

static PyObject *
tensor_pow(PyObject *a, PyObject *b, PyObject *mod)
{
    if (mod != Py_None) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    return dt_py_binary(a, b, DT_OP_POW);
}

static PyObject *
tensor_neg(PyObject *a)
{
    return dt_py_unary(a, DT_OP_NEG);
}

static PyObject *
tensor_abs(PyObject *a)
{
    return dt_py_unary(a, DT_OP_ABS);
}

static PyObject *
tensor_richcompare(PyObject *a, PyObject *b, int cmp)
{
    static const int ops[] = {
        [Py_LT] = DT_OP_LT, [Py_LE] = DT_OP_LE, [Py_EQ] = DT_OP_EQ,
        [Py_NE] = DT_OP_NE, [Py_GT] = DT_OP_GT, [Py_GE] = DT_OP_GE,
    };
    return dt_py_binary(a, b, ops[cmp]);
}

static Py_ssize_t
tensor_length(PyObject *self)
{
    dt_tensor *t = ((dt_py_tensor *)self)->t;
    if (t->ndim == 0) {
        PyErr_SetString(PyExc_TypeError, "len() of a 0-d tensor");
        return -1;
    }
    return (Py_ssize_t)t->shape[0];
}

static int
tensor_bool(PyObject *self)
{
    dt_tensor *t = ((dt_py_tensor *)self)->t;
    double v;
    if (dt_tensor_numel(t) != 1) {
        PyErr_Format(PyExc_RuntimeError,
                     "Boolean value of Tensor with %s values is ambiguous",
                     dt_tensor_numel(t) ? "more than one" : "no");
        return -1;
    }
    dt_status s = dt_tensor_item(&v, t);
    if (s != DT_OK) {
        dt_py_raise(s);
        return -1;
    }
    return v != 0;
}

static PyObject *
tensor_float(PyObject *self)
{
    double v;
    dt_status s = dt_tensor_item(&v, ((dt_py_tensor *)self)->t);
    return s == DT_OK ? PyFloat_FromDouble(v) : dt_py_raise(s);
}

static PyObject *
tensor_int(PyObject *self)
{
    dt_tensor *t = ((dt_py_tensor *)self)->t;
    double v;
    dt_status s = dt_tensor_item(&v, t);
    if (s != DT_OK) {
        return dt_py_raise(s);
    }
    if (t->dtype == DT_INT64) {
        return PyLong_FromLongLong(*(int64_t *)dt_tensor_data(t));
    }
    return PyLong_FromDouble(v);
}

static PyObject *
tensor_index(PyObject *self)
{
    dt_tensor *t = ((dt_py_tensor *)self)->t;
    if (!dt_dtype_is_integral(t->dtype) || dt_tensor_numel(t) != 1) {
        PyErr_SetString(PyExc_TypeError,
                        "only integer tensors of a single element can be "
                        "converted to an index");
        return NULL;
    }
    return tensor_int(self);
}

/* ---------------------------------------------------------------------- */
/* the type                                                                */

static PyObject *
tensor_set_class(PyObject *module, PyObject *cls)
{
    (void)module;
    if (!PyType_Check(cls) ||
        !PyType_IsSubtype((PyTypeObject *)cls, dt_py_st->tensor_base)) {
        PyErr_SetString(PyExc_TypeError, "expected a TensorBase subclass");
        return NULL;
    }
    Py_XSETREF(dt_py_st->tensor_class, (PyTypeObject *)Py_NewRef(cls));
    Py_RETURN_NONE;
}

static PyObject *
live_counts(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    int64_t tensors, storages, bytes;
    dt_live_counts(&tensors, &storages, &bytes);
    return Py_BuildValue("(LLL)", (long long)tensors, (long long)storages,
                         (long long)bytes);
}

/* Parameter(data): a new object of a Tensor subclass on the same tensor. */
static PyObject *
make_subclass(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *cls, *src;
    if (!PyArg_ParseTuple(args, "OO:_make_subclass", &cls, &src)) {
        return NULL;
    }
    dt_tensor *t = dt_py_unwrap(src);
    if (!t || !PyType_Check(cls) ||
        !PyType_IsSubtype((PyTypeObject *)cls, dt_py_st->tensor_base)) {
        PyErr_SetString(PyExc_TypeError, "_make_subclass(cls, tensor): cls "
                        "must subclass Tensor");
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    dt_py_tensor *self = (dt_py_tensor *)tp->tp_alloc(tp, 0);
    if (self) {
        dt_tensor_retain(t);
        self->t = t;
    }
    return (PyObject *)self;
}

/* t.data = other: t keeps its identity and autograd metadata but views
 * other's memory from now on (what Module.to() and optimizers rely on). */
static PyObject *
set_data(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *a, *b;
    if (!PyArg_ParseTuple(args, "OO:_set_data", &a, &b)) {
        return NULL;
    }
    dt_tensor *dst = dt_py_unwrap(a), *src = dt_py_unwrap(b);
    if (!dst || !src) {
        PyErr_SetString(PyExc_TypeError, "_set_data expects two Tensors");
        return NULL;
    }
    if (((dt_py_tensor *)a)->exports) {
        PyErr_SetString(PyExc_BufferError, "cannot replace the data of a "
                        "tensor whose buffer is exported");
        return NULL;
    }
    dt_storage *old = dst->storage;
    atomic_fetch_add(&src->storage->refcount, 1);
    dst->storage = src->storage;
    dst->dtype = src->dtype;
    dst->ndim = src->ndim;
    memcpy(dst->shape, src->shape, sizeof dst->shape);
    memcpy(dst->strides, src->strides, sizeof dst->strides);
    dst->offset = src->offset;
    dt_storage_release(old);
    Py_RETURN_NONE;
}

static PyMethodDef set_class_defs[] = {
    {"_make_subclass", make_subclass, METH_VARARGS, NULL},
    {"_set_data", set_data, METH_VARARGS, NULL},
    {"_set_tensor_class", tensor_set_class, METH_O,
     "Registers the Python class that ops return (dtrain.Tensor)."},
    {"_live_counts", live_counts, METH_NOARGS,
     "(tensors, storages, bytes) alive in the core: for leak tests."},
    {NULL} /* sentinel */
};

/* Concatenates the family tables into one, kept for the process. */
static PyMethodDef *
all_methods(void)
{
    PyMethodDef *tables[] = {dt_py_core_methods, dt_py_elementwise_methods,
                             dt_py_reduce_methods, dt_py_index_methods,
                             dt_py_autograd_methods};
    size_t n = 0, ntables = sizeof tables / sizeof tables[0];
    for (size_t i = 0; i < ntables; i++) {
        for (PyMethodDef *m = tables[i]; m->ml_name; m++) {
            n++;
        }
    }
    PyMethodDef *all = PyMem_Calloc(n + 1, sizeof *all);
    if (!all) {
        return NULL;
    }
    n = 0;
    for (size_t i = 0; i < ntables; i++) {
        for (PyMethodDef *m = tables[i]; m->ml_name; m++) {
            all[n++] = *m;
        }
    }
    return all;
}

/* The core attributes followed by autograd's, kept for the process. */
static PyGetSetDef *
all_getset(void)
{
    size_t a = 0, b = 0;
    while (core_getset[a].name) {
        a++;
    }
    while (dt_py_autograd_getset[b].name) {
        b++;
    }
    PyGetSetDef *all = PyMem_Calloc(a + b + 1, sizeof *all);
    if (all) {
        memcpy(all, core_getset, a * sizeof *all);
        memcpy(all + a, dt_py_autograd_getset, b * sizeof *all);
    }
    return all;
}

int
dt_py_tensor_type_init(PyObject *module)
{
    static PyMethodDef *methods;
    static PyGetSetDef *getset;
    if ((!methods && !(methods = all_methods())) ||
        (!getset && !(getset = all_getset()))) {
        PyErr_NoMemory();
        return -1;
    }
    PyType_Slot slots[] = {
        {Py_tp_dealloc, tensor_dealloc},
        {Py_tp_getset, getset},
        {Py_tp_methods, methods},
        {Py_tp_richcompare, tensor_richcompare},
        {Py_bf_getbuffer, tensor_getbuffer},
        {Py_bf_releasebuffer, tensor_releasebuffer},
        {Py_nb_add, tensor_add},
        {Py_nb_subtract, tensor_sub},
        {Py_nb_multiply, tensor_mul},
        {Py_nb_true_divide, tensor_div},
        {Py_nb_power, tensor_pow},
        {Py_nb_inplace_add, tensor_iadd},
        {Py_nb_inplace_subtract, tensor_isub},
        {Py_nb_inplace_multiply, tensor_imul},
        {Py_nb_inplace_true_divide, tensor_idiv},
        {Py_nb_negative, tensor_neg},
        {Py_nb_absolute, tensor_abs},
        {Py_nb_matrix_multiply, dt_py_matmul},
        {Py_nb_bool, tensor_bool},
        {Py_nb_float, tensor_float},
        {Py_nb_int, tensor_int},
        {Py_nb_index, tensor_index},
        {Py_mp_length, tensor_length},
        {Py_mp_subscript, dt_py_getitem},
        {Py_mp_ass_subscript, dt_py_setitem},
        {0, NULL} /* sentinel */
    };
    PyType_Spec spec = {
        .name = "dtrain._C.TensorBase",
        .basicsize = sizeof(dt_py_tensor),
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE |
                 Py_TPFLAGS_DISALLOW_INSTANTIATION,
        .slots = slots,
    };
    PyObject *type = PyType_FromModuleAndSpec(module, &spec, NULL);
    if (!type || PyModule_AddObjectRef(module, "TensorBase", type) < 0) {
        Py_XDECREF(type);
        return -1;
    }
    dt_py_st->tensor_base = (PyTypeObject *)type;
    return PyModule_AddFunctions(module, set_class_defs) < 0 ? -1 : 0;
}
