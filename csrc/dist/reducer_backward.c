/* reducer_backward.c: what the reducer does during a backward pass, on
 * the engine's thread and without Python: the per-parameter hook, bucket
 * launches in order, and the end-of-backward finalize that waits for the
 * buckets and writes the averaged gradients back. */
#include <stdio.h>
#include <stdlib.h>

#include "../ops/elementwise.h"
#include "reducer_impl.h"

/* ---------------------------------------------------------------------- */
/* launching and waiting                                                   */

dt_status
dt_reducer_launch(dt_reducer *r, size_t b)
{
    rbucket *bk = &r->buckets[b];
    bk->launched = true;
    bk->t.launch_ns = dt_work_now_ns();
    bk->t.start_ns = bk->t.end_ns = 0;
    if (r->hook.launch) {
        return r->hook.launch(r->hook.ctx, b, bk->buffer,
                              b + 1 == r->nbuckets);
    }
    return dt_pg_allreduce_async(r->pg, dt_tensor_data(bk->buffer),
                                 (size_t)dt_tensor_numel(bk->buffer),
                                 bk->buffer->dtype, DT_REDUCE_SUM,
                                 &bk->work);
}

dt_status
dt_reducer_wait(dt_reducer *r, size_t b)
{
    rbucket *bk = &r->buckets[b];
    dt_status s;
    if (r->hook.launch) {
        s = r->hook.wait(r->hook.ctx, b, bk->buffer);
        bk->t.end_ns = dt_work_now_ns();
        return s;
    }
    s = dt_work_wait(bk->work, 0, NULL, NULL);
    bk->t.start_ns = dt_work_started_ns(bk->work);
    bk->t.end_ns = dt_work_finished_ns(bk->work);
    dt_work_release(bk->work);
    bk->work = NULL;
    return s;
}

/* Launches every consecutive ready bucket from next_bucket on: buckets go
 * out strictly in order, so every rank issues the same collectives in the
 * same order whatever order its gradients arrived in. */
static dt_status
launch_ready(dt_reducer *r)
{
    while (r->next_bucket < r->nbuckets &&
           r->buckets[r->next_bucket].pending == 0) {
        DT_TRY(dt_reducer_launch(r, r->next_bucket));
        r->next_bucket++;
    }
    return DT_OK;
}

static void
reset_iteration(dt_reducer *r)
{
    for (size_t i = 0; i < r->nparams; i++) {
        r->params[i].ready = false;
    }
    for (size_t b = 0; b < r->nbuckets; b++) {
        r->buckets[b].pending = r->buckets[b].nparams;
        r->buckets[b].launched = false;
    }
    r->next_bucket = 0;
    r->started = false;
    r->require_finalize = false;
    r->expect_hooks = false;
}

/* Waits for every launched bucket, in order, and for the used map; keeps
 * the used map's result but releases its work. Returns the first failure
 * with its message (later ones are only waited for). */
static dt_status
wait_in_flight(dt_reducer *r)
{
    dt_status first = DT_OK;
    char msg[1024] = "";
    for (size_t b = 0; b < r->nbuckets; b++) {
        dt_status w = r->buckets[b].launched ? dt_reducer_wait(r, b) : DT_OK;
        if (w != DT_OK && first == DT_OK) {
            first = w;
            snprintf(msg, sizeof msg, "%s", dt_last_error());
        }
    }
    if (r->used_work) {
        dt_status w = dt_work_wait(r->used_work, 0, NULL, NULL);
        if (w != DT_OK && first == DT_OK) {
            first = w;
            snprintf(msg, sizeof msg, "%s", dt_last_error());
        }
        dt_work_release(r->used_work);
        r->used_work = NULL;
    }
    return first == DT_OK ? DT_OK : dt_fail(first, "%s", msg);
}

void
dt_reducer_abandon(dt_reducer *r)
{
    (void)wait_in_flight(r);
    reset_iteration(r);
}

/* ---------------------------------------------------------------------- */
/* marking gradients ready                                                 */

static dt_status
twice_error(dt_reducer *r, size_t i)
{
    char label[32];
    return dt_fail(
        DT_ERR_RUNTIME,
        "Expected to mark a variable ready only once. This error is caused "
        "by one of the following reasons: 1) Use of a module parameter "
        "outside the `forward` function. Please make sure model parameters "
        "are not shared across multiple concurrent forward-backward passes. "
        "2) Reused parameters in multiple reentrant backward passes, or "
        "backward called more than once on parts of the same graph before "
        "the next forward. 3) Incorrect unused parameter detection. "
        "Parameter at index %zu with name %s has been marked as ready twice "
        "on %s. This means that multiple autograd engine hooks have fired "
        "for this particular parameter during this iteration.",
        i, r->params[i].name, dt_reducer_rank_label(r, label, sizeof label));
}

