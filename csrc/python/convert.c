/* convert.c: Python data -> tensors (dtrain.tensor) and the NumPy bridge
 * (from_numpy / Tensor.numpy share memory both ways). */
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include "glue.h"

#include <numpy/arrayobject.h>

int
dt_py_numpy_init(void)
{
    return _import_array() < 0 ? -1 : 0;
}

static int
npy_type_of(dt_dtype d)
{
    switch (d) {
    case DT_BOOL: return NPY_BOOL;
    case DT_UINT8: return NPY_UINT8;
    case DT_INT32: return NPY_INT32;
    case DT_INT64: return NPY_INT64;
    case DT_FLOAT16: return NPY_FLOAT16;
    case DT_FLOAT32: return NPY_FLOAT32;
    case DT_FLOAT64: return NPY_FLOAT64;
    default: return -1;
    }
}

static int
dtype_of_npy(int type, dt_dtype *out)
{
    for (int d = 0; d < DT_DTYPE_COUNT; d++) {
        int nt = npy_type_of((dt_dtype)d);
        if (nt >= 0 && PyArray_EquivTypenums(nt, type)) {
            *out = (dt_dtype)d;
            return 0;
        }
    }
    return -1;
}

PyObject *
dt_py_to_numpy(PyObject *self)
{
    dt_tensor *t = ((dt_py_tensor *)self)->t;
    npy_intp dims[DT_MAX_DIMS], strides[DT_MAX_DIMS];
    int type = npy_type_of(t->dtype);
    if (type < 0 || dt_tensor_device(t).type != DT_CPU) {
        PyErr_Format(PyExc_TypeError,
                     "numpy(): a %s tensor on %s has no NumPy equivalent",
                     dt_dtype_name(t->dtype),
                     dt_tensor_device(t).type == DT_CPU ? "cpu" : "cuda");
        return NULL;
    }
    for (int i = 0; i < t->ndim; i++) {
        dims[i] = (npy_intp)t->shape[i];
        strides[i] = (npy_intp)(t->strides[i] *
                                (int64_t)dt_dtype_size(t->dtype));
    }
    PyObject *arr = PyArray_New(&PyArray_Type, t->ndim, dims, type, strides,
                                dt_tensor_data(t), 0, NPY_ARRAY_WRITEABLE,
                                NULL);
    if (!arr) {
        return NULL;
    }
    /* the array keeps the tensor (and so its storage) alive */
    if (PyArray_SetBaseObject((PyArrayObject *)arr, Py_NewRef(self)) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

/* The storage release callback: may run on a thread without the GIL. */
static void
release_array(void *ctx)
{
    PyGILState_STATE g = PyGILState_Ensure();
    Py_DECREF((PyObject *)ctx);
    PyGILState_Release(g);
}

static PyObject *
from_numpy(PyObject *module, PyObject *obj)
{
    (void)module;
    int64_t shape[DT_MAX_DIMS], strides[DT_MAX_DIMS];
    dt_dtype dtype;
    dt_tensor *t = NULL;
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "from_numpy(): expected np.ndarray "
                     "(got %s)", Py_TYPE(obj)->tp_name);
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (dtype_of_npy(PyArray_TYPE(arr), &dtype) < 0 ||
        !PyArray_ISNBO(PyArray_DESCR(arr)->byteorder)) {
        PyErr_Format(PyExc_TypeError,
                     "from_numpy(): can't convert np.ndarray of type %R. The "
                     "only supported types are: float64, float32, float16, "
                     "int64, int32, uint8, and bool (native byte order).",
                     (PyObject *)PyArray_DESCR(arr));
        return NULL;
    }
    int ndim = PyArray_NDIM(arr);
    if (ndim > DT_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "from_numpy(): at most %d dimensions, "
                     "got %d", DT_MAX_DIMS, ndim);
        return NULL;
    }
    int64_t isz = (int64_t)dt_dtype_size(dtype), extent = isz;
    for (int i = 0; i < ndim; i++) {
        npy_intp st = PyArray_STRIDES(arr)[i];
        shape[i] = PyArray_DIMS(arr)[i];
        if (st < 0 || st % isz != 0) {
            PyErr_SetString(PyExc_ValueError,
                            "from_numpy(): at least one stride in the given "
                            "numpy array is negative or not a multiple of the "
                            "element size; copy it first (np.ascontiguousarray)");
            return NULL;
        }
        strides[i] = st / isz;
        extent += shape[i] ? (shape[i] - 1) * st : 0;
    }
    if (!PyArray_ISWRITEABLE(arr) || !PyArray_ISALIGNED(arr)) {
        PyErr_SetString(PyExc_ValueError,
                        "from_numpy(): the array is read-only or misaligned; "
                        "tensors share memory and need a writeable, aligned "
                        "array (use dtrain.tensor(a) to copy)");
        return NULL;
    }
    dt_status s = dt_tensor_from_blob(&t, PyArray_DATA(arr), (size_t)extent,
                                      shape, strides, ndim, dtype,
                                      DT_DEVICE_CPU, release_array, obj);
    if (s != DT_OK) {
        return dt_py_raise(s);
    }
    Py_INCREF(obj);   /* owned by the storage from here */
    return dt_py_wrap(t);
}

