/* py_autograd.c: the autograd surface: requires_grad/grad/grad_fn/is_leaf,
 * backward and grad, grad mode, and Python hooks wrapped as C hooks (they
 * take the GIL only while the Python callable runs). */
#include "../autograd/autograd.h"
#include "glue.h"

#define SELF_T (((dt_py_tensor *)self)->t)

/* A Python exception raised inside a hook during backward: the engine
 * only sees a dt_status, so the original is kept here and re-raised. */
static _Thread_local PyObject *pending_type, *pending_value, *pending_tb;

dt_status
dt_py_keep_error(const char *where)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (!pending_type) {
        pending_type = t;
        pending_value = v;
        pending_tb = tb;
    } else {
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    }
    return dt_fail(DT_ERR_RUNTIME, "%s raised an exception", where);
}

/* Raises the pending hook exception if there is one, else the status. */
static PyObject *
raise_backward_error(dt_status s)
{
    if (pending_type) {
        PyErr_Restore(pending_type, pending_value, pending_tb);
        pending_type = pending_value = pending_tb = NULL;
        return NULL;
    }
    return dt_py_raise(s);
}

static void
free_pyobject(void *ctx)
{
    PyGILState_STATE g = PyGILState_Ensure();
    Py_DECREF((PyObject *)ctx);
    PyGILState_Release(g);
}

/* ---------------------------------------------------------------------- */
/* hooks                                                                   */

static dt_status
grad_hook_trampoline(void *ctx, dt_tensor **grad)
{
    PyGILState_STATE g = PyGILState_Ensure();
    dt_status s = DT_OK;
    dt_tensor_retain(*grad);
    PyObject *arg = dt_py_wrap(*grad);
    PyObject *res = arg ? PyObject_CallOneArg((PyObject *)ctx, arg) : NULL;
    if (!res) {
        s = dt_py_keep_error("a tensor hook");
    } else if (res != Py_None) {
        dt_tensor *t = dt_py_unwrap(res);
        if (!t) {
            PyErr_Format(PyExc_TypeError, "a tensor hook must return None "
                         "or a Tensor, not %s", Py_TYPE(res)->tp_name);
            s = dt_py_keep_error("a tensor hook");
        } else {
            dt_tensor_retain(t);
            dt_tensor_release(*grad);
            *grad = t;
        }
    }
    Py_XDECREF(res);
    Py_XDECREF(arg);
    PyGILState_Release(g);
    return s;
}

static dt_status
leaf_hook_trampoline(void *ctx, dt_tensor *leaf)
{
    PyGILState_STATE g = PyGILState_Ensure();
    dt_status s = DT_OK;
    dt_tensor_retain(leaf);
    PyObject *arg = dt_py_wrap(leaf);
    PyObject *res = arg ? PyObject_CallOneArg((PyObject *)ctx, arg) : NULL;
    if (!res) {
        s = dt_py_keep_error("a post-accumulate-grad hook");
    }
    Py_XDECREF(res);
    Py_XDECREF(arg);
    PyGILState_Release(g);
    return s;
}

static dt_status
callback_trampoline(void *ctx)
{
    PyGILState_STATE g = PyGILState_Ensure();
    PyObject *res = PyObject_CallNoArgs((PyObject *)ctx);
    dt_status s = res ? DT_OK : dt_py_keep_error("a backward callback");
    Py_XDECREF(res);
    PyGILState_Release(g);
    return s;
}

static PyObject *
tensor_register_hook(PyObject *self, PyObject *fn)
{
    int id = 0;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "register_hook expects a callable");
        return NULL;
    }
    dt_status s = dt_tensor_register_hook(&id, SELF_T, grad_hook_trampoline,
                                          Py_NewRef(fn), free_pyobject);
    if (s != DT_OK) {
        Py_DECREF(fn);
        return dt_py_raise(s);
    }
    return PyLong_FromLong(id);
}

static PyObject *
tensor_register_post_hook(PyObject *self, PyObject *fn)
{
    int id = 0;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "the hook must be callable");
        return NULL;
    }
    dt_status s = dt_tensor_register_post_hook(&id, SELF_T,
                                               leaf_hook_trampoline,
                                               Py_NewRef(fn), free_pyobject);
    if (s != DT_OK) {
        Py_DECREF(fn);
        return dt_py_raise(s);
    }
    return PyLong_FromLong(id);
}

