/* pg_gloo_run.c: running one queued job on a comm thread (see pg_gloo.c),
 * the DETAIL-mode signature check, and failure reports.
 *
 * Failure reports name the collective, its sequence number, dtype, size,
 * this rank and the ranks that did not arrive. To find those, a failing
 * rank sets the store key <prefix>arrive/<seq>/<rank> and looks for the
 * others' for a short grace period (every rank that reached the
 * collective fails too and sets its key). The fast path never touches the
 * store; in DETAIL mode every rank sets its key on entry instead.
 */
#include "pg_gloo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Signature allgathers use the collective's tag with this bit set. */
#define SIG_TAG_BIT 0x80000000u
#define SIG_MAGIC 0x64745347u          /* "dtSG" */
#define ARRIVAL_GRACE_MS 2000
#define ARRIVAL_POLL_MS 50
#define COUNT_VARIES UINT64_MAX

const char *const dt_gloo_kind_names[GLOO_KIND_COUNT] = {
    "all_reduce", "broadcast", "reduce", "all_gather", "gather", "scatter",
    "reduce_scatter", "all_to_all", "barrier", "send", "recv",
};

/* What every rank must agree on before a collective (DETAIL mode). */
typedef struct signature {
    uint32_t magic;
    uint32_t kind;
    uint64_t seq;
    int32_t dtype;
    int32_t op;
    int32_t root;
    int32_t pad;
    uint64_t count;
} signature;

static bool
has_op(gloo_kind kind)
{
    return kind == GLOO_ALLREDUCE || kind == GLOO_REDUCE ||
           kind == GLOO_REDUCE_SCATTER;
}

static bool
has_root(gloo_kind kind)
{
    return kind == GLOO_BROADCAST || kind == GLOO_REDUCE ||
           kind == GLOO_GATHER || kind == GLOO_SCATTER;
}

static signature
job_signature(const gloo_job *job)
{
    signature s = {SIG_MAGIC, (uint32_t)job->kind, job->seq, job->dtype,
                   has_op(job->kind) ? (int32_t)job->op : -1,
                   has_root(job->kind) ? job->root : -1, 0,
                   job->counts ? COUNT_VARIES : job->count};
    return s;
}

static void
describe_signature(char *buf, size_t n, const signature *s)
{
    const char *name = s->kind < GLOO_KIND_COUNT ? dt_gloo_kind_names[s->kind]
                                                 : "?";
    int w = snprintf(buf, n, "%s #%llu (", name, (unsigned long long)s->seq);
    if (s->kind == GLOO_BARRIER) {
        w += snprintf(buf + w, n > (size_t)w ? n - w : 0, ")");
        return;
    }
    const char *dtype = (unsigned)s->dtype < DT_DTYPE_COUNT
                            ? dt_dtype_name((dt_dtype)s->dtype) : "?";
    if (s->count == COUNT_VARIES) {
        w += snprintf(buf + w, n > (size_t)w ? n - w : 0,
                      "%s, per-rank counts", dtype);
    } else {
        w += snprintf(buf + w, n > (size_t)w ? n - w : 0, "%s, %llu "
                      "elements", dtype, (unsigned long long)s->count);
    }
    if (s->op >= 0) {
        w += snprintf(buf + w, n > (size_t)w ? n - w : 0, ", op=%s",
                      dt_reduce_op_name((dt_reduce_op)s->op));
    }
    if (s->root >= 0) {
        w += snprintf(buf + w, n > (size_t)w ? n - w : 0, ", root=%d",
                      s->root);
    }
    snprintf(buf + w, n > (size_t)w ? n - w : 0, ")");
}

void
dt_gloo_describe(char *buf, size_t n, const gloo_job *job)
{
    if (job->kind == GLOO_SEND || job->kind == GLOO_RECV) {
        snprintf(buf, n, "%s (%zu bytes, %s rank %d, tag %u)",
                 dt_gloo_kind_names[job->kind], job->count,
                 job->kind == GLOO_SEND ? "to" : "from", job->root,
                 job->tag);
        return;
    }
    signature s = job_signature(job);
    describe_signature(buf, n, &s);
}

int
dt_gloo_global_rank(const gloo_pg *pg, int r)
{
    return r >= 0 && r < pg->base.size ? pg->global_ranks[r] : r;
}

