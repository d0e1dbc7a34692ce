/* py_pg_coll.c: the collective methods of _C._ProcessGroupGloo.
 *
 * Each checks its tensors (CPU, contiguous, dtypes and sizes agree), queues
 * the operation, bumps the version of every tensor it writes, attaches the
 * tensors to the work (so they outlive a dropped Work), and then
 * returns a _C._Work (async_op=True) or waits without the GIL and returns
 * None. Ranks are group ranks; c10d.py translates global ones.
 */
#include "py_pg.h"

#define MAX_KEEP 4

/* The tensors one call hands to the comm thread (and which it writes). */
typedef struct call {
    dt_tensor *keep[MAX_KEEP];
    bool writes[MAX_KEEP];
    int nkeep;
} call;

static int
check_tensor(call *c, dt_tensor *t, bool writes, const char *op,
             const char *arg)
{
    char shape[128];
    if (t->storage->device.type != DT_CPU) {
        PyErr_Format(PyExc_ValueError, "%s: the Gloo backend needs CPU "
                     "tensors, but '%s' is not on the CPU", op, arg);
        return -1;
    }
    if (!dt_tensor_is_contiguous(t)) {
        dt_shape_format(shape, sizeof shape, t->shape, t->ndim);
        PyErr_Format(PyExc_ValueError, "%s: Tensors must be contiguous, but "
                     "'%s' is a non-contiguous %s tensor of shape %s", op,
                     arg, dt_dtype_name(t->dtype), shape);
        return -1;
    }
    DT_ASSERT(c->nkeep < MAX_KEEP);
    c->writes[c->nkeep] = writes;
    c->keep[c->nkeep++] = t;
    return 0;
}

static int
check_same_dtype(dt_tensor *a, dt_tensor *b, const char *op)
{
    if (a->dtype != b->dtype) {
        PyErr_Format(PyExc_TypeError, "%s: output and input must have the "
                     "same dtype, got %s and %s", op, dt_dtype_name(a->dtype),
                     dt_dtype_name(b->dtype));
        return -1;
    }
    return 0;
}

static int
check_numel(dt_tensor *t, int64_t want, const char *op, const char *arg)
{
    if (dt_tensor_numel(t) != want) {
        PyErr_Format(PyExc_ValueError, "%s: '%s' must have %lld elements, "
                     "got %lld", op, arg, (long long)want,
                     (long long)dt_tensor_numel(t));
        return -1;
    }
    return 0;
}

static PyObject *
raise_submit(dt_status s)
{
    if (s == DT_ERR_RUNTIME) {
        PyErr_SetString(dt_py_backend_error, dt_last_error());
        return NULL;
    }
    return dt_py_raise(s);
}

/* Attaches the tensors, then returns the Work or waits for it. */
static PyObject *
finish(dt_status s, dt_work *w, call *c, int async_op)
{
    if (s != DT_OK) {
        return raise_submit(s);
    }
    for (int i = 0; i < c->nkeep; i++) {
        if (c->writes[i]) {
            dt_tensor_bump_version(c->keep[i]);    /* an in-place write */
        }
    }
    for (int i = 0; i < c->nkeep && s == DT_OK; i++) {
        s = dt_work_keep(w, c->keep[i]);
    }
    if (s != DT_OK || !async_op) {
        /* without the tensors attached the caller must not return before
         * the comm thread is done with them */
        int r = dt_py_work_wait(w, 0);
        while (r < 0 && s != DT_OK && !dt_work_is_completed(w)) {
            PyErr_Clear();
            r = dt_py_work_wait(w, 0);
        }
        dt_work_release(w);
        if (s != DT_OK) {
            return dt_py_raise(s);
        }
        if (r < 0) {
            return NULL;
        }
        Py_RETURN_NONE;
    }
    return dt_py_work_wrap(w);
}

#define PG_OR_NULL(self, pg)                                              \
    dt_pg *pg = dt_py_pg_get(self);                                       \
    if (!pg) {                                                            \
        return NULL;                                                      \
    }

static PyObject *
coll_allreduce(py_pg *self, PyObject *args)
{
    dt_tensor *t;
    int op, async_op = 0;
    call c = {0};
    if (!PyArg_ParseTuple(args, "O&i|p:allreduce", dt_py_tensor_converter,
                          &t, &op, &async_op) ||
        check_tensor(&c, t, true, "all_reduce", "tensor") < 0) {
        return NULL;
    }
    PG_OR_NULL(self, pg);
    dt_work *w = NULL;
    dt_status s = pg->ops->allreduce(pg, &w, dt_tensor_data(t),
                                     (size_t)dt_tensor_numel(t), t->dtype,
                                     (dt_reduce_op)op);
    return finish(s, w, &c, async_op);
}

