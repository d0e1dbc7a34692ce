/* py_pg.c: _C._ProcessGroupGloo, the C half of dtrain.distributed's
 * process groups, and the module init of the process-group glue.
 *
 *   _ProcessGroupGloo(store, rank, size, timeout, prefix, group_name="",
 *                     global_ranks=None, debug=False,
 *                     hostname="127.0.0.1", threads=2, iface="")
 *
 * store is ("tcp", host, port) (the group opens its own connection), a
 * _C._FileStore, or any object with set/get/wait/check (a Python store:
 * used only during the rendezvous, on this thread). Collective methods
 * take contiguous CPU tensors and group ranks, check sizes, queue the
 * operation and either return a _C._Work (async_op) or wait for it without
 * the GIL and return None. Argument normalisation (lists, global ranks,
 * defaults) lives in dtrain/distributed/c10d.py.
 */
#include "py_pg.h"

PyObject *dt_py_backend_error;
static PyTypeObject *pg_type;      /* _ProcessGroupGloo (module-owned) */

/* ---------------------------------------------------------------------- */
/* a store implemented in Python (rendezvous only)                         */

typedef struct kv_py {
    dt_kv base;
    PyObject *store;
    PyObject **exc;            /* [3]: where the first exception a call
                                * raised goes (the constructor's locals),
                                * NULL after the rendezvous */
} kv_py;

/* With the GIL: records the pending exception as a failure. */
static dt_status
kv_py_fail(kv_py *k, const char *what)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *s = value ? PyObject_Str(value) : NULL;
    const char *msg = s ? PyUnicode_AsUTF8(s) : NULL;
    dt_fail(DT_ERR_RUNTIME, "store.%s() raised %s: %s", what,
            type ? ((PyTypeObject *)type)->tp_name : "?",
            msg ? msg : "?");
    Py_XDECREF(s);
    PyErr_Clear();
    if (k->exc && !k->exc[0]) {
        k->exc[0] = type, k->exc[1] = value, k->exc[2] = tb;
    } else {
        Py_XDECREF(type), Py_XDECREF(value), Py_XDECREF(tb);
    }
    return DT_ERR_RUNTIME;
}

static dt_status
kv_py_set(dt_kv *kv, const char *key, const void *value, size_t len)
{
    kv_py *k = (kv_py *)kv;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *r = PyObject_CallMethod(k->store, "set", "sy#", key,
                                      value ? (const char *)value : "",
                                      (Py_ssize_t)len);
    dt_status s = r ? DT_OK : kv_py_fail(k, "set");
    Py_XDECREF(r);
    PyGILState_Release(g);
    return s;
}

static dt_status
kv_py_get(dt_kv *kv, const char *key, void **value, size_t *len,
          int64_t timeout_ms)
{
    (void)timeout_ms;          /* the store's own timeout applies */
    kv_py *k = (kv_py *)kv;
    PyGILState_STATE g = PyGILState_Ensure();
    dt_status s = DT_OK;
    PyObject *r = PyObject_CallMethod(k->store, "get", "s", key);
    char *p;
    Py_ssize_t n;
    if (!r || PyBytes_AsStringAndSize(r, &p, &n) < 0) {
        s = kv_py_fail(k, "get");
    } else if (!(*value = malloc(n ? (size_t)n : 1))) {
        s = dt_fail(DT_ERR_NOMEM, "out of memory in store.get()");
    } else {
        memcpy(*value, p, (size_t)n);
        *len = (size_t)n;
    }
    Py_XDECREF(r);
    PyGILState_Release(g);
    return s;
}

static PyObject *
key_list(const char *const *keys, size_t nkeys)
{
    PyObject *list = PyList_New((Py_ssize_t)nkeys);
    for (size_t i = 0; list && i < nkeys; i++) {
        PyObject *k = PyUnicode_FromString(keys[i]);
        if (!k) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, k);
    }
    return list;
}

static dt_status
kv_py_wait(dt_kv *kv, const char *const *keys, size_t nkeys,
           int64_t timeout_ms)
{
    kv_py *k = (kv_py *)kv;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *list = key_list(keys, nkeys);
    PyObject *r = list ? PyObject_CallMethod(k->store, "wait", "Od", list,
                                             timeout_ms / 1000.0)
                       : NULL;
    dt_status s = r ? DT_OK : kv_py_fail(k, "wait");
    Py_XDECREF(r);
    Py_XDECREF(list);
    PyGILState_Release(g);
    return s;
}

