/* pg.h: process groups, the C interface every communication backend
 * implements (Gloo now in pg_gloo.c, NCCL later), and the key-value store
 * interface they rendezvous through.
 *
 * A process group is `size` ranks that run collectives together; this
 * process is `rank`. Every operation takes raw buffers (contiguous,
 * `count` elements of `dtype`), queues the work on the backend's comm
 * threads and returns at once with a dt_work (work.h) to wait on, so C
 * callers (the DDP reducer, from the autograd engine) need no Python.
 * Buffers must stay valid until the work completes (attach tensors with
 * dt_work_keep). Every rank must issue the same collectives in the same
 * order; each gets the group's next sequence number, which tags it so that
 * concurrent collectives never mix and names it in errors
 * ("all_reduce #12").
 *
 * Errors: an argument the backend refuses fails the call itself (status +
 * dt_last_error()); a failure while running (a peer died, a timeout)
 * fails the work, with a message naming the collective, its sequence
 * number, dtype and size, this rank and the ranks that did not arrive.
 * After such a failure the group is dead: later operations fail at once.
 */
#ifndef DT_PG_H
#define DT_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../dt.h"
#include "store.h"
#include "work.h"

/* torch.distributed.ReduceOp (PREMUL_SUM aside). */
typedef enum dt_reduce_op {
    DT_REDUCE_SUM = 0,
    DT_REDUCE_AVG,
    DT_REDUCE_PRODUCT,
    DT_REDUCE_MIN,
    DT_REDUCE_MAX,
    DT_REDUCE_BAND,
    DT_REDUCE_BOR,
    DT_REDUCE_BXOR,
    DT_REDUCE_OP_COUNT
} dt_reduce_op;

const char *dt_reduce_op_name(dt_reduce_op op);      /* "SUM", ... */

/* ---------------------------------------------------------------------- */
/* key-value stores                                                        */

/* What a process group needs from a store: the TCP store client
 * (dt_kv_tcp_new), the file store (file_store.c) or one implemented in
 * Python (py_pg.c). get blocks until the key exists; values it returns
 * are malloc'ed. A store with needs_python set may only be used from a
 * thread that can take the GIL, never from comm threads. */
typedef struct dt_kv dt_kv;
typedef struct dt_kv_ops {
    dt_status (*set)(dt_kv *kv, const char *key, const void *value,
                     size_t len);
    dt_status (*get)(dt_kv *kv, const char *key, void **value, size_t *len,
                     int64_t timeout_ms);
    dt_status (*wait)(dt_kv *kv, const char *const *keys, size_t nkeys,
                      int64_t timeout_ms);
    dt_status (*check)(dt_kv *kv, const char *const *keys, size_t nkeys,
                       bool *all_exist);
    void (*free)(dt_kv *kv);
} dt_kv_ops;

struct dt_kv {
    const dt_kv_ops *ops;
    bool needs_python;
    /* Called between slices of blocking calls (NULL: none); the glue sets
     * it while a Python thread waits in a rendezvous so Ctrl-C works. */
    const dt_store_hook *hook;
};

/* The limit of a store call that takes no timeout of its own. */
#define DT_KV_CALL_TIMEOUT_MS 5000

/* A new connection to a TCP store server (its own, so comm threads never
 * queue behind a caller's blocking get); connects within timeout_ms. */
dt_status dt_kv_tcp_new(dt_kv **out, const char *host, int port,
                        int64_t timeout_ms, const dt_store_hook *hook);
void dt_kv_free(dt_kv *kv);                          /* NULL is fine */

/* ---------------------------------------------------------------------- */
/* process groups                                                          */

typedef struct dt_pg dt_pg;

/* One function per collective. Counts are elements per rank unless said
 * otherwise; roots and peers are ranks within the group. */