static PyObject *
tensor_remove_hook(PyObject *self, PyObject *id)
{
    long v = PyLong_AsLong(id);
    if (v == -1 && PyErr_Occurred()) {
        return NULL;
    }
    return PyBool_FromLong(dt_tensor_remove_hook(SELF_T, (int)v));
}

/* ---------------------------------------------------------------------- */
/* graph nodes as Python objects (Tensor.grad_fn)                          */

typedef struct {
    PyObject_HEAD
    dt_node *node;   /* owned */
} py_node;

static PyTypeObject *node_type;

static PyObject *
node_wrap(dt_node *n)
{
    if (!n) {
        Py_RETURN_NONE;
    }
    py_node *o = PyObject_New(py_node, node_type);
    if (o) {
        dt_node_retain(n);
        o->node = n;
    }
    return (PyObject *)o;
}

static void
node_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    dt_node_release(((py_node *)self)->node);
    PyObject_Free(self);
    Py_DECREF(tp);
}

static PyObject *
node_name(PyObject *self, PyObject *unused)
{
    (void)unused;
    return PyUnicode_FromString(((py_node *)self)->node->name);
}

static PyObject *
node_repr(PyObject *self)
{
    return PyUnicode_FromFormat("<%s object at %p>",
                                ((py_node *)self)->node->name, self);
}

static PyObject *
node_next_functions(PyObject *self, void *closure)
{
    (void)closure;
    dt_node *n = ((py_node *)self)->node;
    PyObject *tup = PyTuple_New(n->num_inputs);
    for (int i = 0; tup && i < n->num_inputs; i++) {
        PyObject *fn = node_wrap(n->next[i].node);
        PyObject *pair = fn ? Py_BuildValue("(Ni)", fn, n->next[i].input_nr)
                            : NULL;
        if (!pair) {
            Py_CLEAR(tup);
            break;
        }
        PyTuple_SET_ITEM(tup, i, pair);
    }
    return tup;
}

static PyObject *
node_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || Py_TYPE(b) != Py_TYPE(a)) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    bool same = ((py_node *)a)->node == ((py_node *)b)->node;
    return PyBool_FromLong(op == Py_EQ ? same : !same);
}

static Py_hash_t
node_hash(PyObject *self)
{
    return _Py_HashPointer(((py_node *)self)->node);
}

static PyMethodDef node_methods[] = {
    {"name", node_name, METH_NOARGS, "The node's name, e.g. MulBackward0."},
    {NULL} /* sentinel */
};

static PyGetSetDef node_getset[] = {
    {"next_functions", node_next_functions, NULL,
     "((node or None, input_nr), ...) for each input", NULL},
    {NULL} /* sentinel */
};

static PyType_Slot node_slots[] = {
    {Py_tp_dealloc, node_dealloc},
    {Py_tp_repr, node_repr},
    {Py_tp_methods, node_methods},
    {Py_tp_getset, node_getset},
    {Py_tp_richcompare, node_richcompare},
    {Py_tp_hash, node_hash},
    {0, NULL} /* sentinel */
};

static PyType_Spec node_spec = {
    .name = "dtrain._C.Node",
    .basicsize = sizeof(py_node),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = node_slots,
};

/* ---------------------------------------------------------------------- */
/* Tensor attributes                                                       */

static PyObject *
get_requires_grad(PyObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(dt_requires_grad(SELF_T));
}

static int
set_requires_grad(PyObject *self, PyObject *value, void *closure)
{
    (void)closure;
    int on = value ? PyObject_IsTrue(value) : 0;
    if (on < 0) {
        return -1;
    }
    dt_status s = dt_set_requires_grad(SELF_T, on);
    return s == DT_OK ? 0 : (dt_py_raise(s), -1);
}

static PyObject *
get_grad(PyObject *self, void *closure)
{
    (void)closure;
    dt_tensor *g = SELF_T->ag ? SELF_T->ag->grad : NULL;
    if (!g) {
        Py_RETURN_NONE;
    }
    dt_tensor_retain(g);
    return dt_py_wrap(g);
}

static int
set_grad(PyObject *self, PyObject *value, void *closure)
{
    (void)closure;
    dt_tensor *g = NULL;
    if (value && value != Py_None && !(g = dt_py_unwrap(value))) {
        PyErr_Format(PyExc_TypeError, "assigned grad expected to be a Tensor "
                     "or None but got %s", Py_TYPE(value)->tp_name);
        return -1;
    }
    dt_status s = dt_set_grad(SELF_T, g);
    return s == DT_OK ? 0 : (dt_py_raise(s), -1);
}

