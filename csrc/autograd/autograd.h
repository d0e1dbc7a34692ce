/* autograd.h: the dynamic graph, its engine, and the hooks DDP attaches to.
 *
 * A tensor that requires grad carries a dt_autograd_meta (dt_tensor.ag).
 * Each differentiable op's entry point dt_<op>() runs dt_<op>_forward()
 * and, when dt_autograd_needed() says so, records a dt_node whose backward
 * is dt_<op>_backward(), right below the forward in the op's file:
 *
 *     DT_TRY(dt_mul_forward(out, a, b));
 *     if (dt_autograd_needed2(a, b)) {
 *         dt_node *n = NULL;
 *         const dt_tensor *in[] = {a, b};
 *         DT_TRY(dt_node_record(&n, "MulBackward0", dt_mul_backward,
 *                               in, 2, out, 1));
 *         dt_node_save(n, a);            // saved[0]
 *         dt_node_save(n, b);            // saved[1]
 *     }
 *
 * A backward gets one incoming gradient per output (NULL: that output got
 * none, treat as zero) and writes one new tensor per input into
 * grad_inputs (NULL where the input needs no gradient: check
 * dt_node_needs_grad). It may return a gradient of the broadcast shape:
 * the engine sums it down to the input's shape and casts it to the
 * input's dtype. Backwards run with grad mode off.
 *
 * Hooks are C function pointers with a context, so the DDP reducer runs
 * without the GIL; the Python glue wraps Python callables in them.
 */
#ifndef DT_AUTOGRAD_H
#define DT_AUTOGRAD_H

#include "../dt_impl.h"

typedef struct dt_node dt_node;

/* Replaces or observes a gradient: may release *grad and store a new
 * reference (tensor hooks, register_hook). */
typedef dt_status (*dt_grad_hook_fn)(void *ctx, dt_tensor **grad);
/* Called with the leaf after its .grad was written (post-accumulate). */
typedef dt_status (*dt_leaf_hook_fn)(void *ctx, dt_tensor *leaf);
/* End-of-backward callback. */
typedef dt_status (*dt_callback_fn)(void *ctx);

typedef struct dt_hook {
    int id;
    void *fn;                     /* dt_grad_hook_fn or dt_leaf_hook_fn */
    void *ctx;
    void (*free_ctx)(void *ctx);  /* may be NULL */
    struct dt_hook *next;
} dt_hook;

typedef struct dt_autograd_meta {
    bool requires_grad;
    bool is_view;            /* made by a view op: in-place is refused */
    dt_tensor *grad;         /* owned; NULL until the first backward */
    dt_node *grad_fn;        /* owned; NULL for leaves */
    int output_nr;           /* which output of grad_fn this tensor is */
    dt_node *accumulator;    /* leaves: weak ref to their AccumulateGrad */
    dt_hook *hooks;          /* leaves: run before accumulation */
    dt_hook *post_hooks;     /* leaves: run after .grad is written */
} dt_autograd_meta;

typedef dt_status (*dt_backward_fn)(dt_node *n, dt_tensor **grad_inputs,
                                    dt_tensor *const *grad_outputs);

typedef struct dt_edge {
    dt_node *node;           /* owned; NULL: no gradient flows there */
    int input_nr;            /* which output of `node` this feeds */
} dt_edge;

/* What the backward needs to know about each input. */
typedef struct dt_input_meta {
    dt_dtype dtype;
    int ndim;
    int64_t shape[DT_MAX_DIMS];
} dt_input_meta;

#define DT_NODE_MAX_SAVED 8
#define DT_NODE_MAX_ARGS 20

struct dt_node {
    _Atomic int64_t refcount;
    const char *name;            /* "MulBackward0"; static storage */
    dt_backward_fn backward;     /* NULL: AccumulateGrad */
    uint64_t seq;                /* creation order; later runs first */
    int num_inputs, num_outputs;
    dt_edge *next;               /* [num_inputs] */
    dt_input_meta *in_meta;      /* [num_inputs] */
    dt_hook **out_hooks;         /* [num_outputs]: non-leaf tensor hooks */
    dt_tensor *saved[DT_NODE_MAX_SAVED];   /* detached aliases */
    uint32_t saved_version[DT_NODE_MAX_SAVED];
    int num_saved;
    bool released;               /* saved tensors freed by backward */
    int64_t iargs[DT_NODE_MAX_ARGS];   /* op parameters: dims, flags */
    double dargs[4];                   /* op parameters: alpha, p, eps */
    int num_iargs;
    dt_tensor *leaf;             /* AccumulateGrad: the leaf (owned) */
    void *ctx;                   /* custom functions' state (a Python
                                  * autograd.Function's ctx), or NULL */
    void (*free_ctx)(void *ctx); /* called when the node is freed */
    uint64_t run_id;             /* the last backward that reached it */
    /* engine scratch, valid during one run */
    int deps;
    dt_tensor **buffer;          /* [num_outputs] incoming gradients */
};

/* ---------------------------------------------------------------------- */
/* grad mode (thread-local, on by default)                                 */

bool dt_grad_enabled(void);
void dt_set_grad_enabled(bool on);

/* ---------------------------------------------------------------------- */
/* tensor metadata                                                         */

