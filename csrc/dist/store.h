/* store.h: the C API of dtrain's TCP key-value store (PyTorch's TCPStore).
 *
 * One process (rank 0 or the launcher) runs a dt_store_server on a
 * background thread; every rank talks to it through a dt_store_client.
 * Keys are byte strings (at most DT_STORE_MAX_KEY bytes), values are byte
 * strings (at most DT_STORE_MAX_VALUE bytes). The wire format is described
 * in docs/store_protocol.md and store_proto.h.
 *
 * Errors: every fallible call returns a dt_status and records a message
 * (dt_last_error()); dt_store_last_error_kind() then tells a timeout from a
 * lost connection from a protocol mismatch, so the glue can pick the
 * exception class. Nothing here touches Python.
 *
 * Blocking calls take an optional dt_store_hook. They wait in slices of at
 * most DT_STORE_SLICE_MS and call hook->interrupted(ctx) between slices; a
 * nonzero return abandons the call with DT_STORE_ERR_INTERRUPTED (the
 * connection is then closed and reopened by the next call, because a
 * reply may still be on its way).
 */
#ifndef DT_STORE_H
#define DT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "../dt.h"

#define DT_STORE_SLICE_MS 100

/* Limits shared by client and server; the server drops a client that
 * sends more, the client refuses to send it. */
#define DT_STORE_MAX_KEY (64u * 1024u)                 /* bytes */
#define DT_STORE_MAX_VALUE (256u * 1024u * 1024u)      /* bytes */
#define DT_STORE_MAX_KEYS 65536u                       /* per wait/check */
#define DT_STORE_MAX_KEYS_BYTES (16u * 1024u * 1024u)  /* per wait/check */

typedef enum dt_store_error {
    DT_STORE_ERR_NONE = 0,
    DT_STORE_ERR_TIMEOUT,      /* a deadline passed (get, wait, any call) */
    DT_STORE_ERR_NETWORK,      /* connect failed, peer closed, I/O error */
    DT_STORE_ERR_PROTOCOL,     /* handshake rejected, malformed reply */
    DT_STORE_ERR_SERVER,       /* the server refused the request (add on a
                                * value that is not an integer, ...) */
    DT_STORE_ERR_INTERRUPTED,  /* the hook asked to stop */
    DT_STORE_ERR_ARGUMENT,     /* caller's mistake: key too long, ... */
} dt_store_error;

/* What the last failed store call on this thread failed with. */
dt_store_error dt_store_last_error_kind(void);

typedef struct dt_store_hook {
    int (*interrupted)(void *ctx);   /* nonzero: stop waiting */
    /* Optional: the memory a returned value is received into (NULL: out
     * of memory). The caller owns what it returned, even when the call
     * then fails. Without it, values are malloc'ed. */
    void *(*alloc)(void *ctx, size_t n);
    void *ctx;
} dt_store_hook;

/* ---------------------------------------------------------------------- */
/* server                                                                  */

typedef struct dt_store_server dt_store_server;

typedef struct dt_store_server_stats {
    uint64_t accepted;     /* connections accepted so far */
    uint64_t dropped;      /* connections closed for a protocol violation */
    uint64_t rejected;     /* handshakes refused (magic or version) */
    uint64_t requests;     /* requests served */
    uint32_t clients;      /* connections open now */
} dt_store_server_stats;

/* Listens on bind_host:port (bind_host NULL or "": every interface, IPv6
 * dual-stack when available; port 0: an ephemeral port) and starts the
 * server thread. */
dt_status dt_store_server_start(dt_store_server **out, const char *bind_host,
                                int port);
/* The port actually bound. */
int dt_store_server_port(const dt_store_server *s);
void dt_store_server_stats_get(dt_store_server_stats *out,
                               dt_store_server *s);
/* Stops the thread (wakes it, joins it), closes every socket, frees all
 * keys. Parked clients see their connection close. NULL is fine. */
void dt_store_server_free(dt_store_server *s);

/* ---------------------------------------------------------------------- */
/* client                                                                  */

typedef struct dt_store_client dt_store_client;

/* Connects to host:port, retrying until timeout_ms passes (the server may
 * start later), and checks the handshake. timeout_ms is also the default
 * for every later call; 0 means no timeout. */
dt_status dt_store_client_connect(dt_store_client **out, const char *host,
                                  int port, int64_t timeout_ms,
                                  const dt_store_hook *hook);
void dt_store_client_free(dt_store_client *c);      /* NULL is fine */
void dt_store_client_set_timeout(dt_store_client *c, int64_t timeout_ms);
int64_t dt_store_client_timeout(const dt_store_client *c);

/* Values returned by the client come from hook->alloc, or else malloc
 * (the caller frees them). */
dt_status dt_store_client_set(dt_store_client *c, const dt_store_hook *hook,
                              const void *key, size_t klen,
                              const void *value, size_t vlen);
/* Blocks until the key exists (or the timeout passes). */
dt_status dt_store_client_get(dt_store_client *c, const dt_store_hook *hook,
                              void **value, size_t *vlen,
                              const void *key, size_t klen);
/* Adds delta to the integer stored (as decimal text) under key, treating
 * a missing key as 0; *result is the new value. */
dt_status dt_store_client_add(dt_store_client *c, const dt_store_hook *hook,
                              int64_t *result, const void *key, size_t klen,
                              int64_t delta);
/* PyTorch's compare_set: see docs/store_protocol.md. *value is what the
 * key holds afterwards (or `expected` for a missing key and a non-empty
 * expected). */
dt_status dt_store_client_compare_set(dt_store_client *c,
                                      const dt_store_hook *hook,
                                      void **value, size_t *vlen,
                                      const void *key, size_t klen,
                                      const void *expected, size_t elen,
                                      const void *desired, size_t dlen);
/* Waits until every key exists. timeout_ms < 0: the client's timeout;
 * 0: no timeout. */
dt_status dt_store_client_wait(dt_store_client *c, const dt_store_hook *hook,
                               const void *const *keys, const size_t *klens,
                               size_t nkeys, int64_t timeout_ms);
dt_status dt_store_client_check(dt_store_client *c, const dt_store_hook *hook,
                                int *all_exist, const void *const *keys,
                                const size_t *klens, size_t nkeys);
dt_status dt_store_client_delete(dt_store_client *c,
                                 const dt_store_hook *hook, int *deleted,
                                 const void *key, size_t klen);
dt_status dt_store_client_num_keys(dt_store_client *c,
                                   const dt_store_hook *hook, int64_t *n);

#endif /* DT_STORE_H */
