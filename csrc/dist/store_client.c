/* store_client.c: the store client: one TCP connection, one request at a
 * time (a mutex serialises threads), every call bounded by a deadline.
 *
 * get and wait send their timeout to the server, which parks them and
 * answers TIMEOUT when it passes; the client itself gives up after twice
 * that (a hung server). A call that is abandoned half-way (interrupted,
 * timed out locally, broken pipe) closes the connection, since a late
 * reply would otherwise be read as the answer to the next request; the
 * next call reconnects. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "socket.h"
#include "store_client.h"

/* Fails the call for an I/O result and closes the connection: whatever
 * the server sends next would be out of step. */
static dt_status
io_fail(dt_store_call *k, dt_sock_result r)
{
    int err = errno;
    dt_store_client *c = k->c;
    dt_sock_close(&c->fd);
    switch (r) {
    case DT_SOCK_TIMEOUT:
        return dt_store_fail(DT_STORE_ERR_TIMEOUT, "TCPStore %s: no reply "
                             "from %s:%d in time (timeout %lldms)", k->op,
                             c->host, c->port,
                             (long long)atomic_load(&c->timeout_ms));
    case DT_SOCK_INTERRUPTED:
        return dt_store_fail(DT_STORE_ERR_INTERRUPTED, "TCPStore %s: "
                             "interrupted", k->op);
    case DT_SOCK_CLOSED:
        return dt_store_fail(DT_STORE_ERR_NETWORK, "TCPStore %s: the server "
                             "at %s:%d closed the connection (did it shut "
                             "down or crash?)", k->op, c->host, c->port);
    default:
        return dt_store_fail(DT_STORE_ERR_NETWORK, "TCPStore %s: I/O error "
                             "talking to %s:%d: %s", k->op, c->host, c->port,
                             strerror(err));
    }
}

static dt_status
send_all(dt_store_call *k, const void *p, size_t n)
{
    dt_sock_result r = dt_sock_send_all(k->c->fd, p, n, k->deadline,
                                        k->hook);
    return r == DT_SOCK_OK ? DT_OK : io_fail(k, r);
}

dt_status
dt_store_call_recv(dt_store_call *k, void *p, size_t n)
{
    dt_sock_result r = dt_sock_recv_all(k->c->fd, p, n, k->deadline,
                                        k->hook);
    return r == DT_SOCK_OK ? DT_OK : io_fail(k, r);
}

/* ---------------------------------------------------------------------- */
/* connecting                                                              */

static dt_status
handshake(dt_store_call *k)
{
    uint8_t hello[DT_STORE_HELLO_LEN], reply[DT_STORE_HELLO_REPLY_LEN];
    dt_store_put_u32(hello, DT_STORE_MAGIC);
    dt_store_put_u32(hello + 4, DT_STORE_VERSION);
    DT_TRY(send_all(k, hello, sizeof hello));
    DT_TRY(dt_store_call_recv(k, reply, sizeof reply));
    uint32_t magic = dt_store_get_u32(reply);
    uint32_t version = dt_store_get_u32(reply + 4);
    const char *why = NULL;
    if (magic != DT_STORE_MAGIC) {
        why = "is not a dtrain TCPStore (wrong magic number)";
    } else if (reply[8] == DT_STORE_HELLO_BAD_VERSION ||
               version != DT_STORE_VERSION) {
        why = "speaks another protocol version";
    } else if (reply[8] != DT_STORE_HELLO_OK) {
        why = "refused the handshake";
    }
    if (why) {
        dt_sock_close(&k->c->fd);
        return dt_store_fail(DT_STORE_ERR_PROTOCOL, "TCPStore: the server "
                             "at %s:%d %s: it sent magic 0x%08x version %u, "
                             "this client speaks magic 0x%08x version %u",
                             k->c->host, k->c->port, why, magic, version,
                             DT_STORE_MAGIC, DT_STORE_VERSION);
    }
    return DT_OK;
}

static void
sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000,
                          .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
}

/* Connects and shakes hands, retrying with backoff until the deadline:
 * the server may not be listening yet. */
