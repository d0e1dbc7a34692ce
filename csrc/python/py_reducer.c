/* py_reducer.c: _C._Reducer, the Python face of the DDP reducer
 * (csrc/dist/reducer.h). DistributedDataParallel (dtrain/nn/parallel/
 * distributed.py) owns one:
 *
 *   _Reducer(group, params, names, first_bucket_bytes, bucket_bytes,
 *            find_unused, grad_as_view, static_graph)
 *   prepare_forward(); prepare_backward(sync, div_factor=0)
 *   set_comm_hook(fn)    fn(index, buffer, is_last) -> a Future whose
 *                        wait() gives the bucket's result tensor
 *   shadow_backward()    join: zero buckets through the allreduces
 *   bucket_indices()     [[param index, ...], ...] in bucket order
 *   bucket_buffer(b)     bucket b's flat buffer (shares memory)
 *   has_rebuilt()        whether the one rebuild has happened
 *   stats(), reset_stats(), close()
 *
 * Calls that may wait on communication release the GIL. A comm hook's
 * Python runs on the backward's thread with the GIL taken there.
 */
#include "py_pg.h"

#include "../dist/reducer.h"

typedef struct py_reducer {
    PyObject_HEAD
    dt_reducer *r;             /* owned; NULL after close() */
    PyObject *group;           /* keeps the process group alive */
} py_reducer;

static dt_reducer *
get(py_reducer *self)
{
    if (!self->r) {
        PyErr_SetString(PyExc_RuntimeError, "DDP: the reducer was closed");
    }
    return self->r;
}

/* ---------------------------------------------------------------------- */
/* comm hooks                                                              */

typedef struct py_hook {
    PyObject *fn;
    PyObject *futures;         /* {bucket index: Future} in flight */
} py_hook;

static dt_status
hook_launch(void *ctx, size_t bucket, dt_tensor *buffer, bool is_last)
{
    py_hook *h = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    dt_status s = DT_OK;
    dt_tensor_retain(buffer);
    PyObject *buf = dt_py_wrap(buffer);
    PyObject *fut = buf ? PyObject_CallFunction(h->fn, "nOO",
                                                (Py_ssize_t)bucket, buf,
                                                is_last ? Py_True : Py_False)
                        : NULL;
    PyObject *key = PyLong_FromSize_t(bucket);
    if (!fut || !key || PyDict_SetItem(h->futures, key, fut) < 0) {
        s = dt_py_keep_error("the DDP communication hook");
    }
    Py_XDECREF(key);
    Py_XDECREF(fut);
    Py_XDECREF(buf);
    PyGILState_Release(g);
    return s;
}

/* Checks the hook's result and copies it into the bucket if it is not
 * the bucket's own buffer. */
static int
take_result(PyObject *res, dt_tensor *buffer, size_t bucket)
{
    dt_tensor *t = dt_py_unwrap(res);
    if (!t) {
        PyErr_Format(PyExc_TypeError, "DDP communication hook: the future "
                     "of bucket %zu must hold a Tensor, got %s", bucket,
                     Py_TYPE(res)->tp_name);
        return -1;
    }
    if (dt_tensor_numel(t) != dt_tensor_numel(buffer)) {
        PyErr_Format(PyExc_RuntimeError, "DDP communication hook: bucket %zu "
                     "has %lld elements but the hook's result has %lld",
                     bucket, (long long)dt_tensor_numel(buffer),
                     (long long)dt_tensor_numel(t));
        return -1;
    }
    if (t == buffer || (t->storage == buffer->storage &&
                        t->offset == buffer->offset &&
                        dt_tensor_is_contiguous(t) && t->dtype ==
                        buffer->dtype)) {
        return 0;
    }
    dt_tensor *flat = NULL;
    int64_t n = dt_tensor_numel(t);
    dt_status s = dt_reshape(&flat, t, &n, 1);
    if (s == DT_OK) {
        s = dt_copy_(buffer, flat);
    }
    dt_tensor_release(flat);
    if (s != DT_OK) {
        dt_py_raise(s);
        return -1;
    }
    return 0;
}

