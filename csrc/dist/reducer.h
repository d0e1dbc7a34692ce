/* reducer.h: DistributedDataParallel's gradient reducer.
 *
 * The reducer owns one flat buffer per bucket; each parameter's gradient
 * has a view into one of them. The autograd engine drives it with no
 * Python on the way:
 *
 *   forward:   dt_reducer_prepare_forward (raises the previous iteration's
 *              unfinished reduction; rebuilds the buckets once);
 *              dt_reducer_prepare_backward (arms the hooks unless no_sync)
 *   backward:  a post-accumulate-grad hook per parameter copies grad/world
 *              into its view; when a bucket's last gradient arrives the
 *              reducer launches, strictly in bucket order, that bucket's
 *              asynchronous allreduce (or the comm hook) on the comm
 *              threads while the backward goes on;
 *   end:       an end-of-backward callback waits for the buckets and
 *              writes the averaged gradients back into .grad (or leaves
 *              .grad aliasing the view with grad_as_view).
 *
 * Buckets start in reverse parameter order (the order gradients usually
 * arrive in), so communication overlaps from the first iteration. After
 * the first synchronised backward the reducer rebuilds them once, at the
 * next forward, in the order gradients really arrived, taking rank 0's
 * order on every rank.
 *
 * Every step records a timeline (backward start and end; per bucket:
 * ready, launched, started and finished on the comm thread) and sums
 * backward time, communication time, exposed communication and bytes.
 */
#ifndef DT_REDUCER_H
#define DT_REDUCER_H

#include "pg.h"

typedef struct dt_reducer dt_reducer;

typedef struct dt_reducer_options {
    size_t first_bucket_bytes;   /* the first bucket closes at this size */
    size_t bucket_bytes;         /* the others (bucket_cap_mb) */
    bool find_unused;            /* parameters outside this backward's
                                  * graph count as ready (zero) */
    bool grad_as_view;           /* .grad aliases the bucket views */
    bool static_graph;           /* unused parameters allowed, buckets
                                  * still rebuilt */
} dt_reducer_options;

/* A communication hook replaces the allreduce of a bucket (the glue wraps
 * Python hooks in one). launch starts it (the buffer holds the gradients,
 * not divided by the world size); wait finishes it and leaves the result
 * in the buffer. Both run on the backward's thread, in bucket order. */
typedef struct dt_reducer_comm_hook {
    dt_status (*launch)(void *ctx, size_t bucket, dt_tensor *buffer,
                        bool is_last);
    dt_status (*wait)(void *ctx, size_t bucket, dt_tensor *buffer);
    void *ctx;
    void (*free_ctx)(void *ctx);
} dt_reducer_comm_hook;

/* params: the leaves DDP reduces, in model order, all requiring grad,
 * unique; names: for messages (copied). Registers the hooks. */
dt_status dt_reducer_new(dt_reducer **out, dt_pg *pg,
                         dt_tensor *const *params, const char *const *names,
                         size_t nparams, const dt_reducer_options *opt);
/* Removes the hooks (waiting for any reduction in flight) and frees. */
void dt_reducer_free(dt_reducer *r);                 /* NULL is fine */

/* Before each forward: fails (naming the parameters that got no gradient
 * and this rank) if the previous synchronised backward did not reduce
 * every bucket; rebuilds the buckets when due. May communicate. */
dt_status dt_reducer_prepare_forward(dt_reducer *r);
/* After a forward with grad enabled: sync arms the hooks for the next
 * backward (false: no_sync, gradients accumulate locally). div_factor
 * divides the summed gradients (0: the group size). */
dt_status dt_reducer_prepare_backward(dt_reducer *r, bool sync,
                                      int div_factor);
/* Installs a comm hook (once; ownership of ctx passes). */
dt_status dt_reducer_set_comm_hook(dt_reducer *r,
                                   const dt_reducer_comm_hook *hook);
/* Join support: allreduces zero-filled buckets in order, as the other
 * ranks' backward does, and waits (the shadow of one backward). */
dt_status dt_reducer_shadow_backward(dt_reducer *r);

/* ---------------------------------------------------------------------- */
/* layout and statistics                                                   */

size_t dt_reducer_num_buckets(const dt_reducer *r);
/* The parameter indices of bucket b, in buffer order (borrowed). */
const size_t *dt_reducer_bucket_params(const dt_reducer *r, size_t b,
                                       size_t *n);
/* Bucket b's flat buffer (borrowed). */
dt_tensor *dt_reducer_bucket_buffer(const dt_reducer *r, size_t b);
bool dt_reducer_has_rebuilt(const dt_reducer *r);

/* One bucket in the last step's timeline; times in CLOCK_MONOTONIC ns. */
typedef struct dt_reducer_bucket_times {
    int64_t ready_ns;            /* its last gradient arrived */
    int64_t launch_ns;           /* its allreduce was queued */
    int64_t start_ns;            /* the comm thread began it (0: unknown,
                                  * a comm hook's) */
    int64_t end_ns;              /* it finished (a hook's: seen waiting) */
    size_t bytes;
} dt_reducer_bucket_times;

typedef struct dt_reducer_stats {
    int64_t steps;               /* synchronised backwards since reset */
    int64_t backward_ns;         /* summed over those steps */
    int64_t comm_ns;             /* time some bucket was in flight */
    int64_t exposed_ns;          /* waited after the backward ended */
    int64_t bytes;
    /* the last step */
    int64_t last_backward_start_ns, last_backward_end_ns, last_done_ns;
} dt_reducer_stats;

void dt_reducer_get_stats(const dt_reducer *r, dt_reducer_stats *out);
void dt_reducer_reset_stats(dt_reducer *r);
/* The last step's timeline of bucket b. */
void dt_reducer_bucket_timeline(const dt_reducer *r, size_t b,
                                dt_reducer_bucket_times *out);

#endif /* DT_REDUCER_H */
