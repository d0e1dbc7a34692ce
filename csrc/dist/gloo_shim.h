/* gloo_shim.h: a C API over Gloo's C++ collectives (gloo_shim.cc), the only
 * C++ in dtrain.
 *
 * Only Gloo's newer options-based API is used (gloo::allreduce(opts), ...):
 * mixing in the old algorithm classes on one context turns off the
 * kernel's send-buffer autotuning and costs 10x (see
 * shared/reference/gloo-nccl-horovod.md). Reduce-scatter, which that API
 * lacks, is a ring over unbound buffers written here.
 *
 * Every call returns DT_GLOO_OK or an error kind, with the message in
 * dt_gloo_last_error() (thread-local); no C++ exception crosses the border.
 * Calls that run a collective block the calling thread (a comm thread) for
 * at most timeout_ms. Counts are elements, sizes are bytes.
 *
 * Tags tell concurrent operations apart: two calls on one context may run
 * at once from different threads when their tags differ; every rank must
 * issue a tag with the same arguments. After any failure the context is
 * unusable (a Gloo timeout closes every pair); dt_gloo_close() closes the
 * connections deliberately so that peers fail fast instead of timing out.
 */
#ifndef DT_GLOO_SHIM_H
#define DT_GLOO_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dt_gloo_err {
    DT_GLOO_OK = 0,
    DT_GLOO_ERR_TIMEOUT,    /* the operation's deadline passed */
    DT_GLOO_ERR_IO,         /* a peer closed its connection, I/O failed */
    DT_GLOO_ERR_NOMEM,
    DT_GLOO_ERR_ABORTED,    /* a pending send/recv was aborted */
    DT_GLOO_ERR_OTHER,      /* anything else Gloo threw */
} dt_gloo_err;

/* The message of the last failed call on this thread. */
const char *dt_gloo_last_error(void);

/* The key-value store connectFullMesh rendezvouses through. Callbacks
 * return 0 on success; on failure, nonzero with a message in *why (a
 * static or thread-local string). get blocks until the key exists and
 * returns a malloc'ed value. */
typedef struct dt_gloo_store {
    void *self;
    int (*set)(void *self, const char *key, const void *value, size_t len,
               const char **why);
    int (*get)(void *self, const char *key, void **value, size_t *len,
               int64_t timeout_ms, const char **why);
    int (*wait)(void *self, const char *const *keys, size_t nkeys,
                int64_t timeout_ms, const char **why);
} dt_gloo_store;

typedef struct dt_gloo_ctx dt_gloo_ctx;

/* Elementwise reduction: out[i] = a[i] (op) b[i]; out may equal a or b. */
typedef void (*dt_gloo_reduce_fn)(void *out, const void *a, const void *b,
                                  size_t n);

typedef enum dt_gloo_algo {
    DT_GLOO_ALGO_RING = 0,
    DT_GLOO_ALGO_BCUBE,
} dt_gloo_algo;

/* Creates a TCP device bound to interface `iface` when given (non-empty),
 * else to `hostname` (an IPv4 address or name), and connects a full mesh,
 * every key under `prefix` (fresh per rendezvous). */
dt_gloo_err dt_gloo_connect(dt_gloo_ctx **out, int rank, int size,
                            const char *prefix, const dt_gloo_store *store,
                            const char *hostname, const char *iface,
                            int64_t timeout_ms);
/* Closes every pair: pending operations here and on the peers fail. */
void dt_gloo_close(dt_gloo_ctx *c);
void dt_gloo_free(dt_gloo_ctx *c);                  /* NULL is fine */

/* In place on buf (count elements of elsize bytes). */
dt_gloo_err dt_gloo_allreduce(dt_gloo_ctx *c, void *buf, size_t count,
                              size_t elsize, dt_gloo_reduce_fn fn,
                              dt_gloo_algo algo, size_t max_segment_bytes,
                              uint32_t tag, int64_t timeout_ms);
