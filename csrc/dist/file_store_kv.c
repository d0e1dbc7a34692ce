/* file_store_kv.c: the FileStore's blocking calls (wait and get poll the
 * file every POLL_MS, calling the hook between polls so Ctrl-C works) and
 * the dt_kv adapter process groups rendezvous through. */
#include "file_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_proto.h"

#define POLL_MS 10

/* ---------------------------------------------------------------------- */
/* blocking calls: poll the file                                           */

static void
sleep_poll(void)
{
    struct timespec ts = {0, POLL_MS * 1000000L};
    nanosleep(&ts, NULL);
}

dt_status
dt_file_store_wait(dt_file_store *fs, const dt_store_hook *hook,
                   const void *const *keys, const size_t *klens,
                   size_t nkeys, int64_t timeout_ms)
{
    int64_t t = timeout_ms < 0 ? dt_file_store_timeout(fs) : timeout_ms;
    int64_t start = dt_work_now_ms(), last_hook = start;
    for (;;) {
        bool all = false;
        DT_TRY(dt_file_store_check(fs, &all, keys, klens, nkeys));
        if (all) {
            return DT_OK;
        }
        int64_t now = dt_work_now_ms();
        if (t > 0 && now - start >= t) {
            char names[256] = "";
            size_t w = 0;
            for (size_t i = 0; i < nkeys && w < sizeof names; i++) {
                w += (size_t)snprintf(names + w, sizeof names - w, "%s%.*s",
                                      i ? ", " : "", (int)klens[i],
                                      (const char *)keys[i]);
            }
            return dt_store_fail(DT_STORE_ERR_TIMEOUT, "wait timeout after "
                                 "%lldms, keys: %s", (long long)t, names);
        }
        if (hook && hook->interrupted && now - last_hook >= 100) {
            last_hook = now;
            if (hook->interrupted(hook->ctx)) {
                return dt_store_fail(DT_STORE_ERR_INTERRUPTED,
                                     "FileStore: interrupted");
            }
        }
        sleep_poll();
    }
}

dt_status
dt_file_store_get(dt_file_store *fs, const dt_store_hook *hook,
                  void **value, size_t *vlen, const void *key, size_t klen,
                  int64_t timeout_ms)
{
    const void *keys[1] = {key};
    for (;;) {
        bool found = false;
        DT_TRY(dt_file_store_wait(fs, hook, keys, &klen, 1, timeout_ms));
        DT_TRY(dt_file_store_try_get(fs, hook, &found, value, vlen, key,
                                     klen));
        if (found) {
            return DT_OK;
        }
        /* deleted between the wait and the read: wait again */
    }
}

/* ---------------------------------------------------------------------- */
/* as a dt_kv                                                              */

typedef struct kv_file {
    dt_kv base;
    dt_file_store *fs;
} kv_file;

static dt_status
kv_file_set(dt_kv *kv, const char *key, const void *value, size_t len)
{
    return dt_file_store_set(((kv_file *)kv)->fs, key, strlen(key), value,
                             len);
}

static dt_status
kv_file_get(dt_kv *kv, const char *key, void **value, size_t *len,
            int64_t timeout_ms)
{
    return dt_file_store_get(((kv_file *)kv)->fs, kv->hook, value, len, key,
                             strlen(key), timeout_ms);
}

static dt_status
kv_file_keys(const char *const *keys, size_t nkeys, size_t **klens)
{
    *klens = malloc((nkeys ? nkeys : 1) * sizeof **klens);
    if (!*klens) {
        return dt_fail(DT_ERR_NOMEM, "FileStore: out of memory");
    }
    for (size_t i = 0; i < nkeys; i++) {
        (*klens)[i] = strlen(keys[i]);
    }
    return DT_OK;
}

static dt_status
kv_file_wait(dt_kv *kv, const char *const *keys, size_t nkeys,
             int64_t timeout_ms)
{
    size_t *klens;
    DT_TRY(kv_file_keys(keys, nkeys, &klens));
    dt_status s = dt_file_store_wait(((kv_file *)kv)->fs, kv->hook,
                                     (const void *const *)keys, klens, nkeys,
                                     timeout_ms);
    free(klens);
    return s;
}

static dt_status
kv_file_check(dt_kv *kv, const char *const *keys, size_t nkeys, bool *all)
{
    size_t *klens;
    DT_TRY(kv_file_keys(keys, nkeys, &klens));
    dt_status s = dt_file_store_check(((kv_file *)kv)->fs, all,
                                      (const void *const *)keys, klens,
                                      nkeys);
    free(klens);
    return s;
}

static void
kv_file_free(dt_kv *kv)
{
    dt_file_store_release(((kv_file *)kv)->fs);
    free(kv);
}

static const dt_kv_ops kv_file_ops = {
    kv_file_set, kv_file_get, kv_file_wait, kv_file_check, kv_file_free,
};

dt_status
dt_kv_file_new(dt_kv **out, dt_file_store *fs)
{
    kv_file *k = calloc(1, sizeof *k);
    if (!k) {
        return dt_fail(DT_ERR_NOMEM, "FileStore: out of memory");
    }
    k->base.ops = &kv_file_ops;
    k->fs = fs;
    dt_file_store_retain(fs);
    *out = &k->base;
    return DT_OK;
}