static PyObject *
get_grad_fn(PyObject *self, void *closure)
{
    (void)closure;
    return node_wrap(SELF_T->ag ? SELF_T->ag->grad_fn : NULL);
}

static PyObject *
get_is_leaf(PyObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(dt_is_leaf(SELF_T));
}

PyGetSetDef dt_py_autograd_getset[] = {
    {"requires_grad", get_requires_grad, set_requires_grad, NULL, NULL},
    {"grad", get_grad, set_grad, "the accumulated gradient", NULL},
    {"grad_fn", get_grad_fn, NULL, "the node that made this tensor", NULL},
    {"is_leaf", get_is_leaf, NULL, NULL, NULL},
    {NULL} /* sentinel */
};

static PyObject *
tensor_requires_grad_(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"requires_grad", NULL};
    int on = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|p:requires_grad_",
                                     kwlist, &on)) {
        return NULL;
    }
    dt_status s = dt_set_requires_grad(SELF_T, on);
    return s == DT_OK ? Py_NewRef(self) : dt_py_raise(s);
}

static PyObject *
tensor_detach(PyObject *self, PyObject *unused)
{
    (void)unused;
    dt_tensor *out = NULL;
    dt_status s = dt_detach(&out, SELF_T);
    return s == DT_OK ? dt_py_wrap(out) : dt_py_raise(s);
}

static PyObject *
tensor_detach_(PyObject *self, PyObject *unused)
{
    (void)unused;
    dt_autograd_meta *m = SELF_T->ag;
    if (m && m->is_view && m->grad_fn) {
        PyErr_SetString(PyExc_RuntimeError, "Can't detach views in-place. "
                        "Use detach() instead.");
        return NULL;
    }
    if (m) {
        dt_node_release(m->grad_fn);
        m->grad_fn = NULL;
        m->requires_grad = false;
    }
    return Py_NewRef(self);
}

PyMethodDef dt_py_autograd_methods[] = {
    {"_register_hook", tensor_register_hook, METH_O, NULL},
    {"_register_post_accumulate_grad_hook", tensor_register_post_hook,
     METH_O, NULL},
    {"_remove_hook", tensor_remove_hook, METH_O, NULL},
    {"requires_grad_", (PyCFunction)(void (*)(void))tensor_requires_grad_,
     METH_VARARGS | METH_KEYWORDS, "requires_grad_(requires_grad=True)"},
    {"detach", tensor_detach, METH_NOARGS, NULL},
    {"detach_", tensor_detach_, METH_NOARGS, NULL},
    {NULL} /* sentinel */
};

/* ---------------------------------------------------------------------- */
/* backward, grad, grad mode                                               */

/* Fills ts[] (borrowed) from a sequence of Tensors (None allowed when
 * allow_none); returns the count or -1. */