static dt_status
hook_wait(void *ctx, size_t bucket, dt_tensor *buffer)
{
    py_hook *h = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    dt_status s = DT_OK;
    PyObject *key = PyLong_FromSize_t(bucket);
    PyObject *fut = key ? PyDict_GetItemWithError(h->futures, key) : NULL;
    Py_XINCREF(fut);
    if (fut) {
        PyDict_DelItem(h->futures, key);
    } else if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_RuntimeError, "DDP: bucket %zu was not launched "
                     "by the communication hook", bucket);
    }
    PyObject *res = fut ? PyObject_CallMethod(fut, "wait", NULL) : NULL;
    if (!res || take_result(res, buffer, bucket) < 0) {
        s = dt_py_keep_error("the DDP communication hook's future");
    }
    Py_XDECREF(res);
    Py_XDECREF(fut);
    Py_XDECREF(key);
    PyGILState_Release(g);
    return s;
}

static void
hook_free(void *ctx)
{
    py_hook *h = ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_XDECREF(h->fn);
    Py_XDECREF(h->futures);
    PyGILState_Release(g);
    free(h);
}

static PyObject *
reducer_set_comm_hook(py_reducer *self, PyObject *fn)
{
    dt_reducer *r = get(self);
    if (!r) {
        return NULL;
    }
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "set_comm_hook: expected a "
                        "callable");
        return NULL;
    }
    py_hook *h = calloc(1, sizeof *h);
    PyObject *futures = PyDict_New();
    if (!h || !futures) {
        free(h);
        Py_XDECREF(futures);
        return PyErr_NoMemory();
    }
    h->fn = Py_NewRef(fn);
    h->futures = futures;
    dt_reducer_comm_hook hook = {hook_launch, hook_wait, h, hook_free};
    dt_status s = dt_reducer_set_comm_hook(r, &hook);
    if (s != DT_OK) {
        Py_DECREF(h->fn);
        Py_DECREF(h->futures);
        free(h);
        return dt_py_raise(s);
    }
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------- */
/* construction                                                            */

static int
parse_params(PyObject *params, PyObject *names, dt_tensor ***ts,
             const char ***ns, Py_ssize_t *n)
{
    *n = PySequence_Size(params);
    if (*n < 0 || PySequence_Size(names) != *n) {
        PyErr_SetString(PyExc_ValueError, "_Reducer: params and names must "
                        "be sequences of the same length");
        return -1;
    }
    *ts = PyMem_Calloc((size_t)*n + 1, sizeof **ts);
    *ns = PyMem_Calloc((size_t)*n + 1, sizeof **ns);
    if (!*ts || !*ns) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < *n; i++) {
        PyObject *p = PySequence_GetItem(params, i);
        PyObject *nm = PySequence_GetItem(names, i);
        (*ts)[i] = p ? dt_py_unwrap(p) : NULL;
        (*ns)[i] = nm && PyUnicode_Check(nm) ? PyUnicode_AsUTF8(nm) : NULL;
        Py_XDECREF(p);
        Py_XDECREF(nm);  /* the names list keeps the strings alive */
        if (!(*ts)[i] || !(*ns)[i]) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError, "_Reducer: entry %zd must be "
                             "a Tensor and a str name", i);
            }
            return -1;
        }
    }
    return 0;
}

static PyObject *
reducer_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"group", "params", "names", "first_bucket_bytes",
                             "bucket_bytes", "find_unused", "grad_as_view",
                             "static_graph", NULL};
    PyObject *group, *params, *names;
    Py_ssize_t first, cap, n = 0;
    int find_unused = 0, as_view = 0, static_graph = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOnn|ppp:_Reducer", kwlist,
                                     &group, &params, &names, &first, &cap,
                                     &find_unused, &as_view, &static_graph)) {
        return NULL;
    }
    dt_pg *pg = dt_py_pg_unwrap(group);
    if (!pg) {
        return NULL;
    }
    if (first <= 0 || cap <= 0) {
        PyErr_SetString(PyExc_ValueError, "DistributedDataParallel: bucket "
                        "sizes must be positive");
        return NULL;
    }
    dt_tensor **ts = NULL;
    const char **ns = NULL;
    py_reducer *self = NULL;
    if (parse_params(params, names, &ts, &ns, &n) == 0) {
        dt_reducer_options opt = {(size_t)first, (size_t)cap,
                                  find_unused, as_view, static_graph};
        dt_reducer *r = NULL;
        dt_status s = dt_reducer_new(&r, pg, ts, ns, (size_t)n, &opt);
        if (s != DT_OK) {
            dt_py_raise(s);
        } else if (!(self = (py_reducer *)type->tp_alloc(type, 0))) {
            dt_reducer_free(r);
        } else {
            self->r = r;
            self->group = Py_NewRef(group);
        }
    }
    PyMem_Free(ts);
    PyMem_Free(ns);
    return (PyObject *)self;
}