/* view = grad / div_factor (a plain copy under a comm hook, which does
 * its own averaging), fused in one pass. */
static dt_status
copy_scaled(dt_reducer *r, dt_tensor *view, dt_tensor *grad)
{
    if (r->hook.launch) {
        return dt_copy_(view, grad);
    }
    dt_tensor *scale = NULL, *out = view;
    DT_TRY(dt_tensor_scalar(&scale, 1.0 / r->div_factor, grad->dtype));
    dt_status s = dt_binary_forward(&out, grad, scale, DT_OP_MUL);
    dt_tensor_release(scale);
    DT_ASSERT(s != DT_OK || out == view);
    return s;
}

static dt_status
mark_ready(dt_reducer *r, size_t i, bool unused)
{
    rparam *p = &r->params[i];
    if (p->ready) {
        return twice_error(r, i);
    }
    p->ready = true;
    r->require_finalize = true;
    dt_tensor *grad = unused || !p->param->ag ? NULL : p->param->ag->grad;
    if (!grad) {
        DT_TRY(dt_fill_(p->view, 0));
    } else if (grad == p->view) {
        /* grad_as_view: the engine accumulated into the view itself */
        if (!r->hook.launch) {
            DT_TRY(copy_scaled(r, p->view, p->view));
        }
    } else {
        DT_TRY(copy_scaled(r, p->view, grad));
        if (r->opt.grad_as_view) {
            DT_TRY(dt_set_grad(p->param, p->view));
        }
    }
    rbucket *bk = &r->buckets[p->bucket];
    if (--bk->pending == 0) {
        bk->t.ready_ns = dt_work_now_ns();
        DT_TRY(launch_ready(r));
    }
    return DT_OK;
}

/* Parameters this backward will not reach get zeros, now, so their
 * buckets need not wait for gradients that never come. */
static dt_status
mark_unreached(dt_reducer *r)
{
    for (size_t j = 0; j < r->nparams; j++) {
        dt_autograd_meta *m = r->params[j].param->ag;
        if (!r->params[j].ready &&
            !dt_autograd_run_reaches(m ? m->accumulator : NULL)) {
            DT_TRY(mark_ready(r, j, true));
        }
    }
    return DT_OK;
}

static dt_status on_backward_end(void *ctx);

static dt_status
begin_backward(dt_reducer *r)
{
    r->started = true;
    r->bw_start_ns = dt_autograd_run_start_ns();
    DT_TRY(dt_autograd_queue_callback(on_backward_end, r, NULL));
    if (r->opt.find_unused || r->opt.static_graph) {
        DT_TRY(mark_unreached(r));
    }
    return DT_OK;
}

dt_status
dt_reducer_grad_ready(void *ctx, dt_tensor *leaf)
{
    rhook *h = ctx;
    dt_reducer *r = h->r;
    (void)leaf;
    pthread_mutex_lock(&r->lock);
    dt_status s = DT_OK;
    r->params[h->index].used = true;
    if (r->expect_hooks) {
        if (!r->started) {
            s = begin_backward(r);
        }
        if (s == DT_OK && !r->rebuilt && r->narrival < r->nparams &&
            !r->params[h->index].ready) {
            r->arrival[r->narrival++] = h->index;
        }
        if (s == DT_OK) {
            s = mark_ready(r, h->index, false);
        }
    }
    pthread_mutex_unlock(&r->lock);
    return s;
}

/* ---------------------------------------------------------------------- */
/* finalize                                                                */

/* Starts the allreduce of which parameters got gradients (find_unused);
 * a joined rank's shadow contributes none. */
static dt_status
launch_used_map(dt_reducer *r, bool none)
{
    for (size_t i = 0; i < r->nparams; i++) {
        r->used_map[i] = !none && r->params[i].used;
    }
    return dt_pg_allreduce_async(r->pg, r->used_map, r->nparams, DT_INT32,
                                 DT_REDUCE_SUM, &r->used_work);
}

/* used_map: whether the used map was reduced this step (find_unused). */
static dt_status
write_back(dt_reducer *r, bool used_map)
{
    for (size_t i = 0; i < r->nparams; i++) {
        rparam *p = &r->params[i];
        if (used_map && r->used_map[i] == 0) {
            continue;       /* unused everywhere: .grad stays as it was */
        }
        dt_tensor *g = p->param->ag->grad;
        if (r->opt.grad_as_view) {
            if (g != p->view) {
                DT_TRY(dt_set_grad(p->param, p->view));
            }
        } else if (!g) {
            dt_tensor *c = NULL;
            DT_TRY(dt_clone(&c, p->view));
            dt_status s = dt_set_grad(p->param, c);
            dt_tensor_release(c);
            DT_TRY(s);
        } else {
            DT_TRY(dt_copy_(g, p->view));
        }
    }
    return DT_OK;
}

