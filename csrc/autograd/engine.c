/* engine.c: runs a backward pass.
 *
 * 1. discover: walk the graph from the roots, counting for every node how
 *    many edges lead into it (deps);
 * 2. run: a node whose deps reach zero has all its incoming gradients;
 *    the ready one created last runs first (AccumulateGrad before all), so
 *    a leaf's .grad and its post-accumulate hooks fire as early as possible
 *    (the DDP reducer overlaps communication with the rest of backward);
 * 3. finish: end-of-backward callbacks, then clean up the scratch state.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <time.h>

#include "../ops/elementwise.h"
#include "../ops/reduce.h"
#include "autograd.h"

typedef struct callback {
    dt_callback_fn fn;
    void *ctx;
    void (*free_ctx)(void *);
    struct callback *next;
} callback;

typedef struct run {
    dt_node **nodes;          /* every discovered node */
    size_t num_nodes, cap_nodes;
    dt_node **heap;           /* ready nodes, max-heap on seq */
    size_t heap_len;
    callback *cb_head, **cb_tail;
    const dt_backward_opts *opts;
    dt_node **roots;          /* [nroots] references held for the run */
    int nroots;
    uint64_t id;              /* marks the nodes this run reaches */
    int64_t start_ns;
} run;

static _Atomic uint64_t last_run_id;

static _Thread_local run *current_run;

/* ---------------------------------------------------------------------- */
/* gradient arithmetic the engine needs                                    */

dt_status
dt_sum_to_shape(dt_tensor **out, const dt_tensor *grad, const int64_t *shape,
                int ndim)
{
    int64_t dims[DT_MAX_DIMS];
    int n = 0, lead = grad->ndim - ndim;
    if (lead < 0) {
        return dt_fail(DT_ERR_RUNTIME, "sum_to_shape: gradient has fewer "
                       "dims than its input");
    }
    for (int i = 0; i < grad->ndim; i++) {
        if (i < lead || (shape[i - lead] == 1 && grad->shape[i] != 1)) {
            dims[n++] = i;
        } else if (shape[i - lead] != grad->shape[i]) {
            return dt_fail(DT_ERR_RUNTIME, "sum_to_shape: gradient is not "
                           "broadcast from its input");
        }
    }
    if (n == 0) {
        dt_tensor_retain((dt_tensor *)grad);
        *out = (dt_tensor *)grad;
        return DT_OK;
    }
    dt_tensor *summed = NULL;
    DT_TRY(dt_sum_forward(&summed, grad, dims, n, true, grad->dtype));
    dt_status s = dt_reshape(out, summed, shape, ndim);
    dt_tensor_release(summed);
    return s;
}