static PyObject *
coll_broadcast(py_pg *self, PyObject *args)
{
    dt_tensor *t;
    int root, async_op = 0;
    call c = {0};
    if (!PyArg_ParseTuple(args, "O&i|p:broadcast", dt_py_tensor_converter,
                          &t, &root, &async_op) ||
        check_tensor(&c, t, true, "broadcast", "tensor") < 0) {
        return NULL;
    }
    PG_OR_NULL(self, pg);
    dt_work *w = NULL;
    dt_status s = pg->ops->broadcast(pg, &w, dt_tensor_data(t),
                                     (size_t)dt_tensor_numel(t), t->dtype,
                                     root);
    return finish(s, w, &c, async_op);
}

static PyObject *
coll_reduce(py_pg *self, PyObject *args)
{
    dt_tensor *t;
    int op, root, async_op = 0;
    call c = {0};
    if (!PyArg_ParseTuple(args, "O&ii|p:reduce", dt_py_tensor_converter, &t,
                          &op, &root, &async_op) ||
        check_tensor(&c, t, true, "reduce", "tensor") < 0) {
        return NULL;
    }
    PG_OR_NULL(self, pg);
    dt_work *w = NULL;
    dt_status s = pg->ops->reduce(pg, &w, dt_tensor_data(t),
                                  (size_t)dt_tensor_numel(t), t->dtype,
                                  (dt_reduce_op)op, root);
    return finish(s, w, &c, async_op);
}

/* out holds size * numel(in) elements of in's dtype. */
static int
check_gathered(call *c, dt_tensor *out, dt_tensor *in, int size, bool writes,
               const char *op, const char *out_name)
{
    if (check_tensor(c, out, writes, op, out_name) < 0 ||
        check_same_dtype(out, in, op) < 0 ||
        check_numel(out, size * dt_tensor_numel(in), op, out_name) < 0) {
        return -1;
    }
    return 0;
}

/* counts: None, or `size` element counts summing to numel(t). */
static int
parse_counts(PyObject *o, size_t **out, dt_tensor *t, int size,
             const char *op, const char *arg)
{
    *out = NULL;
    if (o == Py_None) {
        if (dt_tensor_numel(t) % size != 0) {
            PyErr_Format(PyExc_ValueError, "%s: '%s' has %lld elements, "
                         "not divisible by the group size %d", op, arg,
                         (long long)dt_tensor_numel(t), size);
            return -1;
        }
        return 0;
    }
    int64_t *tmp = PyMem_Malloc((size_t)size * sizeof *tmp);
    *out = PyMem_Malloc((size_t)size * sizeof **out);
    int n = tmp && *out ? dt_py_parse_int_list(o, tmp, size, op)
                        : (PyErr_NoMemory(), -1);
    int64_t sum = 0;
    for (int i = 0; i < n; i++) {
        if (tmp[i] < 0) {
            n = -2;
            break;
        }
        sum += tmp[i];
        (*out)[i] = (size_t)tmp[i];
    }
    if (n >= 0 && (n != size || sum != dt_tensor_numel(t))) {
        PyErr_Format(PyExc_ValueError, "%s: %s counts must be %d numbers "
                     "summing to %lld elements", op, arg, size,
                     (long long)dt_tensor_numel(t));
        n = -1;
    } else if (n == -2) {
        PyErr_Format(PyExc_ValueError, "%s: %s counts must not be "
                     "negative", op, arg);
    }
    PyMem_Free(tmp);
    if (n < 0) {
        PyMem_Free(*out);
        *out = NULL;
        return -1;
    }
    return 0;
}

static PyObject *
coll_allgather(py_pg *self, PyObject *args)
{
    dt_tensor *out, *in;
    PyObject *counts_obj = Py_None;
    int async_op = 0;
    call c = {0};
    size_t *counts = NULL;
    if (!PyArg_ParseTuple(args, "O&O&|Op:allgather", dt_py_tensor_converter,
                          &out, dt_py_tensor_converter, &in, &counts_obj,
                          &async_op)) {
        return NULL;
    }
    PG_OR_NULL(self, pg);
    if (check_tensor(&c, in, false, "all_gather", "input") < 0) {
        return NULL;
    }
    if (counts_obj == Py_None) {
        if (check_gathered(&c, out, in, pg->size, true, "all_gather",
                           "output") < 0) {
            return NULL;
        }
    } else if (check_tensor(&c, out, true, "all_gather", "output") < 0 ||
               check_same_dtype(out, in, "all_gather") < 0 ||
               parse_counts(counts_obj, &counts, out, pg->size,
                            "all_gather", "output") < 0) {
        return NULL;
    }
    dt_work *w = NULL;
    dt_status s = pg->ops->allgather(pg, &w, dt_tensor_data(out), counts,
                                     dt_tensor_data(in),
                                     (size_t)dt_tensor_numel(in), in->dtype);
    PyMem_Free(counts);
    return finish(s, w, &c, async_op);
}