static Py_ssize_t
tensor_seq(PyObject *seq, dt_tensor ***ts, bool allow_none, const char *what)
{
    PyObject *fast = PySequence_Fast(seq, "expected a sequence of Tensors");
    if (!fast) {
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    *ts = PyMem_Calloc((size_t)(n ? n : 1), sizeof **ts);
    for (Py_ssize_t i = 0; *ts && i < n; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(fast, i);   /* borrowed */
        (*ts)[i] = dt_py_unwrap(o);
        if (!(*ts)[i] && !(allow_none && o == Py_None)) {
            PyErr_Format(PyExc_TypeError, "%s: expected a Tensor at "
                         "position %zd, got %s", what, i,
                         Py_TYPE(o)->tp_name);
            PyMem_Free(*ts);
            *ts = NULL;
        }
    }
    Py_DECREF(fast);
    if (!*ts) {
        return PyErr_Occurred() ? -1 : (PyErr_NoMemory(), -1);
    }
    return n;
}

static PyObject *
run_backward(PyObject *module, PyObject *args)
{
    (void)module;
    PyObject *roots_o, *grads_o, *inputs_o = Py_None;
    int retain = 0, allow_unused = 0;
    dt_tensor **roots = NULL, **grads = NULL, **inputs = NULL;
    dt_tensor **input_grads = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTuple(args, "OOp|Op:_run_backward", &roots_o, &grads_o,
                          &retain, &inputs_o, &allow_unused)) {
        return NULL;
    }
    Py_ssize_t nroots = tensor_seq(roots_o, &roots, false, "backward");
    Py_ssize_t ngrads = nroots < 0 ? -1 : tensor_seq(grads_o, &grads, true,
                                                     "backward");
    Py_ssize_t ninputs = 0;
    if (ngrads < 0) {
        goto done;
    }
    if (ngrads != nroots) {
        PyErr_Format(PyExc_RuntimeError, "grad_tensors has %zd entries, "
                     "tensors has %zd", ngrads, nroots);
        goto done;
    }
    dt_backward_opts opts = {.retain_graph = retain};
    if (inputs_o != Py_None) {
        ninputs = tensor_seq(inputs_o, &inputs, false, "grad");
        input_grads = ninputs < 0 ? NULL
                                  : PyMem_Calloc((size_t)(ninputs ? ninputs
                                                                  : 1),
                                                 sizeof *input_grads);
        if (!input_grads) {
            goto done;
        }
        opts.inputs = inputs;
        opts.num_inputs = (int)ninputs;
        opts.input_grads = input_grads;
    }
    dt_status s;
    Py_BEGIN_ALLOW_THREADS
    s = dt_autograd_backward(roots, grads, (int)nroots, &opts);
    Py_END_ALLOW_THREADS
    if (s != DT_OK) {
        raise_backward_error(s);
        goto done;
    }
    if (!inputs) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = PyTuple_New(ninputs);
    for (Py_ssize_t i = 0; result && i < ninputs; i++) {
        if (!input_grads[i] && !allow_unused) {
            PyErr_Format(PyExc_RuntimeError, "One of the differentiated "
                         "Tensors (input %zd) appears to not have been used "
                         "in the graph. Set allow_unused=True if this is the "
                         "desired behavior.", i);
            Py_CLEAR(result);
            break;
        }
        PyObject *g = input_grads[i] ? dt_py_wrap(input_grads[i])
                                     : Py_NewRef(Py_None);
        input_grads[i] = NULL;
        if (!g) {
            Py_CLEAR(result);
            break;
        }
        PyTuple_SET_ITEM(result, i, g);
    }
done:
    for (Py_ssize_t i = 0; input_grads && i < ninputs; i++) {
        dt_tensor_release(input_grads[i]);
    }
    PyMem_Free(input_grads);
    PyMem_Free(inputs);
    PyMem_Free(grads);
    PyMem_Free(roots);
    return result;
}

static PyObject *
set_grad_enabled(PyObject *module, PyObject *on)
{
    (void)module;
    int v = PyObject_IsTrue(on);
    if (v < 0) {
        return NULL;
    }
    dt_set_grad_enabled(v);
    Py_RETURN_NONE;
}

static PyObject *
is_grad_enabled(PyObject *module, PyObject *unused)
{
    (void)module;
    (void)unused;
    return PyBool_FromLong(dt_grad_enabled());
}

static PyObject *
queue_callback(PyObject *module, PyObject *fn)
{
    (void)module;
    if (!PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "queue_callback expects a callable");
        return NULL;
    }
    dt_status s = dt_autograd_queue_callback(callback_trampoline,
                                             Py_NewRef(fn), free_pyobject);
    if (s != DT_OK) {
        Py_DECREF(fn);
        return dt_py_raise(s);
    }
    Py_RETURN_NONE;
}

PyMethodDef dt_py_autograd_functions[] = {
    {"_run_backward", run_backward, METH_VARARGS,
     "_run_backward(tensors, grad_tensors, retain_graph, inputs=None, "
     "allow_unused=False)"},
    {"_set_grad_enabled", set_grad_enabled, METH_O, NULL},
    {"is_grad_enabled", is_grad_enabled, METH_NOARGS, NULL},
    {"_queue_callback", queue_callback, METH_O,
     "Runs fn once when the current backward pass ends."},
    {NULL} /* sentinel */
};

int
dt_py_autograd_init(PyObject *module)
{
    PyObject *type = PyType_FromModuleAndSpec(module, &node_spec, NULL);
    if (!type || PyModule_AddObjectRef(module, "Node", type) < 0) {
        Py_XDECREF(type);
        return -1;
    }
    node_type = (PyTypeObject *)type;   /* the module keeps a reference */
    Py_DECREF(type);
    return PyModule_AddFunctions(module, dt_py_autograd_functions);
}
