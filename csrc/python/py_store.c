/* py_store.c: the Python types behind dtrain.distributed.TCPStore.
 *
 *   _C._StoreServer(host, port)     the server thread; .port, .stats(),
 *                                   .close()
 *   _C._StoreClient(host, port, timeout_s)
 *                                   set/get/add/compare_set/wait/check/
 *                                   delete_key/num_keys/set_timeout/close
 *   _C.DistError(RuntimeError), DistStoreError(DistError),
 *   DistNetworkError(DistError), DistStoreTimeoutError(DistStoreError,
 *   TimeoutError)
 *
 * This file holds the server type, the shared helpers and the module init;
 * py_store_client.c holds the client type and the methods it shares with
 * _C._FileStore (py_file_store.c). Every blocking call releases
 * the GIL; the core calls back between 100 ms slices, and the callback
 * takes the GIL back just long enough to run PyErr_CheckSignals, so Ctrl-C
 * interrupts a blocked get or wait. Timeouts arrive in seconds (the Python
 * layer converts timedeltas). */
#include "py_store.h"

/* One module instance per process (as dt_py_st): the classes live here. */
PyObject *dt_py_dist_error, *dt_py_store_error, *dt_py_network_error,
    *dt_py_timeout_error;

typedef struct py_server {
    PyObject_HEAD
    dt_store_server *s;        /* owned; NULL once closed */
} py_server;

/* ---------------------------------------------------------------------- */
/* waiting without the GIL                                                 */

int
dt_py_store_interrupted(void *ctx)
{
    dt_py_store_wait *w = ctx;
    PyEval_RestoreThread(w->save);
    int r = PyErr_CheckSignals();
    w->save = PyEval_SaveThread();
    return r < 0;
}

void *
dt_py_store_alloc(void *ctx, size_t n)
{
    dt_py_store_wait *w = ctx;
    PyEval_RestoreThread(w->save);
    Py_CLEAR(w->result);
    w->result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)n);
    w->save = PyEval_SaveThread();
    return w->result ? PyBytes_AS_STRING(w->result) : NULL;
}

/* Raises the exception class for the failure just recorded. */
PyObject *
dt_py_store_raise(dt_status s)
{
    if (PyErr_Occurred()) {
        return NULL;      /* interrupted: the signal handler's exception */
    }
    if (s == DT_ERR_NOMEM || s == DT_ERR_VALUE) {
        return dt_py_raise(s);
    }
    PyObject *exc = dt_py_store_error;
    switch (dt_store_last_error_kind()) {
    case DT_STORE_ERR_TIMEOUT: exc = dt_py_timeout_error; break;
    case DT_STORE_ERR_NETWORK: exc = dt_py_network_error; break;
    default: break;
    }
    PyErr_SetString(exc, dt_last_error());
    return NULL;
}

/* Seconds (float) to the core's milliseconds; 0 means no timeout. */
int
dt_py_store_timeout_ms(PyObject *o, int64_t *out)
{
    double sec = PyFloat_AsDouble(o);
    if (sec == -1.0 && PyErr_Occurred()) {
        return -1;
    }
    if (!(sec >= 0.0) || sec > 1e12) {
        PyErr_Format(PyExc_ValueError, "TCPStore: timeout must be a "
                     "non-negative number of seconds, got %R", o);
        return -1;
    }
    *out = (int64_t)(sec * 1000.0 + 0.5);
    if (*out == 0 && sec > 0.0) {
        *out = 1;          /* a tiny timeout is not "no timeout" */
    }
    return 0;
}

PyObject *
dt_py_store_opened(PyObject *self, dt_status s)
{
    if (s != DT_OK) {
        Py_DECREF(self);
        return dt_py_store_raise(s);
    }
    return self;
}

/* ---------------------------------------------------------------------- */
/* _StoreServer                                                            */

static PyObject *
server_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"host", "port", NULL};
    const char *host;
    int port;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "zi:_StoreServer", kwlist,
                                     &host, &port)) {
        return NULL;
    }
    py_server *self = (py_server *)type->tp_alloc(type, 0);
    if (!self) {
        return NULL;
    }
    dt_status s;
    Py_BEGIN_ALLOW_THREADS
    s = dt_store_server_start(&self->s, host, port);
    Py_END_ALLOW_THREADS
    return dt_py_store_opened((PyObject *)self, s);
}