/* Time at least one bucket was in flight: the union of the intervals. */
static int64_t
comm_time(const dt_reducer *r)
{
    int64_t total = 0, cover_end = 0;
    for (size_t b = 0; b < r->nbuckets; b++) {
        const dt_reducer_bucket_times *t = &r->buckets[b].t;
        int64_t s = t->start_ns ? t->start_ns : t->launch_ns;
        if (s < cover_end) {
            s = cover_end;
        }
        if (t->end_ns > s) {
            total += t->end_ns - s;
            cover_end = t->end_ns;
        }
    }
    return total;
}

static dt_status
finalize(dt_reducer *r, int64_t bw_end)
{
    bool used_map = r->opt.find_unused || r->opt.static_graph;
    dt_status s = used_map ? launch_used_map(r, false) : DT_OK;
    dt_status waited = wait_in_flight(r);
    char msg[1024] = "";
    if (waited != DT_OK) {
        snprintf(msg, sizeof msg, "%s", dt_last_error());
    }
    int64_t done = dt_work_now_ns();
    if (s == DT_OK && waited == DT_OK) {
        s = write_back(r, used_map);
    }
    dt_reducer_stats *st = &r->stats;
    st->steps++;
    st->backward_ns += bw_end - r->bw_start_ns;
    st->comm_ns += comm_time(r);
    st->exposed_ns += done - bw_end;
    for (size_t b = 0; b < r->nbuckets; b++) {
        st->bytes += (int64_t)r->buckets[b].t.bytes;
    }
    st->last_backward_start_ns = r->bw_start_ns;
    st->last_backward_end_ns = bw_end;
    st->last_done_ns = done;
    if (waited != DT_OK) {
        return dt_fail(waited, "DDP: a gradient bucket's allreduce failed: "
                       "%s", msg);
    }
    return s;
}

/* Completes the arrival order with the parameters that never arrived (in
 * reverse model order) so every parameter has a place in the rebuild. */
static void
complete_arrival(dt_reducer *r)
{
    for (size_t i = r->nparams; i-- > 0 && r->narrival < r->nparams;) {
        bool seen = false;
        for (size_t k = 0; k < r->narrival && !seen; k++) {
            seen = r->arrival[k] == i;
        }
        if (!seen) {
            r->arrival[r->narrival++] = i;
        }
    }
}

static dt_status
on_backward_end(void *ctx)
{
    dt_reducer *r = ctx;
    int64_t bw_end = dt_work_now_ns();
    pthread_mutex_lock(&r->lock);
    dt_status s = DT_OK;
    if (r->opt.find_unused || r->opt.static_graph) {
        /* reached but given no gradient (a backward returned none) */
        for (size_t j = 0; j < r->nparams && s == DT_OK; j++) {
            if (!r->params[j].ready) {
                s = mark_ready(r, j, true);
            }
        }
    }
    if (s != DT_OK || r->next_bucket < r->nbuckets) {
        /* unreduced buckets: the next forward raises, as PyTorch does */
        pthread_mutex_unlock(&r->lock);
        return s;
    }
    s = finalize(r, bw_end);
    for (size_t i = 0; i < r->nparams; i++) {
        r->params[i].used = false;
    }
    if (!r->rebuilt && (!r->opt.find_unused || r->opt.static_graph)) {
        complete_arrival(r);
        r->rebuild_due = true;
    }
    reset_iteration(r);
    pthread_mutex_unlock(&r->lock);
    return s;
}

/* ---------------------------------------------------------------------- */
/* join                                                                    */

dt_status
dt_reducer_shadow_backward(dt_reducer *r)
{
    pthread_mutex_lock(&r->lock);
    dt_status s = DT_OK;
    for (size_t b = 0; b < r->nbuckets && s == DT_OK; b++) {
        s = dt_fill_(r->buckets[b].buffer, 0);
        if (s == DT_OK) {
            s = dt_reducer_launch(r, b);
        }
    }
    if (s == DT_OK && (r->opt.find_unused || r->opt.static_graph)) {
        s = launch_used_map(r, true);
    }
    dt_status w = wait_in_flight(r);
    s = s == DT_OK ? w : s;
    reset_iteration(r);
    pthread_mutex_unlock(&r->lock);
    return s;
}
