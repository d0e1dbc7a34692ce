/* reducer_impl.h: the reducer's state, shared by reducer.c (layout,
 * forward-side calls, statistics) and reducer_backward.c (the hooks the
 * engine runs, launching and finalizing). */
#ifndef DT_REDUCER_IMPL_H
#define DT_REDUCER_IMPL_H

#include <pthread.h>

#include "../autograd/autograd.h"
#include "reducer.h"

typedef struct rparam {
    dt_tensor *param;            /* retained */
    char *name;
    size_t bucket;
    int64_t offset;              /* elements into the bucket's buffer */
    int64_t numel;
    dt_tensor *view;             /* the param-shaped view of its slot */
    int hook_id;
    struct rhook *hook;          /* the hook's context */
    bool ready;                  /* this iteration */
    bool used;                   /* got a gradient since the last sync */
} rparam;

typedef struct rhook {
    dt_reducer *r;
    size_t index;
} rhook;

typedef struct rbucket {
    dt_tensor *buffer;           /* flat, contiguous */
    size_t *params;              /* indices, in buffer order */
    size_t nparams;
    size_t pending;              /* gradients still to arrive */
    dt_work *work;               /* the allreduce in flight */
    bool launched;
    dt_reducer_bucket_times t;
} rbucket;

struct dt_reducer {
    dt_pg *pg;
    dt_reducer_options opt;
    rparam *params;
    size_t nparams;
    rbucket *buckets;
    size_t nbuckets;
    pthread_mutex_t lock;
    dt_reducer_comm_hook hook;   /* launch NULL: plain allreduce */

    /* one iteration */
    bool expect_hooks;           /* prepare_backward(sync=true) ran */
    bool started;                /* a hook of this backward fired */
    bool require_finalize;       /* some gradient was marked ready */
    size_t next_bucket;          /* the next to launch */
    int div_factor;
    int32_t *used_map;           /* [nparams], allreduced with find_unused:
                                  * the data of used_tensor */
    dt_tensor *used_tensor;
    dt_work *used_work;

    /* rebuilding */
    size_t *arrival;             /* parameter indices in arrival order */
    size_t narrival;
    bool rebuilt;
    bool rebuild_due;

    /* statistics */
    dt_reducer_stats stats;
    int64_t bw_start_ns;
};

/* reducer.c */
dt_status dt_reducer_layout(dt_reducer *r, const size_t *order);
const char *dt_reducer_rank_label(const dt_reducer *r, char *buf, size_t n);

/* reducer_backward.c */
dt_status dt_reducer_grad_ready(void *ctx, dt_tensor *leaf);
/* Waits for every launched bucket (errors dropped) and resets the
 * iteration's state. */
void dt_reducer_abandon(dt_reducer *r);
/* Launches bucket b (buffer already filled). */
dt_status dt_reducer_launch(dt_reducer *r, size_t b);
/* Waits for bucket b; the result is in its buffer. */
dt_status dt_reducer_wait(dt_reducer *r, size_t b);

#endif /* DT_REDUCER_IMPL_H */
