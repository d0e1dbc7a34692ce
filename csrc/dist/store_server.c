/* store_server.c: the store server's thread: one poll() loop over the
 * listening socket, a self-pipe for shutdown and every client.
 *
 * Clients are non-blocking and buffered both ways, so a slow or stuck
 * client never blocks the others. Input is parsed only once a whole
 * request has arrived; a malformed request (garbage, a length over the
 * limits, an unknown op) drops that client alone. A get or wait whose keys
 * are missing is parked (store_ops.c) and answered when they appear or
 * its deadline passes; the loop sleeps until the next deadline. */
#define _GNU_SOURCE    /* accept4, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "socket.h"
#include "store_server.h"

/* Read at most this much from one client per wake-up (fairness). */
#define READ_BUDGET (4u << 20)

/* ---------------------------------------------------------------------- */
/* connections                                                             */

static void
conn_drop(dt_store_server *s, dt_store_conn *c)
{
    if (!c->dead) {
        atomic_fetch_add(&s->dropped, 1);
        c->dead = true;
    }
}

static void
conn_free(dt_store_server *s, dt_store_conn *c)
{
    if (c->parked) {
        dt_store_waiter_cancel(s, c->parked);
    }
    dt_store_value_release(c->tail);
    dt_sock_close(&c->fd);
    dt_store_buf_free(&c->in);
    dt_store_buf_free(&c->out);
    free(c);
}

/* Sends what fits without blocking: `out`, then the tail value. */
static void
conn_flush(dt_store_conn *c)
{
    for (;;) {
        const uint8_t *p;
        size_t n = dt_store_buf_size(&c->out);
        if (n > 0) {
            p = c->out.data + c->out.off;
        } else if (c->tail) {
            p = c->tail->data + c->tail_off;
            n = c->tail->len - c->tail_off;
        } else {
            break;
        }
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                c->dead = true;    /* the peer went away */
            }
            return;
        }
        if (dt_store_buf_size(&c->out) > 0) {
            dt_store_buf_consume(&c->out, (size_t)k);
        } else if ((c->tail_off += (size_t)k) == c->tail->len) {
            dt_store_value_release(c->tail);
            c->tail = NULL;
        }
    }
    dt_store_buf_trim(&c->out, DT_STORE_KEEP_BUF);
}

static void
conn_read(dt_store_conn *c)
{
    size_t budget = READ_BUDGET;
    while (budget > 0 && dt_store_buf_size(&c->in) < DT_STORE_MAX_REQUEST) {
        if (!dt_store_buf_reserve(&c->in, 64 * 1024)) {
            c->dead = true;
            return;
        }
        size_t room = c->in.cap - c->in.len;
        ssize_t k = recv(c->fd, c->in.data + c->in.len,
                         room < budget ? room : budget, 0);
        if (k > 0) {
            c->in.len += (size_t)k;
            budget -= (size_t)k;
        } else if (k == 0) {
            c->eof = true;
            return;
        } else if (errno == EINTR) {
            continue;
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                c->dead = true;
            }
            return;
        }
    }
}

/* The handshake: magic and version, answered with our own and a verdict;
 * a refused client is closed after the answer. */
static void
conn_hello(dt_store_server *s, dt_store_conn *c)
{
    const uint8_t *p = c->in.data + c->in.off;
    uint32_t magic = dt_store_get_u32(p);
    uint32_t version = dt_store_get_u32(p + 4);
    dt_store_buf_consume(&c->in, DT_STORE_HELLO_LEN);
    c->need = 0;
    uint8_t verdict = magic != DT_STORE_MAGIC ? DT_STORE_HELLO_BAD_MAGIC
                      : version != DT_STORE_VERSION
                          ? DT_STORE_HELLO_BAD_VERSION
                          : DT_STORE_HELLO_OK;
    uint8_t reply[DT_STORE_HELLO_REPLY_LEN];
    dt_store_put_u32(reply, DT_STORE_MAGIC);
    dt_store_put_u32(reply + 4, DT_STORE_VERSION);
    reply[8] = verdict;
    if (!dt_store_buf_append(&c->out, reply, sizeof reply)) {
        c->dead = true;
        return;
    }
    if (verdict != DT_STORE_HELLO_OK) {
        atomic_fetch_add(&s->rejected, 1);
        conn_flush(c);     /* 9 bytes: fits an empty socket buffer */
        c->dead = true;
        return;
    }
    c->hello_done = true;
}

/* Runs every complete request buffered for c, in order, until c parks,
 * its replies pile up, or the buffer runs dry. */
