/* reducer.c: the reducer's construction, bucket layout and rebuild, the
 * calls made around the forward, and its statistics. The backward side
 * is in reducer_backward.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reducer_impl.h"

const char *
dt_reducer_rank_label(const dt_reducer *r, char *buf, size_t n)
{
    snprintf(buf, n, "rank %d", r->pg->rank);
    return buf;
}

/* ---------------------------------------------------------------------- */
/* layout                                                                  */

static void
free_buckets(rbucket *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dt_tensor_release(b[i].buffer);
        dt_work_release(b[i].work);
        free(b[i].params);
    }
    free(b);
}

/* Groups parameters, taken in `order`, into buckets by dtype: a bucket
 * closes once it holds at least its limit (the first per dtype
 * first_bucket_bytes, the rest bucket_bytes), so it may overshoot by
 * one parameter, as PyTorch's does. */
static dt_status
assign(dt_reducer *r, const size_t *order, rbucket **out, size_t *nout)
{
    rbucket *bk = calloc(r->nparams ? r->nparams : 1, sizeof *bk);
    size_t nb = 0;
    long open[DT_DTYPE_COUNT];
    size_t bytes[DT_DTYPE_COUNT] = {0}, closed[DT_DTYPE_COUNT] = {0};
    if (!bk) {
        return dt_fail(DT_ERR_NOMEM, "DDP: out of memory for buckets");
    }
    for (int d = 0; d < DT_DTYPE_COUNT; d++) {
        open[d] = -1;
    }
    for (size_t k = 0; k < r->nparams; k++) {
        size_t i = order[k];
        dt_dtype d = r->params[i].param->dtype;
        if (open[d] < 0) {
            open[d] = (long)nb;
            bk[nb].params = calloc(r->nparams, sizeof *bk[nb].params);
            nb++;
            bytes[d] = 0;
            if (!bk[nb - 1].params) {
                free_buckets(bk, nb);
                return dt_fail(DT_ERR_NOMEM, "DDP: out of memory");
            }
        }
        rbucket *b = &bk[open[d]];
        b->params[b->nparams++] = i;
        bytes[d] += (size_t)r->params[i].numel * dt_dtype_size(d);
        size_t limit = closed[d] ? r->opt.bucket_bytes
                                 : r->opt.first_bucket_bytes;
        if (bytes[d] >= limit) {
            open[d] = -1;
            closed[d]++;
        }
    }
    *out = bk;
    *nout = nb;
    return DT_OK;
}

/* Allocates bucket b's buffer and its parameters' views. */
static dt_status
make_buffer(dt_reducer *r, rbucket *bk, size_t b)
{
    int64_t total = 0;
    for (size_t k = 0; k < bk->nparams; k++) {
        total += r->params[bk->params[k]].numel;
    }
    dt_dtype dtype = r->params[bk->params[0]].param->dtype;
    DT_TRY(dt_tensor_zeros(&bk->buffer, &total, 1, dtype, DT_DEVICE_CPU));
    bk->t.bytes = (size_t)total * dt_dtype_size(dtype);
    int64_t off = 0;
    for (size_t k = 0; k < bk->nparams; k++) {
        rparam *p = &r->params[bk->params[k]];
        const dt_tensor *t = p->param;
        int64_t strides[DT_MAX_DIMS], s = 1;
        for (int d = t->ndim - 1; d >= 0; d--) {
            strides[d] = s;
            s *= t->shape[d];
        }
        dt_tensor *view = NULL;
        DT_TRY(dt_view_as_strided(&view, bk->buffer, t->shape, strides,
                                  t->ndim, off));
        dt_tensor_release(p->view);
        p->view = view;
        p->bucket = b;
        p->offset = off;
        off += p->numel;
    }
    bk->pending = bk->nparams;
    return DT_OK;
}

/* With grad_as_view, gradients that exist move into the new views. */
static dt_status
alias_grads(dt_reducer *r)
{
    for (size_t i = 0; r->opt.grad_as_view && i < r->nparams; i++) {
        rparam *p = &r->params[i];
        dt_tensor *g = p->param->ag ? p->param->ag->grad : NULL;
        if (g && g != p->view) {
            DT_TRY(dt_copy_(p->view, g));
            DT_TRY(dt_set_grad(p->param, p->view));
        }
    }
    return DT_OK;
}

dt_status
dt_reducer_layout(dt_reducer *r, const size_t *order)
{
    rbucket *bk = NULL;
    size_t nb = 0;
    DT_TRY(assign(r, order, &bk, &nb));
    for (size_t b = 0; b < nb; b++) {
        dt_status s = make_buffer(r, &bk[b], b);
        if (s != DT_OK) {
            free_buckets(bk, nb);
            return s;
        }
    }
    free_buckets(r->buckets, r->nbuckets);
    r->buckets = bk;
    r->nbuckets = nb;
    return alias_grads(r);
}

/* ---------------------------------------------------------------------- */
/* construction                                                            */

