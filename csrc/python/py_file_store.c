/* py_file_store.c: _C._FileStore(path, timeout_s), the C half of
 * dtrain.distributed.FileStore (csrc/dist/file_store.c); the same methods
 * as _C._StoreClient. Blocking calls release the GIL and run the signal
 * handlers every 100 ms. */
#include "py_pg.h"

PyTypeObject *dt_py_file_store_type;

typedef struct py_fstore {
    PyObject_HEAD
    dt_file_store *fs;         /* owned; NULL once closed */
    int busy;                  /* calls in flight without the GIL */
} py_fstore;

dt_file_store *
dt_py_file_store_get(PyObject *o)
{
    if (!PyObject_TypeCheck(o, dt_py_file_store_type)) {
        return NULL;
    }
    return ((py_fstore *)o)->fs;
}

/* A call that needs no hook, without the GIL. */
#define FS_CALL(status, self, expr)                                       \
    do {                                                                  \
        (self)->busy++;                                                   \
        Py_BEGIN_ALLOW_THREADS                                            \
        (status) = (expr);                                                \
        Py_END_ALLOW_THREADS                                              \
        (self)->busy--;                                                   \
    } while (0)

static dt_file_store *
fs_get(py_fstore *self)
{
    if (!self->fs) {
        PyErr_SetString(dt_py_store_error, "FileStore: the store is closed");
    }
    return self->fs;
}

static PyObject *
fstore_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"path", "timeout", NULL};
    const char *path;
    PyObject *timeout;
    int64_t ms;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "sO:_FileStore", kwlist,
                                     &path, &timeout) ||
        dt_py_store_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
    py_fstore *self = (py_fstore *)type->tp_alloc(type, 0);
    if (!self) {
        return NULL;
    }
    dt_status s;
    Py_BEGIN_ALLOW_THREADS
    s = dt_file_store_open(&self->fs, path, ms);
    Py_END_ALLOW_THREADS
    if (s != DT_OK) {
        Py_DECREF(self);
        return dt_py_store_raise(s);
    }
    return (PyObject *)self;
}

