/* socket.h: small TCP helpers for the store: a monotonic clock, listening,
 * one connect attempt with a deadline, and full sends/receives that wait
 * in slices (so an interrupt hook runs) and survive EINTR. */
#ifndef DT_SOCKET_H
#define DT_SOCKET_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define DT_SOCK_NO_DEADLINE INT64_MAX

/* What an I/O helper ran into; errno is kept for DT_SOCK_ERROR. */
typedef enum dt_sock_result {
    DT_SOCK_OK = 0,
    DT_SOCK_TIMEOUT,        /* the deadline passed */
    DT_SOCK_CLOSED,         /* the peer closed the connection */
    DT_SOCK_ERROR,          /* a system call failed; see errno */
    DT_SOCK_INTERRUPTED,    /* the hook asked to stop */
} dt_sock_result;

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t dt_sock_now_ms(void);
/* now + timeout_ms, or DT_SOCK_NO_DEADLINE for timeout_ms <= 0. */
int64_t dt_sock_deadline(int64_t timeout_ms);

int dt_sock_set_nonblock(int fd);
void dt_sock_close(int *fd);

/* A non-blocking listening socket on host:port (host NULL or "": every
 * interface). Returns the fd or -1 with errno set; *bound gets the port. */
int dt_sock_listen(const char *host, int port, int *bound);

/* One connect attempt to every address of host:port, bounded by the
 * deadline. On success *fd is a non-blocking, TCP_NODELAY socket. */
dt_sock_result dt_sock_connect(int *fd, const char *host, int port,
                               int64_t deadline, const dt_store_hook *hook,
                               char *why, size_t why_len);

/* Send or receive exactly n bytes on a non-blocking socket. */
dt_sock_result dt_sock_send_all(int fd, const void *p, size_t n,
                                int64_t deadline, const dt_store_hook *hook);
dt_sock_result dt_sock_recv_all(int fd, void *p, size_t n, int64_t deadline,
                                const dt_store_hook *hook);

#endif /* DT_SOCKET_H */
