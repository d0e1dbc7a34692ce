/* store_ops.c: what the server does with each request: the key-value
 * semantics (PyTorch's TCPStore), replies, and parked get/wait requests
 * that are answered when their keys appear or their deadline passes. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "socket.h"
#include "store_server.h"

/* ---------------------------------------------------------------------- */
/* replies (false: out of memory)                                          */

static bool
reply_status(dt_store_conn *c, uint8_t status)
{
    return dt_store_buf_u8(&c->out, status);
}

static bool
reply_value(dt_store_conn *c, const uint8_t *v, size_t n)
{
    return dt_store_buf_reserve(&c->out, 9 + n) &&
           dt_store_buf_u8(&c->out, DT_STORE_REPLY_OK) &&
           dt_store_buf_value(&c->out, v, n);
}

/* A stored value: large ones go out straight from the table (the
 * connection holds a reference until they are sent). */
static bool
reply_stored(dt_store_conn *c, dt_store_value *v)
{
    if (v->len < DT_STORE_ZERO_COPY || c->tail) {
        return reply_value(c, v->data, v->len);
    }
    if (!dt_store_buf_u8(&c->out, DT_STORE_REPLY_OK) ||
        !dt_store_buf_u64(&c->out, v->len)) {
        return false;
    }
    v->refs++;
    c->tail = v;
    c->tail_off = 0;
    return true;
}

static bool
reply_i64(dt_store_conn *c, int64_t v)
{
    return dt_store_buf_u8(&c->out, DT_STORE_REPLY_OK) &&
           dt_store_buf_u64(&c->out, (uint64_t)v);
}

static bool
reply_bool(dt_store_conn *c, bool v)
{
    return dt_store_buf_u8(&c->out, DT_STORE_REPLY_OK) &&
           dt_store_buf_u8(&c->out, v ? 1 : 0);
}

__attribute__((format(printf, 2, 3))) static bool
reply_error(dt_store_conn *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n >= sizeof msg ? sizeof msg - 1
                                                      : (size_t)n;
    return dt_store_buf_u8(&c->out, DT_STORE_REPLY_ERROR) &&
           dt_store_buf_u32(&c->out, (uint32_t)len) &&
           dt_store_buf_append(&c->out, msg, len);
}

/* A key fit for an error message: at most 100 bytes, unprintable bytes
 * shown as '?'. */
static const char *
printable(char *buf, size_t cap, const uint8_t *key, uint32_t klen)
{
    size_t n = 0;
    for (; n < klen && n < 100 && n + 4 < cap; n++) {
        buf[n] = key[n] >= 0x20 && key[n] < 0x7f ? (char)key[n] : '?';
    }
    if (n < klen) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

/* ---------------------------------------------------------------------- */
/* parked requests                                                         */

static void
waiter_release(dt_store_server *s, dt_store_waiter *w)
{
    for (uint32_t i = 0; i < w->nregs; i++) {
        dt_store_entry *e = w->regs[i];
        dt_store_entry_remove_waiter(e, w);
        e->pins--;
        dt_store_table_release(&s->table, e);
    }
    w->conn->parked = NULL;
    free(w->regs);
    free(w);
}

void
dt_store_waiter_cancel(dt_store_server *s, dt_store_waiter *w)
{
    waiter_release(s, w);
}

bool
dt_store_waiter_finish(dt_store_server *s, dt_store_waiter *w,
                       uint8_t status)
{
    dt_store_conn *c = w->conn;
    bool ok;
    if (status == DT_STORE_REPLY_OK && w->op == DT_STORE_OP_GET) {
        ok = reply_stored(c, w->regs[0]->val);
    } else {
        ok = reply_status(c, status);
    }
    waiter_release(s, w);
    if (!ok) {
        c->dead = true;
    }
    return ok;
}

/* Key e just got a value: answer every request that waited only on it. */
static void
wake(dt_store_server *s, dt_store_entry *e)
{
    dt_store_waiter **ws = e->waiters;
    uint32_t n = e->nwaiters;
    e->waiters = NULL;
    e->nwaiters = e->capwaiters = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (--ws[i]->pending == 0) {
            dt_store_waiter_finish(s, ws[i], DT_STORE_REPLY_OK);
        }
    }
    free(ws);
}

