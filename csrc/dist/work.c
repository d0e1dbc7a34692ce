/* work.c: asynchronous work objects (see work.h): a mutex, a condition
 * variable on the monotonic clock, a list of callbacks and the tensors the
 * operation must keep alive. */
#include "work.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct work_cb {
    struct work_cb *next;
    dt_work_fn fn;
    void *ctx;
} work_cb;

struct dt_work {
    _Atomic int64_t refcount;
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    _Atomic bool done;           /* read without the lock by is_completed */
    dt_status status;
    char *error;                 /* malloc'ed message of a failure */
    _Atomic int peer;
    work_cb *callbacks;          /* pending until done */
    dt_tensor **keep;            /* retained tensors */
    int nkeep, cap_keep;
    char what[96];
    _Atomic int64_t started_ns, finished_ns;   /* 0 until then */
};

int64_t
dt_work_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
dt_work_mark_started(dt_work *w)
{
    atomic_store(&w->started_ns, dt_work_now_ns());
}

int64_t
dt_work_started_ns(dt_work *w)
{
    return atomic_load(&w->started_ns);
}

int64_t
dt_work_finished_ns(dt_work *w)
{
    return atomic_load(&w->finished_ns);
}

int64_t
dt_work_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

dt_status
dt_work_new(dt_work **out, const char *what)
{
    dt_work *w = calloc(1, sizeof *w);
    if (!w) {
        return dt_fail(DT_ERR_NOMEM, "out of memory creating a work object");
    }
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->done_cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->lock, NULL);
    atomic_init(&w->refcount, 1);
    atomic_init(&w->done, false);
    atomic_init(&w->peer, -1);
    snprintf(w->what, sizeof w->what, "%s", what ? what : "work");
    *out = w;
    return DT_OK;
}

dt_status
dt_work_new_failed(dt_work **out, const char *what, dt_status s,
                   const char *msg)
{
    DT_TRY(dt_work_new(out, what));
    dt_work_finish(*out, s, msg);
    return DT_OK;
}

void
dt_work_retain(dt_work *w)
{
    atomic_fetch_add(&w->refcount, 1);
}

void
dt_work_release(dt_work *w)
{
    if (!w || atomic_fetch_sub(&w->refcount, 1) != 1) {
        return;
    }
    for (int i = 0; i < w->nkeep; i++) {
        dt_tensor_release(w->keep[i]);
    }
    free(w->keep);
    /* callbacks of a work that never finished are dropped */
    for (work_cb *cb = w->callbacks, *next; cb; cb = next) {
        next = cb->next;
        free(cb);
    }
    free(w->error);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->done_cv);
    free(w);
}

dt_status
dt_work_keep(dt_work *w, dt_tensor *t)
{
    if (w->nkeep == w->cap_keep) {
        int cap = w->cap_keep ? 2 * w->cap_keep : 4;
        dt_tensor **k = realloc(w->keep, (size_t)cap * sizeof *k);
        if (!k) {
            return dt_fail(DT_ERR_NOMEM, "out of memory in dt_work_keep");
        }
        w->keep = k;
        w->cap_keep = cap;
    }
    dt_tensor_retain(t);
    w->keep[w->nkeep++] = t;
    return DT_OK;
}

void
dt_work_finish(dt_work *w, dt_status s, const char *msg)
{
    atomic_store(&w->finished_ns, dt_work_now_ns());
    pthread_mutex_lock(&w->lock);
    DT_ASSERT(!atomic_load(&w->done));
    w->status = s;
    if (s != DT_OK) {
        /* strdup failing leaves NULL; dt_work_error then says so */
        w->error = strdup(msg ? msg : "unknown error");
    }
    work_cb *cbs = w->callbacks;
    w->callbacks = NULL;
    atomic_store(&w->done, true);
    pthread_cond_broadcast(&w->done_cv);
    pthread_mutex_unlock(&w->lock);
    /* callbacks in registration order, without the lock (they may wait
     * on or chain other works) */
    while (cbs) {
        work_cb *next = cbs->next;
        cbs->fn(w, cbs->ctx);
        free(cbs);
        cbs = next;
    }
}

bool
dt_work_is_completed(dt_work *w)
{
    return atomic_load(&w->done);
}

dt_status
dt_work_status(dt_work *w)
{
    if (!atomic_load(&w->done)) {
        return DT_OK;
    }
    return w->status;        /* written before done was set */
}

const char *
dt_work_error(dt_work *w)
{
    if (!atomic_load(&w->done) || w->status == DT_OK) {
        return NULL;
    }
    return w->error ? w->error : "unknown error (out of memory)";
}

const char *
dt_work_what(const dt_work *w)
{
    return w->what;
}

int
dt_work_peer(dt_work *w)
{
    return atomic_load(&w->peer);
}

void
dt_work_set_peer(dt_work *w, int peer)
{
    atomic_store(&w->peer, peer);
}

/* Waits at most `ms` for done; returns whether it is. */
static bool
wait_slice(dt_work *w, int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->lock);
    while (!atomic_load(&w->done)) {
        if (pthread_cond_timedwait(&w->done_cv, &w->lock, &ts) ==
            ETIMEDOUT) {
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
    return atomic_load(&w->done);
}

dt_status
dt_work_wait(dt_work *w, int64_t timeout_ms, const dt_work_hook *hook,
             bool *timed_out)
{
    int64_t deadline = timeout_ms > 0 ? dt_work_now_ms() + timeout_ms : 0;
    if (timed_out) {
        *timed_out = false;
    }
    while (!atomic_load(&w->done)) {
        int64_t slice = DT_WORK_SLICE_MS;
        if (deadline) {
            int64_t left = deadline - dt_work_now_ms();
            if (left <= 0) {
                if (timed_out) {
                    *timed_out = true;
                }
                return dt_fail(DT_ERR_RUNTIME, "%s: wait timed out after "
                               "%lld ms (the operation goes on)", w->what,
                               (long long)timeout_ms);
            }
            slice = left < slice ? left : slice;
        }
        if (wait_slice(w, slice)) {
            break;
        }
        if (hook && hook->interrupted(hook->ctx)) {
            return dt_fail(DT_ERR_RUNTIME, "%s: wait interrupted", w->what);
        }
    }
    if (w->status != DT_OK) {
        return dt_fail(w->status, "%s", dt_work_error(w));
    }
    return DT_OK;
}

dt_status
dt_work_then(dt_work *w, dt_work_fn fn, void *ctx)
{
    work_cb *cb = malloc(sizeof *cb);
    if (!cb) {
        return dt_fail(DT_ERR_NOMEM, "out of memory in dt_work_then");
    }
    *cb = (work_cb){NULL, fn, ctx};
    pthread_mutex_lock(&w->lock);
    if (!atomic_load(&w->done)) {
        work_cb **tail = &w->callbacks;
        while (*tail) {
            tail = &(*tail)->next;
        }
        *tail = cb;
        pthread_mutex_unlock(&w->lock);
        return DT_OK;
    }
    pthread_mutex_unlock(&w->lock);
    free(cb);
    fn(w, ctx);
    return DT_OK;
}
