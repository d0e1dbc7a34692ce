/* node.c: graph nodes, per-tensor autograd metadata, grad mode, saved
 * tensors and their version check. */
#include <inttypes.h>
#include <stdlib.h>

#include "autograd.h"

static _Thread_local bool grad_disabled;
static _Atomic uint64_t next_seq = 1;

bool
dt_grad_enabled(void)
{
    return !grad_disabled;
}

void
dt_set_grad_enabled(bool on)
{
    grad_disabled = !on;
}

/* ---------------------------------------------------------------------- */
/* tensor metadata                                                         */

dt_autograd_meta *
dt_autograd_meta_get(dt_tensor *t)
{
    if (!t->ag) {
        t->ag = calloc(1, sizeof *t->ag);
    }
    return t->ag;
}

void
dt_autograd_meta_free(dt_autograd_meta *m)
{
    /* The leaf's accumulator owns the leaf, so it is gone by now. */
    dt_tensor_release(m->grad);
    dt_node_release(m->grad_fn);
    dt_hook_list_free(m->hooks);
    dt_hook_list_free(m->post_hooks);
    free(m);
}

bool
dt_requires_grad(const dt_tensor *t)
{
    return t && t->ag && t->ag->requires_grad;
}

bool
dt_is_leaf(const dt_tensor *t)
{
    return !t->ag || !t->ag->grad_fn;
}

dt_status
dt_set_requires_grad(dt_tensor *t, bool on)
{
    if (!dt_is_leaf(t)) {
        if (on) {
            return DT_OK;
        }
        return dt_fail(DT_ERR_RUNTIME,
                       "you can only change requires_grad flags of leaf "
                       "variables. If you want to use a computed variable "
                       "in a subgraph that doesn't require differentiation "
                       "use var_no_grad = var.detach().");
    }
    if (on && !dt_dtype_is_floating(t->dtype)) {
        return dt_fail(DT_ERR_RUNTIME,
                       "only Tensors of floating point dtype can require "
                       "gradients (got %s)", dt_dtype_name(t->dtype));
    }
    if (!on && !t->ag) {
        return DT_OK;
    }
    dt_autograd_meta *m = dt_autograd_meta_get(t);
    if (!m) {
        return dt_fail(DT_ERR_NOMEM, "out of memory");
    }
    m->requires_grad = on;
    return DT_OK;
}

dt_status
dt_detach(dt_tensor **out, const dt_tensor *t)
{
    return dt_view_as_strided(out, t, t->shape, t->strides, t->ndim,
                              t->offset);
}

dt_status
dt_set_grad(dt_tensor *t, dt_tensor *grad)
{
    if (grad) {
        bool same = grad->ndim == t->ndim;
        for (int i = 0; same && i < t->ndim; i++) {
            same = grad->shape[i] == t->shape[i];
        }
        if (!same || grad->dtype != t->dtype) {
            char a[160], b[160];
            dt_shape_format(a, sizeof a, grad->shape, grad->ndim);
            dt_shape_format(b, sizeof b, t->shape, t->ndim);
            return dt_fail(DT_ERR_RUNTIME,
                           "assigned grad (%s %s) does not match the tensor "
                           "(%s %s)", dt_dtype_name(grad->dtype), a,
                           dt_dtype_name(t->dtype), b);
        }
    }
    dt_autograd_meta *m = dt_autograd_meta_get(t);
    if (!m) {
        return dt_fail(DT_ERR_NOMEM, "out of memory");
    }
    if (grad) {
        dt_tensor_retain(grad);
    }
    dt_tensor_release(m->grad);
    m->grad = grad;
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* nodes                                                                   */

bool
dt_autograd_needed(const dt_tensor *const *inputs, int n)
{
    if (grad_disabled) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (dt_requires_grad(inputs[i])) {
            return true;
        }
    }
    return false;
}