/* Parks a get (one missing key) or a wait (a key list) on every missing
 * key; no polling: set/add/compare_set wake it. */
static bool
park(dt_store_server *s, dt_store_conn *c, const dt_store_req *r)
{
    uint32_t n = r->op == DT_STORE_OP_GET ? 1 : r->nkeys;
    dt_store_waiter *w = calloc(1, sizeof *w);
    if (!w || !(w->regs = malloc((n ? n : 1) * sizeof *w->regs))) {
        free(w);
        return false;
    }
    w->conn = c;
    w->op = r->op;
    w->deadline = dt_sock_deadline((int64_t)r->timeout_ms);
    c->parked = w;
    const uint8_t *p = r->keys, *key = r->key;
    uint32_t klen = r->klen;
    for (uint32_t i = 0; i < n; i++) {
        if (r->op == DT_STORE_OP_WAIT) {
            p = dt_store_keys_next(p, &key, &klen);
        }
        dt_store_entry *e = dt_store_table_intern(&s->table, key, klen);
        if (!e) {
            goto oom;
        }
        if (e->present ||
            (e->nwaiters && e->waiters[e->nwaiters - 1] == w)) {
            continue;     /* there already, or a repeated key */
        }
        if (!dt_store_entry_add_waiter(e, w)) {
            dt_store_table_release(&s->table, e);
            goto oom;
        }
        e->pins++;
        w->regs[w->nregs++] = e;
        w->pending++;
    }
    if (w->pending == 0) {
        return dt_store_waiter_finish(s, w, DT_STORE_REPLY_OK);
    }
    return true;
oom:
    waiter_release(s, w);
    return false;
}

/* ---------------------------------------------------------------------- */
/* ops                                                                     */

/* Stores a copy of v under key and wakes its waiters; NULL when out of
 * memory. */
static dt_store_entry *
store_copy(dt_store_server *s, const uint8_t *key, uint32_t klen,
           const uint8_t *v, size_t vlen)
{
    dt_store_value *copy = dt_store_value_new(v, vlen);
    dt_store_entry *e = copy ? dt_store_table_intern(&s->table, key, klen)
                             : NULL;
    if (!e) {
        dt_store_value_release(copy);
        return NULL;
    }
    dt_store_entry_put(&s->table, e, copy);
    wake(s, e);
    return e;
}

/* A large value that ends the client's buffer takes the buffer itself:
 * one memmove of memory already touched, instead of a fresh allocation
 * (page faults) and a copy. False: not applicable, copy it. */
static bool
op_set_large(dt_store_server *s, dt_store_conn *c, const dt_store_req *r)
{
    size_t vlen = r->vlen;
    if (vlen < DT_STORE_KEEP_BUF || r->val + vlen != c->in.data + c->in.len ||
        c->in.cap < sizeof(dt_store_value) + vlen) {
        return false;
    }
    dt_store_entry *e = dt_store_table_intern(&s->table, r->key, r->klen);
    if (!e) {
        return false;
    }
    dt_store_value *v = (dt_store_value *)c->in.data;
    memmove(v->data, r->val, vlen);        /* r's pointers die here */
    v->refs = 1;
    v->len = vlen;
    dt_store_value *shrunk = realloc(v, sizeof *v + vlen);
    c->in = (dt_store_buf){0};
    dt_store_entry_put(&s->table, e, shrunk ? shrunk : v);
    wake(s, e);
    return true;
}

