/* py_index_key.c: Tensor.__getitem__ and __setitem__.
 *
 * A key (an int, slice, None, ..., bool, index tensor, sequence or mask,
 * or a tuple of these) is parsed as PyTorch's applySlicing does: ints,
 * slices, None and ... are applied one by one as views; index tensors are
 * collected into an index list for the dims they stand at. Without index
 * tensors the result is the view (sharing storage); with them, a gather
 * (dt_index) or a scatter (dt_index_assign). The views are also summed up
 * as a dt_basic_key, so that autograd records them as one node.
 *
 * Unlike NumPy, an int next to index tensors is a select (a view step),
 * not an index, so x[0, :, [0, 1]] has shape (3, 2) for x of (2, 3, 4),
 * as in PyTorch. A list is always an index (NumPy's rule, and PyTorch's
 * announced one), never a tuple in disguise.
 */
#include "glue.h"

#include "../autograd/autograd.h"
#include "../autograd/views.h"
#include "../ops/index.h"

/* More items than this cannot make a valid key for DT_MAX_DIMS dims. */
#define MAX_ITEMS 64

typedef enum key_kind {
    KEY_NONE, KEY_ELLIPSIS, KEY_BOOL, KEY_INT, KEY_SLICE, KEY_TENSOR,
    KEY_MASK
} key_kind;

typedef struct key_item {
    key_kind kind;
    PyObject *obj;          /* borrowed: the item itself */
    int64_t value;          /* KEY_INT index, KEY_BOOL truth */
    dt_tensor *tensor;      /* KEY_TENSOR / KEY_MASK: owned */
} key_item;

typedef struct parsed_key {
    dt_tensor *view;                 /* basic indexing applied: owned */
    dt_tensor *idx[DT_MAX_DIMS];     /* index list; NULL = ':'; owned */
    int n;                           /* entries in idx */
    int covered;                     /* dims of view the entries cover */
    bool advanced;                   /* any index tensor */
    dt_basic_key key;                /* the views, summed up for autograd */
    int src[DT_MAX_DIMS];            /* per dim of view: t's dim, -1 new */
} parsed_key;

static void
parsed_key_clear(parsed_key *k)
{
    dt_tensor_release(k->view);
    for (int i = 0; i < k->n; i++) {
        dt_tensor_release(k->idx[i]);
    }
}

static void
items_clear(key_item *items, int n)
{
    for (int i = 0; i < n; i++) {
        dt_tensor_release(items[i].tensor);
    }
}

/* ---------------------------------------------------------------------- */
/* classifying items                                                       */

/* A list or array as a tensor, through dtrain.as_tensor; an empty list
 * becomes an int64 index, as in PyTorch. */
static int
sequence_to_tensor(PyObject *seq, dt_tensor **out)
{
    PyObject *mod = PyImport_ImportModule("dtrain");
    PyObject *res = mod ? PyObject_CallMethod(mod, "as_tensor", "O", seq)
                        : NULL;
    Py_XDECREF(mod);
    dt_tensor *t = res ? dt_py_unwrap(res) : NULL;
    if (!t) {
        Py_XDECREF(res);
        return -1;
    }
    dt_status s = DT_OK;
    if (dt_tensor_numel(t) == 0 && (PyList_Check(seq) || PyTuple_Check(seq))
        && t->dtype != DT_INT64 && t->dtype != DT_INT32) {
        s = dt_to_dtype(out, t, DT_INT64);
    } else {
        dt_tensor_retain(t);
        *out = t;
    }
    Py_DECREF(res);
    if (s != DT_OK) {
        dt_py_raise(s);
        return -1;
    }
    return 0;
}

/* Sorts a tensor item: 0-dim ints select, 0-dim bools act as Python
 * bools, bool/uint8 tensors are masks. Steals `t`. */
static int
classify_tensor(key_item *it, dt_tensor *t)
{
    bool mask = t->dtype == DT_BOOL || t->dtype == DT_UINT8;
    if (!mask && t->dtype != DT_INT64 && t->dtype != DT_INT32) {
        PyErr_Format(PyExc_IndexError, "tensors used as indices must be "
                     "long, int, byte or bool tensors (got %s)",
                     dt_dtype_name(t->dtype));
        dt_tensor_release(t);
        return -1;
    }
    if (t->ndim == 0) {
        it->kind = mask ? KEY_BOOL : KEY_INT;
        it->value = t->dtype == DT_INT64 ? *(int64_t *)dt_tensor_data(t)
                    : (int64_t)dt_load_double(dt_tensor_data(t), t->dtype);
        dt_tensor_release(t);
        return 0;
    }
    it->kind = mask ? KEY_MASK : KEY_TENSOR;
    it->tensor = t;
    return 0;
}