static dt_status
reconnect(dt_store_call *k)
{
    char why[256] = "";
    int64_t backoff = 10;
    int tries = 0;
    for (;;) {
        tries++;
        dt_sock_result r = dt_sock_connect(&k->c->fd, k->c->host,
                                           k->c->port, k->deadline, k->hook,
                                           why, sizeof why);
        if (r == DT_SOCK_OK) {
            return handshake(k);
        }
        if (r == DT_SOCK_INTERRUPTED) {
            return io_fail(k, r);
        }
        int64_t left = k->deadline - dt_sock_now_ms();
        if (r == DT_SOCK_TIMEOUT || left <= 0) {
            break;
        }
        if (k->hook && k->hook->interrupted &&
            k->hook->interrupted(k->hook->ctx)) {
            return io_fail(k, DT_SOCK_INTERRUPTED);
        }
        sleep_ms(backoff < left ? backoff : left);
        backoff = backoff * 2 > DT_STORE_SLICE_MS ? DT_STORE_SLICE_MS
                                                  : backoff * 2;
    }
    return dt_store_fail(DT_STORE_ERR_NETWORK, "TCPStore: could not connect "
                         "to %s:%d within %lldms (%d attempts): %s",
                         k->c->host, k->c->port,
                         (long long)atomic_load(&k->c->timeout_ms), tries,
                         why[0] ? why : "timed out");
}

dt_status
dt_store_client_connect(dt_store_client **out, const char *host, int port,
                        int64_t timeout_ms, const dt_store_hook *hook)
{
    if (port <= 0 || port > 65535) {
        return dt_store_fail(DT_STORE_ERR_ARGUMENT, "TCPStore: port must "
                             "be in [1, 65535], got %d", port);
    }
    dt_store_client *c = calloc(1, sizeof *c);
    if (!c || !(c->host = strdup(host))) {
        free(c);
        return dt_fail(DT_ERR_NOMEM, "TCPStore: out of memory");
    }
    pthread_mutex_init(&c->lock, NULL);
    c->port = port;
    c->fd = -1;
    c->pid = getpid();
    atomic_store(&c->timeout_ms, timeout_ms);
    dt_store_call k = {c, hook, "connect", dt_sock_deadline(timeout_ms)};
    dt_status s = reconnect(&k);
    if (s != DT_OK) {
        dt_store_client_free(c);
        return s;
    }
    *out = c;
    return DT_OK;
}

void
dt_store_client_free(dt_store_client *c)
{
    if (!c) {
        return;
    }
    dt_sock_close(&c->fd);
    pthread_mutex_destroy(&c->lock);
    free(c->host);
    free(c);
}

void
dt_store_client_set_timeout(dt_store_client *c, int64_t timeout_ms)
{
    atomic_store(&c->timeout_ms, timeout_ms);
}

int64_t
dt_store_client_timeout(const dt_store_client *c)
{
    return atomic_load(&c->timeout_ms);
}

/* ---------------------------------------------------------------------- */
/* one request                                                             */

/* Takes the connection for one call, waiting in slices (another thread
 * may be parked in a long get) and reconnecting if the last call broke
 * it. */
static dt_status
call_begin(dt_store_call *k, dt_store_client *c, const dt_store_hook *hook,
           const char *op, int64_t deadline)
{
    *k = (dt_store_call){c, hook, op, deadline};
    if (c->pid != getpid()) {
        /* a forked child (a data-loader worker, say): the socket is the
         * parent's conversation and the lock may have been copied held */
        pthread_mutex_init(&c->lock, NULL);
        dt_sock_close(&c->fd);
        c->pid = getpid();
    }
    for (;;) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += DT_STORE_SLICE_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (pthread_mutex_timedlock(&c->lock, &ts) == 0) {
            break;
        }
        if (dt_sock_now_ms() >= deadline) {
            return dt_store_fail(DT_STORE_ERR_TIMEOUT, "TCPStore %s: another "
                                 "thread held the connection past the "
                                 "timeout", op);
        }
        if (hook && hook->interrupted && hook->interrupted(hook->ctx)) {
            return dt_store_fail(DT_STORE_ERR_INTERRUPTED, "TCPStore %s: "
                                 "interrupted", op);
        }
    }
    if (c->fd < 0) {
        dt_status s = reconnect(k);
        if (s != DT_OK) {
            pthread_mutex_unlock(&c->lock);
            return s;
        }
    }
    return DT_OK;
}

/* Sends the request and reads the status byte; an ERROR reply becomes a
 * DT_STORE_ERR_SERVER failure. Unlocks on failure. */
