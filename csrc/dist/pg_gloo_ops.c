/* pg_gloo_ops.c: the Gloo process group's vtable: each operation checks
 * what the backend would refuse (roots, peers, dtype/op pairs), fills a
 * job and queues it (dt_gloo_submit in pg_gloo.c). Point-to-point
 * operations are posted here, on the caller's thread, so that messages
 * between a pair keep program order; a p2p thread then waits for them. */
#include "pg_gloo.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static dt_status
check_root(const gloo_pg *pg, int root, const char *op)
{
    if (root < 0 || root >= pg->base.size) {
        return dt_fail(DT_ERR_VALUE, "%s: invalid root rank %d for a group "
                       "of size %d", op, root, pg->base.size);
    }
    return DT_OK;
}

static dt_status
check_op(dt_dtype dtype, dt_reduce_op op, const char *name)
{
    if ((unsigned)op >= DT_REDUCE_OP_COUNT) {
        return dt_fail(DT_ERR_VALUE, "%s: unknown ReduceOp %d", name, op);
    }
    if (op == DT_REDUCE_AVG && !dt_dtype_is_floating(dtype)) {
        return dt_fail(DT_ERR_RUNTIME, "%s: ReduceOp.AVG needs a floating "
                       "point tensor, got %s (result type Float can't be "
                       "cast to the desired output type %s)", name,
                       dt_dtype_name(dtype), dt_dtype_name(dtype));
    }
    if (!dt_gloo_reduce_fn_for(dtype, op)) {
        return dt_fail(DT_ERR_RUNTIME, "%s: Cannot use ReduceOp.%s with "
                       "non-integral dtype %s", name, dt_reduce_op_name(op),
                       dt_dtype_name(dtype));
    }
    return DT_OK;
}

static dt_status
pg_allreduce(dt_pg *pg, dt_work **out, void *data, size_t count,
             dt_dtype dtype, dt_reduce_op op)
{
    DT_TRY(check_op(dtype, op, "all_reduce"));
    gloo_job j = {.kind = GLOO_ALLREDUCE, .recv = data, .count = count,
                  .dtype = dtype, .op = op};
    return dt_gloo_submit((gloo_pg *)pg, out, &j);
}

static dt_status
pg_broadcast(dt_pg *pg, dt_work **out, void *data, size_t count,
             dt_dtype dtype, int root)
{
    DT_TRY(check_root((gloo_pg *)pg, root, "broadcast"));
    gloo_job j = {.kind = GLOO_BROADCAST, .recv = data, .count = count,
                  .dtype = dtype, .root = root};
    return dt_gloo_submit((gloo_pg *)pg, out, &j);
}

static dt_status
pg_reduce(dt_pg *pg, dt_work **out, void *data, size_t count,
          dt_dtype dtype, dt_reduce_op op, int root)
{
    DT_TRY(check_op(dtype, op, "reduce"));
    DT_TRY(check_root((gloo_pg *)pg, root, "reduce"));
    gloo_job j = {.kind = GLOO_REDUCE, .recv = data, .count = count,
                  .dtype = dtype, .op = op, .root = root};
    return dt_gloo_submit((gloo_pg *)pg, out, &j);
}

/* A copy of n counts for a job (NULL counts: NULL). */
static dt_status
copy_counts(size_t **out, const size_t *counts, size_t n, const char *op)
{
    *out = NULL;
    if (counts && !(*out = malloc(n * sizeof **out))) {
        return dt_fail(DT_ERR_NOMEM, "out of memory in %s", op);
    }
    if (counts) {
        memcpy(*out, counts, n * sizeof **out);
    }
    return DT_OK;
}

static dt_status
pg_allgather(dt_pg *pg_, dt_work **out, void *recv, const size_t *counts,
             const void *send, size_t count, dt_dtype dtype)
{
    gloo_pg *pg = (gloo_pg *)pg_;
    if (counts && counts[pg->base.rank] != count) {
        return dt_fail(DT_ERR_VALUE, "all_gather: this rank sends %zu "
                       "elements but its entry in the counts is %zu", count,
                       counts[pg->base.rank]);
    }
    gloo_job j = {.kind = GLOO_ALLGATHER, .recv = recv, .send = send,
                  .count = count, .dtype = dtype};
    DT_TRY(copy_counts(&j.counts, counts, (size_t)pg->base.size,
                       "all_gather"));
    dt_status s = dt_gloo_submit(pg, out, &j);
    if (s != DT_OK) {
        free(j.counts);
    }
    return s;
}

static dt_status
pg_gather(dt_pg *pg, dt_work **out, void *recv, const void *send,
          size_t count, dt_dtype dtype, int root)
{
    DT_TRY(check_root((gloo_pg *)pg, root, "gather"));
    gloo_job j = {.kind = GLOO_GATHER, .recv = recv, .send = send,
                  .count = count, .dtype = dtype, .root = root};
    return dt_gloo_submit((gloo_pg *)pg, out, &j);
}

static dt_status
pg_scatter(dt_pg *pg, dt_work **out, void *recv, const void *send,
           size_t count, dt_dtype dtype, int root)
{
    DT_TRY(check_root((gloo_pg *)pg, root, "scatter"));
    gloo_job j = {.kind = GLOO_SCATTER, .recv = recv, .send = send,
                  .count = count, .dtype = dtype, .root = root};
    return dt_gloo_submit((gloo_pg *)pg, out, &j);
}

