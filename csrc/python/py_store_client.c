/* py_store_client.c: the Python methods shared by _C._StoreClient and
 * _C._FileStore (py_file_store.c), which differ only in their
 * dt_py_store_ops; and _StoreClient itself, a connection to a TCPStore
 * server (see py_store.c for the conventions). */
#include "py_store.h"

static void *
store_get(dt_py_store *self)
{
    if (!self->st) {
        PyErr_Format(dt_py_store_error, "%s: the store is closed",
                     self->ops->name);
    }
    return self->st;
}

/* ---------------------------------------------------------------------- */
/* the shared methods                                                      */

void
dt_py_store_dealloc(dt_py_store *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    if (self->ops) {
        self->ops->free(self->st);
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

PyObject *
dt_py_store_meth_close(dt_py_store *self, PyObject *Py_UNUSED(ignored))
{
    if (self->busy) {
        PyErr_Format(dt_py_store_error, "%s.close(): another thread is "
                     "still using the store", self->ops->name);
        return NULL;
    }
    self->ops->free(self->st);
    self->st = NULL;
    Py_RETURN_NONE;
}

PyObject *
dt_py_store_meth_set(dt_py_store *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    Py_buffer val;
    if (!PyArg_ParseTuple(args, "s#s*:set", &key, &klen, &val)) {
        return NULL;
    }
    void *st = store_get(self);
    dt_status s = DT_OK;
    if (st) {
        DT_PY_STORE_CALL(s, self,
                         self->ops->set(st, hook, key, (size_t)klen,
                                        val.buf, (size_t)val.len));
    }
    PyBuffer_Release(&val);
    if (!st || s != DT_OK) {
        return st ? dt_py_store_raise(s) : NULL;
    }
    Py_RETURN_NONE;
}

/* The bytes object the hook's allocator made (NULL on failure). */
static PyObject *
store_result(dt_status s, dt_py_store_wait *w)
{
    if (s != DT_OK) {
        Py_CLEAR(w->result);
        return dt_py_store_raise(s);
    }
    return w->result;
}

PyObject *
dt_py_store_meth_get(dt_py_store *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    if (!PyArg_ParseTuple(args, "s#:get", &key, &klen)) {
        return NULL;
    }
    void *st = store_get(self);
    if (!st) {
        return NULL;
    }
    void *value = NULL;
    size_t vlen = 0;
    dt_py_store_wait w = {0};
    dt_status s;
    DT_PY_STORE_CALL_W(s, self, w, self->ops->get(st, hook, &value, &vlen,
                                                  key, (size_t)klen));
    return store_result(s, &w);
}

PyObject *
dt_py_store_meth_add(dt_py_store *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    long long delta;
    if (!PyArg_ParseTuple(args, "s#L:add", &key, &klen, &delta)) {
        return NULL;
    }
    void *st = store_get(self);
    if (!st) {
        return NULL;
    }
    int64_t result = 0;
    dt_status s;
    DT_PY_STORE_CALL(s, self, self->ops->add(st, hook, &result, key,
                                             (size_t)klen, delta));
    return s != DT_OK ? dt_py_store_raise(s) : PyLong_FromLongLong(result);
}

PyObject *
dt_py_store_meth_compare_set(dt_py_store *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    Py_buffer exp, des;
    if (!PyArg_ParseTuple(args, "s#s*s*:compare_set", &key, &klen, &exp,
                          &des)) {
        return NULL;
    }
    void *st = store_get(self);
    void *value = NULL;
    size_t vlen = 0;
    dt_py_store_wait w = {0};
    dt_status s = DT_OK;
    if (st) {
        DT_PY_STORE_CALL_W(s, self, w, self->ops->compare_set(
                                           st, hook, &value, &vlen, key,
                                           (size_t)klen, exp.buf,
                                           (size_t)exp.len, des.buf,
                                           (size_t)des.len));
    }
    PyBuffer_Release(&exp);
    PyBuffer_Release(&des);
    return st ? store_result(s, &w) : NULL;
}

/* A list of str (or, where the store takes them, bytes) keys, borrowed
 * from the items of `fast`. */
typedef struct key_list {
    PyObject *fast;
    const void **keys;
    size_t *klens;
    size_t n;
} key_list;

static void
keys_free(key_list *kl)
{
    Py_XDECREF(kl->fast);
    PyMem_Free(kl->keys);
    PyMem_Free(kl->klens);
}

static int
keys_parse(key_list *kl, PyObject *seq, const dt_py_store_ops *ops,
           const char *op)
{
    *kl = (key_list){0};
    if (PyUnicode_Check(seq) || PyBytes_Check(seq) ||
        !(kl->fast = PySequence_Fast(seq, ""))) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s.%s(): keys must be a list of "
                     "str, got %s", ops->name, op, Py_TYPE(seq)->tp_name);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(kl->fast);
    kl->n = (size_t)n;
    kl->keys = PyMem_Malloc((n ? n : 1) * sizeof *kl->keys);
    kl->klens = PyMem_Malloc((n ? n : 1) * sizeof *kl->klens);
    if (!kl->keys || !kl->klens) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = PySequence_Fast_GET_ITEM(kl->fast, i);  /* borrowed */
        Py_ssize_t len;
        if (PyUnicode_Check(k)) {
            if (!(kl->keys[i] = PyUnicode_AsUTF8AndSize(k, &len))) {
                goto fail;
            }
        } else if (ops->bytes_keys && PyBytes_Check(k)) {
            kl->keys[i] = PyBytes_AS_STRING(k);
            len = PyBytes_GET_SIZE(k);
        } else {
            PyErr_Format(PyExc_TypeError, "%s.%s(): keys must be str, but "
                         "key %zd is %s", ops->name, op, i,
                         Py_TYPE(k)->tp_name);
            goto fail;
        }
        kl->klens[i] = (size_t)len;
    }
    return 0;
fail:
    keys_free(kl);
    return -1;
}

