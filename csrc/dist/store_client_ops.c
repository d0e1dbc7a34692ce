/* store_client_ops.c: the store client's operations: check the limits,
 * encode the request, read the typed reply. */
#include <stdio.h>

#include "socket.h"
#include "store_client.h"

/* ---------------------------------------------------------------------- */
/* argument checks (the server would drop us for breaking the limits)     */

static dt_status
check_key(const char *op, size_t klen)
{
    if (klen > DT_STORE_MAX_KEY) {
        return dt_store_fail(DT_STORE_ERR_ARGUMENT, "TCPStore %s: the key "
                             "is %zu bytes long, the limit is %u", op, klen,
                             DT_STORE_MAX_KEY);
    }
    return DT_OK;
}

static dt_status
check_value(const char *op, size_t vlen)
{
    if (vlen > DT_STORE_MAX_VALUE) {
        return dt_store_fail(DT_STORE_ERR_ARGUMENT, "TCPStore %s: the value "
                             "is %zu bytes long, the limit is %u", op, vlen,
                             DT_STORE_MAX_VALUE);
    }
    return DT_OK;
}

static dt_status
check_keys(const char *op, const size_t *klens, size_t nkeys)
{
    if (nkeys > DT_STORE_MAX_KEYS) {
        return dt_store_fail(DT_STORE_ERR_ARGUMENT, "TCPStore %s: %zu keys, "
                             "the limit is %u", op, nkeys, DT_STORE_MAX_KEYS);
    }
    size_t total = 0;
    for (size_t i = 0; i < nkeys; i++) {
        DT_TRY(check_key(op, klens[i]));
        total += klens[i];
    }
    if (total > DT_STORE_MAX_KEYS_BYTES) {
        return dt_store_fail(DT_STORE_ERR_ARGUMENT, "TCPStore %s: the keys "
                             "add up to %zu bytes, the limit is %u", op,
                             total, DT_STORE_MAX_KEYS_BYTES);
    }
    return DT_OK;
}

static bool
put_keys(dt_store_buf *b, const void *const *keys, const size_t *klens,
         size_t nkeys)
{
    bool ok = dt_store_buf_u32(b, (uint32_t)nkeys);
    for (size_t i = 0; ok && i < nkeys; i++) {
        ok = dt_store_buf_key(b, keys[i], klens[i]);
    }
    return ok;
}

/* PyTorch's message: "wait timeout after 300ms, keys: a, b". */
static dt_status
fail_wait_timeout(int64_t timeout_ms, const void *const *keys,
                  const size_t *klens, size_t nkeys)
{
    char list[768];
    size_t n = 0, cap = sizeof list - 32;    /* room for the tail */
    for (size_t i = 0; i < nkeys && n < cap; i++) {
        if (i > 0) {
            list[n++] = ',';
            list[n++] = ' ';
        }
        const uint8_t *k = keys[i];
        for (size_t j = 0; j < klens[i] && n < cap; j++) {
            list[n++] = k[j] >= 0x20 && k[j] < 0x7f ? (char)k[j] : '?';
        }
    }
    if (n >= cap) {
        snprintf(list + n, sizeof list - n, "... (%zu keys)", nkeys);
    } else {
        list[n] = '\0';
    }
    return dt_store_fail(DT_STORE_ERR_TIMEOUT, "wait timeout after %lldms, "
                         "keys: %s", (long long)timeout_ms, list);
}

/* The client's own deadline for a get/wait the server times out at t:
 * twice that, so the server's TIMEOUT reply normally wins. */
static int64_t
wait_deadline(int64_t t)
{
    return t > 0 && t < INT64_MAX / 8 ? dt_sock_deadline(2 * t)
                                      : DT_SOCK_NO_DEADLINE;
}

/* The deadline of a call that does not wait for keys. */
static int64_t
call_deadline(dt_store_client *c)
{
    return dt_sock_deadline(atomic_load(&c->timeout_ms));
}