static dt_status
kv_py_check(dt_kv *kv, const char *const *keys, size_t nkeys, bool *all)
{
    kv_py *k = (kv_py *)kv;
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *list = key_list(keys, nkeys);
    PyObject *r = list ? PyObject_CallMethod(k->store, "check", "O", list)
                       : NULL;
    int t = r ? PyObject_IsTrue(r) : -1;
    dt_status s = t >= 0 ? DT_OK : kv_py_fail(k, "check");
    *all = t > 0;
    Py_XDECREF(r);
    Py_XDECREF(list);
    PyGILState_Release(g);
    return s;
}

static void
kv_py_free(dt_kv *kv)
{
    kv_py *k = (kv_py *)kv;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_XDECREF(k->store);
    PyGILState_Release(g);
    free(k);
}

static const dt_kv_ops kv_py_ops = {
    kv_py_set, kv_py_get, kv_py_wait, kv_py_check, kv_py_free,
};

/* ---------------------------------------------------------------------- */
/* _ProcessGroupGloo(...)                                                  */

/* The dt_kv for `store` (see the file comment); *py set for Python ones. */
static int
make_kv(dt_kv **out, kv_py **py, PyObject *store, int64_t timeout_ms)
{
    *py = NULL;
    dt_file_store *fs = dt_py_file_store_get(store);
    const char *kind, *host;
    int port;
    dt_status s;
    if (fs) {
        s = dt_kv_file_new(out, fs);
    } else if (PyTuple_Check(store)) {
        if (!PyArg_ParseTuple(store, "ssi:_ProcessGroupGloo", &kind, &host,
                              &port)) {
            return -1;
        }
        dt_py_store_wait w = {0};
        dt_store_hook h = {dt_py_store_interrupted, NULL, &w};
        w.save = PyEval_SaveThread();
        s = dt_kv_tcp_new(out, host, port, timeout_ms, &h);
        PyEval_RestoreThread(w.save);
    } else {
        kv_py *k = calloc(1, sizeof *k);
        if (!k) {
            PyErr_NoMemory();
            return -1;
        }
        k->base.ops = &kv_py_ops;
        k->base.needs_python = true;
        k->store = Py_NewRef(store);
        *out = &k->base;
        *py = k;
        return 0;
    }
    return s == DT_OK ? 0 : (dt_py_store_raise(s), -1);
}

static int
parse_ranks(PyObject *o, int **out, int size)
{
    *out = NULL;
    if (o == Py_None) {
        return 0;
    }
    int64_t tmp[4096];
    if (size > 4096) {
        PyErr_SetString(PyExc_ValueError, "_ProcessGroupGloo: at most 4096 "
                        "ranks");
        return -1;
    }
    int n = dt_py_parse_int_list(o, tmp, 4096, "_ProcessGroupGloo");
    if (n < 0) {
        return -1;
    }
    if (n != size) {
        PyErr_Format(PyExc_ValueError, "_ProcessGroupGloo: global_ranks has "
                     "%d entries for a group of size %d", n, size);
        return -1;
    }
    if (!(*out = PyMem_Malloc((size_t)(size ? size : 1) * sizeof **out))) {
        PyErr_NoMemory();
        return -1;
    }
    for (int i = 0; i < n; i++) {
        (*out)[i] = (int)tmp[i];
    }
    return 0;
}

/* Rendezvous without the GIL; the kv's hook runs the signal handlers. */
static dt_status
connect_group(dt_pg **out, dt_pg_gloo_options *opt, dt_kv *kv)
{
    dt_py_store_wait w = {0};
    dt_store_hook h = {dt_py_store_interrupted, NULL, &w};
    kv->hook = kv->needs_python ? NULL : &h;
    w.save = PyEval_SaveThread();
    dt_status s = dt_pg_gloo_new(out, opt, kv);   /* frees kv on failure */
    PyEval_RestoreThread(w.save);
    if (s == DT_OK) {
        kv->hook = NULL;       /* comm threads must never call Python */
    }
    return s;
}