static void
reducer_close_impl(py_reducer *self)
{
    dt_reducer *r = self->r;
    self->r = NULL;
    if (r) {
        Py_BEGIN_ALLOW_THREADS
        dt_reducer_free(r);
        Py_END_ALLOW_THREADS
    }
}

static void
reducer_dealloc(py_reducer *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    reducer_close_impl(self);
    Py_XDECREF(self->group);
    tp->tp_free(self);
    Py_DECREF(tp);
}

static PyObject *
reducer_close(py_reducer *self, PyObject *Py_UNUSED(ignored))
{
    reducer_close_impl(self);
    Py_RETURN_NONE;
}

/* ---------------------------------------------------------------------- */
/* steps                                                                   */

static PyObject *
reducer_prepare_forward(py_reducer *self, PyObject *Py_UNUSED(ignored))
{
    dt_reducer *r = get(self);
    if (!r) {
        return NULL;
    }
    dt_status s;
    Py_BEGIN_ALLOW_THREADS
    s = dt_reducer_prepare_forward(r);
    Py_END_ALLOW_THREADS
    return s == DT_OK ? Py_NewRef(Py_None) : dt_py_raise_pending(s);
}

static PyObject *
reducer_prepare_backward(py_reducer *self, PyObject *args)
{
    int sync, div = 0;
    dt_reducer *r = get(self);
    if (!r || !PyArg_ParseTuple(args, "p|i:prepare_backward", &sync, &div)) {
        return NULL;
    }
    dt_status s = dt_reducer_prepare_backward(r, sync, div);
    return s == DT_OK ? Py_NewRef(Py_None) : dt_py_raise(s);
}

static PyObject *
reducer_shadow_backward(py_reducer *self, PyObject *Py_UNUSED(ignored))
{
    dt_reducer *r = get(self);
    if (!r) {
        return NULL;
    }
    dt_status s;
    Py_BEGIN_ALLOW_THREADS
    s = dt_reducer_shadow_backward(r);
    Py_END_ALLOW_THREADS
    return s == DT_OK ? Py_NewRef(Py_None) : dt_py_raise_pending(s);
}

/* ---------------------------------------------------------------------- */
/* layout and statistics                                                   */

static PyObject *
reducer_bucket_indices(py_reducer *self, PyObject *Py_UNUSED(ignored))
{
    dt_reducer *r = get(self);
    if (!r) {
        return NULL;
    }
    size_t nb = dt_reducer_num_buckets(r);
    PyObject *out = PyList_New((Py_ssize_t)nb);
    for (size_t b = 0; out && b < nb; b++) {
        size_t n;
        const size_t *idx = dt_reducer_bucket_params(r, b, &n);
        PyObject *l = PyList_New((Py_ssize_t)n);
        for (size_t k = 0; l && k < n; k++) {
            PyList_SET_ITEM(l, (Py_ssize_t)k, PyLong_FromSize_t(idx[k]));
        }
        if (!l) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)b, l);
    }
    return out;
}

static PyObject *
reducer_bucket_buffer(py_reducer *self, PyObject *arg)
{
    dt_reducer *r = get(self);
    Py_ssize_t b = r ? PyLong_AsSsize_t(arg) : -1;
    if (!r || (b == -1 && PyErr_Occurred())) {
        return NULL;
    }
    if (b < 0 || (size_t)b >= dt_reducer_num_buckets(r)) {
        PyErr_Format(PyExc_IndexError, "bucket %zd out of range", b);
        return NULL;
    }
    dt_tensor *t = dt_reducer_bucket_buffer(r, (size_t)b);
    dt_tensor_retain(t);
    return dt_py_wrap(t);
}

static double
secs(int64_t ns)
{
    return (double)ns * 1e-9;
}

static PyObject *
bucket_timeline(dt_reducer *r)
{
    size_t nb = dt_reducer_num_buckets(r);
    PyObject *l = PyList_New((Py_ssize_t)nb);
    for (size_t b = 0; l && b < nb; b++) {
        dt_reducer_bucket_times t;
        dt_reducer_bucket_timeline(r, b, &t);
        PyObject *d = Py_BuildValue(
            "{s:n,s:n,s:d,s:d,s:N,s:d}", "index", (Py_ssize_t)b, "bytes",
            (Py_ssize_t)t.bytes, "ready", secs(t.ready_ns), "launch",
            secs(t.launch_ns), "start",
            t.start_ns ? PyFloat_FromDouble(secs(t.start_ns))
                       : Py_NewRef(Py_None),
            "end", secs(t.end_ns));
        if (!d) {
            Py_CLEAR(l);
            break;
        }
        PyList_SET_ITEM(l, (Py_ssize_t)b, d);
    }
    return l;
}