static int
classify_int(key_item *it, PyObject *o)
{
    PyObject *ix = PyNumber_Index(o);
    long long v = ix ? PyLong_AsLongLong(ix) : -1;
    Py_XDECREF(ix);
    if (v == -1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_Format(PyExc_IndexError, "index %R is out of range", o);
        }
        return -1;
    }
    it->kind = KEY_INT;
    it->value = v;
    return 0;
}

static int
classify(key_item *it, PyObject *o)
{
    dt_tensor *t = dt_py_unwrap(o);
    it->obj = o;
    it->tensor = NULL;
    if (t) {
        dt_tensor_retain(t);
        return classify_tensor(it, t);
    }
    if (o == Py_None || o == Py_Ellipsis) {
        it->kind = o == Py_None ? KEY_NONE : KEY_ELLIPSIS;
        return 0;
    }
    if (PyBool_Check(o)) {
        it->kind = KEY_BOOL;
        it->value = o == Py_True;
        return 0;
    }
    if (PyLong_Check(o)) {
        return classify_int(it, o);
    }
    if (PySlice_Check(o)) {
        it->kind = KEY_SLICE;
        return 0;
    }
    if (PySequence_Check(o) && !PyUnicode_Check(o) && !PyBytes_Check(o)) {
        return sequence_to_tensor(o, &t) < 0 ? -1 : classify_tensor(it, t);
    }
    if (PyIndex_Check(o)) {   /* NumPy integer scalars */
        return classify_int(it, o);
    }
    PyErr_Format(PyExc_IndexError, "only integers, slices (`:`), ellipsis "
                 "(`...`), None and long or byte Variables are valid "
                 "indices (got %s)", Py_TYPE(o)->tp_name);
    return -1;
}