void
dt_gloo_mark_dead(gloo_pg *pg, const char *msg)
{
    bool was = false;
    pthread_mutex_lock(&pg->lock);
    if (!atomic_load(&pg->dead)) {
        snprintf(pg->dead_msg, sizeof pg->dead_msg, "%s", msg);
        atomic_store(&pg->dead, true);
    } else {
        was = true;
    }
    pthread_mutex_unlock(&pg->lock);
    if (!was && pg->ctx) {
        dt_gloo_close(pg->ctx);
    }
}

/* ---------------------------------------------------------------------- */
/* who arrived                                                             */

static void
arrival_key(char *buf, size_t n, const gloo_pg *pg, uint64_t seq, int r)
{
    snprintf(buf, n, "%sarrive/%llu/%d", pg->prefix, (unsigned long long)seq,
             r);
}

static dt_status
set_arrived(gloo_pg *pg, uint64_t seq)
{
    if (!pg->kv || pg->kv->needs_python) {
        return DT_OK;          /* comm threads never call into Python */
    }
    char key[600];
    arrival_key(key, sizeof key, pg, seq, pg->base.rank);
    return pg->kv->ops->set(pg->kv, key, "1", 1);
}

static void
sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Writes "[1, 3]" (global ranks whose key never showed up) into buf. */
static void
missing_ranks(char *buf, size_t n, gloo_pg *pg, uint64_t seq)
{
    dt_kv *kv = pg->kv;
    if (!kv || kv->needs_python) {
        snprintf(buf, n, "unknown (the store is implemented in Python)");
        return;
    }
    int size = pg->base.size;
    bool *seen = calloc((size_t)size, sizeof *seen);
    if (!seen) {
        snprintf(buf, n, "unknown (out of memory)");
        return;
    }
    int64_t grace = pg->timeout_ms < ARRIVAL_GRACE_MS ? pg->timeout_ms
                                                     : ARRIVAL_GRACE_MS;
    int64_t deadline = dt_work_now_ms() + grace;
    dt_status s = pg->debug ? DT_OK : set_arrived(pg, seq);
    int left = size;
    while (s == DT_OK && left > 0) {
        for (int r = 0; r < size && s == DT_OK; r++) {
            char key[600];
            const char *keys[1] = {key};
            bool exists = false;
            arrival_key(key, sizeof key, pg, seq, r);
            if (!seen[r] && (s = kv->ops->check(kv, keys, 1, &exists)) ==
                                DT_OK && exists) {
                seen[r] = true;
                left--;
            }
        }
        if (left == 0 || dt_work_now_ms() >= deadline) {
            break;
        }
        sleep_ms(ARRIVAL_POLL_MS);
    }
    if (s != DT_OK) {
        snprintf(buf, n, "unknown (the store failed: %s)", dt_last_error());
    } else if (left == 0) {
        snprintf(buf, n, "none (every rank reached it)");
    } else {
        int w = snprintf(buf, n, "[");
        for (int r = 0, first = 1; r < size; r++) {
            if (!seen[r] && (size_t)w < n) {
                w += snprintf(buf + w, n - w, "%s%d", first ? "" : ", ",
                              dt_gloo_global_rank(pg, r));
                first = 0;
            }
        }
        if ((size_t)w < n) {
            snprintf(buf + w, n - w, "]");
        }
    }
    free(seen);
}

/* The message of a collective that failed with e, and the group is dead. */
static void
report_failure(char *msg, size_t n, gloo_pg *pg, const gloo_job *job,
               dt_gloo_err e, const char *gloo_msg)
{
    char what[200], missing[300], where[300];
    dt_gloo_describe(what, sizeof what, job);
    snprintf(where, sizeof where, "on rank %d%s%s%s",
             dt_gloo_global_rank(pg, pg->base.rank),
             pg->group_name[0] ? " (group '" : "", pg->group_name,
             pg->group_name[0] ? "')" : "");
    missing_ranks(missing, sizeof missing, pg, job->seq);
    if (e == DT_GLOO_ERR_TIMEOUT) {
        snprintf(msg, n, "%s %s timed out after %lld ms; ranks that did "
                 "not arrive: %s (gloo: %s)", what, where,
                 (long long)pg->timeout_ms, missing, gloo_msg);
    } else {
        snprintf(msg, n, "%s %s failed: %s; ranks that did not arrive: %s",
                 what, where, gloo_msg, missing);
    }
    dt_gloo_mark_dead(pg, msg);
}