static PyObject *
coll_gather(py_pg *self, PyObject *args)
{
    PyObject *out_obj;
    dt_tensor *in, *out = NULL;
    int root, async_op = 0;
    call c = {0};
    if (!PyArg_ParseTuple(args, "OO&i|p:gather", &out_obj,
                          dt_py_tensor_converter, &in, &root, &async_op)) {
        return NULL;
    }
    PG_OR_NULL(self, pg);
    if (check_tensor(&c, in, false, "gather", "input") < 0) {
        return NULL;
    }
    if (pg->rank == root) {
        if (!dt_py_tensor_converter(out_obj, &out) ||
            check_gathered(&c, out, in, pg->size, true, "gather",
                           "gather_list") < 0) {
            return NULL;
        }
    }
    dt_work *w = NULL;
    dt_status s = pg->ops->gather(pg, &w, out ? dt_tensor_data(out) : NULL,
                                  dt_tensor_data(in),
                                  (size_t)dt_tensor_numel(in), in->dtype,
                                  root);
    return finish(s, w, &c, async_op);
}

static PyObject *
coll_scatter(py_pg *self, PyObject *args)
{
    PyObject *in_obj;
    dt_tensor *out, *in = NULL;
    int root, async_op = 0;
    call c = {0};
    if (!PyArg_ParseTuple(args, "O&Oi|p:scatter", dt_py_tensor_converter,
                          &out, &in_obj, &root, &async_op)) {
        return NULL;
    }
    PG_OR_NULL(self, pg);
    if (check_tensor(&c, out, true, "scatter", "output") < 0) {
        return NULL;
    }
    if (pg->rank == root) {
        if (!dt_py_tensor_converter(in_obj, &in) ||
            check_gathered(&c, in, out, pg->size, false, "scatter",
                           "scatter_list") < 0) {
            return NULL;
        }
    }
    dt_work *w = NULL;
    dt_status s = pg->ops->scatter(pg, &w, dt_tensor_data(out),
                                   in ? dt_tensor_data(in) : NULL,
                                   (size_t)dt_tensor_numel(out), out->dtype,
                                   root);
    return finish(s, w, &c, async_op);
}

static PyObject *
coll_reduce_scatter(py_pg *self, PyObject *args)
{
    dt_tensor *out, *in;
    int op, async_op = 0;
    call c = {0};
    if (!PyArg_ParseTuple(args, "O&O&i|p:reduce_scatter",
                          dt_py_tensor_converter, &out,
                          dt_py_tensor_converter, &in, &op, &async_op)) {
        return NULL;
    }
    PG_OR_NULL(self, pg);
    if (check_tensor(&c, out, true, "reduce_scatter", "output") < 0 ||
        check_gathered(&c, in, out, pg->size, false, "reduce_scatter",
                       "input") < 0) {
        return NULL;
    }
    dt_work *w = NULL;
    dt_status s = pg->ops->reduce_scatter(pg, &w, dt_tensor_data(out),
                                          dt_tensor_data(in),
                                          (size_t)dt_tensor_numel(out),
                                          out->dtype, (dt_reduce_op)op);
    return finish(s, w, &c, async_op);
}

static PyObject *
coll_alltoall(py_pg *self, PyObject *args)
{
    dt_tensor *out, *in;
    PyObject *out_splits, *in_splits;
    int async_op = 0;
    call c = {0};
    if (!PyArg_ParseTuple(args, "O&O&OO|p:alltoall", dt_py_tensor_converter,
                          &out, dt_py_tensor_converter, &in, &out_splits,
                          &in_splits, &async_op)) {
        return NULL;
    }
    PG_OR_NULL(self, pg);
    size_t *oc = NULL, *ic = NULL;
    if (check_tensor(&c, in, false, "all_to_all", "input") < 0 ||
        check_tensor(&c, out, true, "all_to_all", "output") < 0 ||
        check_same_dtype(out, in, "all_to_all") < 0 ||
        parse_counts(out_splits, &oc, out, pg->size, "all_to_all",
                     "output") < 0 ||
        parse_counts(in_splits, &ic, in, pg->size, "all_to_all",
                     "input") < 0) {
        PyMem_Free(oc);
        return NULL;
    }
    if (!oc && !ic && dt_tensor_numel(in) != dt_tensor_numel(out)) {
        PyErr_Format(PyExc_ValueError, "all_to_all: output has %lld "
                     "elements and input %lld; without splits they must "
                     "match", (long long)dt_tensor_numel(out),
                     (long long)dt_tensor_numel(in));
        return NULL;
    }
    dt_work *w = NULL;
    size_t each = (size_t)dt_tensor_numel(in) / (size_t)pg->size;
    dt_status s = pg->ops->alltoall(pg, &w, dt_tensor_data(out), oc,
                                    dt_tensor_data(in), ic, each, in->dtype);
    PyMem_Free(oc);
    PyMem_Free(ic);
    return finish(s, w, &c, async_op);
}