/* Fills items from the key; returns how many, or -1. */
static int
classify_key(key_item *items, PyObject *key)
{
    if (!PyTuple_Check(key)) {
        return classify(&items[0], key) < 0 ? -1 : 1;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(key);
    if (n > MAX_ITEMS) {
        PyErr_Format(PyExc_IndexError, "too many indices (%zd)", n);
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (classify(&items[i], PyTuple_GET_ITEM(key, i)) < 0) {
            items_clear(items, (int)i);
            return -1;
        }
    }
    return (int)n;
}

/* How many dims of the tensor the items consume (PyTorch's
 * count_specified_dimensions). */
static int
count_specified(const key_item *items, int n, int ndim)
{
    int dims = 0, ellipses = 0;
    for (int i = 0; i < n; i++) {
        switch (items[i].kind) {
        case KEY_INT: case KEY_SLICE: case KEY_TENSOR: dims++; break;
        case KEY_MASK: dims += items[i].tensor->ndim; break;
        case KEY_ELLIPSIS: ellipses++; break;
        default: break;
        }
    }
    if (ellipses > 1) {
        PyErr_SetString(PyExc_IndexError,
                        "an index can only have a single ellipsis ('...')");
        return -1;
    }
    if (dims > ndim) {
        PyErr_Format(PyExc_IndexError, "too many indices for tensor of "
                     "dimension %d", ndim);
        return -1;
    }
    return dims;
}

/* ---------------------------------------------------------------------- */
/* applying items                                                          */

/* k->key follows the views: a new dim at `dim` of the view (None)... */
static void
track_new_dim(parsed_key *k, int dim)
{
    memmove(k->src + dim + 1, k->src + dim,
            (size_t)(k->view->ndim - 1 - dim) * sizeof *k->src);
    k->src[dim] = -1;
}

/* ...dim `dim` of the view narrowed (step > 0) or selected (step 0)... */
static void
track_pick(parsed_key *k, int dim, int64_t start, int64_t step)
{
    int d = k->src[dim];
    k->key.start[d] = start;
    k->key.step[d] = step;
    if (step == 0) {
        memmove(k->src + dim, k->src + dim + 1,
                (size_t)(k->view->ndim - dim) * sizeof *k->src);
    }
}

/* ...and which dims of the final view are new. */
static void
track_finish(parsed_key *k)
{
    for (int r = 0; r < k->view->ndim; r++) {
        k->key.new_dims |= (uint32_t)(k->src[r] < 0) << r;
    }
}

/* Appends `t` (stolen) to the index list at dim, covering `width` dims. */
static int
record_index(parsed_key *k, dt_tensor *t, int dim, int width)
{
    while (k->covered < dim && k->n < DT_MAX_DIMS) {
        k->idx[k->n++] = NULL;
        k->covered++;
    }
    if (k->n >= DT_MAX_DIMS) {
        dt_tensor_release(t);
        PyErr_SetString(PyExc_IndexError, "too many indices");
        return -1;
    }
    k->idx[k->n++] = t;
    k->covered += width;
    k->advanced = true;
    return 0;
}

/* Replaces k->view by the result of a view op. Takes the address: C
 * does not order argument evaluation, so step(k, f(&next), next) could
 * read next before f writes it. */
static int
step(parsed_key *k, dt_status s, dt_tensor **next)
{
    if (s != DT_OK) {
        dt_tensor_release(*next);
        dt_py_raise(s);
        return -1;
    }
    dt_tensor_release(k->view);
    k->view = *next;
    return 0;
}

/* t[True] is t[None] with an index [0] on the new dim; t[False] an empty
 * index. */
static int
apply_bool(parsed_key *k, bool value, int dim)
{
    dt_tensor *next = NULL, *ix = NULL;
    int64_t len = value;
    if (step(k, dt_unsqueeze(&next, k->view, dim), &next) < 0) {
        return -1;
    }
    track_new_dim(k, dim);
    dt_status s = dt_tensor_zeros(&ix, &len, 1, DT_INT64, DT_DEVICE_CPU);
    if (s != DT_OK) {
        dt_py_raise(s);
        return -1;
    }
    return record_index(k, ix, dim, 1);
}

static int
apply_int(parsed_key *k, int64_t i, int dim, int real_dim)
{
    dt_tensor *next = NULL;
    if (dim >= k->view->ndim) {
        PyErr_SetString(PyExc_IndexError, "too many indices");
        return -1;
    }
    int64_t size = k->view->shape[dim];
    if (i < -size || i >= size) {
        PyErr_Format(PyExc_IndexError, "index %lld is out of bounds for "
                     "dimension %d with size %lld", (long long)i, real_dim,
                     (long long)size);
        return -1;
    }
    if (step(k, dt_select(&next, k->view, dim, i), &next) < 0) {
        return -1;
    }
    track_pick(k, dim, i < 0 ? i + size : i, 0);
    return 0;
}

static int
apply_slice(parsed_key *k, PyObject *slice, int dim)
{
    Py_ssize_t start, stop, st;
    dt_tensor *next = NULL;
    if (PySlice_Unpack(slice, &start, &stop, &st) < 0) {
        return -1;
    }
    if (st < 0) {
        PyErr_SetString(PyExc_ValueError, "step must be greater than zero");
        return -1;
    }
    if (dim >= k->view->ndim) {
        PyErr_SetString(PyExc_IndexError, k->view->ndim ?
                        "too many indices" :
                        "slice() cannot be applied to a 0-dim tensor.");
        return -1;
    }
    Py_ssize_t size = (Py_ssize_t)k->view->shape[dim];
    PySlice_AdjustIndices(size, &start, &stop, st);
    if (start == 0 && stop == size && st == 1) {
        return 0;   /* ':' leaves the view as it is */
    }
    if (step(k, dt_slice(&next, k->view, dim, start, stop, st), &next) < 0) {
        return -1;
    }
    /* an empty slice starts at 0, as dt_slice places it */
    track_pick(k, dim, k->view->shape[dim] ? start : 0, st);
    return 0;
}

static int
apply_item(parsed_key *k, key_item *it, int *dim, int *real_dim, int skip)
{
    dt_tensor *next = NULL;
    switch (it->kind) {
    case KEY_NONE:
        if (step(k, dt_unsqueeze(&next, k->view, *dim), &next) < 0) {
            return -1;
        }
        track_new_dim(k, (*dim)++);
        return 0;
    case KEY_ELLIPSIS:
        *dim += skip;
        *real_dim += skip;
        return 0;
    case KEY_BOOL:
        return apply_bool(k, it->value != 0, (*dim)++);
    case KEY_INT:
        return apply_int(k, it->value, *dim, (*real_dim)++);
    case KEY_SLICE:
        (*real_dim)++;
        return apply_slice(k, it->obj, (*dim)++);
    default: {
        int width = it->kind == KEY_MASK ? it->tensor->ndim : 1;
        dt_tensor *t = it->tensor;
        it->tensor = NULL;   /* the index list owns it now */
        *dim += width;
        *real_dim += width;
        return record_index(k, t, *dim - width, width);
    }
    }
}

/* Parses `key` against t: k->view and the index list. 0 or -1. */
static int
parse_key(parsed_key *k, dt_tensor *t, PyObject *key)
{
    key_item items[MAX_ITEMS];
    memset(k, 0, sizeof *k);
    dt_tensor_retain(t);
    k->view = t;
    dt_basic_key_init(&k->key, t->ndim);
    for (int d = 0; d < t->ndim; d++) {
        k->src[d] = d;
    }
    int n = classify_key(items, key);
    if (n < 0) {
        return -1;
    }
    int specified = count_specified(items, n, t->ndim);
    int rc = specified < 0 ? -1 : 0, dim = 0, real_dim = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rc = apply_item(k, &items[i], &dim, &real_dim, t->ndim - specified);
    }
    items_clear(items, n);
    if (rc == 0) {
        track_finish(k);
    }
    return rc;
}