/* ---------------------------------------------------------------------- */
/* DETAIL mode: every rank checks every rank's signature                  */

static bool
same_signature(const signature *a, const signature *b)
{
    return a->magic == b->magic && a->kind == b->kind && a->seq == b->seq &&
           a->dtype == b->dtype && a->op == b->op && a->root == b->root &&
           a->count == b->count;
}

/* DT_OK when every rank runs the same collective. A mismatch fails the
 * job on every rank alike (each sees all signatures), so the group stays
 * usable; a failed exchange kills it as any collective would. */
static dt_status
check_signatures(gloo_pg *pg, const gloo_job *job, char *msg, size_t n)
{
    int size = pg->base.size;
    signature mine = job_signature(job);
    signature *all = calloc((size_t)size, sizeof *all);
    if (!all) {
        snprintf(msg, n, "out of memory checking collective signatures");
        return DT_ERR_NOMEM;
    }
    set_arrived(pg, job->seq);     /* best effort: only for reports */
    uint32_t tag = ((uint32_t)job->seq & ~SIG_TAG_BIT) | SIG_TAG_BIT;
    dt_gloo_err e = dt_gloo_allgather(pg->ctx, all, &mine, sizeof mine, tag,
                                      pg->timeout_ms);
    if (e != DT_GLOO_OK) {
        char gloo_msg[600];
        snprintf(gloo_msg, sizeof gloo_msg, "%s (while checking collective "
                 "signatures)", dt_gloo_last_error());
        report_failure(msg, n, pg, job, e, gloo_msg);
        free(all);
        return DT_ERR_RUNTIME;
    }
    int first_bad = -1, w = 0;
    char bad[200] = "";
    for (int r = 1; r < size; r++) {
        if (!same_signature(&all[r], &all[0])) {
            first_bad = first_bad < 0 ? r : first_bad;
            w += snprintf(bad + w, sizeof bad > (size_t)w ? sizeof bad - w
                                                          : 0,
                          "%s%d", w ? ", " : "",
                          dt_gloo_global_rank(pg, r));
        }
    }
    if (first_bad >= 0) {
        char a[200], b[200];
        describe_signature(a, sizeof a, &all[0]);
        describe_signature(b, sizeof b, &all[first_bad]);
        snprintf(msg, n, "Detected mismatch between collectives on ranks. "
                 "Rank %d is running collective: %s, but Rank %d is running "
                 "collective: %s (ranks differing from rank %d: [%s])",
                 dt_gloo_global_rank(pg, 0), a,
                 dt_gloo_global_rank(pg, first_bad), b,
                 dt_gloo_global_rank(pg, 0), bad);
    }
    free(all);
    return first_bad >= 0 ? DT_ERR_RUNTIME : DT_OK;
}

/* ---------------------------------------------------------------------- */
/* running                                                                 */

static dt_gloo_err
run_collective(gloo_pg *pg, const gloo_job *job)
{
    dt_gloo_ctx *c = pg->ctx;
    size_t es = dt_dtype_size(job->dtype), n = job->count;
    uint32_t tag = (uint32_t)job->seq & ~SIG_TAG_BIT;
    int64_t t = pg->timeout_ms;
    dt_gloo_reduce_fn fn = has_op(job->kind)
                               ? dt_gloo_reduce_fn_for(job->dtype, job->op)
                               : NULL;
    switch (job->kind) {
    case GLOO_ALLREDUCE: {
        pthread_mutex_lock(&pg->lock);
        dt_pg_gloo_tuning tune = pg->tuning;
        pthread_mutex_unlock(&pg->lock);
        dt_gloo_algo algo = n * es < tune.bcube_below ? DT_GLOO_ALGO_BCUBE
                                                     : DT_GLOO_ALGO_RING;
        return dt_gloo_allreduce(c, job->recv, n, es, fn, algo,
                                 tune.max_segment_bytes, tag, t);
    }
    case GLOO_BROADCAST:
        return dt_gloo_broadcast(c, job->recv, n * es, job->root, tag, t);
    case GLOO_REDUCE:
        return dt_gloo_reduce(c, job->recv, n, es, fn, job->root, tag, t);
    case GLOO_ALLGATHER:
        if (job->counts) {
            return dt_gloo_allgatherv(c, job->recv, job->send, job->counts,
                                      es, tag, t);
        }
        return dt_gloo_allgather(c, job->recv, job->send, n * es, tag, t);
    case GLOO_GATHER:
        return dt_gloo_gather(c, job->recv, job->send, n * es, job->root,
                              tag, t);
    case GLOO_SCATTER:
        return dt_gloo_scatter(c, job->recv, job->send, n * es, job->root,
                               tag, t);
    case GLOO_REDUCE_SCATTER:
        return dt_gloo_reduce_scatter(c, job->recv, job->send, n, es, fn,
                                      tag, t);
    case GLOO_ALLTOALL:
        if (job->counts) {
            size_t size = (size_t)pg->base.size;
            return dt_gloo_alltoallv(c, job->recv, job->counts, job->send,
                                     job->counts + size, es, tag, t);
        }
        return dt_gloo_alltoall(c, job->recv, job->send, n * es, tag, t);
    case GLOO_BARRIER:
        return dt_gloo_barrier(c, tag, t);
    default:
        DT_ASSERT(!"run_collective: not a collective");
    }
    return DT_GLOO_ERR_OTHER;
}