static void
fstore_dealloc(py_fstore *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    dt_file_store_release(self->fs);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
fstore_close(py_fstore *self, PyObject *Py_UNUSED(ignored))
{
    if (self->busy) {
        PyErr_SetString(dt_py_store_error, "FileStore.close(): another "
                        "thread is still using the store");
        return NULL;
    }
    dt_file_store_release(self->fs);
    self->fs = NULL;
    Py_RETURN_NONE;
}

static PyObject *
fstore_set(py_fstore *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    Py_buffer val;
    if (!PyArg_ParseTuple(args, "s#s*:set", &key, &klen, &val)) {
        return NULL;
    }
    dt_file_store *fs = fs_get(self);
    dt_status s = DT_OK;
    if (fs) {
        FS_CALL(s, self, dt_file_store_set(fs, key, (size_t)klen,
                                                    val.buf,
                                                    (size_t)val.len));
    }
    PyBuffer_Release(&val);
    if (!fs || s != DT_OK) {
        return fs ? dt_py_store_raise(s) : NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
fstore_result(dt_status s, dt_py_store_wait *w)
{
    if (s != DT_OK) {
        Py_CLEAR(w->result);
        return dt_py_store_raise(s);
    }
    return w->result;
}

static PyObject *
fstore_get(py_fstore *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    if (!PyArg_ParseTuple(args, "s#:get", &key, &klen)) {
        return NULL;
    }
    dt_file_store *fs = fs_get(self);
    if (!fs) {
        return NULL;
    }
    void *value = NULL;
    size_t vlen = 0;
    dt_py_store_wait w = {0};
    dt_status s;
    DT_PY_STORE_CALL_W(s, self, w, dt_file_store_get(fs, hook, &value, &vlen,
                                                     key, (size_t)klen, -1));
    return fstore_result(s, &w);
}

static PyObject *
fstore_add(py_fstore *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    long long delta;
    if (!PyArg_ParseTuple(args, "s#L:add", &key, &klen, &delta)) {
        return NULL;
    }
    dt_file_store *fs = fs_get(self);
    if (!fs) {
        return NULL;
    }
    int64_t result = 0;
    dt_status s;
    FS_CALL(s, self, dt_file_store_add(fs, &result, key,
                                                (size_t)klen, delta));
    return s != DT_OK ? dt_py_store_raise(s) : PyLong_FromLongLong(result);
}

static PyObject *
fstore_compare_set(py_fstore *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    Py_buffer exp, des;
    if (!PyArg_ParseTuple(args, "s#s*s*:compare_set", &key, &klen, &exp,
                          &des)) {
        return NULL;
    }
    dt_file_store *fs = fs_get(self);
    void *value = NULL;
    size_t vlen = 0;
    dt_py_store_wait w = {0};
    dt_status s = DT_OK;
    if (fs) {
        DT_PY_STORE_CALL_W(s, self, w, dt_file_store_compare_set(
                                           fs, hook, &value, &vlen, key,
                                           (size_t)klen, exp.buf,
                                           (size_t)exp.len, des.buf,
                                           (size_t)des.len));
    }
    PyBuffer_Release(&exp);
    PyBuffer_Release(&des);
    return fs ? fstore_result(s, &w) : NULL;
}

/* Parses a list of str keys into arrays (borrowed from `fast`). */
static int
keys_parse(PyObject *seq, PyObject **fast, const void ***keys,
           size_t **klens, size_t *n, const char *op)
{
    *fast = NULL;
    *keys = NULL;
    *klens = NULL;
    if (PyUnicode_Check(seq) || PyBytes_Check(seq) ||
        !(*fast = PySequence_Fast(seq, ""))) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "FileStore.%s(): keys must be a list "
                     "of str, got %s", op, Py_TYPE(seq)->tp_name);
        return -1;
    }
    *n = (size_t)PySequence_Fast_GET_SIZE(*fast);
    *keys = PyMem_Malloc((*n ? *n : 1) * sizeof **keys);
    *klens = PyMem_Malloc((*n ? *n : 1) * sizeof **klens);
    if (!*keys || !*klens) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < *n; i++) {
        PyObject *k = PySequence_Fast_GET_ITEM(*fast, i);   /* borrowed */
        Py_ssize_t len;
        if (!PyUnicode_Check(k)) {
            PyErr_Format(PyExc_TypeError, "FileStore.%s(): keys must be "
                         "str, but key %zu is %s", op, i,
                         Py_TYPE(k)->tp_name);
            return -1;
        }
        if (!((*keys)[i] = PyUnicode_AsUTF8AndSize(k, &len))) {
            return -1;
        }
        (*klens)[i] = (size_t)len;
    }
    return 0;
}

static PyObject *
fstore_keys_call(py_fstore *self, PyObject *seq, int64_t ms, bool wait)
{
    PyObject *fast;
    const void **keys;
    size_t *klens, n = 0;
    bool all = false;
    dt_status s = DT_OK;
    dt_file_store *fs = NULL;
    int r = keys_parse(seq, &fast, &keys, &klens, &n,
                       wait ? "wait" : "check");
    if (r == 0 && (fs = fs_get(self))) {
        if (wait) {
            DT_PY_STORE_CALL(s, self, dt_file_store_wait(
                                          fs, hook,
                                          (const void *const *)keys, klens,
                                          n, ms));
        } else {
            FS_CALL(s, self, dt_file_store_check(
                                          fs, &all,
                                          (const void *const *)keys, klens,
                                          n));
        }
    }
    Py_XDECREF(fast);
    PyMem_Free(keys);
    PyMem_Free(klens);
    if (r < 0 || !fs) {
        return NULL;
    }
    if (s != DT_OK) {
        return dt_py_store_raise(s);
    }
    if (wait) {
        Py_RETURN_NONE;
    }
    return PyBool_FromLong(all);
}

static PyObject *
fstore_wait(py_fstore *self, PyObject *args)
{
    PyObject *seq, *timeout = Py_None;
    int64_t ms = -1;
    if (!PyArg_ParseTuple(args, "O|O:wait", &seq, &timeout) ||
        (timeout != Py_None && dt_py_store_timeout_ms(timeout, &ms) < 0)) {
        return NULL;
    }
    return fstore_keys_call(self, seq, ms, true);
}

static PyObject *
fstore_check(py_fstore *self, PyObject *seq)
{
    return fstore_keys_call(self, seq, 0, false);
}