static void
conn_process(dt_store_server *s, dt_store_conn *c)
{
    while (!c->dead && !c->parked && !c->tail &&
           dt_store_buf_size(&c->out) < DT_STORE_OUT_HIGH) {
        size_t avail = dt_store_buf_size(&c->in);
        if (avail == 0 || avail < c->need) {
            return;
        }
        if (!c->hello_done) {
            if (avail < DT_STORE_HELLO_LEN) {
                c->need = DT_STORE_HELLO_LEN;
                return;
            }
            conn_hello(s, c);
            continue;
        }
        dt_store_req r;
        size_t used = 0, need = 0;
        const char *why = NULL;
        switch (dt_store_req_parse(&r, &used, &need, &why,
                                   c->in.data + c->in.off, avail)) {
        case DT_STORE_PARSE_MORE:
            c->need = need;
            return;
        case DT_STORE_PARSE_BAD:
            conn_drop(s, c);
            return;
        case DT_STORE_PARSE_DONE:
            c->need = 0;
            if (!dt_store_ops_handle(s, c, &r)) {
                c->dead = true;   /* out of memory for this client */
            }
            if (dt_store_buf_size(&c->in) > 0) {   /* not taken by a set */
                dt_store_buf_consume(&c->in, used);
            }
            break;
        }
    }
    dt_store_buf_trim(&c->in, DT_STORE_KEEP_BUF);
}

static void
accept_all(dt_store_server *s)
{
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM ||
                errno == ENOBUFS) {
                /* don't spin on a listener we cannot drain */
                s->accept_paused_until = dt_sock_now_ms() + 100;
            }
            return;
        }
        dt_store_conn *c = calloc(1, sizeof *c);
        if (c && s->nconns == s->capconns) {
            size_t cap = s->capconns ? s->capconns * 2 : 16;
            dt_store_conn **p = realloc(s->conns, cap * sizeof *p);
            struct pollfd *q = realloc(s->pfds, (cap + 2) * sizeof *q);
            if (p) {
                s->conns = p;
            }
            if (q) {
                s->pfds = q;
            }
            if (p && q) {
                s->capconns = cap;
            }
        }
        if (!c || s->nconns == s->capconns) {
            free(c);
            close(fd);
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        s->conns[s->nconns++] = c;
        atomic_fetch_add(&s->accepted, 1);
    }
}

/* ---------------------------------------------------------------------- */
/* the loop                                                                */

static int
poll_timeout(dt_store_server *s, int64_t now)
{
    int64_t next = DT_SOCK_NO_DEADLINE;
    for (size_t i = 0; i < s->nconns; i++) {
        dt_store_waiter *w = s->conns[i]->parked;
        if (w && w->deadline < next) {
            next = w->deadline;
        }
    }
    if (s->accept_paused_until > now && s->accept_paused_until < next) {
        next = s->accept_paused_until;
    }
    if (next == DT_SOCK_NO_DEADLINE) {
        return -1;
    }
    return next <= now ? 0 : next - now > 60000 ? 60000 : (int)(next - now);
}

static void
handle_events(dt_store_server *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        dt_store_conn *c = s->conns[i];
        short rev = s->pfds[i + 2].revents;
        if (rev & POLLIN) {
            conn_read(c);
        } else if (rev & (POLLHUP | POLLERR | POLLNVAL)) {
            c->dead = true;
        }
        if (!c->dead && (rev & POLLOUT)) {
            conn_flush(c);
        }
    }
}

/* Closes dead clients (EOF counts, once its buffered requests ran) and
 * compacts the array. */
static void
reap(dt_store_server *s)
{
    size_t j = 0;
    for (size_t i = 0; i < s->nconns; i++) {
        dt_store_conn *c = s->conns[i];
        if (c->dead || c->eof) {
            conn_free(s, c);
        } else {
            s->conns[j++] = c;
        }
    }
    s->nconns = j;
    atomic_store(&s->clients, (uint32_t)j);
}

