/* py_function.c: graph nodes for Python autograd.Functions
 * (dtrain/autograd/function.py). The node's context holds the Python ctx
 * and backward; the node's backward takes the GIL (the engine runs
 * without it), calls Python, and checks and unwraps what comes back.
 * A Python exception reaches the caller of backward() through
 * dt_py_keep_error, as hooks' exceptions do. */
#include "../autograd/autograd.h"
#include "glue.h"

typedef struct fn_ctx {
    PyObject *ctx;            /* the Python ctx object (owned) */
    PyObject *backward;       /* backward(ctx, grads) -> grads (owned) */
    char *name;               /* "ExpBackward": the node's name */
    int num_inputs;
    bool is_tensor[];         /* [num_inputs]: forward input was a Tensor */
} fn_ctx;

static void
fn_ctx_free(void *p)
{
    fn_ctx *c = p;
    PyGILState_STATE g = PyGILState_Ensure();
    Py_XDECREF(c->ctx);
    Py_XDECREF(c->backward);
    PyGILState_Release(g);
    free(c->name);
    free(c);
}

/* ---------------------------------------------------------------------- */
/* saved tensors live in the Python ctx: drop them once the graph is freed */

/* End of a backward that ran node n: if that backward freed the graph
 * (no retain_graph), the ctx drops its saved tensors, as PyTorch frees
 * them, and later access raises the "second time" error. */
static dt_status
release_saved(void *p)
{
    dt_node *n = p;
    if (!n->released) {
        return DT_OK;
    }
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *res = PyObject_CallMethod(((fn_ctx *)n->ctx)->ctx,
                                        "_free_saved", NULL);
    dt_status s = res ? DT_OK : dt_py_keep_error(n->name);
    Py_XDECREF(res);
    PyGILState_Release(g);
    return s;
}

static void
release_node(void *p)
{
    dt_node_release(p);
}

/* ---------------------------------------------------------------------- */
/* the node's backward                                                     */

/* grad_outputs as a tuple of Tensors, None where no gradient arrived. */
static PyObject *
wrap_grads(const dt_node *n, dt_tensor *const *grad_outputs)
{
    PyObject *tup = PyTuple_New(n->num_outputs);
    for (int o = 0; tup && o < n->num_outputs; o++) {
        PyObject *g = Py_None;
        if (grad_outputs[o]) {
            dt_tensor_retain(grad_outputs[o]);
            g = dt_py_wrap(grad_outputs[o]);
        } else {
            Py_INCREF(g);
        }
        if (!g) {
            Py_CLEAR(tup);
            break;
        }
        PyTuple_SET_ITEM(tup, o, g);
    }
    return tup;
}

/* Checks one returned gradient (borrowed `g`) and stores it in
 * grad_inputs[i] where the input needs one. -1 with an exception set. */
static int
take_grad(const dt_node *n, dt_tensor **grad_inputs, int i, PyObject *g)
{
    const fn_ctx *c = n->ctx;
    if (g == Py_None) {
        return 0;
    }
    dt_tensor *t = dt_py_unwrap(g);
    if (!t) {
        PyErr_Format(PyExc_TypeError, "function %s returned %s at position "
                     "%d: expected Tensor or None", n->name,
                     Py_TYPE(g)->tp_name, i + 1);
        return -1;
    }
    if (i >= c->num_inputs || !c->is_tensor[i]) {
        PyErr_Format(PyExc_RuntimeError, "function %s returned a gradient "
                     "different than None at position %d, but the "
                     "corresponding forward input was not a Variable",
                     n->name, i + 1);
        return -1;
    }
    if (dt_node_needs_grad(n, i)) {
        dt_tensor_retain(t);
        grad_inputs[i] = t;
    }
    return 0;
}

/* The Python backward's result: one gradient per forward input (a lone
 * Tensor counts as a 1-tuple; extra trailing Nones are allowed, as in
 * PyTorch). -1 with an exception set. */
static int
take_grads(const dt_node *n, dt_tensor **grad_inputs, PyObject *res)
{
    const fn_ctx *c = n->ctx;
    bool seq = PyTuple_Check(res) || PyList_Check(res);
    PyObject *fast = seq ? PySequence_Fast(res, "") : PyTuple_Pack(1, res);
    if (!fast) {
        return -1;
    }
    Py_ssize_t got = PySequence_Fast_GET_SIZE(fast);
    bool count_ok = got >= c->num_inputs;
    for (Py_ssize_t i = c->num_inputs; count_ok && i < got; i++) {
        count_ok = PySequence_Fast_GET_ITEM(fast, i) == Py_None;
    }
    int rc = 0;
    if (!count_ok) {
        PyErr_Format(PyExc_RuntimeError, "function %s returned an incorrect "
                     "number of gradients (expected %d, got %zd)", n->name,
                     c->num_inputs, got);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < c->num_inputs; i++) {
        rc = take_grad(n, grad_inputs, i, PySequence_Fast_GET_ITEM(fast, i));
    }
    Py_DECREF(fast);
    return rc;
}

