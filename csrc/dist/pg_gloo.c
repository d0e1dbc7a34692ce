/* pg_gloo.c: the Gloo process group: rendezvous, the comm threads and
 * their queues, submission and lifetime (the vtable is pg_gloo_ops.c).
 *
 * Collectives get the group's next sequence number at submission, under
 * the lock, so the queue is in issue order; `threads` workers (2, as in
 * torch) take jobs from it and may run two at once, told apart by their
 * tag (the sequence number). Point-to-point operations are posted at once
 * on the caller's thread (so messages between a pair keep program order)
 * and then waited on by p2p threads, one per pending operation, created
 * on demand: a recv waiting for a message that comes later must not hold
 * up the completion of an unrelated send. Comm threads never touch Python
 * and block every signal (Python handles them on the main thread).
 * Running a job and reporting failures is in pg_gloo_run.c.
 */
#include "pg_gloo.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Allreduce below this many bytes uses BCUBE, above it RING with Gloo's
 * 1 MiB segments (see dt_pg_gloo_tune). Measured on loopback with 2
 * ranks: BCUBE's single exchange beats the ring's 2(n-1) steps by 1.3-2x
 * from 4 KiB to 1 MiB (and more at n=3); the ring wins from ~3 MiB. */
#define DEFAULT_BCUBE_BELOW (2u << 20)
#define DEFAULT_SEGMENT_BYTES 0
#define MAX_P2P_THREADS 256

/* ---------------------------------------------------------------------- */
/* Gloo's store, over our dt_kv                                            */

static _Thread_local char store_why[512];

static const char *
why_now(void)
{
    snprintf(store_why, sizeof store_why, "%s", dt_last_error());
    return store_why;
}

static int
store_set(void *self, const char *key, const void *value, size_t len,
          const char **why)
{
    dt_kv *kv = self;
    if (kv->ops->set(kv, key, value, len) != DT_OK) {
        *why = why_now();
        return -1;
    }
    return 0;
}

static int
store_get(void *self, const char *key, void **value, size_t *len,
          int64_t timeout_ms, const char **why)
{
    dt_kv *kv = self;
    if (kv->ops->get(kv, key, value, len, timeout_ms) != DT_OK) {
        *why = why_now();
        return -1;
    }
    return 0;
}