/* Strict decimal: optional sign, 1 to 19 digits, nothing else. */
static bool
parse_i64(const uint8_t *p, size_t n, int64_t *out)
{
    char buf[24];
    if (n == 0 || n >= sizeof buf) {
        return false;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
    size_t i = buf[0] == '-' || buf[0] == '+';
    if (i == n) {
        return false;
    }
    for (size_t j = i; j < n; j++) {
        if (buf[j] < '0' || buf[j] > '9') {
            return false;
        }
    }
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    *out = v;
    return errno == 0;
}

static bool
op_add(dt_store_server *s, dt_store_conn *c, const dt_store_req *r)
{
    char name[128];
    dt_store_entry *e = dt_store_table_find(&s->table, r->key, r->klen);
    int64_t old = 0, sum;
    if (e && e->present && !parse_i64(e->val->data, e->val->len, &old)) {
        return reply_error(c, "the value of key '%s' is not an "
                           "integer", printable(name, sizeof name, r->key,
                                                r->klen));
    }
    if (__builtin_add_overflow(old, r->delta, &sum)) {
        return reply_error(c, "%lld + %lld overflows int64 (key '%s')",
                           (long long)old, (long long)r->delta,
                           printable(name, sizeof name, r->key, r->klen));
    }
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", (long long)sum);
    return store_copy(s, r->key, r->klen, (const uint8_t *)text, (size_t)n)
           && reply_i64(c, sum);
}

/* PyTorch's semantics: a missing key with an empty `expected` is set; an
 * existing key equal to `expected` is swapped; the reply is always the
 * current value, except that a missing key with a non-empty `expected`
 * replies `expected`. */
static bool
op_compare_set(dt_store_server *s, dt_store_conn *c, const dt_store_req *r)
{
    dt_store_entry *e = dt_store_table_find(&s->table, r->key, r->klen);
    if (!e || !e->present) {
        if (r->vlen != 0) {
            return reply_value(c, r->val, r->vlen);
        }
        e = store_copy(s, r->key, r->klen, r->val2, r->vlen2);
    } else if (e->val->len == r->vlen &&
               (r->vlen == 0 || memcmp(e->val->data, r->val, r->vlen) == 0)) {
        e = store_copy(s, r->key, r->klen, r->val2, r->vlen2);
    }
    return e && reply_stored(c, e->val);
}

static bool
op_check(dt_store_server *s, dt_store_conn *c, const dt_store_req *r)
{
    const uint8_t *p = r->keys, *key;
    uint32_t klen;
    for (uint32_t i = 0; i < r->nkeys; i++) {
        p = dt_store_keys_next(p, &key, &klen);
        dt_store_entry *e = dt_store_table_find(&s->table, key, klen);
        if (!e || !e->present) {
            return reply_bool(c, false);
        }
    }
    return reply_bool(c, true);
}

static bool
op_delete(dt_store_server *s, dt_store_conn *c, const dt_store_req *r)
{
    dt_store_entry *e = dt_store_table_find(&s->table, r->key, r->klen);
    if (!e || !e->present) {
        return reply_bool(c, false);
    }
    dt_store_entry_clear(&s->table, e);
    dt_store_table_release(&s->table, e);
    return reply_bool(c, true);
}

bool
dt_store_ops_handle(dt_store_server *s, dt_store_conn *c,
                    const dt_store_req *r)
{
    atomic_fetch_add(&s->requests, 1);
    switch (r->op) {
    case DT_STORE_OP_SET:
        return (op_set_large(s, c, r) ||
                store_copy(s, r->key, r->klen, r->val, r->vlen)) &&
               reply_status(c, DT_STORE_REPLY_OK);
    case DT_STORE_OP_GET: {
        dt_store_entry *e = dt_store_table_find(&s->table, r->key, r->klen);
        if (e && e->present) {
            return reply_stored(c, e->val);
        }
        return park(s, c, r);
    }
    case DT_STORE_OP_ADD:
        return op_add(s, c, r);
    case DT_STORE_OP_COMPARE_SET:
        return op_compare_set(s, c, r);
    case DT_STORE_OP_WAIT:
        return park(s, c, r);
    case DT_STORE_OP_CHECK:
        return op_check(s, c, r);
    case DT_STORE_OP_DELETE_KEY:
        return op_delete(s, c, r);
    case DT_STORE_OP_NUM_KEYS:
        return reply_i64(c, s->table.npresent);
    default:
        return false;   /* the parser already refused unknown ops */
    }
}