static dt_status
pg_reduce_scatter(dt_pg *pg, dt_work **out, void *recv, const void *send,
                  size_t count, dt_dtype dtype, dt_reduce_op op)
{
    DT_TRY(check_op(dtype, op, "reduce_scatter"));
    gloo_job j = {.kind = GLOO_REDUCE_SCATTER, .recv = recv, .send = send,
                  .count = count, .dtype = dtype, .op = op};
    return dt_gloo_submit((gloo_pg *)pg, out, &j);
}

static dt_status
pg_alltoall(dt_pg *pg_, dt_work **out, void *recv, const size_t *recv_counts,
            const void *send, const size_t *send_counts, size_t count,
            dt_dtype dtype)
{
    gloo_pg *pg = (gloo_pg *)pg_;
    gloo_job j = {.kind = GLOO_ALLTOALL, .recv = recv, .send = send,
                  .count = count, .dtype = dtype};
    if (recv_counts || send_counts) {
        size_t n = (size_t)pg->base.size;
        j.counts = malloc(2 * n * sizeof *j.counts);
        if (!j.counts) {
            return dt_fail(DT_ERR_NOMEM, "out of memory in all_to_all");
        }
        for (size_t i = 0; i < n; i++) {
            j.counts[i] = recv_counts ? recv_counts[i] : count;
            j.counts[n + i] = send_counts ? send_counts[i] : count;
        }
    }
    dt_status s = dt_gloo_submit(pg, out, &j);
    if (s != DT_OK) {
        free(j.counts);
    }
    return s;
}

static dt_status
pg_barrier(dt_pg *pg, dt_work **out)
{
    gloo_job j = {.kind = GLOO_BARRIER, .dtype = DT_UINT8};
    return dt_gloo_submit((gloo_pg *)pg, out, &j);
}

static dt_status
check_peer(const gloo_pg *pg, int peer, bool any_ok, const char *op)
{
    if ((peer < 0 && !(any_ok && peer == -1)) || peer >= pg->base.size ||
        peer == pg->base.rank) {
        return dt_fail(DT_ERR_VALUE, "%s: invalid peer rank %d (this is "
                       "rank %d of a group of size %d)", op, peer,
                       pg->base.rank, pg->base.size);
    }
    return DT_OK;
}

/* Posts on this thread, then queues the wait. */
static dt_status
submit_p2p(gloo_pg *pg, dt_work **out, gloo_job *j)
{
    dt_gloo_err e;
    if (getpid() != pg->pid) {
        return dt_gloo_submit(pg, out, j);          /* fails with the fork message */
    }
    if (j->kind == GLOO_SEND) {
        e = dt_gloo_send_post(&j->p2p, pg->ctx, j->send, j->count, j->root,
                              j->tag);
    } else {
        e = dt_gloo_recv_post(&j->p2p, pg->ctx, j->recv, j->count, j->root,
                              j->tag);
    }
    if (e != DT_GLOO_OK) {
        return dt_fail(DT_ERR_RUNTIME, "%s to/from rank %d failed: %s",
                       dt_gloo_kind_names[j->kind], j->root,
                       dt_gloo_last_error());
    }
    dt_status s = dt_gloo_submit(pg, out, j);
    if (s != DT_OK) {
        dt_gloo_p2p_abort(j->p2p);
        dt_gloo_p2p_free(j->p2p);    /* the pair may still point at it */
    }
    return s;
}

static dt_status
pg_send(dt_pg *pg_, dt_work **out, const void *data, size_t nbytes, int dst,
        uint32_t tag)
{
    gloo_pg *pg = (gloo_pg *)pg_;
    DT_TRY(check_peer(pg, dst, false, "send"));
    gloo_job j = {.kind = GLOO_SEND, .send = data, .count = nbytes,
                  .dtype = DT_UINT8, .root = dst, .tag = tag};
    return submit_p2p(pg, out, &j);
}

static dt_status
pg_recv(dt_pg *pg_, dt_work **out, void *data, size_t nbytes, int src,
        uint32_t tag)
{
    gloo_pg *pg = (gloo_pg *)pg_;
    DT_TRY(check_peer(pg, src, true, "recv"));
    gloo_job j = {.kind = GLOO_RECV, .recv = data, .count = nbytes,
                  .dtype = DT_UINT8, .root = src, .tag = tag};
    return submit_p2p(pg, out, &j);
}

const dt_pg_ops dt_gloo_ops = {
    .name = "gloo",
    .allreduce = pg_allreduce,
    .broadcast = pg_broadcast,
    .reduce = pg_reduce,
    .allgather = pg_allgather,
    .gather = pg_gather,
    .scatter = pg_scatter,
    .reduce_scatter = pg_reduce_scatter,
    .alltoall = pg_alltoall,
    .barrier = pg_barrier,
    .send = pg_send,
    .recv = pg_recv,
    .abort = dt_gloo_pg_abort,
    .failure = dt_gloo_pg_failure,
    .destroy = dt_gloo_pg_destroy,
};