static dt_status
check_params(dt_tensor *const *params, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!dt_requires_grad(params[i]) || !dt_is_leaf(params[i])) {
            return dt_fail(DT_ERR_VALUE, "DDP: parameter %s must be a leaf "
                           "that requires grad", names[i]);
        }
        if (!dt_dtype_is_floating(params[i]->dtype)) {
            return dt_fail(DT_ERR_TYPE, "DDP: parameter %s has dtype %s; "
                           "only floating point parameters get gradients",
                           names[i], dt_dtype_name(params[i]->dtype));
        }
        for (size_t j = 0; j < i; j++) {
            if (params[j] == params[i]) {
                return dt_fail(DT_ERR_VALUE, "DDP: parameters %s and %s are "
                               "the same tensor", names[j], names[i]);
            }
        }
    }
    return DT_OK;
}

static dt_status
init(dt_reducer *r, dt_tensor *const *params, const char *const *names)
{
    r->params = calloc(r->nparams ? r->nparams : 1, sizeof *r->params);
    r->arrival = calloc(r->nparams ? r->nparams : 1, sizeof *r->arrival);
    size_t *order = calloc(r->nparams ? r->nparams : 1, sizeof *order);
    dt_status s = DT_OK;
    if (!r->params || !r->arrival || !order) {
        free(order);
        return dt_fail(DT_ERR_NOMEM, "DDP: out of memory");
    }
    for (size_t i = 0; i < r->nparams && s == DT_OK; i++) {
        rparam *p = &r->params[i];
        dt_tensor_retain(params[i]);
        p->param = params[i];
        p->numel = dt_tensor_numel(params[i]);
        p->name = strdup(names[i]);
        p->hook = malloc(sizeof *p->hook);
        p->hook_id = -1;
        order[i] = r->nparams - 1 - i;      /* gradients arrive in reverse */
        if (!p->name || !p->hook) {
            s = dt_fail(DT_ERR_NOMEM, "DDP: out of memory");
        }
    }
    if (s == DT_OK) {
        int64_t n = (int64_t)r->nparams;
        s = dt_tensor_zeros(&r->used_tensor, &n, 1, DT_INT32, DT_DEVICE_CPU);
        r->used_map = s == DT_OK ? dt_tensor_data(r->used_tensor) : NULL;
    }
    if (s == DT_OK) {
        s = dt_reducer_layout(r, order);
    }
    free(order);
    for (size_t i = 0; i < r->nparams && s == DT_OK; i++) {
        rparam *p = &r->params[i];
        *p->hook = (rhook){r, i};
        s = dt_tensor_register_post_hook(&p->hook_id, p->param,
                                         dt_reducer_grad_ready, p->hook,
                                         NULL);
    }
    return s;
}

dt_status
dt_reducer_new(dt_reducer **out, dt_pg *pg, dt_tensor *const *params,
               const char *const *names, size_t nparams,
               const dt_reducer_options *opt)
{
    DT_TRY(check_params(params, names, nparams));
    if (nparams == 0) {
        return dt_fail(DT_ERR_RUNTIME, "DistributedDataParallel is not "
                       "needed when a module doesn't have any parameter "
                       "that requires a gradient.");
    }
    dt_reducer *r = calloc(1, sizeof *r);
    if (!r) {
        return dt_fail(DT_ERR_NOMEM, "DDP: out of memory");
    }
    dt_pg_retain(pg);
    r->pg = pg;
    r->opt = *opt;
    r->nparams = nparams;
    pthread_mutex_init(&r->lock, NULL);
    dt_status s = init(r, params, names);
    if (s != DT_OK) {
        dt_reducer_free(r);
        return s;
    }
    *out = r;
    return DT_OK;
}