/* ---------------------------------------------------------------------- */
/* operations                                                              */

dt_status
dt_store_client_set(dt_store_client *c, const dt_store_hook *hook,
                    const void *key, size_t klen, const void *value,
                    size_t vlen)
{
    DT_TRY(check_key("set", klen));
    DT_TRY(check_value("set", vlen));
    /* a large value is sent from where it is, not copied; a small one
     * goes in the same packet */
    bool inline_value = vlen < 64 * 1024;
    dt_store_buf req = {0};
    bool built = dt_store_buf_u8(&req, DT_STORE_OP_SET) &&
                 dt_store_buf_key(&req, key, klen) &&
                 dt_store_buf_u64(&req, vlen) &&
                 (!inline_value || dt_store_buf_append(&req, value, vlen));
    dt_store_call k;
    uint8_t st;
    DT_TRY(dt_store_call_start(&k, c, hook, "set", call_deadline(c),
                               &req, built, inline_value ? NULL : value,
                               inline_value ? 0 : vlen, &st));
    return dt_store_call_end(&k, dt_store_call_expect_ok(&k, st));
}

dt_status
dt_store_client_get(dt_store_client *c, const dt_store_hook *hook,
                    void **value, size_t *vlen, const void *key, size_t klen)
{
    DT_TRY(check_key("get", klen));
    int64_t t = atomic_load(&c->timeout_ms);
    dt_store_buf req = {0};
    bool built = dt_store_buf_u8(&req, DT_STORE_OP_GET) &&
                 dt_store_buf_key(&req, key, klen) &&
                 dt_store_buf_u64(&req, t > 0 ? (uint64_t)t : 0);
    dt_store_call k;
    uint8_t st;
    DT_TRY(dt_store_call_start(&k, c, hook, "get", wait_deadline(t),
                               &req, built, NULL, 0, &st));
    if (st == DT_STORE_REPLY_TIMEOUT) {
        return dt_store_call_end(&k, fail_wait_timeout(t, &key, &klen, 1));
    }
    dt_status s = dt_store_call_expect_ok(&k, st);
    if (s == DT_OK) {
        s = dt_store_call_recv_value(&k, value, vlen);
    }
    return dt_store_call_end(&k, s);
}

dt_status
dt_store_client_add(dt_store_client *c, const dt_store_hook *hook,
                    int64_t *result, const void *key, size_t klen,
                    int64_t delta)
{
    DT_TRY(check_key("add", klen));
    dt_store_buf req = {0};
    bool built = dt_store_buf_u8(&req, DT_STORE_OP_ADD) &&
                 dt_store_buf_key(&req, key, klen) &&
                 dt_store_buf_u64(&req, (uint64_t)delta);
    dt_store_call k;
    uint8_t st;
    uint64_t v = 0;
    DT_TRY(dt_store_call_start(&k, c, hook, "add", call_deadline(c),
                               &req, built, NULL, 0, &st));
    dt_status s = dt_store_call_expect_ok(&k, st);
    if (s == DT_OK && (s = dt_store_call_recv_u64(&k, &v)) == DT_OK) {
        *result = (int64_t)v;
    }
    return dt_store_call_end(&k, s);
}

dt_status
dt_store_client_compare_set(dt_store_client *c, const dt_store_hook *hook,
                            void **value, size_t *vlen, const void *key,
                            size_t klen, const void *expected, size_t elen,
                            const void *desired, size_t dlen)
{
    DT_TRY(check_key("compare_set", klen));
    DT_TRY(check_value("compare_set", elen));
    DT_TRY(check_value("compare_set", dlen));
    dt_store_buf req = {0};
    bool built = dt_store_buf_reserve(&req, 21 + klen + elen + dlen) &&
                 dt_store_buf_u8(&req, DT_STORE_OP_COMPARE_SET) &&
                 dt_store_buf_key(&req, key, klen) &&
                 dt_store_buf_value(&req, expected, elen) &&
                 dt_store_buf_value(&req, desired, dlen);
    dt_store_call k;
    uint8_t st;
    DT_TRY(dt_store_call_start(&k, c, hook, "compare_set", call_deadline(c),
                               &req, built, NULL, 0, &st));
    dt_status s = dt_store_call_expect_ok(&k, st);
    if (s == DT_OK) {
        s = dt_store_call_recv_value(&k, value, vlen);
    }
    return dt_store_call_end(&k, s);
}