static dt_node *
node_alloc(int ninputs, int noutputs)
{
    dt_node *n = calloc(1, sizeof *n);
    if (!n) {
        return NULL;
    }
    n->next = calloc((size_t)(ninputs ? ninputs : 1), sizeof *n->next);
    n->in_meta = calloc((size_t)(ninputs ? ninputs : 1), sizeof *n->in_meta);
    n->out_hooks = calloc((size_t)noutputs, sizeof *n->out_hooks);
    if (!n->next || !n->in_meta || !n->out_hooks) {
        free(n->next);
        free(n->in_meta);
        free(n->out_hooks);
        free(n);
        return NULL;
    }
    n->num_inputs = ninputs;
    n->num_outputs = noutputs;
    n->seq = atomic_fetch_add(&next_seq, 1);
    atomic_init(&n->refcount, 1);   /* the creator's reference */
    return n;
}

/* The edge a gradient for `t` flows along (new reference in e->node). */
static dt_status
edge_of(dt_edge *e, const dt_tensor *t)
{
    e->node = NULL;
    e->input_nr = 0;
    if (!dt_requires_grad(t)) {
        return DT_OK;
    }
    if (t->ag->grad_fn) {
        e->node = t->ag->grad_fn;
        e->input_nr = t->ag->output_nr;
        dt_node_retain(e->node);
        return DT_OK;
    }
    return dt_node_accumulator(&e->node, (dt_tensor *)t);
}

dt_status
dt_autograd_check_inplace(const dt_tensor *t, const char *name)
{
    if (dt_is_leaf(t) && dt_requires_grad(t)) {
        return dt_fail(DT_ERR_RUNTIME,
                       "a leaf Variable that requires grad is being used in "
                       "an in-place operation (%s).", name);
    }
    if (t->ag && t->ag->is_view && t->ag->requires_grad) {
        return dt_fail(DT_ERR_NOTIMPL,
                       "%s: in-place operations on a view of a tensor that "
                       "requires grad are not supported; clone() the view "
                       "first", name);
    }
    return DT_OK;
}

dt_status
dt_node_record(dt_node **out, const char *name, dt_backward_fn fn,
               const dt_tensor *const *inputs, int ninputs,
               dt_tensor *const *outputs, int noutputs)
{
    for (int o = 0; o < noutputs; o++) {
        for (int i = 0; i < ninputs; i++) {
            if (outputs[o] == inputs[i]) {
                DT_TRY(dt_autograd_check_inplace(outputs[o], name));
            }
        }
    }
    dt_node *n = node_alloc(ninputs, noutputs);
    if (!n) {
        return dt_fail(DT_ERR_NOMEM, "out of memory recording %s", name);
    }
    n->name = name;
    n->backward = fn;
    for (int i = 0; i < ninputs; i++) {
        const dt_tensor *t = inputs[i];
        dt_status s = t ? edge_of(&n->next[i], t) : DT_OK;
        if (s != DT_OK) {
            dt_node_release(n);
            return s;
        }
        if (t) {
            n->in_meta[i].dtype = t->dtype;
            n->in_meta[i].ndim = t->ndim;
            memcpy(n->in_meta[i].shape, t->shape, sizeof t->shape);
        }
    }
    for (int o = 0; o < noutputs; o++) {
        dt_autograd_meta *m = dt_autograd_meta_get(outputs[o]);
        if (!m) {
            dt_node_release(n);
            return dt_fail(DT_ERR_NOMEM, "out of memory");
        }
        dt_node_retain(n);
        dt_node_release(m->grad_fn);   /* in place: the edge keeps it */
        m->grad_fn = n;
        m->output_nr = o;
        m->requires_grad = true;
    }
    dt_node_release(n);   /* the outputs own it now */
    *out = n;
    return DT_OK;
}

dt_status
dt_node_record_view(dt_node **out, const char *name, dt_backward_fn fn,
                    const dt_tensor *input, dt_tensor *output)
{
    DT_TRY(dt_node_record(out, name, fn, &input, 1, &output, 1));
    output->ag->is_view = true;
    return DT_OK;
}

dt_status
dt_node_save(dt_node *n, const dt_tensor *t)
{
    DT_ASSERT(n->num_saved < DT_NODE_MAX_SAVED);
    int i = n->num_saved++;
    if (!t) {
        return DT_OK;
    }
    n->saved_version[i] = atomic_load(&t->storage->version);
    return dt_detach(&n->saved[i], t);
}