/* ---------------------------------------------------------------------- */
/* the slots                                                               */

PyObject *
dt_py_getitem(PyObject *self, PyObject *key)
{
    dt_tensor *t = ((dt_py_tensor *)self)->t, *out = NULL;
    parsed_key k;
    if (PyLong_CheckExact(key)) {   /* the common case, kept short */
        long long i = PyLong_AsLongLong(key);
        if (!(i == -1 && PyErr_Occurred())) {
            dt_status s = dt_ag_select(&out, t, 0, i);
            return s == DT_OK ? dt_py_wrap(out) : dt_py_raise(s);
        }
        PyErr_Clear();
    }
    if (parse_key(&k, t, key) < 0) {
        parsed_key_clear(&k);
        return NULL;
    }
    dt_status s = DT_OK;
    if (!k.advanced || k.view != t) {
        /* the basic part: one differentiable view */
        s = dt_index_view(&k.view, t, &k.key);
    }
    if (s == DT_OK && !k.advanced) {
        out = k.view;
        k.view = NULL;
    } else if (s == DT_OK) {
        s = dt_index(&out, k.view, k.idx, k.n);
    }
    parsed_key_clear(&k);
    return s == DT_OK ? dt_py_wrap(out) : dt_py_raise(s);
}

/* t[mask] = scalar is masked_fill_ (one pass, as in PyTorch). Returns 1
 * when it applied, 0 when the general path must run, -1 on error. */
static int
assign_masked(dt_tensor *t, PyObject *key, const dt_tensor *value)
{
    dt_tensor *m = dt_py_unwrap(key), *mv = NULL, *mb = NULL, *v0 = NULL;
    int64_t sh[DT_MAX_DIMS], st[DT_MAX_DIMS];
    /* a value that requires grad takes the general path, whose node
     * passes it its gradient */
    if (!m || (m->dtype != DT_BOOL && m->dtype != DT_UINT8) ||
        dt_requires_grad(value) ||
        m->ndim == 0 || m->ndim > t->ndim || dt_tensor_numel(value) != 1) {
        return 0;
    }
    for (int d = 0; d < t->ndim; d++) {
        if (d < m->ndim && m->shape[d] != t->shape[d]) {
            return 0;   /* the general path names the mismatch */
        }
        sh[d] = d < m->ndim ? m->shape[d] : 1;
        st[d] = d < m->ndim ? m->strides[d] : 0;
    }
    dt_status s = dt_view_as_strided(&mv, m, sh, st, t->ndim, m->offset);
    if (s == DT_OK) {
        s = dt_to_dtype(&mb, mv, DT_BOOL);
    }
    if (s == DT_OK) {
        s = dt_view_as_strided(&v0, value, value->shape, value->strides, 0,
                               value->offset);
    }
    if (s == DT_OK) {
        s = dt_masked_fill(&t, t, mb, v0);
    }
    dt_tensor_release(mv);
    dt_tensor_release(mb);
    dt_tensor_release(v0);
    return s == DT_OK ? 1 : (dt_py_raise(s), -1);
}

int
dt_py_setitem(PyObject *self, PyObject *key, PyObject *value)
{
    dt_tensor *t = ((dt_py_tensor *)self)->t, *v = NULL;
    parsed_key k;
    if (!value) {
        PyErr_SetString(PyExc_TypeError,
                        "Tensor does not support deleting items");
        return -1;
    }
    if (dt_py_as_tensor(value, &v, "__setitem__", "value") < 0) {
        return -1;
    }
    int rc = assign_masked(t, key, v);
    if (rc != 0) {
        dt_tensor_release(v);
        return rc < 0 ? -1 : 0;
    }
    rc = parse_key(&k, t, key);
    if (rc == 0) {
        dt_status s = dt_index_assign(t, &k.key, k.view, k.idx, k.n, v);
        rc = s == DT_OK ? 0 : (dt_py_raise(s), -1);
    }
    parsed_key_clear(&k);
    dt_tensor_release(v);
    return rc;
}