typedef struct dt_pg_ops {
    const char *name;                                /* "gloo" */
    /* In place on data. AVG divides after a SUM (floating types only). */
    dt_status (*allreduce)(dt_pg *pg, dt_work **out, void *data,
                           size_t count, dt_dtype dtype, dt_reduce_op op);
    dt_status (*broadcast)(dt_pg *pg, dt_work **out, void *data,
                           size_t count, dt_dtype dtype, int root);
    /* In place; root's data gets the result, others' is scratch. */
    dt_status (*reduce)(dt_pg *pg, dt_work **out, void *data, size_t count,
                        dt_dtype dtype, dt_reduce_op op, int root);
    /* recv: size * count, rank-major; or, given recv_counts (copied),
     * rank i's recv_counts[i] elements in rank order (this rank's entry
     * must be count). */
    dt_status (*allgather)(dt_pg *pg, dt_work **out, void *recv,
                           const size_t *recv_counts, const void *send,
                           size_t count, dt_dtype dtype);
    /* recv (root only, else NULL): size * count. */
    dt_status (*gather)(dt_pg *pg, dt_work **out, void *recv,
                        const void *send, size_t count, dt_dtype dtype,
                        int root);
    /* send (root only, else NULL): size * count. */
    dt_status (*scatter)(dt_pg *pg, dt_work **out, void *recv,
                         const void *send, size_t count, dt_dtype dtype,
                         int root);
    /* send: size * count; recv: count, the reduction of chunk `rank`. */
    dt_status (*reduce_scatter)(dt_pg *pg, dt_work **out, void *recv,
                                const void *send, size_t count,
                                dt_dtype dtype, dt_reduce_op op);
    /* Chunk i of send goes to rank i, chunk i of recv comes from rank i;
     * counts NULL means `count` each, else per-rank counts (copied). */
    dt_status (*alltoall)(dt_pg *pg, dt_work **out, void *recv,
                          const size_t *recv_counts, const void *send,
                          const size_t *send_counts, size_t count,
                          dt_dtype dtype);
    dt_status (*barrier)(dt_pg *pg, dt_work **out);
    /* Point to point (no sequence number: only two ranks take part).
     * recv from src < 0 takes any rank; dt_work_peer tells which. */
    dt_status (*send)(dt_pg *pg, dt_work **out, const void *data,
                      size_t nbytes, int dst, uint32_t tag);
    dt_status (*recv)(dt_pg *pg, dt_work **out, void *data, size_t nbytes,
                      int src, uint32_t tag);
    /* Fails queued and later operations and pending send/recv at once,
     * and closes the connections so peers fail fast (a collective already
     * running here ends at its timeout: Gloo cannot interrupt it). */
    void (*abort)(dt_pg *pg, const char *why);
    /* Why the group is no longer usable (after a failure or abort), into
     * buf; false while it is healthy. */
    bool (*failure)(dt_pg *pg, char *buf, size_t n);
    /* Finishes queued work, stops the threads, frees everything. */
    void (*destroy)(dt_pg *pg);
} dt_pg_ops;

struct dt_pg {
    const dt_pg_ops *ops;
    _Atomic int64_t refcount;
    int rank;
    int size;
};

void dt_pg_retain(dt_pg *pg);
void dt_pg_release(dt_pg *pg);                      /* NULL is fine */

/* The C entry points the reducer uses (they dispatch through ops). */
dt_status dt_pg_allreduce_async(dt_pg *pg, void *data, size_t count,
                                dt_dtype dtype, dt_reduce_op op,
                                dt_work **out);
dt_status dt_pg_broadcast_async(dt_pg *pg, void *data, size_t count,
                                dt_dtype dtype, int root, dt_work **out);
dt_status dt_pg_barrier_async(dt_pg *pg, dt_work **out);

/* ---------------------------------------------------------------------- */
/* Gloo                                                                    */

typedef struct dt_pg_gloo_options {
    int rank;
    int size;
    int64_t timeout_ms;          /* per collective; also the rendezvous */
    const char *prefix;          /* store keys of this group: fresh per
                                  * group and generation, e.g. "pg1/" */
    const char *hostname;        /* address to bind, e.g. "127.0.0.1" */
    const char *iface;           /* or a network interface ("eth0");
                                  * NULL or "": use hostname */
    const char *group_name;      /* for messages */
    const int *global_ranks;     /* size entries: ranks named in messages
                                  * (NULL: group ranks) */
    int threads;                 /* comm threads (0: 2, as torch) */
    bool debug;                  /* DETAIL: check collective signatures
                                  * across ranks before each collective */
} dt_pg_gloo_options;

/* Rendezvous (blocks until every rank arrives or the timeout passes) and
 * starts the comm threads. Takes ownership of kv, even on failure. */
dt_status dt_pg_gloo_new(dt_pg **out, const dt_pg_gloo_options *opt,
                         dt_kv *kv);

/* Tuning knobs (all ranks must agree); see pg_gloo.c. */
typedef struct dt_pg_gloo_tuning {
    size_t bcube_below;          /* allreduce under this many bytes uses
                                  * BCUBE, else RING */
    size_t max_segment_bytes;    /* ring segment (0: Gloo's 1 MiB) */
} dt_pg_gloo_tuning;

void dt_pg_gloo_tune(dt_pg *pg, const dt_pg_gloo_tuning *t);

#endif /* DT_PG_H */