dt_status
dt_grad_accumulate(dt_tensor **dst, const dt_tensor *g)
{
    if (!*dst) {
        dt_tensor_retain((dt_tensor *)g);
        *dst = (dt_tensor *)g;
        return DT_OK;
    }
    dt_tensor *sum = NULL;
    /* not in place into a stride-0 view (sum/mean backward's expansion) */
    bool exclusive = atomic_load(&(*dst)->refcount) == 1 &&
                     atomic_load(&(*dst)->storage->refcount) == 1 &&
                     dt_tensor_is_contiguous(*dst);
    if (exclusive) {
        return dt_add_forward(dst, *dst, g, NULL);
    }
    DT_TRY(dt_add_forward(&sum, *dst, g, NULL));
    dt_tensor_release(*dst);
    *dst = sum;
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* the ready heap                                                          */

static void
heap_push(run *r, dt_node *n)
{
    size_t i = r->heap_len++;
    while (i > 0 && r->heap[(i - 1) / 2]->seq < n->seq) {
        r->heap[i] = r->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    r->heap[i] = n;
}

static dt_node *
heap_pop(run *r)
{
    dt_node *top = r->heap[0], *last = r->heap[--r->heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= r->heap_len) {
            break;
        }
        if (c + 1 < r->heap_len && r->heap[c + 1]->seq > r->heap[c]->seq) {
            c++;
        }
        if (r->heap[c]->seq <= last->seq) {
            break;
        }
        r->heap[i] = r->heap[c];
        i = c;
    }
    r->heap[i] = last;
    return top;
}

/* ---------------------------------------------------------------------- */
/* discovery                                                               */

static dt_status
visit(run *r, dt_node *n)
{
    if (n->buffer) {
        return DT_OK;
    }
    n->buffer = calloc((size_t)n->num_outputs, sizeof *n->buffer);
    if (r->num_nodes == r->cap_nodes) {
        size_t cap = r->cap_nodes ? 2 * r->cap_nodes : 64;
        dt_node **grown = realloc(r->nodes, cap * sizeof *grown);
        if (grown) {
            r->nodes = grown;
            r->cap_nodes = cap;
        }
    }
    if (!n->buffer || r->num_nodes == r->cap_nodes) {
        free(n->buffer);
        n->buffer = NULL;
        return dt_fail(DT_ERR_NOMEM, "out of memory in backward");
    }
    r->nodes[r->num_nodes++] = n;
    n->deps = 0;
    n->run_id = r->id;
    return DT_OK;
}

/* Depth-first over the nodes list itself: nodes are appended as found. */
static dt_status
discover(run *r)
{
    for (size_t k = 0; k < r->num_nodes; k++) {
        dt_node *n = r->nodes[k];
        for (int i = 0; i < n->num_inputs; i++) {
            dt_node *child = n->next[i].node;
            if (child) {
                DT_TRY(visit(r, child));
                child->deps++;
            }
        }
    }
    r->heap = malloc((r->num_nodes ? r->num_nodes : 1) * sizeof *r->heap);
    return r->heap ? DT_OK : dt_fail(DT_ERR_NOMEM, "out of memory");
}

/* ---------------------------------------------------------------------- */
/* running nodes                                                           */

/* Writes a leaf's gradient: the first one is stored (stolen when nobody
 * else holds it), later ones are added in place, as PyTorch does. `gp`
 * is the slot in the node's buffer: a tensor hook may replace what it
 * holds, and the buffer must own the replacement. */
static dt_status
accumulate_leaf(dt_tensor *leaf, dt_tensor **gp)
{
    dt_autograd_meta *m = leaf->ag;
    DT_TRY(dt_hooks_run_grad(m->hooks, gp));
    dt_tensor *g = *gp;
    if (!g) {
        return DT_OK;
    }
    if (!m->grad) {
        bool stealable = atomic_load(&g->refcount) == 1 &&
                         atomic_load(&g->storage->refcount) == 1 &&
                         dt_tensor_is_contiguous(g);
        if (stealable) {
            dt_tensor_retain(g);
            m->grad = g;
        } else {
            DT_TRY(dt_clone(&m->grad, g));
        }
    } else {
        DT_TRY(dt_add_forward(&m->grad, m->grad, g, NULL));
    }
    return dt_hooks_run_leaf(m->post_hooks, leaf);
}

/* autograd.grad: is (n, output nr) one of the requested inputs? */
static void
capture(const run *r, dt_node *n, dt_tensor *const *grads)
{
    const dt_backward_opts *o = r->opts;
    for (int k = 0; o->inputs && k < o->num_inputs; k++) {
        dt_autograd_meta *m = o->inputs[k]->ag;
        int nr = -1;
        if (m && m->grad_fn == n) {
            nr = m->output_nr;
        } else if (m && !m->grad_fn && m->accumulator == n) {
            nr = 0;
        }
        if (nr >= 0 && grads[nr] && !o->input_grads[k]) {
            dt_tensor_retain(grads[nr]);
            o->input_grads[k] = grads[nr];
        }
    }
}

/* Shapes a backward's output for input i: sum broadcast dims, cast. */
static dt_status
fit_grad(dt_tensor **g, const dt_node *n, int i)
{
    const dt_input_meta *im = &n->in_meta[i];
    dt_tensor *fitted = NULL;
    if (dt_sum_to_shape(&fitted, *g, im->shape, im->ndim) != DT_OK) {
        char a[160], b[160];
        dt_shape_format(a, sizeof a, (*g)->shape, (*g)->ndim);
        dt_shape_format(b, sizeof b, im->shape, im->ndim);
        return dt_fail(DT_ERR_RUNTIME,
                       "Function %s returned an invalid gradient at index %d "
                       "- got %s but expected shape compatible with %s",
                       n->name, i, a, b);
    }
    dt_tensor_release(*g);
    *g = fitted;
    if ((*g)->dtype != im->dtype) {
        DT_TRY(dt_to_dtype(&fitted, *g, im->dtype));
        dt_tensor_release(*g);
        *g = fitted;
    }
    return DT_OK;
}

static dt_status
pass_on(run *r, dt_node *n, dt_tensor **grad_in)
{
    for (int i = 0; i < n->num_inputs; i++) {
        dt_node *child = n->next[i].node;
        if (!child) {
            continue;
        }
        if (grad_in[i]) {
            DT_TRY(fit_grad(&grad_in[i], n, i));
            DT_TRY(dt_grad_accumulate(&child->buffer[n->next[i].input_nr],
                                      grad_in[i]));
        }
        if (--child->deps == 0) {
            heap_push(r, child);
        }
    }
    return DT_OK;
}

static dt_status
run_node(run *r, dt_node *n)
{
    dt_tensor **grads = n->buffer;   /* [num_outputs], owned */
    dt_tensor *grad_in_small[8], **grad_in = grad_in_small;
    bool any = false;
    dt_status s = DT_OK;
    for (int o = 0; o < n->num_outputs && s == DT_OK; o++) {
        s = dt_hooks_run_grad(n->out_hooks[o], &grads[o]);
        any = any || grads[o];
    }
    if (s != DT_OK) {
        return s;
    }
    capture(r, n, grads);
    if (!n->backward) {            /* AccumulateGrad */
        return grads[0] && !r->opts->inputs ? accumulate_leaf(n->leaf,
                                                              &grads[0])
                                            : DT_OK;
    }
    if (n->num_inputs > 8) {
        grad_in = calloc((size_t)n->num_inputs, sizeof *grad_in);
        if (!grad_in) {
            return dt_fail(DT_ERR_NOMEM, "out of memory in backward");
        }
    } else {
        memset(grad_in_small, 0, sizeof grad_in_small);
    }
    if (any) {
        s = n->backward(n, grad_in, grads);
    }
    if (s == DT_OK) {
        s = pass_on(r, n, grad_in);
    }
    for (int i = 0; i < n->num_inputs; i++) {
        dt_tensor_release(grad_in[i]);
    }
    if (grad_in != grad_in_small) {
        free(grad_in);
    }
    if (!r->opts->retain_graph) {
        n->released = true;
        for (int i = 0; i < n->num_saved; i++) {
            dt_tensor_release(n->saved[i]);
            n->saved[i] = NULL;
        }
    }
    return s;
}

/* ---------------------------------------------------------------------- */
/* entry point                                                             */

static dt_status
root_grad(dt_tensor **out, const dt_tensor *root, const dt_tensor *given,
          int i)
{
    if (!given) {
        if (dt_tensor_numel(root) != 1) {
            return dt_fail(DT_ERR_RUNTIME,
                           "grad can be implicitly created only for scalar "
                           "outputs (output %d has %" PRId64 " elements)", i,
                           dt_tensor_numel(root));
        }
        DT_TRY(dt_tensor_empty(out, root->shape, root->ndim, root->dtype,
                               dt_tensor_device(root)));
        return dt_fill_(*out, 1.0);
    }
    bool same = given->ndim == root->ndim;
    for (int d = 0; same && d < root->ndim; d++) {
        same = given->shape[d] == root->shape[d];
    }
    if (!same) {
        char a[160], b[160];
        dt_shape_format(a, sizeof a, given->shape, given->ndim);
        dt_shape_format(b, sizeof b, root->shape, root->ndim);
        return dt_fail(DT_ERR_RUNTIME,
                       "Mismatch in shape: grad_output[%d] has a shape of %s "
                       "and output[%d] has a shape of %s.", i, a, i, b);
    }
    return dt_to_dtype(out, given, root->dtype);
}

static dt_status
seed_roots(run *r, dt_tensor *const *roots, dt_tensor *const *grad_roots,
           int nroots)
{
    for (int i = 0; i < nroots; i++) {
        const dt_tensor *t = roots[i];
        if (!dt_requires_grad(t)) {
            return dt_fail(DT_ERR_RUNTIME,
                           "element %d of tensors does not require grad and "
                           "does not have a grad_fn", i);
        }
        dt_node *n = NULL;
        int nr = 0;
        if (t->ag->grad_fn) {
            n = t->ag->grad_fn;
            nr = t->ag->output_nr;
            dt_node_retain(n);
        } else {
            /* a leaf's accumulator lives only as long as someone holds it */
            DT_TRY(dt_node_accumulator(&n, (dt_tensor *)t));
        }
        r->roots[r->nroots++] = n;
        dt_tensor *g = NULL;
        DT_TRY(visit(r, n));
        DT_TRY(root_grad(&g, t, grad_roots ? grad_roots[i] : NULL, i));
        dt_status s = dt_grad_accumulate(&n->buffer[nr], g);
        dt_tensor_release(g);
        DT_TRY(s);
    }
    return DT_OK;
}

static void
finish(run *r)
{
    for (size_t k = 0; k < r->num_nodes; k++) {
        dt_node *n = r->nodes[k];
        for (int o = 0; o < n->num_outputs; o++) {
            dt_tensor_release(n->buffer[o]);
        }
        free(n->buffer);
        n->buffer = NULL;
        n->deps = 0;
    }
    while (r->cb_head) {
        callback *c = r->cb_head;
        r->cb_head = c->next;
        if (c->free_ctx) {
            c->free_ctx(c->ctx);
        }
        free(c);
    }
    free(r->nodes);
    free(r->heap);
    for (int i = 0; i < r->nroots; i++) {
        dt_node_release(r->roots[i]);
    }
    free(r->roots);
}

static dt_status
run_all(run *r)
{
    size_t nseed = r->num_nodes;
    DT_TRY(discover(r));
    for (size_t k = 0; k < nseed; k++) {
        if (r->nodes[k]->deps == 0) {
            heap_push(r, r->nodes[k]);
        }
    }
    while (r->heap_len) {
        DT_TRY(run_node(r, heap_pop(r)));
    }
    /* callbacks may queue more callbacks: run until the list is empty */
    while (r->cb_head) {
        callback *c = r->cb_head;
        r->cb_head = c->next;
        if (!r->cb_head) {
            r->cb_tail = &r->cb_head;
        }
        dt_status s = c->fn(c->ctx);
        if (c->free_ctx) {
            c->free_ctx(c->ctx);
        }
        free(c);
        DT_TRY(s);
    }
    return DT_OK;
}

dt_status
dt_autograd_backward(dt_tensor *const *roots, dt_tensor *const *grad_roots,
                     int nroots, const dt_backward_opts *opts)
{
    static const dt_backward_opts defaults = {0};
    run r = {.opts = opts ? opts : &defaults};
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    r.start_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    r.id = atomic_fetch_add(&last_run_id, 1) + 1;
    r.cb_tail = &r.cb_head;
    run *outer = current_run;
    bool grad_was = dt_grad_enabled();
    current_run = &r;
    dt_set_grad_enabled(false);
    r.roots = calloc((size_t)(nroots > 0 ? nroots : 1), sizeof *r.roots);
    dt_status s = r.roots ? seed_roots(&r, roots, grad_roots, nroots)
                          : dt_fail(DT_ERR_NOMEM, "out of memory");
    if (s == DT_OK) {
        s = run_all(&r);
    }
    dt_set_grad_enabled(grad_was);
    current_run = outer;
    finish(&r);
    return s;
}

bool
dt_autograd_run_reaches(const dt_node *n)
{
    return current_run && n && n->run_id == current_run->id;
}

int64_t
dt_autograd_run_start_ns(void)
{
    return current_run ? current_run->start_ns : 0;
}

dt_status
dt_autograd_queue_callback(dt_callback_fn fn, void *ctx,
                           void (*free_ctx)(void *))
{
    if (!current_run) {
        return dt_fail(DT_ERR_RUNTIME, "Final callbacks can only be "
                       "installed during backward pass.");
    }
    callback *c = calloc(1, sizeof *c);
    if (!c) {
        return dt_fail(DT_ERR_NOMEM, "out of memory");
    }
    c->fn = fn;
    c->ctx = ctx;
    c->free_ctx = free_ctx;
    *current_run->cb_tail = c;
    current_run->cb_tail = &c->next;
    return DT_OK;
}