static PyObject *
pg_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"store", "rank", "size", "timeout", "prefix",
                             "group_name", "global_ranks", "debug",
                             "hostname", "threads", "iface", NULL};
    PyObject *store, *timeout, *ranks_obj = Py_None;
    const char *prefix, *group_name = "", *hostname = "127.0.0.1";
    const char *iface = "";
    int rank, size, debug = 0, threads = 2;
    int64_t ms;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OiiOs|sOpsis:"
                                     "_ProcessGroupGloo", kwlist, &store,
                                     &rank, &size, &timeout, &prefix,
                                     &group_name, &ranks_obj, &debug,
                                     &hostname, &threads, &iface) ||
        dt_py_store_timeout_ms(timeout, &ms) < 0) {
        return NULL;
    }
    int *ranks;
    if (parse_ranks(ranks_obj, &ranks, size) < 0) {
        return NULL;
    }
    py_pg *self = (py_pg *)type->tp_alloc(type, 0);
    dt_kv *kv = NULL;
    kv_py *pykv = NULL;
    PyObject *exc[3] = {NULL, NULL, NULL};
    if (!self || make_kv(&kv, &pykv, store, ms) < 0) {
        goto fail;
    }
    if (pykv) {
        pykv->exc = exc;
    }
    dt_pg_gloo_options opt = {rank, size, ms, prefix, hostname, iface,
                              group_name, ranks, threads, debug != 0};
    dt_status s = connect_group(&self->pg, &opt, kv);
    if (s == DT_OK && pykv) {
        pykv->exc = NULL;
    }
    if (s != DT_OK) {
        if (exc[0]) {
            PyErr_Restore(exc[0], exc[1], exc[2]);  /* the store's own */
        } else if (!PyErr_Occurred()) {             /* or Ctrl-C's */
            dt_py_store_raise(s);
        }
        goto fail;
    }
    PyMem_Free(ranks);
    return (PyObject *)self;
fail:
    PyMem_Free(ranks);
    Py_XDECREF(self);
    return NULL;
}