static dt_status
function_backward(dt_node *n, dt_tensor **grad_inputs,
                  dt_tensor *const *grad_outputs)
{
    fn_ctx *c = n->ctx;
    PyGILState_STATE g = PyGILState_Ensure();
    dt_status s = DT_OK;
    PyObject *res = NULL, *grads = wrap_grads(n, grad_outputs);
    if (grads) {
        res = PyObject_CallFunctionObjArgs(c->backward, c->ctx, grads, NULL);
    }
    if (!res || take_grads(n, grad_inputs, res) < 0) {
        for (int i = 0; i < n->num_inputs; i++) {
            dt_tensor_release(grad_inputs[i]);
            grad_inputs[i] = NULL;
        }
        s = dt_py_keep_error(n->name);
    }
    Py_XDECREF(res);
    Py_XDECREF(grads);
    if (s == DT_OK) {
        dt_node_retain(n);
        s = dt_autograd_queue_callback(release_saved, n, release_node);
        if (s != DT_OK) {
            dt_node_release(n);
        }
    }
    PyGILState_Release(g);
    return s;
}

/* ---------------------------------------------------------------------- */
/* recording                                                               */

/* Borrowed Tensors of a tuple; None becomes NULL when allow_none. */
static int
unwrap_tuple(PyObject *tup, dt_tensor **out, bool allow_none,
             const char *what)
{
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tup); i++) {
        PyObject *o = PyTuple_GET_ITEM(tup, i);
        out[i] = dt_py_unwrap(o);
        if (!out[i] && !(allow_none && o == Py_None)) {
            PyErr_Format(PyExc_TypeError, "_function_record: %s[%zd] must "
                         "be a Tensor%s, not %s", what, i,
                         allow_none ? " or None" : "", Py_TYPE(o)->tp_name);
            return -1;
        }
    }
    return 0;
}

/* An output sharing an input's memory is a view of it: in-place writes
 * to it are refused, as for the view ops. */
static void
mark_views(dt_tensor *const *outs, int nout, dt_tensor *const *ins, int nin)
{
    for (int o = 0; o < nout; o++) {
        for (int i = 0; i < nin; i++) {
            if (ins[i] && ins[i]->storage == outs[o]->storage) {
                outs[o]->ag->is_view = true;
            }
        }
    }
}

static fn_ctx *
fn_ctx_new(PyObject *ctx, PyObject *backward, const char *name,
           dt_tensor *const *ins, int nin)
{
    fn_ctx *c = calloc(1, sizeof *c + (size_t)nin * sizeof(bool));
    char *copy = c ? strdup(name) : NULL;
    if (!copy) {
        free(c);
        PyErr_NoMemory();
        return NULL;
    }
    c->ctx = Py_NewRef(ctx);
    c->backward = Py_NewRef(backward);
    c->name = copy;
    c->num_inputs = nin;
    for (int i = 0; i < nin; i++) {
        c->is_tensor[i] = ins[i] != NULL;
    }
    return c;
}

static PyObject *
function_record(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *ctx, *backward, *ins_o, *outs_o;
    const char *name;
    dt_tensor **ins = NULL, **outs = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "OOO!O!s:_function_record", &ctx, &backward,
                          &PyTuple_Type, &ins_o, &PyTuple_Type, &outs_o,
                          &name)) {
        return NULL;
    }
    Py_ssize_t nin = PyTuple_GET_SIZE(ins_o), nout = PyTuple_GET_SIZE(outs_o);
    if (nin > INT_MAX || nout < 1 || nout > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "_function_record: needs at least "
                        "one output");
        return NULL;
    }
    ins = PyMem_Calloc((size_t)(nin ? nin : 1), sizeof *ins);
    outs = PyMem_Calloc((size_t)nout, sizeof *outs);
    if (!ins || !outs) {
        PyErr_NoMemory();
        goto done;
    }
    if (unwrap_tuple(ins_o, ins, true, "inputs") < 0 ||
        unwrap_tuple(outs_o, outs, false, "outputs") < 0) {
        goto done;
    }
    fn_ctx *c = fn_ctx_new(ctx, backward, name, ins, (int)nin);
    if (!c) {
        goto done;
    }
    dt_node *n = NULL;
    dt_status s = dt_node_record(&n, c->name, function_backward,
                                 (const dt_tensor *const *)ins, (int)nin,
                                 outs, (int)nout);
    if (s != DT_OK) {
        fn_ctx_free(c);
        dt_py_raise(s);
        goto done;
    }
    n->ctx = c;
    n->free_ctx = fn_ctx_free;
    mark_views(outs, (int)nout, ins, (int)nin);
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(ins);
    PyMem_Free(outs);
    return result;
}

PyMethodDef dt_py_function_functions[] = {
    {"_function_record", function_record, METH_VARARGS,
     "_function_record(ctx, backward, inputs, outputs, name): makes a node "
     "named `name` the grad_fn of `outputs` (Tensors) with an edge to each "
     "of `inputs` (Tensor or None); its backward calls "
     "backward(ctx, grads)."},
    {NULL} /* sentinel */
};