static void
server_dealloc(py_server *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    dt_store_server_free(self->s);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *
server_close(py_server *self, PyObject *Py_UNUSED(ignored))
{
    dt_store_server *s = self->s;
    self->s = NULL;
    Py_BEGIN_ALLOW_THREADS
    dt_store_server_free(s);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

static PyObject *
server_port(py_server *self, void *Py_UNUSED(closure))
{
    if (!self->s) {
        PyErr_SetString(dt_py_store_error, "TCPStore: the server is closed");
        return NULL;
    }
    return PyLong_FromLong(dt_store_server_port(self->s));
}

static PyObject *
server_stats(py_server *self, PyObject *Py_UNUSED(ignored))
{
    if (!self->s) {
        PyErr_SetString(dt_py_store_error, "TCPStore: the server is closed");
        return NULL;
    }
    dt_store_server_stats st;
    dt_store_server_stats_get(&st, self->s);
    return Py_BuildValue("{sKsKsKsKsI}", "accepted",
                         (unsigned long long)st.accepted, "dropped",
                         (unsigned long long)st.dropped, "rejected",
                         (unsigned long long)st.rejected, "requests",
                         (unsigned long long)st.requests, "clients",
                         (unsigned int)st.clients);
}

static PyMethodDef server_methods[] = {
    {"close", (PyCFunction)server_close, METH_NOARGS,
     "close()\n--\n\nStops the server thread and closes every client."},
    {"stats", (PyCFunction)server_stats, METH_NOARGS,
     "stats()\n--\n\nConnection and request counters."},
    {NULL, NULL, 0, NULL} /* sentinel */
};

static PyGetSetDef server_getset[] = {
    {"port", (getter)server_port, NULL, "the port actually bound", NULL},
    {NULL, NULL, NULL, NULL, NULL} /* sentinel */
};

static PyType_Slot server_slots[] = {
    {Py_tp_new, server_new},
    {Py_tp_dealloc, server_dealloc},
    {Py_tp_methods, server_methods},
    {Py_tp_getset, server_getset},
    {Py_tp_doc, "_StoreServer(host, port)\n--\n\n"
                "The TCPStore server, running on a background thread."},
    {0, NULL} /* sentinel */
};

static PyType_Spec server_spec = {
    .name = "dtrain._C._StoreServer",
    .basicsize = sizeof(py_server),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = server_slots,
};

/* ---------------------------------------------------------------------- */
/* module init                                                             */

/* Named dtrain.distributed.X, where the Python layer re-exports it. */
static PyObject *
new_exception(PyObject *module, const char *name, PyObject *bases,
              const char *doc)
{
    char qual[64];
    snprintf(qual, sizeof qual, "dtrain.distributed.%s", name);
    PyObject *exc = PyErr_NewExceptionWithDoc(qual, doc, bases, NULL);
    if (exc && PyModule_AddObjectRef(module, name, exc) < 0) {
        Py_CLEAR(exc);
    }
    return exc;
}

static int
add_type(PyObject *module, PyType_Spec *spec, const char *name)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
    if (!type) {
        return -1;
    }
    int r = PyModule_AddObjectRef(module, name, type);
    Py_DECREF(type);
    return r;
}

int
dt_py_store_init(PyObject *module)
{
    dt_py_dist_error = new_exception(module, "DistError", PyExc_RuntimeError,
                                     "An error in torch.distributed terms.");
    if (!dt_py_dist_error) {
        return -1;
    }
    dt_py_store_error = new_exception(module, "DistStoreError",
                                      dt_py_dist_error,
                                      "The store failed or refused.");
    dt_py_network_error = new_exception(module, "DistNetworkError",
                                        dt_py_dist_error,
                                        "The store could not be reached.");
    if (!dt_py_store_error || !dt_py_network_error) {
        return -1;
    }
    /* a timeout is both the store's error and a TimeoutError */
    PyObject *bases = PyTuple_Pack(2, dt_py_store_error, PyExc_TimeoutError);
    if (!bases) {
        return -1;
    }
    dt_py_timeout_error = new_exception(module, "DistStoreTimeoutError",
                                        bases, "A store call timed out.");
    Py_DECREF(bases);
    if (!dt_py_timeout_error ||
        add_type(module, &server_spec, "_StoreServer") < 0 ||
        add_type(module, &dt_py_store_client_spec, "_StoreClient") < 0) {
        return -1;
    }
    return 0;
}