static void
pg_dealloc(py_pg *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    dt_pg *pg = self->pg;
    self->pg = NULL;
    if (pg) {
        Py_BEGIN_ALLOW_THREADS
        dt_pg_release(pg);     /* joins the comm threads */
        Py_END_ALLOW_THREADS
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

dt_pg *
dt_py_pg_get(py_pg *self)
{
    if (!self->pg) {
        PyErr_SetString(dt_py_backend_error, "ProcessGroupGloo: the process "
                        "group has been shut down");
    }
    return self->pg;
}

dt_pg *
dt_py_pg_unwrap(PyObject *o)
{
    if (!pg_type || !PyObject_TypeCheck(o, pg_type)) {
        PyErr_Format(PyExc_TypeError, "expected a process group, got %s",
                     Py_TYPE(o)->tp_name);
        return NULL;
    }
    return dt_py_pg_get((py_pg *)o);
}

static PyObject *
pg_shutdown(py_pg *self, PyObject *Py_UNUSED(ignored))
{
    dt_pg *pg = self->pg;
    self->pg = NULL;
    if (pg) {
        Py_BEGIN_ALLOW_THREADS
        dt_pg_release(pg);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *
pg_abort(py_pg *self, PyObject *args)
{
    const char *why = "aborted by the user";
    if (!PyArg_ParseTuple(args, "|s:abort", &why)) {
        return NULL;
    }
    dt_pg *pg = dt_py_pg_get(self);
    if (!pg) {
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    pg->ops->abort(pg, why);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *
pg_tune(py_pg *self, PyObject *args)
{
    unsigned long long bcube_below, segment;
    if (!PyArg_ParseTuple(args, "KK:_tune", &bcube_below, &segment)) {
        return NULL;
    }
    dt_pg *pg = dt_py_pg_get(self);
    if (!pg) {
        return NULL;
    }
    dt_pg_gloo_tuning t = {(size_t)bcube_below, (size_t)segment};
    dt_pg_gloo_tune(pg, &t);
    Py_RETURN_NONE;
}

static PyObject *
pg_rank(py_pg *self, void *Py_UNUSED(closure))
{
    dt_pg *pg = dt_py_pg_get(self);
    return pg ? PyLong_FromLong(pg->rank) : NULL;
}

static PyObject *
pg_size(py_pg *self, void *Py_UNUSED(closure))
{
    dt_pg *pg = dt_py_pg_get(self);
    return pg ? PyLong_FromLong(pg->size) : NULL;
}

static PyObject *
pg_failure(py_pg *self, void *Py_UNUSED(closure))
{
    dt_pg *pg = dt_py_pg_get(self);
    char buf[1024];
    if (!pg) {
        return NULL;
    }
    if (!pg->ops->failure(pg, buf, sizeof buf)) {
        Py_RETURN_NONE;
    }
    return PyUnicode_FromString(buf);
}

static PyObject *
pg_backend(py_pg *self, void *Py_UNUSED(closure))
{
    dt_pg *pg = dt_py_pg_get(self);
    return pg ? PyUnicode_FromString(pg->ops->name) : NULL;
}

static PyMethodDef pg_own_methods[] = {
    {"shutdown", (PyCFunction)pg_shutdown, METH_NOARGS,
     "shutdown()\n--\n\nFinishes queued collectives, aborts pending "
     "send/recv, stops the threads."},
    {"abort", (PyCFunction)pg_abort, METH_VARARGS,
     "abort(why='aborted by the user')\n--\n\nFails pending and later "
     "operations at once."},
    {"_tune", (PyCFunction)pg_tune, METH_VARARGS,
     "_tune(bcube_below_bytes, max_segment_bytes)\n--\n\n"
     "Allreduce algorithm knobs (every rank must agree)."},
    {NULL, NULL, 0, NULL} /* sentinel */
};

/* The collective methods (py_pg_coll.c) followed by pg_own_methods. */
static PyMethodDef pg_methods[32];

static PyGetSetDef pg_getset[] = {
    {"rank", (getter)pg_rank, NULL, "this process's rank in the group",
     NULL},
    {"size", (getter)pg_size, NULL, "the number of ranks", NULL},
    {"backend", (getter)pg_backend, NULL, "\"gloo\"", NULL},
    {"failure", (getter)pg_failure, NULL,
     "why the group is no longer usable, or None", NULL},
    {NULL, NULL, NULL, NULL, NULL} /* sentinel */
};

static PyType_Slot pg_slots[] = {
    {Py_tp_new, pg_new},
    {Py_tp_dealloc, pg_dealloc},
    {Py_tp_methods, pg_methods},
    {Py_tp_getset, pg_getset},
    {Py_tp_doc, "_ProcessGroupGloo(store, rank, size, timeout, prefix, "
                "group_name='', global_ranks=None, debug=False, "
                "hostname='127.0.0.1', threads=2, iface='')\n--\n\n"
                "A process group over Gloo (see py_pg.c)."},
    {0, NULL} /* sentinel */
};

static PyType_Spec pg_spec = {
    .name = "dtrain._C._ProcessGroupGloo",
    .basicsize = sizeof(py_pg),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = pg_slots,
};

/* ---------------------------------------------------------------------- */
/* module init                                                             */

static PyTypeObject *
add_type(PyObject *module, PyType_Spec *spec, const char *name)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
    if (!type || PyModule_AddObjectRef(module, name, type) < 0) {
        Py_XDECREF(type);
        return NULL;
    }
    return (PyTypeObject *)type;  /* the module keeps it alive */
}

int
dt_py_pg_init(PyObject *module)
{
    size_t n = 0;
    for (PyMethodDef *m = dt_py_pg_coll_methods; m->ml_name; m++) {
        pg_methods[n++] = *m;
    }
    for (PyMethodDef *m = pg_own_methods; m->ml_name; m++) {
        pg_methods[n++] = *m;
    }
    DT_ASSERT(n < sizeof pg_methods / sizeof pg_methods[0]);
    dt_py_backend_error = PyErr_NewExceptionWithDoc(
        "dtrain.distributed.DistBackendError",
        "A collective failed: a peer died, it timed out, or the process "
        "group is no longer usable.", dt_py_dist_error, NULL);
    if (!dt_py_backend_error ||
        PyModule_AddObjectRef(module, "DistBackendError",
                              dt_py_backend_error) < 0) {
        return -1;
    }
    PyTypeObject *pg = add_type(module, &pg_spec, "_ProcessGroupGloo");
    dt_py_work_type = add_type(module, &dt_py_work_spec, "_Work");
    dt_py_file_store_type = add_type(module, &dt_py_file_store_spec,
                                     "_FileStore");
    if (!pg || !dt_py_work_type || !dt_py_file_store_type) {
        return -1;
    }
    pg_type = pg;
    Py_DECREF(pg);
    Py_DECREF(dt_py_work_type);          /* borrowed from the module now */
    Py_DECREF(dt_py_file_store_type);
    return 0;
}
