/* pg.c: what every process group shares (see pg.h): refcounting, the C
 * entry points the reducer calls, reduce-op names, and the key-value store
 * adapter over the TCP store client. */
#include "pg.h"

#include <stdlib.h>
#include <string.h>

static const char *const reduce_op_names[DT_REDUCE_OP_COUNT] = {
    "SUM", "AVG", "PRODUCT", "MIN", "MAX", "BAND", "BOR", "BXOR",
};

const char *
dt_reduce_op_name(dt_reduce_op op)
{
    return (unsigned)op < DT_REDUCE_OP_COUNT ? reduce_op_names[op] : "?";
}

/* ---------------------------------------------------------------------- */
/* process groups                                                          */

void
dt_pg_retain(dt_pg *pg)
{
    atomic_fetch_add(&pg->refcount, 1);
}

void
dt_pg_release(dt_pg *pg)
{
    if (pg && atomic_fetch_sub(&pg->refcount, 1) == 1) {
        pg->ops->destroy(pg);
    }
}

dt_status
dt_pg_allreduce_async(dt_pg *pg, void *data, size_t count, dt_dtype dtype,
                      dt_reduce_op op, dt_work **out)
{
    return pg->ops->allreduce(pg, out, data, count, dtype, op);
}

dt_status
dt_pg_broadcast_async(dt_pg *pg, void *data, size_t count, dt_dtype dtype,
                      int root, dt_work **out)
{
    return pg->ops->broadcast(pg, out, data, count, dtype, root);
}

dt_status
dt_pg_barrier_async(dt_pg *pg, dt_work **out)
{
    return pg->ops->barrier(pg, out);
}

/* ---------------------------------------------------------------------- */
/* key-value store over the TCP store client                               */

typedef struct kv_tcp {
    dt_kv base;
    dt_store_client *c;
} kv_tcp;

static dt_status
kv_tcp_set(dt_kv *kv, const char *key, const void *value, size_t len)
{
    kv_tcp *k = (kv_tcp *)kv;
    return dt_store_client_set(k->c, kv->hook, key, strlen(key), value, len);
}

/* The client's get uses its default timeout; wait takes one. */
static dt_status
kv_tcp_get(dt_kv *kv, const char *key, void **value, size_t *len,
           int64_t timeout_ms)
{
    kv_tcp *k = (kv_tcp *)kv;
    const void *keys[1] = {key};
    size_t klens[1] = {strlen(key)};
    DT_TRY(dt_store_client_wait(k->c, kv->hook, keys, klens, 1,
                                timeout_ms));
    return dt_store_client_get(k->c, kv->hook, value, len, key, klens[0]);
}

static dt_status
kv_tcp_wait(dt_kv *kv, const char *const *keys, size_t nkeys,
            int64_t timeout_ms)
{
    kv_tcp *k = (kv_tcp *)kv;
    size_t *klens = malloc((nkeys ? nkeys : 1) * sizeof *klens);
    if (!klens) {
        return dt_fail(DT_ERR_NOMEM, "out of memory in store wait");
    }
    for (size_t i = 0; i < nkeys; i++) {
        klens[i] = strlen(keys[i]);
    }
    dt_status s = dt_store_client_wait(k->c, kv->hook,
                                       (const void *const *)keys, klens,
                                       nkeys, timeout_ms);
    free(klens);
    return s;
}

static dt_status
kv_tcp_check(dt_kv *kv, const char *const *keys, size_t nkeys, bool *all)
{
    kv_tcp *k = (kv_tcp *)kv;
    size_t *klens = malloc((nkeys ? nkeys : 1) * sizeof *klens);
    if (!klens) {
        return dt_fail(DT_ERR_NOMEM, "out of memory in store check");
    }
    for (size_t i = 0; i < nkeys; i++) {
        klens[i] = strlen(keys[i]);
    }
    int r = 0;
    dt_status s = dt_store_client_check(k->c, kv->hook, &r,
                                        (const void *const *)keys, klens,
                                        nkeys);
    free(klens);
    *all = r != 0;
    return s;
}

static void
kv_tcp_free(dt_kv *kv)
{
    kv_tcp *k = (kv_tcp *)kv;
    dt_store_client_free(k->c);
    free(k);
}

static const dt_kv_ops kv_tcp_ops = {
    kv_tcp_set, kv_tcp_get, kv_tcp_wait, kv_tcp_check, kv_tcp_free,
};

dt_status
dt_kv_tcp_new(dt_kv **out, const char *host, int port, int64_t timeout_ms,
              const dt_store_hook *hook)
{
    kv_tcp *k = calloc(1, sizeof *k);
    if (!k) {
        return dt_fail(DT_ERR_NOMEM, "out of memory connecting to a store");
    }
    k->base.ops = &kv_tcp_ops;
    dt_status s = dt_store_client_connect(&k->c, host, port, timeout_ms,
                                          hook);
    if (s != DT_OK) {
        free(k);
        return s;
    }
    /* Later calls without an explicit timeout (set, get after a wait,
     * the failure reports' checks) must not hang on a dead store for
     * the group's 30 minutes. */
    if (timeout_ms <= 0 || timeout_ms > DT_KV_CALL_TIMEOUT_MS) {
        dt_store_client_set_timeout(k->c, DT_KV_CALL_TIMEOUT_MS);
    }
    *out = &k->base;
    return DT_OK;
}

void
dt_kv_free(dt_kv *kv)
{
    if (kv) {
        kv->ops->free(kv);
    }
}