dt_status
dt_store_client_wait(dt_store_client *c, const dt_store_hook *hook,
                     const void *const *keys, const size_t *klens,
                     size_t nkeys, int64_t timeout_ms)
{
    DT_TRY(check_keys("wait", klens, nkeys));
    int64_t t = timeout_ms < 0 ? atomic_load(&c->timeout_ms) : timeout_ms;
    dt_store_buf req = {0};
    bool built = dt_store_buf_u8(&req, DT_STORE_OP_WAIT) &&
                 put_keys(&req, keys, klens, nkeys) &&
                 dt_store_buf_u64(&req, t > 0 ? (uint64_t)t : 0);
    dt_store_call k;
    uint8_t st;
    DT_TRY(dt_store_call_start(&k, c, hook, "wait", wait_deadline(t),
                               &req, built, NULL, 0, &st));
    if (st == DT_STORE_REPLY_TIMEOUT) {
        dt_status s = fail_wait_timeout(t, keys, klens, nkeys);
        return dt_store_call_end(&k, s);
    }
    return dt_store_call_end(&k, dt_store_call_expect_ok(&k, st));
}

/* The ops whose reply is one byte (check, delete_key). */
static dt_status
call_u8(dt_store_client *c, const dt_store_hook *hook, const char *op,
        dt_store_buf *req, bool built, int *result)
{
    dt_store_call k;
    uint8_t st, v = 0;
    DT_TRY(dt_store_call_start(&k, c, hook, op, call_deadline(c),
                               req, built, NULL, 0, &st));
    dt_status s = dt_store_call_expect_ok(&k, st);
    if (s == DT_OK && (s = dt_store_call_recv(&k, &v, 1)) == DT_OK) {
        *result = v != 0;
    }
    return dt_store_call_end(&k, s);
}

dt_status
dt_store_client_check(dt_store_client *c, const dt_store_hook *hook,
                      int *all_exist, const void *const *keys,
                      const size_t *klens, size_t nkeys)
{
    DT_TRY(check_keys("check", klens, nkeys));
    dt_store_buf req = {0};
    bool built = dt_store_buf_u8(&req, DT_STORE_OP_CHECK) &&
                 put_keys(&req, keys, klens, nkeys);
    return call_u8(c, hook, "check", &req, built, all_exist);
}

dt_status
dt_store_client_delete(dt_store_client *c, const dt_store_hook *hook,
                       int *deleted, const void *key, size_t klen)
{
    DT_TRY(check_key("delete_key", klen));
    dt_store_buf req = {0};
    bool built = dt_store_buf_u8(&req, DT_STORE_OP_DELETE_KEY) &&
                 dt_store_buf_key(&req, key, klen);
    return call_u8(c, hook, "delete_key", &req, built, deleted);
}

dt_status
dt_store_client_num_keys(dt_store_client *c, const dt_store_hook *hook,
                         int64_t *n)
{
    dt_store_buf req = {0};
    bool built = dt_store_buf_u8(&req, DT_STORE_OP_NUM_KEYS);
    dt_store_call k;
    uint8_t st;
    uint64_t v = 0;
    DT_TRY(dt_store_call_start(&k, c, hook, "num_keys", call_deadline(c),
                               &req, built, NULL, 0, &st));
    dt_status s = dt_store_call_expect_ok(&k, st);
    if (s == DT_OK && (s = dt_store_call_recv_u64(&k, &v)) == DT_OK) {
        *n = (int64_t)v;
    }
    return dt_store_call_end(&k, s);
}
