/* py_store_client.c: _C._StoreClient, a connection to a TCPStore server
 * (see py_store.c for the conventions). */
#include "py_store.h"

typedef struct py_client {
    PyObject_HEAD
    dt_store_client *c;        /* owned; NULL once closed */
    int busy;                  /* calls in flight without the GIL */
} py_client;

static dt_store_client *
client_get(py_client *self)
{
    if (!self->c) {
        PyErr_SetString(dt_py_store_error, "TCPStore: the store is closed");
    }
    return self->c;
}

/* ---------------------------------------------------------------------- */
/* _StoreClient                                                            */

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
    py_client *self = (py_client *)type->tp_alloc(type, 0);
    if (!self) {
        return NULL;
    }
    dt_status s;
    DT_PY_STORE_CALL(s, self, dt_store_client_connect(&self->c, host, port, ms,
                                                      hook));
    if (s != DT_OK) {
        Py_DECREF(self);
        return dt_py_store_raise(s);
    }
    return (PyObject *)self;
}

static void
client_dealloc(py_client *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    dt_store_client_free(self->c);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
client_close(py_client *self, PyObject *Py_UNUSED(ignored))
{
    if (self->busy) {
        PyErr_SetString(dt_py_store_error, "TCPStore.close(): another "
                        "thread is still using the store");
        return NULL;
    }
    dt_store_client_free(self->c);
    self->c = NULL;
    Py_RETURN_NONE;
}

static PyObject *
client_set(py_client *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    Py_buffer val;
    if (!PyArg_ParseTuple(args, "s#s*:set", &key, &klen, &val)) {
        return NULL;
    }
    dt_store_client *c = client_get(self);
    dt_status s = DT_OK;
    if (c) {
        DT_PY_STORE_CALL(s, self,
                         dt_store_client_set(c, hook, key, (size_t)klen,
                                             val.buf, (size_t)val.len));
    }
    PyBuffer_Release(&val);
    if (!c || s != DT_OK) {
        return c ? dt_py_store_raise(s) : NULL;
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

static PyObject *
client_get_(py_client *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    if (!PyArg_ParseTuple(args, "s#:get", &key, &klen)) {
        return NULL;
    }
    dt_store_client *c = client_get(self);
    if (!c) {
        return NULL;
    }
    void *value = NULL;
    size_t vlen = 0;
    dt_py_store_wait w = {0};
    dt_status s;
    DT_PY_STORE_CALL_W(s, self, w, dt_store_client_get(c, hook, &value,
                                                       &vlen, key,
                                                       (size_t)klen));
    return store_result(s, &w);
}

static PyObject *
client_add(py_client *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    long long delta;
    if (!PyArg_ParseTuple(args, "s#L:add", &key, &klen, &delta)) {
        return NULL;
    }
    dt_store_client *c = client_get(self);
    if (!c) {
        return NULL;
    }
    int64_t result = 0;
    dt_status s;
    DT_PY_STORE_CALL(s, self, dt_store_client_add(c, hook, &result, key,
                                                  (size_t)klen, delta));
    return s != DT_OK ? dt_py_store_raise(s) : PyLong_FromLongLong(result);
}

static PyObject *
client_compare_set(py_client *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    Py_buffer exp, des;
    if (!PyArg_ParseTuple(args, "s#s*s*:compare_set", &key, &klen, &exp,
                          &des)) {
        return NULL;
    }
    dt_store_client *c = client_get(self);
    void *value = NULL;
    size_t vlen = 0;
    dt_py_store_wait w = {0};
    dt_status s = DT_OK;
    if (c) {
        DT_PY_STORE_CALL_W(s, self, w, dt_store_client_compare_set(
                                           c, hook, &value, &vlen, key,
                                           (size_t)klen, exp.buf,
                                           (size_t)exp.len, des.buf,
                                           (size_t)des.len));
    }
    PyBuffer_Release(&exp);
    PyBuffer_Release(&des);
    return c ? store_result(s, &w) : NULL;
}

/* A list of str or bytes keys, borrowed from the items of `fast`. */
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
keys_parse(key_list *kl, PyObject *seq, const char *op)
{
    *kl = (key_list){0};
    if (PyUnicode_Check(seq) || PyBytes_Check(seq) ||
        !(kl->fast = PySequence_Fast(seq, ""))) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "TCPStore.%s(): keys must be a list "
                     "of str, got %s", op, Py_TYPE(seq)->tp_name);
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
        } else if (PyBytes_Check(k)) {
            kl->keys[i] = PyBytes_AS_STRING(k);
            len = PyBytes_GET_SIZE(k);
        } else {
            PyErr_Format(PyExc_TypeError, "TCPStore.%s(): keys must be "
                         "str, but key %zd is %s", op, i,
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

static PyObject *
client_wait(py_client *self, PyObject *args)
{
    PyObject *seq, *timeout = Py_None;
    int64_t ms = -1;
    key_list kl;
    if (!PyArg_ParseTuple(args, "O|O:wait", &seq, &timeout) ||
        (timeout != Py_None && dt_py_store_timeout_ms(timeout, &ms) < 0) ||
        keys_parse(&kl, seq, "wait") < 0) {
        return NULL;
    }
    dt_store_client *c = client_get(self);
    dt_status s = DT_OK;
    if (c) {
        DT_PY_STORE_CALL(s, self, dt_store_client_wait(c, hook, kl.keys,
                                                       kl.klens, kl.n, ms));
    }
    keys_free(&kl);
    if (!c || s != DT_OK) {
        return c ? dt_py_store_raise(s) : NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *
client_check(py_client *self, PyObject *seq)
{
    key_list kl;
    if (keys_parse(&kl, seq, "check") < 0) {
        return NULL;
    }
    dt_store_client *c = client_get(self);
    dt_status s = DT_OK;
    int all = 0;
    if (c) {
        DT_PY_STORE_CALL(s, self, dt_store_client_check(c, hook, &all, kl.keys,
                                                        kl.klens, kl.n));
    }
    keys_free(&kl);
    if (!c || s != DT_OK) {
        return c ? dt_py_store_raise(s) : NULL;
    }
    return PyBool_FromLong(all);
}

static PyObject *
client_delete_key(py_client *self, PyObject *args)
{
    const char *key;
    Py_ssize_t klen;
    if (!PyArg_ParseTuple(args, "s#:delete_key", &key, &klen)) {
        return NULL;
    }
    dt_store_client *c = client_get(self);
    if (!c) {
        return NULL;
    }
    int deleted = 0;
    dt_status s;
    DT_PY_STORE_CALL(s, self, dt_store_client_delete(c, hook, &deleted, key,
                                                     (size_t)klen));
    return s != DT_OK ? dt_py_store_raise(s) : PyBool_FromLong(deleted);
}

static PyObject *
client_num_keys(py_client *self, PyObject *Py_UNUSED(ignored))
{
    dt_store_client *c = client_get(self);
    if (!c) {
        return NULL;
    }
    int64_t n = 0;
    dt_status s;
    DT_PY_STORE_CALL(s, self, dt_store_client_num_keys(c, hook, &n));
    return s != DT_OK ? dt_py_store_raise(s) : PyLong_FromLongLong(n);
}

static PyObject *
client_set_timeout(py_client *self, PyObject *timeout)
{
    int64_t ms;
    dt_store_client *c = client_get(self);
    if (!c || dt_py_store_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
    dt_store_client_set_timeout(c, ms);
    Py_RETURN_NONE;
}

static PyObject *
client_timeout(py_client *self, void *Py_UNUSED(closure))
{
    dt_store_client *c = client_get(self);
    return c ? PyFloat_FromDouble(dt_store_client_timeout(c) / 1000.0)
             : NULL;
}

static PyMethodDef client_methods[] = {
    {"set", (PyCFunction)client_set, METH_VARARGS,
     "set(key, value)\n--\n\nStores value (str or bytes) under key."},
    {"get", (PyCFunction)client_get_, METH_VARARGS,
     "get(key)\n--\n\nThe value (bytes); blocks until the key exists."},
    {"add", (PyCFunction)client_add, METH_VARARGS,
     "add(key, amount)\n--\n\nAdds to an integer key; the new value."},
    {"compare_set", (PyCFunction)client_compare_set, METH_VARARGS,
     "compare_set(key, expected, desired)\n--\n\n"
     "Swaps if the value equals expected; the value afterwards."},
    {"wait", (PyCFunction)client_wait, METH_VARARGS,
     "wait(keys, timeout=None)\n--\n\nBlocks until every key exists."},
    {"check", (PyCFunction)client_check, METH_O,
     "check(keys)\n--\n\nWhether every key exists, without waiting."},
    {"delete_key", (PyCFunction)client_delete_key, METH_VARARGS,
     "delete_key(key)\n--\n\nDeletes key; whether it existed."},
    {"num_keys", (PyCFunction)client_num_keys, METH_NOARGS,
     "num_keys()\n--\n\nThe number of keys stored."},
    {"set_timeout", (PyCFunction)client_set_timeout, METH_O,
     "set_timeout(seconds)\n--\n\nThe default timeout of later calls."},
    {"close", (PyCFunction)client_close, METH_NOARGS,
     "close()\n--\n\nCloses the connection."},
    {NULL, NULL, 0, NULL} /* sentinel */
};

static PyGetSetDef client_getset[] = {
    {"timeout", (getter)client_timeout, NULL, "timeout in seconds", NULL},
    {NULL, NULL, NULL, NULL, NULL} /* sentinel */
};

static PyType_Slot client_slots[] = {
    {Py_tp_new, client_new},
    {Py_tp_dealloc, client_dealloc},
    {Py_tp_methods, client_methods},
    {Py_tp_getset, client_getset},
    {Py_tp_doc, "_StoreClient(host, port, timeout)\n--\n\n"
                "A connection to a TCPStore server."},
    {0, NULL} /* sentinel */
};

PyType_Spec dt_py_store_client_spec = {
    .name = "dtrain._C._StoreClient",
    .basicsize = sizeof(py_client),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = client_slots,
};

