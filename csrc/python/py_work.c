/* py_work.c: _C._Work, the Python face of a dt_work (torch's Work).
 *
 *   wait(timeout_ms=0)   -> True; raises DistBackendError if it failed
 *   is_completed(), is_success(), exception() -> the error or None
 *   source_rank()        -> the peer of a finished recv (group rank)
 *   result               -> what get_future().value() returns (set by the
 *                           Python layer)
 *
 * Waiting releases the GIL and wakes every 100 ms to run the signal
 * handlers, so Ctrl-C interrupts a wait (the operation itself goes on).
 */
#include "py_pg.h"

#include <structmember.h>

PyTypeObject *dt_py_work_type;

typedef struct py_work {
    PyObject_HEAD
    dt_work *w;                /* owned */
    PyObject *result;
} py_work;

int
dt_py_work_wait(dt_work *w, int64_t timeout_ms)
{
    if (dt_work_is_completed(w) && dt_work_status(w) == DT_OK) {
        return 0;               /* fast path: no GIL round trip */
    }
    dt_py_store_wait pw = {0};
    dt_work_hook hook = {dt_py_store_interrupted, &pw};
    bool timed_out = false;
    pw.save = PyEval_SaveThread();
    dt_status s = dt_work_wait(w, timeout_ms, &hook, &timed_out);
    PyEval_RestoreThread(pw.save);
    if (s == DT_OK) {
        return 0;
    }
    if (PyErr_Occurred()) {
        return -1;              /* a signal handler raised (Ctrl-C) */
    }
    if (s == DT_ERR_NOMEM) {
        dt_py_raise(s);
    } else {
        PyErr_SetString(dt_py_backend_error, dt_last_error());
    }
    return -1;
}

PyObject *
dt_py_work_wrap(dt_work *w)
{
    py_work *self = (py_work *)dt_py_work_type->tp_alloc(dt_py_work_type, 0);
    if (!self) {
        dt_work_release(w);
        return NULL;
    }
    self->w = w;
    return (PyObject *)self;
}

static void
work_dealloc(py_work *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Py_CLEAR(self->result);
    /* the last reference may free kept tensors whose storage release
     * takes the GIL (NumPy arrays): let go of it first */
    dt_work *w = self->w;
    self->w = NULL;
    if (w) {
        Py_BEGIN_ALLOW_THREADS
        dt_work_release(w);
        Py_END_ALLOW_THREADS
    }
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static int
work_traverse(py_work *self, visitproc visit, void *arg)
{
    Py_VISIT(self->result);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int
work_clear(py_work *self)
{
    Py_CLEAR(self->result);
    return 0;
}

static PyObject *
work_wait(py_work *self, PyObject *args)
{
    long long ms = 0;
    if (!PyArg_ParseTuple(args, "|L:wait", &ms)) {
        return NULL;
    }
    if (dt_py_work_wait(self->w, ms) < 0) {
        return NULL;
    }
    Py_RETURN_TRUE;
}

static PyObject *
work_is_completed(py_work *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(dt_work_is_completed(self->w));
}

static PyObject *
work_is_success(py_work *self, PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(dt_work_is_completed(self->w) &&
                           dt_work_status(self->w) == DT_OK);
}

static PyObject *
work_exception(py_work *self, PyObject *Py_UNUSED(ignored))
{
    const char *msg = dt_work_error(self->w);
    if (!msg) {
        Py_RETURN_NONE;
    }
    return PyObject_CallFunction(dt_py_backend_error, "s", msg);
}

static PyObject *
work_source_rank(py_work *self, PyObject *Py_UNUSED(ignored))
{
    return PyLong_FromLong(dt_work_peer(self->w));
}

static PyObject *
work_repr(py_work *self)
{
    const char *state = !dt_work_is_completed(self->w) ? "pending"
                        : dt_work_status(self->w) == DT_OK ? "completed"
                                                           : "failed";
    return PyUnicode_FromFormat("<Work %s: %s>", dt_work_what(self->w),
                                state);
}

static PyMethodDef work_methods[] = {
    {"wait", (PyCFunction)work_wait, METH_VARARGS,
     "wait(timeout_ms=0)\n--\n\nBlocks until done; True, or raises "
     "DistBackendError. 0: no timeout."},
    {"is_completed", (PyCFunction)work_is_completed, METH_NOARGS,
     "is_completed()\n--\n\nWhether the operation has finished."},
    {"is_success", (PyCFunction)work_is_success, METH_NOARGS,
     "is_success()\n--\n\nWhether it finished without error."},
    {"exception", (PyCFunction)work_exception, METH_NOARGS,
     "exception()\n--\n\nThe error it failed with, or None."},
    {"source_rank", (PyCFunction)work_source_rank, METH_NOARGS,
     "source_rank()\n--\n\nThe group rank a finished recv came from."},
    {NULL, NULL, 0, NULL} /* sentinel */
};

static PyMemberDef work_members[] = {
    {"result", T_OBJECT, offsetof(py_work, result), 0,
     "what the work's future yields"},
    {NULL, 0, 0, 0, NULL} /* sentinel */
};

static PyType_Slot work_slots[] = {
    {Py_tp_dealloc, work_dealloc},
    {Py_tp_traverse, work_traverse},
    {Py_tp_clear, work_clear},
    {Py_tp_methods, work_methods},
    {Py_tp_members, work_members},
    {Py_tp_repr, work_repr},
    {Py_tp_doc, "A pending process-group operation (torch's Work)."},
    {0, NULL} /* sentinel */
};

PyType_Spec dt_py_work_spec = {
    .name = "dtrain._C._Work",
    .basicsize = sizeof(py_work),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = work_slots,
};