static void
loop_once(dt_store_server *s)
{
    int64_t now = dt_sock_now_ms();
    size_t n = s->nconns;
    s->pfds[0] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
    s->pfds[1] = (struct pollfd){
        .fd = s->accept_paused_until > now ? -1 : s->listen_fd,
        .events = POLLIN};
    for (size_t i = 0; i < n; i++) {
        dt_store_conn *c = s->conns[i];
        short ev = 0;
        if (dt_store_buf_size(&c->in) < DT_STORE_MAX_REQUEST) {
            ev |= POLLIN;
        }
        if (dt_store_buf_size(&c->out) > 0 || c->tail) {
            ev |= POLLOUT;
        }
        s->pfds[i + 2] = (struct pollfd){.fd = c->fd, .events = ev};
    }
    if (poll(s->pfds, n + 2, poll_timeout(s, now)) < 0) {
        return;   /* EINTR; ENOMEM: try again */
    }
    if (s->pfds[0].revents) {
        char buf[64];
        while (read(s->wake[0], buf, sizeof buf) > 0) {
        }
    }
    handle_events(s, n);
    if (s->pfds[1].revents & POLLIN) {
        accept_all(s);
    }
    now = dt_sock_now_ms();
    for (size_t i = 0; i < s->nconns; i++) {
        dt_store_conn *c = s->conns[i];
        if (c->parked && c->parked->deadline <= now) {
            dt_store_waiter_finish(s, c->parked, DT_STORE_REPLY_TIMEOUT);
        }
    }
    for (size_t i = 0; i < s->nconns; i++) {
        conn_process(s, s->conns[i]);
        if (!s->conns[i]->dead) {
            conn_flush(s->conns[i]);
        }
    }
    reap(s);
}

static void *
server_main(void *arg)
{
    dt_store_server *s = arg;
    while (!atomic_load(&s->stop)) {
        loop_once(s);
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* public API                                                              */

static void
server_close_fds(dt_store_server *s)
{
    dt_sock_close(&s->listen_fd);
    dt_sock_close(&s->wake[0]);
    dt_sock_close(&s->wake[1]);
}

dt_status
dt_store_server_start(dt_store_server **out, const char *bind_host,
                      int port)
{
    if (port < 0 || port > 65535) {
        return dt_store_fail(DT_STORE_ERR_ARGUMENT, "TCPStore: port must "
                             "be in [0, 65535], got %d", port);
    }
    dt_store_server *s = calloc(1, sizeof *s);
    if (!s || !(s->pfds = malloc(2 * sizeof *s->pfds))) {
        free(s);
        return dt_fail(DT_ERR_NOMEM, "TCPStore: out of memory");
    }
    s->wake[0] = s->wake[1] = -1;
    s->owner = getpid();
    s->listen_fd = dt_sock_listen(bind_host, port, &s->port);
    if (s->listen_fd < 0) {
        int err = errno;
        free(s->pfds);
        free(s);
        return dt_store_fail(DT_STORE_ERR_NETWORK, "TCPStore: cannot listen "
                             "on %s:%d: %s", bind_host && bind_host[0]
                             ? bind_host : "*", port, strerror(err));
    }
    if (pipe2(s->wake, O_NONBLOCK | O_CLOEXEC) < 0) {
        goto fail;
    }
    /* The thread blocks every signal, so they reach the Python thread
     * (which is the one waiting on them). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&s->thread, NULL, server_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        goto fail;
    }
    *out = s;
    return DT_OK;
fail:;
    int err = errno;
    server_close_fds(s);
    free(s->pfds);
    free(s);
    return dt_store_fail(DT_STORE_ERR_NETWORK, "TCPStore: cannot start the "
                         "server thread: %s", strerror(err));
}

int
dt_store_server_port(const dt_store_server *s)
{
    return s->port;
}

void
dt_store_server_stats_get(dt_store_server_stats *out, dt_store_server *s)
{
    out->accepted = atomic_load(&s->accepted);
    out->dropped = atomic_load(&s->dropped);
    out->rejected = atomic_load(&s->rejected);
    out->requests = atomic_load(&s->requests);
    out->clients = atomic_load(&s->clients);
}

void
dt_store_server_free(dt_store_server *s)
{
    if (!s) {
        return;
    }
    if (s->owner != getpid()) {
        /* A forked child's copy: the thread runs only in the parent, so
         * there is nothing to join, and the copied state may be torn.
         * Close our copies of the listener and the pipe; leak the rest. */
        server_close_fds(s);
        return;
    }
    atomic_store(&s->stop, true);
    ssize_t k;
    do {
        k = write(s->wake[1], "x", 1);
    } while (k < 0 && errno == EINTR);
    pthread_join(s->thread, NULL);
    for (size_t i = 0; i < s->nconns; i++) {
        conn_free(s, s->conns[i]);
    }
    dt_store_table_free(&s->table);
    server_close_fds(s);
    free(s->conns);
    free(s->pfds);
    free(s);
}
