/* file_store.h: a key-value store in a shared file (torch's FileStore),
 * behind init_method="file:///path".
 *
 * Every process opens the same path. The file is a log of records
 * (u32 key length, key, u32 value length or DELETED, value), appended
 * under an exclusive flock; readers take a shared flock and replay what
 * was appended since their last look into an in-memory table. A blocking
 * get polls the file every few milliseconds. Each open adds 1 to a
 * reference count kept in the file; the last close deletes the file, so a
 * path can be reused by the next job.
 *
 * Errors are recorded with dt_store_fail, so dt_store_last_error_kind()
 * tells a timeout from an I/O failure, as for the TCP store.
 */
#ifndef DT_FILE_STORE_H
#define DT_FILE_STORE_H

#include "pg.h"

typedef struct dt_file_store dt_file_store;

/* timeout_ms: the default for blocking calls; 0 means none. */
dt_status dt_file_store_open(dt_file_store **out, const char *path,
                             int64_t timeout_ms);
void dt_file_store_retain(dt_file_store *fs);
/* The last release of the last process deletes the file. */
void dt_file_store_release(dt_file_store *fs);      /* NULL is fine */
void dt_file_store_set_timeout(dt_file_store *fs, int64_t timeout_ms);
int64_t dt_file_store_timeout(dt_file_store *fs);
const char *dt_file_store_path(const dt_file_store *fs);

dt_status dt_file_store_set(dt_file_store *fs, const void *key, size_t klen,
                            const void *value, size_t vlen);
/* Without blocking: *found, and if so the value (malloc'ed, or from
 * hook->alloc). */
dt_status dt_file_store_try_get(dt_file_store *fs, const dt_store_hook *hook,
                                bool *found, void **value, size_t *vlen,
                                const void *key, size_t klen);
/* Blocks until the key exists; timeout_ms < 0: the default. The value is
 * malloc'ed (or from hook->alloc). */
dt_status dt_file_store_get(dt_file_store *fs, const dt_store_hook *hook,
                            void **value, size_t *vlen, const void *key,
                            size_t klen, int64_t timeout_ms);
dt_status dt_file_store_add(dt_file_store *fs, int64_t *result,
                            const void *key, size_t klen, int64_t delta);
dt_status dt_file_store_compare_set(dt_file_store *fs,
                                    const dt_store_hook *hook, void **value,
                                    size_t *vlen, const void *key,
                                    size_t klen, const void *expected,
                                    size_t elen, const void *desired,
                                    size_t dlen);
dt_status dt_file_store_check(dt_file_store *fs, bool *all,
                              const void *const *keys, const size_t *klens,
                              size_t nkeys);
dt_status dt_file_store_wait(dt_file_store *fs, const dt_store_hook *hook,
                             const void *const *keys, const size_t *klens,
                             size_t nkeys, int64_t timeout_ms);
dt_status dt_file_store_delete(dt_file_store *fs, bool *deleted,
                               const void *key, size_t klen);
dt_status dt_file_store_num_keys(dt_file_store *fs, int64_t *n);

/* A dt_kv over fs (retained). */
dt_status dt_kv_file_new(dt_kv **out, dt_file_store *fs);

#endif /* DT_FILE_STORE_H */