dt_status
dt_node_saved(dt_tensor **out, dt_node *n, int i)
{
    DT_ASSERT(i < n->num_saved);
    if (n->released) {
        return dt_fail(DT_ERR_RUNTIME,
                       "Trying to backward through the graph a second time "
                       "(or directly access saved tensors after they have "
                       "already been freed). Saved intermediate values of "
                       "the graph are freed when you call .backward() or "
                       "autograd.grad(). Specify retain_graph=True if you "
                       "need to backward through the graph a second time.");
    }
    dt_tensor *t = n->saved[i];
    uint32_t v = t ? atomic_load(&t->storage->version) : 0;
    if (t && v != n->saved_version[i]) {
        char sh[160];
        dt_shape_format(sh, sizeof sh, t->shape, t->ndim);
        return dt_fail(DT_ERR_RUNTIME,
                       "one of the variables needed for gradient computation "
                       "has been modified by an inplace operation: [%s %s], "
                       "which is saved by %s, is at version %u; expected "
                       "version %u instead.",
                       dt_dtype_name(t->dtype), sh, n->name, v,
                       n->saved_version[i]);
    }
    *out = t;
    return DT_OK;
}

bool
dt_node_needs_grad(const dt_node *n, int input)
{
    return input < n->num_inputs && n->next[input].node != NULL;
}

void
dt_node_retain(dt_node *n)
{
    atomic_fetch_add(&n->refcount, 1);
}

static void
node_free_fields(dt_node *n)
{
    for (int i = 0; i < n->num_saved; i++) {
        dt_tensor_release(n->saved[i]);
    }
    for (int o = 0; o < n->num_outputs; o++) {
        dt_hook_list_free(n->out_hooks[o]);
    }
    if (n->leaf) {
        n->leaf->ag->accumulator = NULL;
        dt_tensor_release(n->leaf);
    }
    if (n->free_ctx) {
        n->free_ctx(n->ctx);
    }
    free(n->out_hooks);
    free(n->in_meta);
    free(n->next);
    free(n);
}

/* Frees iteratively: a long chain (an unrolled RNN) must not recurse. */
void
dt_node_release(dt_node *n)
{
    dt_node *stack_small[64], **stack = stack_small;
    size_t top = 0, cap = 64;
    if (!n || atomic_fetch_sub(&n->refcount, 1) != 1) {
        return;
    }
    stack[top++] = n;
    while (top) {
        dt_node *cur = stack[--top];
        for (int i = 0; i < cur->num_inputs; i++) {
            dt_node *child = cur->next[i].node;
            if (!child || atomic_fetch_sub(&child->refcount, 1) != 1) {
                continue;
            }
            if (top == cap) {
                dt_node **bigger = malloc(2 * cap * sizeof *bigger);
                DT_ASSERT(bigger);
                memcpy(bigger, stack, top * sizeof *stack);
                if (stack != stack_small) {
                    free(stack);
                }
                stack = bigger;
                cap *= 2;
            }
            stack[top++] = child;
        }
        node_free_fields(cur);
    }
    if (stack != stack_small) {
        free(stack);
    }
}

dt_status
dt_node_accumulator(dt_node **out, dt_tensor *leaf)
{
    dt_autograd_meta *m = dt_autograd_meta_get(leaf);
    if (!m) {
        return dt_fail(DT_ERR_NOMEM, "out of memory");
    }
    if (m->accumulator) {
        dt_node_retain(m->accumulator);
        *out = m->accumulator;
        return DT_OK;
    }
    dt_node *n = node_alloc(0, 1);
    if (!n) {
        return dt_fail(DT_ERR_NOMEM, "out of memory");
    }
    n->name = "AccumulateGrad";
    /* A leaf's gradient is final once it arrives: accumulate it (and fire
     * DDP's hook) before anything else that is ready. */
    n->seq = UINT64_MAX;
    dt_tensor_retain(leaf);
    n->leaf = leaf;
    m->accumulator = n;
    *out = n;
    return DT_OK;
}