PyObject *
dt_py_store_meth_wait(dt_py_store *self, PyObject *args)
{
    PyObject *seq, *timeout = Py_None;
    int64_t ms = -1;
    key_list kl;
    if (!PyArg_ParseTuple(args, "O|O:wait", &seq, &timeout) ||
        (timeout != Py_None && dt_py_store_timeout_ms(timeout, &ms) < 0) ||
        keys_parse(&kl, seq, self->ops, "wait") < 0) {
        return NULL;
    }
    void *st = store_get(self);
    dt_status s = DT_OK;
    if (st) {
        DT_PY_STORE_CALL(s, self, self->ops->wait(st, hook, kl.keys,
                                                  kl.klens, kl.n, ms));
    }
    keys_free(&kl);
    if (!st || s != DT_OK) {
        return st ? dt_py_store_raise(s) : NULL;
    }
    Py_RETURN_NONE;
}

PyObject *
dt_py_store_meth_check(dt_py_store *self, PyObject *seq)
{
    key_list kl;
    if (keys_parse(&kl, seq, self->ops, "check") < 0) {
        return NULL;
    }
    void *st = store_get(self);
    dt_status s = DT_OK;
    int all = 0;
    if (st) {
        DT_PY_STORE_CALL(s, self, self->ops->check(st, hook, &all, kl.keys,
                                                   kl.klens, kl.n));
    }
    keys_free(&kl);
    if (!st || s != DT_OK) {
        return st ? dt_py_store_raise(s) : NULL;
    }
    return PyBool_FromLong(all);
}

PyObject *
dt_py_store_meth_delete_key(dt_py_store *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    if (!PyArg_ParseTuple(args, "s#:delete_key", &key, &klen)) {
        return NULL;
    }
    void *st = store_get(self);
    if (!st) {
        return NULL;
    }
    int deleted = 0;
    dt_status s;
    DT_PY_STORE_CALL(s, self, self->ops->delete_key(st, hook, &deleted, key,
                                                    (size_t)klen));
    return s != DT_OK ? dt_py_store_raise(s) : PyBool_FromLong(deleted);
}

PyObject *
dt_py_store_meth_num_keys(dt_py_store *self, PyObject *Py_UNUSED(ignored))
{
    void *st = store_get(self);
    if (!st) {
        return NULL;
    }
    int64_t n = 0;
    dt_status s;
    DT_PY_STORE_CALL(s, self, self->ops->num_keys(st, hook, &n));
    return s != DT_OK ? dt_py_store_raise(s) : PyLong_FromLongLong(n);
}

