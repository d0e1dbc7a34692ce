/* store_server.h: what the server's event loop (store_server.c) and its
 * request handlers (store_ops.c) share. Only the server thread touches
 * these structures. */
#ifndef DT_STORE_SERVER_H
#define DT_STORE_SERVER_H

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "store_proto.h"
#include "store_table.h"

/* Stop taking requests from a client whose replies pile up past this. */
#define DT_STORE_OUT_HIGH (1u << 20)
/* Buffers grown past this are freed once empty. */
#define DT_STORE_KEEP_BUF (1u << 20)
/* Values from this size on are sent from the table, not copied. */
#define DT_STORE_ZERO_COPY (64u * 1024u)

typedef struct dt_store_conn {
    int fd;
    bool hello_done;
    bool eof;                  /* the peer closed its side */
    bool dead;                 /* to be closed and freed */
    dt_store_buf in, out;
    dt_store_value *tail;      /* sent after `out` (a large get reply) */
    size_t tail_off;           /* bytes of it already sent */
    size_t need;               /* don't parse until `in` holds this much */
    dt_store_waiter *parked;   /* the get/wait this client is blocked in */
} dt_store_conn;

/* A parked get or wait: answered when `pending` reaches 0 or at the
 * deadline. regs are the entries it registered on, each pinned. */
struct dt_store_waiter {
    dt_store_conn *conn;
    uint8_t op;                /* DT_STORE_OP_GET or DT_STORE_OP_WAIT */
    uint32_t pending;          /* registered keys that are still missing */
    int64_t deadline;          /* monotonic ms; DT_SOCK_NO_DEADLINE */
    dt_store_entry **regs;
    uint32_t nregs;
};

struct dt_store_server {
    pthread_t thread;
    int listen_fd;
    int wake[2];               /* self-pipe: free() writes, the loop wakes */
    int port;
    atomic_bool stop;
    pid_t owner;               /* the process the thread runs in */
    dt_store_table table;
    dt_store_conn **conns;
    size_t nconns, capconns;
    struct pollfd *pfds;
    size_t cappfds;
    int64_t accept_paused_until;   /* after EMFILE */
    _Atomic uint64_t accepted, dropped, rejected, requests;
    _Atomic uint32_t clients;
};

/* Runs one parsed request; replies go to c->out. Returns false when the
 * server ran out of memory for this client (it is then dropped). */
bool dt_store_ops_handle(dt_store_server *s, dt_store_conn *c,
                         const dt_store_req *r);
/* Answers a parked request (status OK or TIMEOUT) and frees it. */
bool dt_store_waiter_finish(dt_store_server *s, dt_store_waiter *w,
                            uint8_t status);
/* Frees a parked request without answering (its client is gone). */
void dt_store_waiter_cancel(dt_store_server *s, dt_store_waiter *w);

#endif /* DT_STORE_SERVER_H */