bool dt_requires_grad(const dt_tensor *t);
/* requires_grad_(): only leaves may change it, as in PyTorch. */
dt_status dt_set_requires_grad(dt_tensor *t, bool on);
dt_autograd_meta *dt_autograd_meta_get(dt_tensor *t);   /* creates */
bool dt_is_leaf(const dt_tensor *t);
/* A tensor sharing t's storage with no autograd history. */
dt_status dt_detach(dt_tensor **out, const dt_tensor *t);
/* Sets .grad (may be NULL); checks shape and dtype like PyTorch. */
dt_status dt_set_grad(dt_tensor *t, dt_tensor *grad);

/* ---------------------------------------------------------------------- */
/* recording                                                               */

/* Grad mode is on and some input requires grad. */
bool dt_autograd_needed(const dt_tensor *const *inputs, int n);
static inline bool
dt_autograd_needed1(const dt_tensor *a)
{
    return dt_autograd_needed(&a, 1);
}
static inline bool
dt_autograd_needed2(const dt_tensor *a, const dt_tensor *b)
{
    const dt_tensor *in[2] = {a, b};
    return dt_autograd_needed(in, 2);
}

/* Creates a node with edges to the inputs' history and makes it the
 * grad_fn of each output (which then requires grad). *out is a borrowed
 * pointer: the outputs own the node. Inputs may be NULL (no edge). For an
 * in-place op, pass the modified tensor as both input and output: the
 * edge goes to its old history. Refuses in-place on a leaf that requires
 * grad, or on a view of a tensor that requires grad. */
dt_status dt_node_record(dt_node **out, const char *name, dt_backward_fn fn,
                         const dt_tensor *const *inputs, int ninputs,
                         dt_tensor *const *outputs, int noutputs);
/* The in-place rules alone, for ops that must check before writing. */
dt_status dt_autograd_check_inplace(const dt_tensor *t, const char *name);
/* Like dt_node_record for ops that return views: marks outputs as views. */
dt_status dt_node_record_view(dt_node **out, const char *name,
                              dt_backward_fn fn, const dt_tensor *input,
                              dt_tensor *output);
/* Saves a detached alias of t (NULL allowed) with its version. */
dt_status dt_node_save(dt_node *n, const dt_tensor *t);
/* saved[i], or PyTorch's error if it was modified in place since it was
 * saved, or if the graph was already freed. Borrowed. */
dt_status dt_node_saved(dt_tensor **out, dt_node *n, int i);
bool dt_node_needs_grad(const dt_node *n, int input);

void dt_node_retain(dt_node *n);
void dt_node_release(dt_node *n);                  /* NULL is fine */
/* The AccumulateGrad node of a leaf that requires grad (new reference). */
dt_status dt_node_accumulator(dt_node **out, dt_tensor *leaf);

/* ---------------------------------------------------------------------- */
/* hooks                                                                   */

/* register_hook: on a leaf it runs before accumulation, on a non-leaf on
 * the gradient flowing into it. *id identifies it for removal. */
dt_status dt_tensor_register_hook(int *id, dt_tensor *t, dt_grad_hook_fn fn,
                                  void *ctx, void (*free_ctx)(void *));
/* Runs after a leaf's .grad was written (DDP's entry point). */
dt_status dt_tensor_register_post_hook(int *id, dt_tensor *t,
                                       dt_leaf_hook_fn fn, void *ctx,
                                       void (*free_ctx)(void *));
/* Removes a hook by id from t (either kind); false if not found. */
bool dt_tensor_remove_hook(dt_tensor *t, int id);
void dt_hook_list_free(dt_hook *h);
dt_status dt_hooks_run_grad(dt_hook *h, dt_tensor **grad);
dt_status dt_hooks_run_leaf(dt_hook *h, dt_tensor *leaf);

/* ---------------------------------------------------------------------- */
/* the engine                                                              */

typedef struct dt_backward_opts {
    bool retain_graph;
    /* autograd.grad: collect the gradients of `inputs` into `input_grads`
     * (new references, NULL when unreached) instead of accumulating into
     * leaves' .grad. */
    dt_tensor *const *inputs;
    int num_inputs;
    dt_tensor **input_grads;
} dt_backward_opts;

/* Backpropagates from roots; grad_roots[i] may be NULL for a one-element
 * root (implicit ones). Runs end-of-backward callbacks at the end. */
dt_status dt_autograd_backward(dt_tensor *const *roots,
                               dt_tensor *const *grad_roots, int nroots,
                               const dt_backward_opts *opts);
/* Queues fn to run once when the backward now running on this thread
 * ends (PyTorch's queue_callback). Fails outside a backward. */
dt_status dt_autograd_queue_callback(dt_callback_fn fn, void *ctx,
                                     void (*free_ctx)(void *));

/* Inside a backward on this thread: does that backward reach node n?
 * (The DDP reducer asks it of parameters' AccumulateGrad nodes to find
 * the parameters this backward will not give a gradient.) */
bool dt_autograd_run_reaches(const dt_node *n);
/* When the backward running on this thread started (CLOCK_MONOTONIC
 * nanoseconds); 0 outside a backward. */
int64_t dt_autograd_run_start_ns(void);

/* ---------------------------------------------------------------------- */
/* helpers for backward functions                                          */

/* Sums grad over broadcast dims down to shape (new reference). */
dt_status dt_sum_to_shape(dt_tensor **out, const dt_tensor *grad,
                          const int64_t *shape, int ndim);
/* dst (an owned gradient, may be NULL) += g, reusing dst when it is not
 * shared; *dst afterwards is an owned reference. */
dt_status dt_grad_accumulate(dt_tensor **dst, const dt_tensor *g);

#endif /* DT_AUTOGRAD_H */