static dt_status
call_exchange(dt_store_call *k, dt_store_buf *req, const void *tail,
              size_t tail_len, uint8_t *status)
{
    dt_status s = send_all(k, req->data + req->off, dt_store_buf_size(req));
    dt_store_buf_free(req);
    if (s == DT_OK && tail_len > 0) {
        s = send_all(k, tail, tail_len);
    }
    if (s == DT_OK) {
        s = dt_store_call_recv(k, status, 1);
    }
    if (s == DT_OK && *status == DT_STORE_REPLY_ERROR) {
        uint8_t h[4];
        char msg[DT_STORE_MAX_MESSAGE + 1];
        s = dt_store_call_recv(k, h, 4);
        uint32_t n = s == DT_OK ? dt_store_get_u32(h) : 0;
        if (s == DT_OK && n > DT_STORE_MAX_MESSAGE) {
            dt_sock_close(&k->c->fd);
            s = dt_store_fail(DT_STORE_ERR_PROTOCOL, "TCPStore %s: "
                              "malformed error reply", k->op);
        } else if (s == DT_OK &&
                   (s = dt_store_call_recv(k, msg, n)) == DT_OK) {
            msg[n] = '\0';
            s = dt_store_fail(DT_STORE_ERR_SERVER, "TCPStore %s: %s", k->op,
                              msg);
        }
    } else if (s == DT_OK && *status > DT_STORE_REPLY_TIMEOUT) {
        dt_sock_close(&k->c->fd);
        s = dt_store_fail(DT_STORE_ERR_PROTOCOL, "TCPStore %s: malformed "
                          "reply (status %u)", k->op, *status);
    }
    if (s != DT_OK) {
        pthread_mutex_unlock(&k->c->lock);
    }
    return s;
}

dt_status
dt_store_call_end(dt_store_call *k, dt_status s)
{
    pthread_mutex_unlock(&k->c->lock);
    return s;
}

dt_status
dt_store_call_recv_u64(dt_store_call *k, uint64_t *v)
{
    uint8_t h[8];
    DT_TRY(dt_store_call_recv(k, h, 8));
    *v = dt_store_get_u64(h);
    return DT_OK;
}

dt_status
dt_store_call_recv_value(dt_store_call *k, void **value, size_t *vlen)
{
    uint64_t n;
    DT_TRY(dt_store_call_recv_u64(k, &n));
    if (n > DT_STORE_MAX_VALUE) {
        dt_sock_close(&k->c->fd);
        return dt_store_fail(DT_STORE_ERR_PROTOCOL, "TCPStore %s: malformed "
                             "reply (value of %llu bytes)", k->op,
                             (unsigned long long)n);
    }
    const dt_store_hook *h = k->hook;
    bool own = !(h && h->alloc);
    uint8_t *p = own ? malloc(n ? n : 1) : h->alloc(h->ctx, (size_t)n);
    if (!p) {
        dt_sock_close(&k->c->fd);
        return dt_fail(DT_ERR_NOMEM, "TCPStore %s: out of memory for a "
                       "value of %llu bytes", k->op, (unsigned long long)n);
    }
    dt_status s = dt_store_call_recv(k, p, n);
    if (s != DT_OK) {
        if (own) {
            free(p);
        }
        return s;
    }
    *value = p;
    *vlen = n;
    return DT_OK;
}

dt_status
dt_store_call_start(dt_store_call *k, dt_store_client *c,
                    const dt_store_hook *hook, const char *op,
                    int64_t deadline, dt_store_buf *req, bool built,
                    const void *tail, size_t tail_len, uint8_t *status)
{
    if (!built) {
        dt_store_buf_free(req);
        return dt_fail(DT_ERR_NOMEM, "TCPStore %s: out of memory", op);
    }
    dt_status s = call_begin(k, c, hook, op, deadline);
    if (s != DT_OK) {
        dt_store_buf_free(req);
        return s;
    }
    return call_exchange(k, req, tail, tail_len, status);
}

/* A status other than OK where only OK makes sense. */
dt_status
dt_store_call_expect_ok(dt_store_call *k, uint8_t status)
{
    if (status == DT_STORE_REPLY_OK) {
        return DT_OK;
    }
    dt_sock_close(&k->c->fd);
    return dt_store_fail(DT_STORE_ERR_PROTOCOL, "TCPStore %s: malformed "
                         "reply (status %u)", k->op, status);
}
