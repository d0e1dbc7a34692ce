/* pg_gloo.h: what the Gloo process group's files share: the group and job
 * structs (pg_gloo.c: rendezvous, queue, threads, lifetime; pg_gloo_ops.c:
 * the vtable; pg_gloo_run.c: running a job, signatures, failure reports)
 * and the reduction kernels (pg_reduce.c). */
#ifndef DT_PG_GLOO_H
#define DT_PG_GLOO_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "gloo_shim.h"
#include "pg.h"

typedef enum gloo_kind {
    GLOO_ALLREDUCE = 0,
    GLOO_BROADCAST,
    GLOO_REDUCE,
    GLOO_ALLGATHER,
    GLOO_GATHER,
    GLOO_SCATTER,
    GLOO_REDUCE_SCATTER,
    GLOO_ALLTOALL,
    GLOO_BARRIER,
    GLOO_SEND,
    GLOO_RECV,
    GLOO_KIND_COUNT
} gloo_kind;

extern const char *const dt_gloo_kind_names[GLOO_KIND_COUNT];

typedef struct gloo_job {
    struct gloo_job *next;
    gloo_kind kind;
    uint64_t seq;                /* collective number (p2p: 0) */
    void *recv;                  /* in-place ops: the data */
    const void *send;
    size_t count;                /* elements per rank (p2p: bytes) */
    size_t *counts;              /* alltoallv: recv[size], send[size];
                                  * allgatherv: recv[size] */
    dt_dtype dtype;
    dt_reduce_op op;
    int root;                    /* root, or p2p peer (-1: any) */
    uint32_t tag;                /* p2p user tag */
    dt_gloo_p2p *p2p;            /* posted send/recv */
    dt_work *work;               /* the job's reference */
} gloo_job;

typedef struct gloo_pg {
    dt_pg base;
    dt_gloo_ctx *ctx;
    dt_kv *kv;                   /* owned; failure reports, DETAIL keys */
    char *prefix;
    char *group_name;
    int *global_ranks;           /* size entries */
    int64_t timeout_ms;
    bool debug;
    dt_pg_gloo_tuning tuning;
    pid_t pid;                   /* the creating process (fork check) */

    pthread_mutex_t lock;
    pthread_cond_t cv;           /* collectives queued, or stopping */
    pthread_cond_t p2p_cv;       /* p2p jobs queued, or stopping */
    gloo_job *head, *tail;       /* collectives, in sequence order */
    gloo_job *p2p_head, *p2p_tail;
    int p2p_idle;                /* p2p threads waiting for a job */
    int p2p_queued;              /* p2p jobs no thread has taken yet */
    uint64_t seq;                /* the last sequence number handed out */
    bool stopping;
    pthread_t *threads;
    int nthreads;
    pthread_t *p2p_threads;      /* grows: one thread per pending p2p */
    gloo_job **p2p_active;       /* what thread i waits on (for abort) */
    int np2p, cap_p2p;

    _Atomic bool dead;
    char dead_msg[768];          /* why (written once, under lock) */
} gloo_pg;

/* pg_gloo.c */
/* Queues a copy of *tmpl (its sequence number assigned here, in issue
 * order); *out gets the caller's reference to the job's work. */
dt_status dt_gloo_submit(gloo_pg *pg, dt_work **out, const gloo_job *tmpl);
void dt_gloo_pg_abort(dt_pg *pg, const char *why);
void dt_gloo_pg_destroy(dt_pg *pg);
bool dt_gloo_pg_failure(dt_pg *pg, char *buf, size_t n);

/* pg_gloo_ops.c */
extern const dt_pg_ops dt_gloo_ops;

/* pg_gloo_run.c */
void dt_gloo_run_job(gloo_pg *pg, gloo_job *job);
/* Waits for a posted send/recv and finishes its work (the caller frees
 * the job). */
void dt_gloo_run_p2p(gloo_pg *pg, gloo_job *job);
void dt_gloo_job_free(gloo_job *job);
/* Marks the group dead with msg (the first reason wins) and closes the
 * connections so peers fail fast. */
void dt_gloo_mark_dead(gloo_pg *pg, const char *msg);
/* "all_reduce #3 (float32, 10 elements, op=SUM)" */
void dt_gloo_describe(char *buf, size_t n, const gloo_job *job);
/* The group rank r as the rank messages name (its global rank). */
int dt_gloo_global_rank(const gloo_pg *pg, int r);

/* pg_reduce.c: out[i] = a[i] op b[i] (out may be a or b); NULL when the
 * dtype does not support op. */
dt_gloo_reduce_fn dt_gloo_reduce_fn_for(dt_dtype dtype, dt_reduce_op op);
/* data[i] /= divisor, for AVG on floating types. */
void dt_gloo_divide(void *data, size_t count, dt_dtype dtype, int divisor);

#endif /* DT_PG_GLOO_H */
