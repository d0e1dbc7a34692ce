/* py_file_store.c: _C._FileStore(path, timeout_s), the C half of
 * dtrain.distributed.FileStore (csrc/dist/file_store.c); the same methods
 * as _C._StoreClient (py_store_client.c implements them for both, through
 * the dt_py_store_ops below). Blocking calls release the GIL and run the
 * signal handlers every 100 ms. */
#include "py_pg.h"

PyTypeObject *dt_py_file_store_type;

dt_file_store *
dt_py_file_store_get(PyObject *o)
{
    if (!PyObject_TypeCheck(o, dt_py_file_store_type)) {
        return NULL;
    }
    return ((dt_py_store *)o)->st;
}

/* ---------------------------------------------------------------------- */
/* the file store's calls, in dt_py_store_ops's terms                      */

/* The calls without a hook ignore it: only get/wait/compare_set block. */

static void
fs_free(void *fs)
{
    dt_file_store_release(fs);
}

static void
fs_set_timeout(void *fs, int64_t timeout_ms)
{
    dt_file_store_set_timeout(fs, timeout_ms);
}

static int64_t
fs_timeout(void *fs)
{
    return dt_file_store_timeout(fs);
}

static dt_status
fs_set(void *fs, const dt_store_hook *Py_UNUSED(hook), const void *key,
       size_t klen, const void *value, size_t vlen)
{
    return dt_file_store_set(fs, key, klen, value, vlen);
}

static dt_status
fs_get(void *fs, const dt_store_hook *hook, void **value, size_t *vlen,
       const void *key, size_t klen)
{
    return dt_file_store_get(fs, hook, value, vlen, key, klen, -1);
}

static dt_status
fs_add(void *fs, const dt_store_hook *Py_UNUSED(hook), int64_t *result,
       const void *key, size_t klen, int64_t delta)
{
    return dt_file_store_add(fs, result, key, klen, delta);
}

static dt_status
fs_compare_set(void *fs, const dt_store_hook *hook, void **value,
               size_t *vlen, const void *key, size_t klen,
               const void *expected, size_t elen, const void *desired,
               size_t dlen)
{
    return dt_file_store_compare_set(fs, hook, value, vlen, key, klen,
                                     expected, elen, desired, dlen);
}

static dt_status
fs_wait(void *fs, const dt_store_hook *hook, const void *const *keys,
        const size_t *klens, size_t nkeys, int64_t timeout_ms)
{
    return dt_file_store_wait(fs, hook, keys, klens, nkeys, timeout_ms);
}

static dt_status
fs_check(void *fs, const dt_store_hook *Py_UNUSED(hook), int *all_exist,
         const void *const *keys, const size_t *klens, size_t nkeys)
{
    bool all = false;
    dt_status s = dt_file_store_check(fs, &all, keys, klens, nkeys);
    *all_exist = all;
    return s;
}

static dt_status
fs_delete(void *fs, const dt_store_hook *Py_UNUSED(hook), int *deleted,
          const void *key, size_t klen)
{
    bool d = false;
    dt_status s = dt_file_store_delete(fs, &d, key, klen);
    *deleted = d;
    return s;
}

static dt_status
fs_num_keys(void *fs, const dt_store_hook *Py_UNUSED(hook), int64_t *n)
{
    return dt_file_store_num_keys(fs, n);
}

/* Only str keys, unlike TCPStore. */
static const dt_py_store_ops fs_ops = {
    .name = "FileStore",
    .bytes_keys = false,
    .free = fs_free,
    .set_timeout = fs_set_timeout,
    .timeout = fs_timeout,
    .set = fs_set,
    .get = fs_get,
    .add = fs_add,
    .compare_set = fs_compare_set,
    .wait = fs_wait,
    .check = fs_check,
    .delete_key = fs_delete,
    .num_keys = fs_num_keys,
};

/* ---------------------------------------------------------------------- */
/* _FileStore                                                              */

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
    dt_py_store *self = (dt_py_store *)type->tp_alloc(type, 0);
    if (!self) {
        return NULL;
    }
    self->ops = &fs_ops;
    dt_file_store *fs = NULL;
    dt_status s;
    Py_BEGIN_ALLOW_THREADS
    s = dt_file_store_open(&fs, path, ms);
    Py_END_ALLOW_THREADS
    self->st = fs;
    return dt_py_store_opened((PyObject *)self, s);
}

static PyObject *
fstore_path(dt_py_store *self, void *Py_UNUSED(closure))
{
    if (!self->st) {
        PyErr_SetString(dt_py_store_error, "FileStore: the store is closed");
        return NULL;
    }
    return PyUnicode_FromString(dt_file_store_path(self->st));
}

static PyMethodDef fstore_methods[] = {
    DT_PY_STORE_METHODS,
    {"close", (PyCFunction)dt_py_store_meth_close, METH_NOARGS,
     "close()\n--\n\nCloses the file (the last user deletes it)."},
    {NULL, NULL, 0, NULL} /* sentinel */
};

static PyGetSetDef fstore_getset[] = {
    {"timeout", (getter)dt_py_store_meth_timeout, NULL, "timeout in seconds",
     NULL},
    {"path", (getter)fstore_path, NULL, "the file", NULL},
    {NULL, NULL, NULL, NULL, NULL} /* sentinel */
};

static PyType_Slot fstore_slots[] = {
    {Py_tp_new, fstore_new},
    {Py_tp_dealloc, dt_py_store_dealloc},
    {Py_tp_methods, fstore_methods},
    {Py_tp_getset, fstore_getset},
    {Py_tp_doc, "_FileStore(path, timeout)\n--\n\n"
                "A key-value store in a file shared by every process."},
    {0, NULL} /* sentinel */
};

PyType_Spec dt_py_file_store_spec = {
    .name = "dtrain._C._FileStore",
    .basicsize = sizeof(dt_py_store),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = fstore_slots,
};
