/* work.h: asynchronous work objects, what every process-group operation
 * returns (torch's Work).
 *
 * A backend creates a work (dt_work_new), hands it to the caller and
 * finishes it exactly once (dt_work_finish) from whichever thread ran the
 * operation. Callers wait with a timeout, in slices, calling a hook between
 * slices (the Python glue checks for Ctrl-C there), or register callbacks
 * that run on the finishing thread. Nothing here touches Python.
 *
 * Works are refcounted: the creator's reference goes to the caller; the
 * backend holds its own until it has finished the work. Tensors a work
 * must keep alive (the buffers an operation reads or writes) are attached
 * with dt_work_keep and released when the last reference goes.
 */
#ifndef DT_WORK_H
#define DT_WORK_H

#include <stdbool.h>
#include <stdint.h>

#include "../dt.h"

#define DT_WORK_SLICE_MS 100

typedef struct dt_work dt_work;
typedef void (*dt_work_fn)(dt_work *w, void *ctx);

/* Between slices of a wait: nonzero abandons the wait. */
typedef struct dt_work_hook {
    int (*interrupted)(void *ctx);
    void *ctx;
} dt_work_hook;

/* `what` names the operation in messages ("all_reduce #3"). */
dt_status dt_work_new(dt_work **out, const char *what);
void dt_work_retain(dt_work *w);
void dt_work_release(dt_work *w);                   /* NULL is fine */
/* Keeps t (retained) alive as long as the work. */
dt_status dt_work_keep(dt_work *w, dt_tensor *t);

/* Completes the work: s == DT_OK, or a failure with its message. Wakes
 * the waiters, then runs the callbacks on this thread. Only once. */
void dt_work_finish(dt_work *w, dt_status s, const char *msg);
/* A completed work that already failed before it was handed out. */
dt_status dt_work_new_failed(dt_work **out, const char *what, dt_status s,
                             const char *msg);

bool dt_work_is_completed(dt_work *w);
/* DT_OK while pending or after success; the failure's status after. */
dt_status dt_work_status(dt_work *w);
/* The failure's message (NULL unless failed); lives as long as w. */
const char *dt_work_error(dt_work *w);
const char *dt_work_what(const dt_work *w);
/* The peer of a finished send/recv (-1 when unknown). */
int dt_work_peer(dt_work *w);
void dt_work_set_peer(dt_work *w, int peer);

/* Waits for completion. timeout_ms <= 0: no limit. Returns DT_OK on
 * success; the work's failure (message in dt_last_error()); or, when the
 * timeout passes first, DT_ERR_RUNTIME with *timed_out set (the work goes
 * on). An interrupted wait returns DT_ERR_RUNTIME. */
dt_status dt_work_wait(dt_work *w, int64_t timeout_ms,
                       const dt_work_hook *hook, bool *timed_out);

/* Runs fn(w, ctx) once w completes: on the finishing thread, or now on
 * this one if it already has. */
dt_status dt_work_then(dt_work *w, dt_work_fn fn, void *ctx);

/* Milliseconds and nanoseconds on the monotonic clock (CLOCK_MONOTONIC,
 * the clock the autograd engine stamps backward passes with). */
int64_t dt_work_now_ms(void);
int64_t dt_work_now_ns(void);

/* Timeline: the backend marks when it begins running the operation (not
 * when it was queued); finishing stamps the end. 0 until then. */
void dt_work_mark_started(dt_work *w);
int64_t dt_work_started_ns(dt_work *w);
int64_t dt_work_finished_ns(dt_work *w);

#endif /* DT_WORK_H */