static int
store_wait(void *self, const char *const *keys, size_t nkeys,
           int64_t timeout_ms, const char **why)
{
    dt_kv *kv = self;
    if (kv->ops->wait(kv, keys, nkeys, timeout_ms) != DT_OK) {
        *why = why_now();
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* threads                                                                 */

/* Starts a thread with every signal blocked (it inherits the mask). */
static int
start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

static void *
worker_main(void *arg)
{
    gloo_pg *pg = arg;
    for (;;) {
        pthread_mutex_lock(&pg->lock);
        while (!pg->head && !pg->stopping) {
            pthread_cond_wait(&pg->cv, &pg->lock);
        }
        gloo_job *job = pg->head;      /* drains the queue before exit */
        if (job) {
            pg->head = job->next;
            if (!pg->head) {
                pg->tail = NULL;
            }
        }
        pthread_mutex_unlock(&pg->lock);
        if (!job) {
            return NULL;
        }
        dt_gloo_run_job(pg, job);
    }
}

typedef struct p2p_arg {
    gloo_pg *pg;
    int index;
} p2p_arg;

static void *
p2p_main(void *arg_)
{
    p2p_arg arg = *(p2p_arg *)arg_;
    free(arg_);
    gloo_pg *pg = arg.pg;
    pthread_mutex_lock(&pg->lock);
    for (;;) {
        pg->p2p_idle++;
        while (!pg->p2p_head && !pg->stopping) {
            pthread_cond_wait(&pg->p2p_cv, &pg->lock);
        }
        pg->p2p_idle--;
        gloo_job *job = pg->p2p_head;
        if (!job) {
            break;
        }
        pg->p2p_head = job->next;
        if (!pg->p2p_head) {
            pg->p2p_tail = NULL;
        }
        pg->p2p_queued--;
        pg->p2p_active[arg.index] = job;
        if (pg->stopping || atomic_load(&pg->dead)) {
            dt_gloo_p2p_abort(job->p2p);
        }
        pthread_mutex_unlock(&pg->lock);
        dt_gloo_run_p2p(pg, job);
        pthread_mutex_lock(&pg->lock);
        pg->p2p_active[arg.index] = NULL;   /* before abort can see it */
        pthread_mutex_unlock(&pg->lock);
        dt_gloo_job_free(job);
        pthread_mutex_lock(&pg->lock);
    }
    pthread_mutex_unlock(&pg->lock);
    return NULL;
}

/* With the lock held: a new p2p thread when every one is busy. */
static dt_status
p2p_spawn_locked(gloo_pg *pg)
{
    if (pg->np2p == pg->cap_p2p) {
        int cap = pg->cap_p2p ? 2 * pg->cap_p2p : 4;
        if (cap > MAX_P2P_THREADS) {
            return dt_fail(DT_ERR_RUNTIME, "ProcessGroupGloo: more than %d "
                           "send/recv operations pending at once",
                           MAX_P2P_THREADS);
        }
        pthread_t *t = realloc(pg->p2p_threads, cap * sizeof *t);
        if (t) {
            pg->p2p_threads = t;
        }
        gloo_job **a = t ? realloc(pg->p2p_active, cap * sizeof *a) : NULL;
        if (!a) {
            return dt_fail(DT_ERR_NOMEM, "out of memory starting a thread");
        }
        pg->p2p_active = a;
        pg->cap_p2p = cap;
    }
    p2p_arg *arg = malloc(sizeof *arg);
    if (!arg) {
        return dt_fail(DT_ERR_NOMEM, "out of memory starting a thread");
    }
    *arg = (p2p_arg){pg, pg->np2p};
    pg->p2p_active[pg->np2p] = NULL;
    if (start_thread(&pg->p2p_threads[pg->np2p], p2p_main, arg) != 0) {
        free(arg);
        return dt_fail(DT_ERR_RUNTIME, "ProcessGroupGloo: could not start "
                       "a send/recv thread");
    }
    pg->np2p++;
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* submission                                                              */

static dt_status
check_usable_locked(gloo_pg *pg)
{
    if (atomic_load(&pg->dead)) {
        return dt_fail(DT_ERR_RUNTIME, "ProcessGroupGloo%s%s%s is no "
                       "longer usable after an earlier failure (%s); "
                       "destroy it and create a new one",
                       pg->group_name[0] ? " '" : "", pg->group_name,
                       pg->group_name[0] ? "'" : "", pg->dead_msg);
    }
    if (pg->stopping) {
        return dt_fail(DT_ERR_RUNTIME, "ProcessGroupGloo: the process group "
                       "has been destroyed");
    }
    return DT_OK;
}

dt_status
dt_gloo_submit(gloo_pg *pg, dt_work **out, const gloo_job *tmpl)
{
    *out = NULL;
    if (getpid() != pg->pid) {
        return dt_fail(DT_ERR_RUNTIME, "ProcessGroupGloo: the process "
                       "group was created in another process (fork); "
                       "create a new one in this process");
    }
    gloo_job *job = malloc(sizeof *job);
    if (!job) {
        return dt_fail(DT_ERR_NOMEM, "out of memory queueing a collective");
    }
    *job = *tmpl;
    job->next = NULL;
    pthread_mutex_lock(&pg->lock);
    dt_status s = check_usable_locked(pg);
    if (s == DT_OK && job->kind != GLOO_SEND && job->kind != GLOO_RECV) {
        job->seq = pg->seq + 1;
    }
    char what[160];
    dt_gloo_describe(what, sizeof what, job);
    if (s == DT_OK) {
        s = dt_work_new(&job->work, what);
    }
    bool p2p = job->kind == GLOO_SEND || job->kind == GLOO_RECV;
    if (s == DT_OK && p2p && pg->p2p_queued + 1 > pg->p2p_idle) {
        s = p2p_spawn_locked(pg);
    }
    if (s != DT_OK) {
        pthread_mutex_unlock(&pg->lock);
        dt_work_release(job->work);
        free(job);          /* counts and p2p stay the caller's to free */
        return s;
    }
    dt_work_retain(job->work);            /* the caller's reference */
    *out = job->work;
    if (p2p) {
        *(pg->p2p_tail ? &pg->p2p_tail->next : &pg->p2p_head) = job;
        pg->p2p_tail = job;
        pg->p2p_queued++;
        pthread_cond_signal(&pg->p2p_cv);
    } else {
        pg->seq = job->seq;
        *(pg->tail ? &pg->tail->next : &pg->head) = job;
        pg->tail = job;
        pthread_cond_signal(&pg->cv);
    }
    pthread_mutex_unlock(&pg->lock);
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* lifetime                                                                */

/* With the lock held: aborts every p2p wait, queued or in progress. */
static void
p2p_abort_all_locked(gloo_pg *pg)
{
    for (gloo_job *j = pg->p2p_head; j; j = j->next) {
        dt_gloo_p2p_abort(j->p2p);
    }
    for (int i = 0; i < pg->np2p; i++) {
        if (pg->p2p_active[i]) {
            dt_gloo_p2p_abort(pg->p2p_active[i]->p2p);
        }
    }
}

void
dt_gloo_pg_abort(dt_pg *pg_, const char *why)
{
    gloo_pg *pg = (gloo_pg *)pg_;
    if (getpid() != pg->pid) {
        return;
    }
    dt_gloo_mark_dead(pg, why ? why : "aborted");
    pthread_mutex_lock(&pg->lock);
    p2p_abort_all_locked(pg);
    pthread_mutex_unlock(&pg->lock);
}

static void
pg_free_fields(gloo_pg *pg)
{
    dt_gloo_free(pg->ctx);
    dt_kv_free(pg->kv);
    free(pg->prefix);
    free(pg->group_name);
    free(pg->global_ranks);
    free(pg->threads);
    free(pg->p2p_threads);
    free(pg->p2p_active);
    pthread_mutex_destroy(&pg->lock);
    pthread_cond_destroy(&pg->cv);
    pthread_cond_destroy(&pg->p2p_cv);
    free(pg);
}

/* Queued collectives still run (they complete or time out); pending
 * send/recv are aborted, as nothing else would end them. */
void
dt_gloo_pg_destroy(dt_pg *pg_)
{
    gloo_pg *pg = (gloo_pg *)pg_;
    if (getpid() != pg->pid) {
        return;      /* a forked child: the threads are not ours; leak */
    }
    pthread_mutex_lock(&pg->lock);
    pg->stopping = true;
    pthread_cond_broadcast(&pg->cv);
    pthread_mutex_unlock(&pg->lock);
    for (int i = 0; i < pg->nthreads; i++) {
        pthread_join(pg->threads[i], NULL);
    }
    pthread_mutex_lock(&pg->lock);
    p2p_abort_all_locked(pg);
    pthread_cond_broadcast(&pg->p2p_cv);
    pthread_mutex_unlock(&pg->lock);
    for (int i = 0; i < pg->np2p; i++) {
        pthread_join(pg->p2p_threads[i], NULL);
    }
    pg_free_fields(pg);
}

bool
dt_gloo_pg_failure(dt_pg *pg_, char *buf, size_t n)
{
    gloo_pg *pg = (gloo_pg *)pg_;
    pthread_mutex_lock(&pg->lock);
    bool dead = atomic_load(&pg->dead);
    if (dead && n) {
        snprintf(buf, n, "%s", pg->dead_msg);
    }
    pthread_mutex_unlock(&pg->lock);
    return dead;
}

void
dt_pg_gloo_tune(dt_pg *pg_, const dt_pg_gloo_tuning *t)
{
    gloo_pg *pg = (gloo_pg *)pg_;
    pthread_mutex_lock(&pg->lock);
    pg->tuning = *t;
    pthread_mutex_unlock(&pg->lock);
}


static dt_status
copy_options(gloo_pg *pg, const dt_pg_gloo_options *opt)
{
    pg->prefix = strdup(opt->prefix ? opt->prefix : "");
    pg->group_name = strdup(opt->group_name ? opt->group_name : "");
    pg->global_ranks = malloc((size_t)opt->size * sizeof *pg->global_ranks);
    pg->nthreads = opt->threads > 0 ? opt->threads : 2;
    pg->threads = calloc((size_t)pg->nthreads, sizeof *pg->threads);
    if (!pg->prefix || !pg->group_name || !pg->global_ranks ||
        !pg->threads) {
        return dt_fail(DT_ERR_NOMEM, "out of memory creating a process "
                       "group");
    }
    for (int i = 0; i < opt->size; i++) {
        pg->global_ranks[i] = opt->global_ranks ? opt->global_ranks[i] : i;
    }
    return DT_OK;
}

/* The rendezvous, on the caller's thread with signals blocked so Gloo's
 * I/O thread (started here) never takes Python's signals. */
static dt_status
connect_mesh(gloo_pg *pg, const dt_pg_gloo_options *opt)
{
    dt_gloo_store store = {pg->kv, store_set, store_get, store_wait};
    char prefix[512];
    snprintf(prefix, sizeof prefix, "%sgloo", pg->prefix);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    dt_gloo_err e = dt_gloo_connect(&pg->ctx, opt->rank, opt->size, prefix,
                                    &store, opt->hostname ? opt->hostname
                                                          : "127.0.0.1",
                                    opt->iface, opt->timeout_ms);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != DT_GLOO_OK) {
        return dt_fail(e == DT_GLOO_ERR_NOMEM ? DT_ERR_NOMEM
                                              : DT_ERR_RUNTIME,
                       "Gloo connectFullMesh failed on rank %d of %d "
                       "(timeout %lld ms): %s", dt_gloo_global_rank(pg,
                                                                   opt->rank),
                       opt->size, (long long)opt->timeout_ms,
                       dt_gloo_last_error());
    }
    return DT_OK;
}

dt_status
dt_pg_gloo_new(dt_pg **out, const dt_pg_gloo_options *opt, dt_kv *kv)
{
    *out = NULL;
    if (opt->size < 1 || opt->rank < 0 || opt->rank >= opt->size) {
        dt_kv_free(kv);
        return dt_fail(DT_ERR_VALUE, "ProcessGroupGloo: invalid rank %d for "
                       "world size %d", opt->rank, opt->size);
    }
    gloo_pg *pg = calloc(1, sizeof *pg);
    if (!pg) {
        dt_kv_free(kv);
        return dt_fail(DT_ERR_NOMEM, "out of memory creating a process "
                       "group");
    }
    pg->base = (dt_pg){.ops = &dt_gloo_ops, .rank = opt->rank,
                       .size = opt->size};
    atomic_init(&pg->base.refcount, 1);
    atomic_init(&pg->dead, false);
    pg->kv = kv;
    pg->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : 1800000;
    pg->debug = opt->debug;
    pg->pid = getpid();
    pg->tuning = (dt_pg_gloo_tuning){DEFAULT_BCUBE_BELOW,
                                     DEFAULT_SEGMENT_BYTES};
    pthread_mutex_init(&pg->lock, NULL);
    pthread_cond_init(&pg->cv, NULL);
    pthread_cond_init(&pg->p2p_cv, NULL);
    dt_status s = copy_options(pg, opt);
    if (s == DT_OK) {
        s = connect_mesh(pg, opt);
    }
    int started = 0;
    while (s == DT_OK && started < pg->nthreads) {
        if (start_thread(&pg->threads[started], worker_main, pg) != 0) {
            s = dt_fail(DT_ERR_RUNTIME, "ProcessGroupGloo: could not start "
                        "a comm thread");
            break;
        }
        started++;
    }
    if (s != DT_OK) {
        pg->nthreads = started;
        dt_gloo_pg_destroy(&pg->base);
        return s;
    }
    *out = &pg->base;
    return DT_OK;
}