PyObject *
dt_py_store_meth_set_timeout(dt_py_store *self, PyObject *timeout)
{
    int64_t ms;
    void *st = store_get(self);
    if (!st || dt_py_store_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
    self->ops->set_timeout(st, ms);
    Py_RETURN_NONE;
}

PyObject *
dt_py_store_meth_timeout(dt_py_store *self, void *Py_UNUSED(closure))
{
    void *st = store_get(self);
    return st ? PyFloat_FromDouble(self->ops->timeout(st) / 1000.0) : NULL;
}

/* ---------------------------------------------------------------------- */
/* _StoreClient                                                            */

/* The client's calls, taking the store as `void *` for dt_py_store_ops. */
static void
client_free(void *c)
{
    dt_store_client_free(c);
}

static void
client_set_timeout(void *c, int64_t timeout_ms)
{
    dt_store_client_set_timeout(c, timeout_ms);
}

static int64_t
client_timeout(void *c)
{
    return dt_store_client_timeout(c);
}

static dt_status
client_set(void *c, const dt_store_hook *hook, const void *key, size_t klen,
           const void *value, size_t vlen)
{
    return dt_store_client_set(c, hook, key, klen, value, vlen);
}

static dt_status
client_get(void *c, const dt_store_hook *hook, void **value, size_t *vlen,
           const void *key, size_t klen)
{
    return dt_store_client_get(c, hook, value, vlen, key, klen);
}

static dt_status
client_add(void *c, const dt_store_hook *hook, int64_t *result,
           const void *key, size_t klen, int64_t delta)
{
    return dt_store_client_add(c, hook, result, key, klen, delta);
}

static dt_status
client_compare_set(void *c, const dt_store_hook *hook, void **value,
                   size_t *vlen, const void *key, size_t klen,
                   const void *expected, size_t elen, const void *desired,
                   size_t dlen)
{
    return dt_store_client_compare_set(c, hook, value, vlen, key, klen,
                                       expected, elen, desired, dlen);
}

static dt_status
client_wait(void *c, const dt_store_hook *hook, const void *const *keys,
            const size_t *klens, size_t nkeys, int64_t timeout_ms)
{
    return dt_store_client_wait(c, hook, keys, klens, nkeys, timeout_ms);
}

static dt_status
client_check(void *c, const dt_store_hook *hook, int *all_exist,
             const void *const *keys, const size_t *klens, size_t nkeys)
{
    return dt_store_client_check(c, hook, all_exist, keys, klens, nkeys);
}

static dt_status
client_delete(void *c, const dt_store_hook *hook, int *deleted,
              const void *key, size_t klen)
{
    return dt_store_client_delete(c, hook, deleted, key, klen);
}

static dt_status
client_num_keys(void *c, const dt_store_hook *hook, int64_t *n)
{
    return dt_store_client_num_keys(c, hook, n);
}

static const dt_py_store_ops client_ops = {
    .name = "TCPStore",
    .bytes_keys = true,
    .free = client_free,
    .set_timeout = client_set_timeout,
    .timeout = client_timeout,
    .set = client_set,
    .get = client_get,
    .add = client_add,
    .compare_set = client_compare_set,
    .wait = client_wait,
    .check = client_check,
    .delete_key = client_delete,
    .num_keys = client_num_keys,
};

static PyObject *
client_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"host", "port", "timeout", NULL};
    const char *host;
    int port;
    PyObject *timeout;
    int64_t ms;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "siO:_StoreClient",
                                     kwlist, &host, &port, &timeout) ||
        dt_py_store_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
    dt_py_store *self = (dt_py_store *)type->tp_alloc(type, 0);
    if (!self) {
        return NULL;
    }
    self->ops = &client_ops;
    dt_store_client *c = NULL;
    dt_status s;
    DT_PY_STORE_CALL(s, self, dt_store_client_connect(&c, host, port, ms,
                                                      hook));
    self->st = c;
    return dt_py_store_opened((PyObject *)self, s);
}

static PyMethodDef client_methods[] = {
    DT_PY_STORE_METHODS,
    {"close", (PyCFunction)dt_py_store_meth_close, METH_NOARGS,
     "close()\n--\n\nCloses the connection."},
    {NULL, NULL, 0, NULL} /* sentinel */
};

static PyGetSetDef client_getset[] = {
    {"timeout", (getter)dt_py_store_meth_timeout, NULL, "timeout in seconds",
     NULL},
    {NULL, NULL, NULL, NULL, NULL} /* sentinel */
};

static PyType_Slot client_slots[] = {
    {Py_tp_new, client_new},
    {Py_tp_dealloc, dt_py_store_dealloc},
    {Py_tp_methods, client_methods},
    {Py_tp_getset, client_getset},
    {Py_tp_doc, "_StoreClient(host, port, timeout)\n--\n\n"
                "A connection to a TCPStore server."},
    {0, NULL} /* sentinel */
};

PyType_Spec dt_py_store_client_spec = {
    .name = "dtrain._C._StoreClient",
    .basicsize = sizeof(dt_py_store),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = client_slots,
};
