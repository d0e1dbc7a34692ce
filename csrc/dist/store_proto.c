/* store_proto.c: the store's byte buffers, the request parser the server
 * runs on untrusted input, and the error-kind bookkeeping. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "store_proto.h"

static _Thread_local dt_store_error last_kind;

dt_store_error
dt_store_last_error_kind(void)
{
    return last_kind;
}

dt_status
dt_store_fail(dt_store_error kind, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    last_kind = kind;
    return dt_fail(kind == DT_STORE_ERR_ARGUMENT ? DT_ERR_VALUE
                                                 : DT_ERR_RUNTIME,
                   "%s", msg);
}

/* ---------------------------------------------------------------------- */
/* buffers                                                                 */

bool
dt_store_buf_reserve(dt_store_buf *b, size_t extra)
{
    if (b->off > 0 && (b->off == b->len || b->cap - b->len < extra)) {
        /* slide the live bytes to the front before growing */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->cap - b->len >= extra) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2) {
            return false;
        }
        cap *= 2;
    }
    uint8_t *p = realloc(b->data, cap);
    if (!p) {
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

bool
dt_store_buf_append(dt_store_buf *b, const void *p, size_t n)
{
    if (!dt_store_buf_reserve(b, n)) {
        return false;
    }
    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    return true;
}

bool
dt_store_buf_u8(dt_store_buf *b, uint8_t v)
{
    return dt_store_buf_append(b, &v, 1);
}

bool
dt_store_buf_u32(dt_store_buf *b, uint32_t v)
{
    uint8_t tmp[4];
    dt_store_put_u32(tmp, v);
    return dt_store_buf_append(b, tmp, 4);
}

bool
dt_store_buf_u64(dt_store_buf *b, uint64_t v)
{
    uint8_t tmp[8];
    dt_store_put_u64(tmp, v);
    return dt_store_buf_append(b, tmp, 8);
}

bool
dt_store_buf_key(dt_store_buf *b, const void *key, size_t klen)
{
    return dt_store_buf_u32(b, (uint32_t)klen) &&
           dt_store_buf_append(b, key, klen);
}

bool
dt_store_buf_value(dt_store_buf *b, const void *v, size_t vlen)
{
    return dt_store_buf_u64(b, vlen) && dt_store_buf_append(b, v, vlen);
}

void
dt_store_buf_consume(dt_store_buf *b, size_t n)
{
    b->off += n;
    if (b->off == b->len) {
        b->off = b->len = 0;
    }
}

void
dt_store_buf_trim(dt_store_buf *b, size_t keep)
{
    if (b->off == b->len && b->cap > keep) {
        dt_store_buf_free(b);
    }
}

void
dt_store_buf_free(dt_store_buf *b)
{
    free(b->data);
    *b = (dt_store_buf){0};
}

/* ---------------------------------------------------------------------- */
/* request parser                                                          */

/* Every take_* returns 1 (got it), 0 (need more: c->need set) or -1 (bad:
 * c->why set). Lengths are checked against the limits before the bytes
 * they announce have arrived, so a garbage length costs nothing. */
typedef struct cursor {
    const uint8_t *p;
    size_t n, pos, need;
    const char *why;
} cursor;

static int
take_fixed(cursor *c, const uint8_t **out, size_t size)
{
    if (c->n - c->pos < size) {
        c->need = c->pos + size;
        return 0;
    }
    *out = c->p + c->pos;
    c->pos += size;
    return 1;
}

static int
take_key(cursor *c, const uint8_t **key, uint32_t *klen)
{
    const uint8_t *h;
    if (!take_fixed(c, &h, 4)) {
        return 0;
    }
    uint32_t len = dt_store_get_u32(h);
    if (len > DT_STORE_MAX_KEY) {
        c->why = "key longer than 64 KiB";
        return -1;
    }
    if (!take_fixed(c, key, len)) {
        c->pos -= 4;
        return 0;
    }
    *klen = len;
    return 1;
}

static int
take_value(cursor *c, const uint8_t **val, uint64_t *vlen)
{
    const uint8_t *h;
    if (!take_fixed(c, &h, 8)) {
        return 0;
    }
    uint64_t len = dt_store_get_u64(h);
    if (len > DT_STORE_MAX_VALUE) {
        c->why = "value longer than 256 MiB";
        return -1;
    }
    if (!take_fixed(c, val, (size_t)len)) {
        c->pos -= 8;
        return 0;
    }
    *vlen = len;
    return 1;
}

static int
take_keys(cursor *c, const uint8_t **keys, uint32_t *nkeys)
{
    const uint8_t *h;
    size_t start = c->pos;
    if (!take_fixed(c, &h, 4)) {
        return 0;
    }
    uint32_t count = dt_store_get_u32(h);
    if (count > DT_STORE_MAX_KEYS) {
        c->why = "more than 65536 keys";
        return -1;
    }
    uint64_t total = 0;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *k;
        uint32_t klen;
        int r = take_key(c, &k, &klen);
        if (r <= 0) {
            c->pos = start;    /* the whole list is parsed again later */
            return r;
        }
        total += klen;
        if (total > DT_STORE_MAX_KEYS_BYTES) {
            c->why = "key list longer than 16 MiB";
            return -1;
        }
    }
    *keys = h + 4;
    *nkeys = count;
    return 1;
}