static PyObject *
fstore_delete_key(py_fstore *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    if (!PyArg_ParseTuple(args, "s#:delete_key", &key, &klen)) {
        return NULL;
    }
    dt_file_store *fs = fs_get(self);
    if (!fs) {
        return NULL;
    }
    bool deleted = false;
    dt_status s;
    FS_CALL(s, self, dt_file_store_delete(fs, &deleted, key,
                                                   (size_t)klen));
    return s != DT_OK ? dt_py_store_raise(s) : PyBool_FromLong(deleted);
}

static PyObject *
fstore_num_keys(py_fstore *self, PyObject *Py_UNUSED(ignored))
{
    dt_file_store *fs = fs_get(self);
    if (!fs) {
        return NULL;
    }
    int64_t n = 0;
    dt_status s;
    FS_CALL(s, self, dt_file_store_num_keys(fs, &n));
    return s != DT_OK ? dt_py_store_raise(s) : PyLong_FromLongLong(n);
}

static PyObject *
fstore_set_timeout(py_fstore *self, PyObject *timeout)
{
    int64_t ms;
    dt_file_store *fs = fs_get(self);
    if (!fs || dt_py_store_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
    dt_file_store_set_timeout(fs, ms);
    Py_RETURN_NONE;
}

static PyObject *
fstore_timeout(py_fstore *self, void *Py_UNUSED(closure))
{
    dt_file_store *fs = fs_get(self);
    return fs ? PyFloat_FromDouble(dt_file_store_timeout(fs) / 1000.0)
              : NULL;
}

static PyObject *
fstore_path(py_fstore *self, void *Py_UNUSED(closure))
{
    dt_file_store *fs = fs_get(self);
    return fs ? PyUnicode_FromString(dt_file_store_path(fs)) : NULL;
}

static PyMethodDef fstore_methods[] = {
    {"set", (PyCFunction)fstore_set, METH_VARARGS,
     "set(key, value)\n--\n\nStores value (str or bytes) under key."},
    {"get", (PyCFunction)fstore_get, METH_VARARGS,
     "get(key)\n--\n\nThe value (bytes); blocks until the key exists."},
    {"add", (PyCFunction)fstore_add, METH_VARARGS,
     "add(key, amount)\n--\n\nAdds to an integer key; the new value."},
    {"compare_set", (PyCFunction)fstore_compare_set, METH_VARARGS,
     "compare_set(key, expected, desired)\n--\n\n"
     "Swaps if the value equals expected; the value afterwards."},
    {"wait", (PyCFunction)fstore_wait, METH_VARARGS,
     "wait(keys, timeout=None)\n--\n\nBlocks until every key exists."},
    {"check", (PyCFunction)fstore_check, METH_O,
     "check(keys)\n--\n\nWhether every key exists, without waiting."},
    {"delete_key", (PyCFunction)fstore_delete_key, METH_VARARGS,
     "delete_key(key)\n--\n\nDeletes key; whether it existed."},
    {"num_keys", (PyCFunction)fstore_num_keys, METH_NOARGS,
     "num_keys()\n--\n\nThe number of keys stored."},
    {"set_timeout", (PyCFunction)fstore_set_timeout, METH_O,
     "set_timeout(seconds)\n--\n\nThe default timeout of later calls."},
    {"close", (PyCFunction)fstore_close, METH_NOARGS,
     "close()\n--\n\nCloses the file (the last user deletes it)."},
    {NULL, NULL, 0, NULL} /* sentinel */
};

static PyGetSetDef fstore_getset[] = {
    {"timeout", (getter)fstore_timeout, NULL, "timeout in seconds", NULL},
    {"path", (getter)fstore_path, NULL, "the file", NULL},
    {NULL, NULL, NULL, NULL, NULL} /* sentinel */
};

static PyType_Slot fstore_slots[] = {
    {Py_tp_new, fstore_new},
    {Py_tp_dealloc, fstore_dealloc},
    {Py_tp_methods, fstore_methods},
    {Py_tp_getset, fstore_getset},
    {Py_tp_doc, "_FileStore(path, timeout)\n--\n\n"
                "A key-value store in a file shared by every process."},
    {0, NULL} /* sentinel */
};

PyType_Spec dt_py_file_store_spec = {
    .name = "dtrain._C._FileStore",
    .basicsize = sizeof(py_fstore),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = fstore_slots,
};
