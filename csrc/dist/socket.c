/* socket.c: TCP helpers for the store (see socket.h). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "socket.h"

int64_t
dt_sock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
dt_sock_deadline(int64_t timeout_ms)
{
    if (timeout_ms <= 0 || timeout_ms > DT_SOCK_NO_DEADLINE / 4) {
        return DT_SOCK_NO_DEADLINE;
    }
    return dt_sock_now_ms() + timeout_ms;
}

int
dt_sock_set_nonblock(int fd)
{
    int flags = fcntl(fd, F_GETFL, 0);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void
dt_sock_close(int *fd)
{
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

/* Waits until fd is ready for `events`, in slices of DT_STORE_SLICE_MS so
 * the hook gets to run; a signal (EINTR) runs the hook at once. */
static dt_sock_result
wait_fd(int fd, short events, int64_t deadline, const dt_store_hook *hook)
{
    for (;;) {
        int64_t now = dt_sock_now_ms();
        if (now >= deadline) {
            return DT_SOCK_TIMEOUT;
        }
        int64_t slice = deadline - now;
        if (slice > DT_STORE_SLICE_MS) {
            slice = DT_STORE_SLICE_MS;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int r = poll(&pfd, 1, (int)slice);
        if (r > 0) {
            return DT_SOCK_OK;   /* errors show up in the next send/recv */
        }
        if (r < 0 && errno != EINTR) {
            return DT_SOCK_ERROR;
        }
        if (hook && hook->interrupted && hook->interrupted(hook->ctx)) {
            return DT_SOCK_INTERRUPTED;
        }
    }
}

static int
open_listener(const struct sockaddr *addr, socklen_t len, int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return -1;
    }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (family == AF_INET6) {
        /* dual-stack, so IPv4 clients reach a wildcard listener too */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    if (bind(fd, addr, len) < 0 || listen(fd, SOMAXCONN) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int
listen_any(int port)
{
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
                              .sin6_port = htons((uint16_t)port),
                              .sin6_addr = IN6ADDR_ANY_INIT};
    int fd = open_listener((struct sockaddr *)&a6, sizeof a6, AF_INET6);
    if (fd >= 0 || errno == EADDRINUSE) {
        return fd;
    }
    /* no IPv6 on this machine */
    struct sockaddr_in a4 = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_ANY)};
    return open_listener((struct sockaddr *)&a4, sizeof a4, AF_INET);
}

int
dt_sock_listen(const char *host, int port, int *bound)
{
    int fd = -1;
    if (!host || !host[0]) {
        fd = listen_any(port);
    } else {
        char service[16];
        snprintf(service, sizeof service, "%d", port);
        struct addrinfo hints = {.ai_family = AF_UNSPEC,
                                 .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE};
        struct addrinfo *res = NULL;
        int rc = getaddrinfo(host, service, &hints, &res);
        if (rc != 0) {
            errno = rc == EAI_SYSTEM ? errno : EADDRNOTAVAIL;
            return -1;
        }
        for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
            fd = open_listener(ai->ai_addr, ai->ai_addrlen, ai->ai_family);
        }
        freeaddrinfo(res);
    }
    if (fd < 0) {
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    *bound = ntohs(ss.ss_family == AF_INET6
                       ? ((struct sockaddr_in6 *)&ss)->sin6_port
                       : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static dt_sock_result
connect_addr(int *out, const struct addrinfo *ai, int64_t deadline,
             const dt_store_hook *hook)
{
    int fd = socket(ai->ai_family,
                    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0) {
        return DT_SOCK_ERROR;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        if (errno != EINPROGRESS && errno != EINTR) {
            goto fail;
        }
        dt_sock_result r = wait_fd(fd, POLLOUT, deadline, hook);
        if (r != DT_SOCK_OK) {
            close(fd);
            return r;
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            errno = err;
            goto fail;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *out = fd;
    return DT_SOCK_OK;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return DT_SOCK_ERROR;
}

dt_sock_result
dt_sock_connect(int *fd, const char *host, int port, int64_t deadline,
                const dt_store_hook *hook, char *why, size_t why_len)
{
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(why, why_len, "%s", gai_strerror(rc));
        return DT_SOCK_ERROR;
    }
    dt_sock_result r = DT_SOCK_ERROR;
    snprintf(why, why_len, "no address");
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        r = connect_addr(fd, ai, deadline, hook);
        if (r == DT_SOCK_OK || r == DT_SOCK_INTERRUPTED ||
            r == DT_SOCK_TIMEOUT) {
            break;
        }
        snprintf(why, why_len, "%s", strerror(errno));
    }
    freeaddrinfo(res);
    return r;
}

dt_sock_result
dt_sock_send_all(int fd, const void *p, size_t n, int64_t deadline,
                 const dt_store_hook *hook)
{
    const uint8_t *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k > 0) {
            c += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            dt_sock_result r = wait_fd(fd, POLLOUT, deadline, hook);
            if (r != DT_SOCK_OK) {
                return r;
            }
            continue;
        }
        return errno == EPIPE || errno == ECONNRESET ? DT_SOCK_CLOSED
                                                     : DT_SOCK_ERROR;
    }
    return DT_SOCK_OK;
}

dt_sock_result
dt_sock_recv_all(int fd, void *p, size_t n, int64_t deadline,
                 const dt_store_hook *hook)
{
    uint8_t *c = p;
    while (n > 0) {
        ssize_t k = recv(fd, c, n, 0);
        if (k > 0) {
            c += k;
            n -= (size_t)k;
            continue;
        }
        if (k == 0) {
            return DT_SOCK_CLOSED;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            dt_sock_result r = wait_fd(fd, POLLIN, deadline, hook);
            if (r != DT_SOCK_OK) {
                return r;
            }
            continue;
        }
        return errno == ECONNRESET ? DT_SOCK_CLOSED : DT_SOCK_ERROR;
    }
    return DT_SOCK_OK;
}