void
dt_reducer_free(dt_reducer *r)
{
    if (!r) {
        return;
    }
    pthread_mutex_lock(&r->lock);
    dt_reducer_abandon(r);
    pthread_mutex_unlock(&r->lock);
    for (size_t i = 0; r->params && i < r->nparams; i++) {
        rparam *p = &r->params[i];
        if (p->hook_id >= 0) {
            dt_tensor_remove_hook(p->param, p->hook_id);
        }
        dt_tensor_release(p->param);
        dt_tensor_release(p->view);
        free(p->hook);
        free(p->name);
    }
    free_buckets(r->buckets, r->nbuckets);
    if (r->hook.free_ctx) {
        r->hook.free_ctx(r->hook.ctx);
    }
    dt_tensor_release(r->used_tensor);
    free(r->params);
    free(r->arrival);
    dt_pg_release(r->pg);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

/* ---------------------------------------------------------------------- */
/* around the forward                                                      */

/* PyTorch's error for a backward that left buckets unreduced, naming the
 * parameters (PyTorch gives indices unless debugging is on). */
static dt_status
unfinished_error(dt_reducer *r)
{
    size_t cap = 4096, len = 0;
    char *names = malloc(cap), label[32];
    if (!names) {
        return dt_fail(DT_ERR_NOMEM, "DDP: out of memory");
    }
    names[0] = 0;
    for (size_t i = 0; i < r->nparams; i++) {
        if (!r->params[i].ready && len + 8 < cap) {
            int w = snprintf(names + len, cap - len, "%s%s", len ? ", " : "",
                             r->params[i].name);
            len = w > 0 && len + (size_t)w < cap ? len + (size_t)w : cap - 1;
        }
    }
    dt_status s = dt_fail(
        DT_ERR_RUNTIME,
        "Expected to have finished reduction in the prior iteration before "
        "starting a new one. This error indicates that your module has "
        "parameters that were not used in producing loss. You can enable "
        "unused parameter detection by passing the keyword argument "
        "`find_unused_parameters=True` to "
        "`dtrain.nn.parallel.DistributedDataParallel`, and by making sure "
        "all `forward` function outputs participate in calculating loss. "
        "If you already have done the above, then the distributed data "
        "parallel module wasn't able to locate the output tensors in the "
        "return value of your module's `forward` function. Parameters which "
        "did not receive grad for %s: %s",
        dt_reducer_rank_label(r, label, sizeof label), names);
    free(names);
    return s;
}

/* Every rank takes rank 0's arrival order, so all lay buckets out alike
 * even when their backward passes ran nodes in different orders. */
static dt_status
rebuild(dt_reducer *r)
{
    size_t n = r->nparams;
    int64_t *order = malloc(n * sizeof *order);
    bool *seen = calloc(n, sizeof *seen);
    size_t *idx = malloc(n * sizeof *idx);
    dt_work *w = NULL;
    dt_status s = order && seen && idx ? DT_OK
                                       : dt_fail(DT_ERR_NOMEM, "DDP: out of "
                                                 "memory");
    for (size_t k = 0; s == DT_OK && k < n; k++) {
        order[k] = (int64_t)r->arrival[k];
    }
    if (s == DT_OK) {
        s = dt_pg_broadcast_async(r->pg, order, n, DT_INT64, 0, &w);
    }
    if (s == DT_OK) {
        s = dt_work_wait(w, 0, NULL, NULL);
    }
    for (size_t k = 0; s == DT_OK && k < n; k++) {
        if (order[k] < 0 || (size_t)order[k] >= n || seen[order[k]]) {
            s = dt_fail(DT_ERR_RUNTIME, "DDP: rank 0's bucket order is not "
                        "a permutation of this rank's %zu parameters", n);
        } else {
            seen[order[k]] = true;
            idx[k] = (size_t)order[k];
        }
    }
    if (s == DT_OK) {
        s = dt_reducer_layout(r, idx);
    }
    dt_work_release(w);
    free(order);
    free(seen);
    free(idx);
    return s;
}

dt_status
dt_reducer_prepare_forward(dt_reducer *r)
{
    pthread_mutex_lock(&r->lock);
    dt_status s = DT_OK;
    if (r->require_finalize) {
        s = unfinished_error(r);
        dt_reducer_abandon(r);
    } else if (r->rebuild_due) {
        r->rebuild_due = false;
        r->rebuilt = true;
        s = rebuild(r);
    }
    r->expect_hooks = false;
    pthread_mutex_unlock(&r->lock);
    return s;
}

dt_status
dt_reducer_prepare_backward(dt_reducer *r, bool sync, int div_factor)
{
    pthread_mutex_lock(&r->lock);
    r->expect_hooks = sync;
    r->div_factor = div_factor > 0 ? div_factor : r->pg->size;
    pthread_mutex_unlock(&r->lock);
    return DT_OK;
}

dt_status
dt_reducer_set_comm_hook(dt_reducer *r, const dt_reducer_comm_hook *hook)
{
    pthread_mutex_lock(&r->lock);
    dt_status s = DT_OK;
    if (r->hook.launch) {
        s = dt_fail(DT_ERR_RUNTIME, "register_comm_hook or "
                    "register_builtin_comm_hook can only be called once.");
    } else {
        r->hook = *hook;
    }
    pthread_mutex_unlock(&r->lock);
    return s;
}

/* ---------------------------------------------------------------------- */
/* layout and statistics                                                   */

size_t
dt_reducer_num_buckets(const dt_reducer *r)
{
    return r->nbuckets;
}

const size_t *
dt_reducer_bucket_params(const dt_reducer *r, size_t b, size_t *n)
{
    *n = r->buckets[b].nparams;
    return r->buckets[b].params;
}

dt_tensor *
dt_reducer_bucket_buffer(const dt_reducer *r, size_t b)
{
    return r->buckets[b].buffer;
}

bool
dt_reducer_has_rebuilt(const dt_reducer *r)
{
    return r->rebuilt;
}

void
dt_reducer_get_stats(const dt_reducer *r, dt_reducer_stats *out)
{
    *out = r->stats;
}

void
dt_reducer_reset_stats(dt_reducer *r)
{
    pthread_mutex_lock(&r->lock);
    r->stats.steps = r->stats.backward_ns = r->stats.comm_ns = 0;
    r->stats.exposed_ns = r->stats.bytes = 0;
    pthread_mutex_unlock(&r->lock);
}

void
dt_reducer_bucket_timeline(const dt_reducer *r, size_t b,
                           dt_reducer_bucket_times *out)
{
    *out = r->buckets[b].t;
}
