/* hooks.c: gradient hooks (register_hook), post-accumulate hooks on
 * leaves (what the DDP reducer attaches to), and their removal. */
#include <stdlib.h>

#include "autograd.h"

static _Atomic int next_hook_id = 1;

static dt_status
hook_append(dt_hook **list, int *id, void *fn, void *ctx,
            void (*free_ctx)(void *))
{
    dt_hook *h = calloc(1, sizeof *h);
    if (!h) {
        return dt_fail(DT_ERR_NOMEM, "out of memory registering a hook");
    }
    h->id = atomic_fetch_add(&next_hook_id, 1);
    h->fn = fn;
    h->ctx = ctx;
    h->free_ctx = free_ctx;
    while (*list) {
        list = &(*list)->next;
    }
    *list = h;
    *id = h->id;
    return DT_OK;
}

dt_status
dt_tensor_register_hook(int *id, dt_tensor *t, dt_grad_hook_fn fn, void *ctx,
                        void (*free_ctx)(void *))
{
    if (!dt_requires_grad(t)) {
        return dt_fail(DT_ERR_RUNTIME, "cannot register a hook on a tensor "
                       "that doesn't require gradient");
    }
    dt_autograd_meta *m = t->ag;
    dt_hook **list = m->grad_fn ? &m->grad_fn->out_hooks[m->output_nr]
                                : &m->hooks;
    return hook_append(list, id, (void *)fn, ctx, free_ctx);
}

dt_status
dt_tensor_register_post_hook(int *id, dt_tensor *t, dt_leaf_hook_fn fn,
                             void *ctx, void (*free_ctx)(void *))
{
    if (!dt_requires_grad(t) || !dt_is_leaf(t)) {
        return dt_fail(DT_ERR_RUNTIME,
                       "post accumulate grad hooks cannot be registered on "
                       "non-leaf tensors or tensors that don't require grad");
    }
    return hook_append(&t->ag->post_hooks, id, (void *)fn, ctx, free_ctx);
}

static bool
hook_remove(dt_hook **list, int id)
{
    for (; *list; list = &(*list)->next) {
        if ((*list)->id == id) {
            dt_hook *h = *list;
            *list = h->next;
            h->next = NULL;
            dt_hook_list_free(h);
            return true;
        }
    }
    return false;
}

bool
dt_tensor_remove_hook(dt_tensor *t, int id)
{
    dt_autograd_meta *m = t->ag;
    if (!m) {
        return false;
    }
    if (hook_remove(&m->hooks, id) || hook_remove(&m->post_hooks, id)) {
        return true;
    }
    return m->grad_fn && hook_remove(&m->grad_fn->out_hooks[m->output_nr],
                                     id);
}

void
dt_hook_list_free(dt_hook *h)
{
    while (h) {
        dt_hook *next = h->next;
        if (h->free_ctx) {
            h->free_ctx(h->ctx);
        }
        free(h);
        h = next;
    }
}

dt_status
dt_hooks_run_grad(dt_hook *h, dt_tensor **grad)
{
    for (; h && *grad; h = h->next) {
        DT_TRY(((dt_grad_hook_fn)h->fn)(h->ctx, grad));
    }
    return DT_OK;
}

dt_status
dt_hooks_run_leaf(dt_hook *h, dt_tensor *leaf)
{
    for (; h; h = h->next) {
        DT_TRY(((dt_leaf_hook_fn)h->fn)(h->ctx, leaf));
    }
    return DT_OK;
}