static PyObject *
coll_barrier(py_pg *self, PyObject *args)
{
    int async_op = 0;
    call c = {0};
    if (!PyArg_ParseTuple(args, "|p:barrier", &async_op)) {
        return NULL;
    }
    PG_OR_NULL(self, pg);
    dt_work *w = NULL;
    dt_status s = pg->ops->barrier(pg, &w);
    return finish(s, w, &c, async_op);
}

static PyObject *
coll_p2p(py_pg *self, PyObject *args, bool send)
{
    dt_tensor *t;
    int peer, async_op = 0;
    unsigned long tag;
    call c = {0};
    if (!PyArg_ParseTuple(args, send ? "O&ik|p:send" : "O&ik|p:recv",
                          dt_py_tensor_converter, &t, &peer, &tag,
                          &async_op) ||
        check_tensor(&c, t, !send, send ? "send" : "recv", "tensor") < 0) {
        return NULL;
    }
    if (tag > UINT32_MAX) {
        PyErr_Format(PyExc_ValueError, "%s: tag must be in [0, 2**32), got "
                     "%lu", send ? "send" : "recv", tag);
        return NULL;
    }
    PG_OR_NULL(self, pg);
    dt_work *w = NULL;
    size_t nbytes = (size_t)dt_tensor_numel(t) * dt_dtype_size(t->dtype);
    dt_status s = send ? pg->ops->send(pg, &w, dt_tensor_data(t), nbytes,
                                       peer, (uint32_t)tag)
                       : pg->ops->recv(pg, &w, dt_tensor_data(t), nbytes,
                                       peer, (uint32_t)tag);
    return finish(s, w, &c, async_op);
}

static PyObject *
coll_send(py_pg *self, PyObject *args)
{
    return coll_p2p(self, args, true);
}

static PyObject *
coll_recv(py_pg *self, PyObject *args)
{
    return coll_p2p(self, args, false);
}

PyMethodDef dt_py_pg_coll_methods[] = {
    {"allreduce", (PyCFunction)coll_allreduce, METH_VARARGS,
     "allreduce(tensor, op, async_op=False)\n--\n\nIn place."},
    {"broadcast", (PyCFunction)coll_broadcast, METH_VARARGS,
     "broadcast(tensor, root, async_op=False)\n--\n\nIn place."},
    {"reduce", (PyCFunction)coll_reduce, METH_VARARGS,
     "reduce(tensor, op, root, async_op=False)\n--\n\nIn place; the "
     "result is on root."},
    {"allgather", (PyCFunction)coll_allgather, METH_VARARGS,
     "allgather(output, input, counts=None, async_op=False)\n--\n\n"
     "output: size * numel(input) elements, rank-major; with counts, "
     "counts[i] elements from rank i."},
    {"gather", (PyCFunction)coll_gather, METH_VARARGS,
     "gather(output_or_None, input, root, async_op=False)\n--\n\n"
     "output (root only): size * numel(input) elements."},
    {"scatter", (PyCFunction)coll_scatter, METH_VARARGS,
     "scatter(output, input_or_None, root, async_op=False)\n--\n\n"
     "input (root only): size * numel(output) elements."},
    {"reduce_scatter", (PyCFunction)coll_reduce_scatter, METH_VARARGS,
     "reduce_scatter(output, input, op, async_op=False)\n--\n\n"
     "input: size * numel(output) elements."},
    {"alltoall", (PyCFunction)coll_alltoall, METH_VARARGS,
     "alltoall(output, input, output_splits, input_splits, "
     "async_op=False)\n--\n\nSplits: None (equal) or per-rank element "
     "counts."},
    {"barrier", (PyCFunction)coll_barrier, METH_VARARGS,
     "barrier(async_op=False)\n--\n\n"},
    {"send", (PyCFunction)coll_send, METH_VARARGS,
     "send(tensor, dst, tag, async_op=False)\n--\n\n"},
    {"recv", (PyCFunction)coll_recv, METH_VARARGS,
     "recv(tensor, src, tag, async_op=False)\n--\n\nsrc -1: any rank."},
    {NULL, NULL, 0, NULL} /* sentinel */
};