dt_gloo_err dt_gloo_broadcast(dt_gloo_ctx *c, void *buf, size_t nbytes,
                              int root, uint32_t tag, int64_t timeout_ms);
/* In place; the result is in root's buf (other ranks' buf is scratch). */
dt_gloo_err dt_gloo_reduce(dt_gloo_ctx *c, void *buf, size_t count,
                           size_t elsize, dt_gloo_reduce_fn fn, int root,
                           uint32_t tag, int64_t timeout_ms);
/* out: size * nbytes, rank-major. in may point into out. */
dt_gloo_err dt_gloo_allgather(dt_gloo_ctx *c, void *out, const void *in,
                              size_t nbytes, uint32_t tag,
                              int64_t timeout_ms);
/* out: sum(counts) elements; rank i contributes counts[i]. */
dt_gloo_err dt_gloo_allgatherv(dt_gloo_ctx *c, void *out, const void *in,
                               const size_t *counts, size_t elsize,
                               uint32_t tag, int64_t timeout_ms);
/* out (root only; NULL elsewhere): size * nbytes. */
dt_gloo_err dt_gloo_gather(dt_gloo_ctx *c, void *out, const void *in,
                           size_t nbytes, int root, uint32_t tag,
                           int64_t timeout_ms);
/* in (root only; NULL elsewhere): size * nbytes. */
dt_gloo_err dt_gloo_scatter(dt_gloo_ctx *c, void *out, const void *in,
                            size_t nbytes, int root, uint32_t tag,
                            int64_t timeout_ms);
/* in: size * count elements; out: count, the reduction of chunk `rank`
 * (a ring over unbound buffers; `in` is left untouched). */
dt_gloo_err dt_gloo_reduce_scatter(dt_gloo_ctx *c, void *out,
                                   const void *in, size_t count,
                                   size_t elsize, dt_gloo_reduce_fn fn,
                                   uint32_t tag, int64_t timeout_ms);
/* Equal chunks: in and out both hold size * nbytes. */
dt_gloo_err dt_gloo_alltoall(dt_gloo_ctx *c, void *out, const void *in,
                             size_t nbytes, uint32_t tag,
                             int64_t timeout_ms);
/* Chunk i of in goes to rank i (in_counts[i] elements); chunk i of out
 * comes from rank i (out_counts[i]). */
dt_gloo_err dt_gloo_alltoallv(dt_gloo_ctx *c, void *out,
                              const size_t *out_counts, const void *in,
                              const size_t *in_counts, size_t elsize,
                              uint32_t tag, int64_t timeout_ms);
dt_gloo_err dt_gloo_barrier(dt_gloo_ctx *c, uint32_t tag,
                            int64_t timeout_ms);

/* Point to point: post now (the transfer proceeds on Gloo's I/O thread),
 * wait later. src < 0 receives from any rank. */
typedef struct dt_gloo_p2p dt_gloo_p2p;
dt_gloo_err dt_gloo_send_post(dt_gloo_p2p **out, dt_gloo_ctx *c,
                              const void *buf, size_t nbytes, int dst,
                              uint32_t tag);
dt_gloo_err dt_gloo_recv_post(dt_gloo_p2p **out, dt_gloo_ctx *c, void *buf,
                              size_t nbytes, int src, uint32_t tag);
/* Blocks until done; *peer (may be NULL) gets the other rank. */
dt_gloo_err dt_gloo_p2p_wait(dt_gloo_p2p *p, int *peer, int64_t timeout_ms);
/* Makes a pending or later dt_gloo_p2p_wait return DT_GLOO_ERR_ABORTED. */
void dt_gloo_p2p_abort(dt_gloo_p2p *p);
void dt_gloo_p2p_free(dt_gloo_p2p *p);              /* NULL is fine */

#ifdef __cplusplus
}
#endif

#endif /* DT_GLOO_SHIM_H */