/* AVG is SUM then a division by the group size, where the result is. */
static void
finish_average(gloo_pg *pg, const gloo_job *job)
{
    if (!has_op(job->kind) || job->op != DT_REDUCE_AVG) {
        return;
    }
    if (job->kind == GLOO_REDUCE && pg->base.rank != job->root) {
        return;
    }
    dt_gloo_divide(job->recv, job->count, job->dtype, pg->base.size);
}

void
dt_gloo_job_free(gloo_job *job)
{
    dt_work_release(job->work);
    dt_gloo_p2p_free(job->p2p);
    free(job->counts);
    free(job);
}

void
dt_gloo_run_job(gloo_pg *pg, gloo_job *job)
{
    char msg[1024] = "";
    dt_status s = DT_OK;
    dt_work_mark_started(job->work);
    if (atomic_load(&pg->dead)) {
        char what[200];
        dt_gloo_describe(what, sizeof what, job);
        pthread_mutex_lock(&pg->lock);
        snprintf(msg, sizeof msg, "%s was not run: the process group failed "
                 "earlier (%s)", what, pg->dead_msg);
        pthread_mutex_unlock(&pg->lock);
        s = DT_ERR_RUNTIME;
    } else if (pg->debug) {
        s = check_signatures(pg, job, msg, sizeof msg);
    }
    if (s == DT_OK) {
        dt_gloo_err e = run_collective(pg, job);
        if (e != DT_GLOO_OK) {
            char gloo_msg[600];
            snprintf(gloo_msg, sizeof gloo_msg, "%s", dt_gloo_last_error());
            report_failure(msg, sizeof msg, pg, job, e, gloo_msg);
            s = e == DT_GLOO_ERR_NOMEM ? DT_ERR_NOMEM : DT_ERR_RUNTIME;
        } else {
            finish_average(pg, job);
        }
    }
    dt_work_finish(job->work, s, msg);
    dt_gloo_job_free(job);
}

void
dt_gloo_run_p2p(gloo_pg *pg, gloo_job *job)
{
    char msg[1024] = "";
    dt_status s = DT_OK;
    int peer = -1;
    dt_gloo_err e = dt_gloo_p2p_wait(job->p2p, &peer, pg->timeout_ms);
    if (e != DT_GLOO_OK) {
        char what[200];
        dt_gloo_describe(what, sizeof what, job);
        if (e == DT_GLOO_ERR_ABORTED) {
            snprintf(msg, sizeof msg, "%s on rank %d was aborted (the "
                     "process group was destroyed or aborted)", what,
                     dt_gloo_global_rank(pg, pg->base.rank));
        } else {
            snprintf(msg, sizeof msg, "%s on rank %d %s after %lld ms: %s",
                     what, dt_gloo_global_rank(pg, pg->base.rank),
                     e == DT_GLOO_ERR_TIMEOUT ? "timed out" : "failed",
                     (long long)pg->timeout_ms, dt_gloo_last_error());
            dt_gloo_mark_dead(pg, msg);   /* a Gloo timeout closed pairs */
        }
        s = DT_ERR_RUNTIME;
    }
    dt_work_set_peer(job->work, peer);
    dt_work_finish(job->work, s, msg);
}
