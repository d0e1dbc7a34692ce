/* store_client.h: what the client's connection code (store_client.c) and
 * its operations (store_client_ops.c) share. */
#ifndef DT_STORE_CLIENT_H
#define DT_STORE_CLIENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "store_proto.h"

struct dt_store_client {
    pthread_mutex_t lock;     /* one request in flight per connection */
    char *host;
    int port;
    int fd;                   /* -1: reconnect before the next request */
    pid_t pid;                /* the process that owns fd and lock */
    _Atomic int64_t timeout_ms;
};

/* The context of one call, for error messages and deadlines. */
typedef struct dt_store_call {
    dt_store_client *c;
    const dt_store_hook *hook;
    const char *op;           /* "get", ... */
    int64_t deadline;
} dt_store_call;

/* Takes the connection (reconnecting if needed), sends req (freed in
 * every case; built == false means building it ran out of memory) and
 * then tail (a large value sent without a copy), and reads the reply's
 * status byte. On success the caller holds the
 * connection, reads the payload and finishes with dt_store_call_end. */
dt_status dt_store_call_start(dt_store_call *k, dt_store_client *c,
                              const dt_store_hook *hook, const char *op,
                              int64_t deadline, dt_store_buf *req,
                              bool built, const void *tail, size_t tail_len,
                              uint8_t *status);
/* Releases the connection; returns s. */
dt_status dt_store_call_end(dt_store_call *k, dt_status s);
/* Fails (and closes the connection) unless status is OK. */
dt_status dt_store_call_expect_ok(dt_store_call *k, uint8_t status);
dt_status dt_store_call_recv(dt_store_call *k, void *p, size_t n);
dt_status dt_store_call_recv_u64(dt_store_call *k, uint64_t *v);
/* A malloc'ed value (u64 length, bytes). */
dt_status dt_store_call_recv_value(dt_store_call *k, void **value,
                                   size_t *vlen);

#endif /* DT_STORE_CLIENT_H */