static int
take_u64(cursor *c, uint64_t *v)
{
    const uint8_t *h;
    if (!take_fixed(c, &h, 8)) {
        return 0;
    }
    *v = dt_store_get_u64(h);
    return 1;
}

static int
take_fields(cursor *c, dt_store_req *r)
{
    int ok;
    uint64_t u;
    switch (r->op) {
    case DT_STORE_OP_SET:
        ok = take_key(c, &r->key, &r->klen);
        return ok <= 0 ? ok : take_value(c, &r->val, &r->vlen);
    case DT_STORE_OP_GET:
        ok = take_key(c, &r->key, &r->klen);
        return ok <= 0 ? ok : take_u64(c, &r->timeout_ms);
    case DT_STORE_OP_ADD:
        ok = take_key(c, &r->key, &r->klen);
        if (ok > 0 && (ok = take_u64(c, &u)) > 0) {
            r->delta = (int64_t)u;
        }
        return ok;
    case DT_STORE_OP_COMPARE_SET:
        ok = take_key(c, &r->key, &r->klen);
        ok = ok <= 0 ? ok : take_value(c, &r->val, &r->vlen);
        return ok <= 0 ? ok : take_value(c, &r->val2, &r->vlen2);
    case DT_STORE_OP_WAIT:
        ok = take_keys(c, &r->keys, &r->nkeys);
        return ok <= 0 ? ok : take_u64(c, &r->timeout_ms);
    case DT_STORE_OP_CHECK:
        return take_keys(c, &r->keys, &r->nkeys);
    case DT_STORE_OP_DELETE_KEY:
        return take_key(c, &r->key, &r->klen);
    case DT_STORE_OP_NUM_KEYS:
        return 1;
    default:
        c->why = "unknown op";
        return -1;
    }
}

dt_store_parse
dt_store_req_parse(dt_store_req *r, size_t *used, size_t *need,
                   const char **why, const uint8_t *p, size_t n)
{
    *r = (dt_store_req){0};
    if (n == 0) {
        *need = 1;
        return DT_STORE_PARSE_MORE;
    }
    cursor c = {.p = p, .n = n, .pos = 1};
    r->op = p[0];
    int ok = take_fields(&c, r);
    if (ok < 0) {
        *why = c.why;
        return DT_STORE_PARSE_BAD;
    }
    if (ok == 0) {
        *need = c.need;
        return DT_STORE_PARSE_MORE;
    }
    *used = c.pos;
    return DT_STORE_PARSE_DONE;
}