/* ---------------------------------------------------------------------- */
/* nested sequences -> tensor                                              */

enum { KIND_NONE = -1, KIND_BOOL, KIND_INT, KIND_FLOAT };

/* Finds the shape from the first element at each level, and the widest
 * scalar kind over every leaf. */
static int
infer_shape(PyObject *o, int64_t *shape, int *ndim, int d, int *kind)
{
    dt_tensor *t = dt_py_unwrap(o);
    if (t && t->ndim == 0) {
        int k = t->dtype == DT_BOOL ? KIND_BOOL
                : dt_dtype_is_floating(t->dtype) ? KIND_FLOAT : KIND_INT;
        *kind = k > *kind ? k : *kind;
        return 0;
    }
    if (PyBool_Check(o)) {
        *kind = *kind > KIND_BOOL ? *kind : KIND_BOOL;
        return 0;
    }
    if (PyLong_Check(o) || PyIndex_Check(o)) {
        *kind = *kind > KIND_INT ? *kind : KIND_INT;
        return 0;
    }
    if (PyFloat_Check(o) || (PyNumber_Check(o) && !PySequence_Check(o) &&
                             !PyComplex_Check(o))) {
        *kind = KIND_FLOAT;
        return 0;
    }
    if (!PySequence_Check(o) || PyUnicode_Check(o) || PyBytes_Check(o)) {
        PyErr_Format(PyExc_TypeError,
                     "tensor(): invalid data type '%s'", Py_TYPE(o)->tp_name);
        return -1;
    }
    if (d >= DT_MAX_DIMS) {
        PyErr_Format(PyExc_ValueError, "tensor(): data nests deeper than %d "
                     "dimensions", DT_MAX_DIMS);
        return -1;
    }
    Py_ssize_t n = PySequence_Size(o);
    if (n < 0) {
        return -1;
    }
    if (d >= *ndim) {
        shape[d] = n;
        *ndim = d + 1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_GetItem(o, i);
        int r = item ? infer_shape(item, shape, ndim, d + 1, kind) : -1;
        Py_XDECREF(item);
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

/* Writes the leaves of `o` at p (contiguous, dims from d on). */
static int
fill(const dt_tensor *t, PyObject *o, char *p, int d)
{
    if (d == t->ndim) {
        if (PySequence_Check(o) && !dt_py_unwrap(o)) {
            PyErr_Format(PyExc_ValueError, "tensor(): too many dimensions "
                         "in data: expected scalars at depth %d", d);
            return -1;
        }
        if (t->dtype == DT_INT64 && PyIndex_Check(o)) {
            PyObject *idx = PyNumber_Index(o);
            long long v = idx ? PyLong_AsLongLong(idx) : -1;
            Py_XDECREF(idx);
            if (v == -1 && PyErr_Occurred()) {
                return -1;
            }
            *(int64_t *)p = v;
            return 0;
        }
        double v = PyFloat_AsDouble(o);
        if (v == -1.0 && PyErr_Occurred()) {
            return -1;
        }
        dt_store_double(p, t->dtype, v);
        return 0;
    }
    Py_ssize_t n = PySequence_Check(o) ? PySequence_Size(o) : -1;
    if (n != t->shape[d]) {
        if (!PyErr_Occurred()) {
            PyErr_Format(PyExc_ValueError,
                         "tensor(): expected sequence of length %lld at dim "
                         "%d (got %zd)", (long long)t->shape[d], d, n);
        }
        return -1;
    }
    int64_t step = t->strides[d] * (int64_t)dt_dtype_size(t->dtype);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_GetItem(o, i);
        int r = item ? fill(t, item, p + i * step, d + 1) : -1;
        Py_XDECREF(item);
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

static PyObject *
tensor_from_data(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *data;
    int64_t shape[DT_MAX_DIMS];
    int ndim = 0, kind = KIND_NONE, have_dtype;
    dt_dtype dtype = DT_DTYPE_COUNT;
    dt_tensor *t = NULL;
    if (!PyArg_ParseTuple(args, "OO&:tensor", &data, dt_py_dtype_converter,
                          &dtype)) {
        return NULL;
    }
    have_dtype = dtype != DT_DTYPE_COUNT;
    if (infer_shape(data, shape, &ndim, 0, &kind) < 0) {
        return NULL;
    }
    if (!have_dtype) {
        /* no leaves at all (tensor([])) gives the default float */
        dtype = kind == KIND_INT ? DT_INT64
                : kind == KIND_BOOL ? DT_BOOL : DT_DEFAULT_FLOAT;
    }
    dt_status s = dt_tensor_empty(&t, shape, ndim, dtype, DT_DEVICE_CPU);
    if (s != DT_OK) {
        return dt_py_raise(s);
    }
    if (fill(t, data, dt_tensor_data(t), 0) < 0) {
        dt_tensor_release(t);
        return NULL;
    }
    return dt_py_wrap(t);
}

PyMethodDef dt_py_core_functions[] = {
    {"from_numpy", from_numpy, METH_O,
     "from_numpy(ndarray) -> Tensor sharing the array's memory"},
    {"_tensor_from_data", tensor_from_data, METH_VARARGS,
     "_tensor_from_data(nested_sequence, dtype_or_None)"},
    {NULL} /* sentinel */
};