static PyObject *
reducer_stats(py_reducer *self, PyObject *Py_UNUSED(ignored))
{
    dt_reducer *r = get(self);
    if (!r) {
        return NULL;
    }
    dt_reducer_stats st;
    dt_reducer_get_stats(r, &st);
    PyObject *buckets = bucket_timeline(r);
    if (!buckets) {
        return NULL;
    }
    return Py_BuildValue(
        "{s:L,s:d,s:d,s:d,s:L,s:d,s:d,s:d,s:N}", "steps",
        (long long)st.steps, "backward_s", secs(st.backward_ns), "comm_s",
        secs(st.comm_ns), "exposed_comm_s", secs(st.exposed_ns), "bytes",
        (long long)st.bytes, "last_backward_start",
        secs(st.last_backward_start_ns), "last_backward_end",
        secs(st.last_backward_end_ns), "last_done", secs(st.last_done_ns),
        "buckets", buckets);
}

static PyObject *
reducer_has_rebuilt(py_reducer *self, PyObject *Py_UNUSED(ignored))
{
    dt_reducer *r = get(self);
    return r ? PyBool_FromLong(dt_reducer_has_rebuilt(r)) : NULL;
}

static PyObject *
reducer_reset_stats(py_reducer *self, PyObject *Py_UNUSED(ignored))
{
    dt_reducer *r = get(self);
    if (!r) {
        return NULL;
    }
    dt_reducer_reset_stats(r);
    Py_RETURN_NONE;
}

static PyMethodDef reducer_methods[] = {
    {"prepare_forward", (PyCFunction)reducer_prepare_forward, METH_NOARGS,
     "Before a forward: raises an unfinished reduction, rebuilds buckets."},
    {"prepare_backward", (PyCFunction)reducer_prepare_backward,
     METH_VARARGS, "prepare_backward(sync, div_factor=0)"},
    {"shadow_backward", (PyCFunction)reducer_shadow_backward, METH_NOARGS,
     "Join: allreduce zero-filled buckets as a backward would."},
    {"set_comm_hook", (PyCFunction)reducer_set_comm_hook, METH_O,
     "set_comm_hook(fn): fn(index, buffer, is_last) -> Future"},
    {"bucket_indices", (PyCFunction)reducer_bucket_indices, METH_NOARGS,
     "The parameter indices of each bucket, in bucket order."},
    {"bucket_buffer", (PyCFunction)reducer_bucket_buffer, METH_O,
     "Bucket b's flat gradient buffer."},
    {"stats", (PyCFunction)reducer_stats, METH_NOARGS,
     "Summed step statistics and the last step's bucket timeline."},
    {"has_rebuilt", (PyCFunction)reducer_has_rebuilt, METH_NOARGS,
     "Whether the buckets were rebuilt from the observed order (once)."},
    {"reset_stats", (PyCFunction)reducer_reset_stats, METH_NOARGS, ""},
    {"close", (PyCFunction)reducer_close, METH_NOARGS,
     "Removes the hooks and frees the buckets."},
    {NULL, NULL, 0, NULL} /* sentinel */
};

static PyType_Slot reducer_slots[] = {
    {Py_tp_new, reducer_new},
    {Py_tp_dealloc, reducer_dealloc},
    {Py_tp_methods, reducer_methods},
    {Py_tp_doc, "_Reducer(group, params, names, first_bucket_bytes, "
                "bucket_bytes, find_unused=False, grad_as_view=False, "
                "static_graph=False)\n--\n\nDDP's gradient reducer."},
    {0, NULL} /* sentinel */
};

static PyType_Spec reducer_spec = {
    .name = "dtrain._C._Reducer",
    .basicsize = sizeof(py_reducer),
    .flags = Py_TPFLAGS_DEFAULT,
    .slots = reducer_slots,
};

int
dt_py_reducer_init(PyObject *module)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &reducer_spec, NULL);
    if (!type || PyModule_AddObjectRef(module, "_Reducer", type) < 0) {
        Py_XDECREF(type);
        return -1;
    }
    Py_DECREF(type);
    return 0;
}
