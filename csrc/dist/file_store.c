/* file_store.c: the shared-file key-value store (see file_store.h).
 *
 * Record: u32 klen, key, u32 vlen (DELETED for a deletion), value; native
 * byte order (every process is on this machine). The in-memory table is
 * an open-addressing hash of the replayed log; `pos` is how far this
 * process has replayed. All calls of one store object hold its mutex, so
 * comm threads and Python threads may share it.
 */
#define _GNU_SOURCE
#include "file_store.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store_proto.h"

#define DELETED UINT32_MAX
#define USERS_KEY "__dtrain_file_store_users__"

typedef struct entry {
    char *key;                   /* NULL: empty slot */
    size_t klen;
    char *value;
    size_t vlen;
    bool live;                   /* false: a tombstone (deleted) */
} entry;

struct dt_file_store {
    _Atomic int64_t refcount;
    pthread_mutex_t lock;
    int fd;
    char *path;
    off_t pos;                   /* bytes of the log replayed */
    entry *table;
    size_t cap, used;            /* slots, slots holding a key */
    _Atomic int64_t timeout_ms;
};

/* ---------------------------------------------------------------------- */
/* the in-memory table                                                     */

static uint64_t
hash_bytes(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;            /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h = (h ^ b[i]) * 1099511628211ull;
    }
    return h;
}

static entry *
find_slot(entry *table, size_t cap, const void *key, size_t klen)
{
    size_t i = hash_bytes(key, klen) & (cap - 1);
    while (table[i].key &&
           (table[i].klen != klen || memcmp(table[i].key, key, klen) != 0)) {
        i = (i + 1) & (cap - 1);
    }
    return &table[i];
}

static bool
grow(dt_file_store *fs)
{
    size_t cap = fs->cap ? 2 * fs->cap : 64;
    entry *t = calloc(cap, sizeof *t);
    if (!t) {
        return false;
    }
    for (size_t i = 0; i < fs->cap; i++) {
        if (fs->table[i].key) {
            *find_slot(t, cap, fs->table[i].key, fs->table[i].klen) =
                fs->table[i];
        }
    }
    free(fs->table);
    fs->table = t;
    fs->cap = cap;
    return true;
}

/* Applies one record (value NULL: a deletion). */
static dt_status
apply(dt_file_store *fs, const char *key, size_t klen, const char *value,
      size_t vlen)
{
    if (2 * (fs->used + 1) > fs->cap && !grow(fs)) {
        return dt_fail(DT_ERR_NOMEM, "FileStore: out of memory");
    }
    entry *e = find_slot(fs->table, fs->cap, key, klen);
    char *v = value ? malloc(vlen ? vlen : 1) : NULL;
    if (value && !v) {
        return dt_fail(DT_ERR_NOMEM, "FileStore: out of memory");
    }
    if (!e->key) {
        if (!(e->key = malloc(klen ? klen : 1))) {
            free(v);
            return dt_fail(DT_ERR_NOMEM, "FileStore: out of memory");
        }
        memcpy(e->key, key, klen);
        e->klen = klen;
        fs->used++;
    }
    free(e->value);
    if (v) {
        memcpy(v, value, vlen);
    }
    e->value = v;
    e->vlen = value ? vlen : 0;
    e->live = value != NULL;
    return DT_OK;
}

static entry *
lookup(dt_file_store *fs, const void *key, size_t klen)
{
    if (!fs->cap) {
        return NULL;
    }
    entry *e = find_slot(fs->table, fs->cap, key, klen);
    return e->key && e->live ? e : NULL;
}

/* ---------------------------------------------------------------------- */
/* the log                                                                 */

static dt_status
io_fail(const dt_file_store *fs, const char *what)
{
    return dt_store_fail(DT_STORE_ERR_SERVER, "FileStore(%s): %s failed: %s",
                         fs->path, what, strerror(errno));
}

static dt_status
lock_file(dt_file_store *fs, int how)
{
    while (flock(fs->fd, how) != 0) {
        if (errno != EINTR) {
            return io_fail(fs, "flock");
        }
    }
    return DT_OK;
}

static void
unlock_file(dt_file_store *fs)
{
    flock(fs->fd, LOCK_UN);
}

/* With the file locked: replays what was appended since fs->pos. */
static dt_status
replay(dt_file_store *fs)
{
    struct stat st;
    if (fstat(fs->fd, &st) != 0) {
        return io_fail(fs, "fstat");
    }
    if (st.st_size <= fs->pos) {
        return DT_OK;
    }
    size_t n = (size_t)(st.st_size - fs->pos);
    char *buf = malloc(n);
    if (!buf) {
        return dt_fail(DT_ERR_NOMEM, "FileStore: out of memory");
    }
    ssize_t got = pread(fs->fd, buf, n, fs->pos);
    if (got != (ssize_t)n) {
        free(buf);
        return io_fail(fs, "read");
    }
    size_t off = 0;
    dt_status s = DT_OK;
    while (s == DT_OK && n - off >= 8) {
        uint32_t klen, vlen;
        memcpy(&klen, buf + off, 4);
        if (n - off - 4 < (size_t)klen + 4) {
            break;
        }
        memcpy(&vlen, buf + off + 4 + klen, 4);
        size_t rec = 8 + (size_t)klen + (vlen == DELETED ? 0 : vlen);
        if (n - off < rec) {
            break;                       /* cannot happen under flock */
        }
        const char *key = buf + off + 4;
        s = apply(fs, key, klen, vlen == DELETED ? NULL : key + klen + 4,
                  vlen == DELETED ? 0 : vlen);
        off += rec;
    }
    fs->pos += (off_t)off;
    free(buf);
    return s;
}

/* With the file locked exclusively and replayed: appends a record. */
static dt_status
append(dt_file_store *fs, const void *key, size_t klen, const void *value,
       size_t vlen)
{
    if (klen > DT_STORE_MAX_KEY || (value && vlen > DT_STORE_MAX_VALUE)) {
        return dt_store_fail(DT_STORE_ERR_ARGUMENT, "FileStore: key or "
                             "value too long");
    }
    uint32_t k32 = (uint32_t)klen, v32 = value ? (uint32_t)vlen : DELETED;
    size_t n = 8 + klen + (value ? vlen : 0);
    char *rec = malloc(n);
    if (!rec) {
        return dt_fail(DT_ERR_NOMEM, "FileStore: out of memory");
    }
    memcpy(rec, &k32, 4);
    memcpy(rec + 4, key, klen);
    memcpy(rec + 4 + klen, &v32, 4);
    if (value) {
        memcpy(rec + 8 + klen, value, vlen);
    }
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fs->fd, rec + done, n - done);   /* O_APPEND */
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            free(rec);
            return io_fail(fs, "write");
        }
        done += (size_t)w;
    }
    free(rec);
    return replay(fs);                 /* picks up our own record */
}

/* Runs body with the mutex and the file lock held, after a replay. */
#define WITH_FILE(fs, how, body)                                          \
    do {                                                                  \
        pthread_mutex_lock(&(fs)->lock);                                  \
        dt_status s_ = lock_file(fs, how);                                \
        if (s_ == DT_OK) {                                                \
            s_ = replay(fs);                                              \
            if (s_ == DT_OK) {                                            \
                body;                                                     \
            }                                                             \
            unlock_file(fs);                                              \
        }                                                                 \
        pthread_mutex_unlock(&(fs)->lock);                                \
        return s_;                                                        \
    } while (0)

/* ---------------------------------------------------------------------- */
/* the store                                                               */

static dt_status add_locked(dt_file_store *fs, int64_t *result,
                            const void *key, size_t klen, int64_t delta);

dt_status
dt_file_store_open(dt_file_store **out, const char *path, int64_t timeout_ms)
{
    dt_file_store *fs = calloc(1, sizeof *fs);
    if (!fs || !(fs->path = strdup(path))) {
        free(fs);
        return dt_fail(DT_ERR_NOMEM, "FileStore: out of memory");
    }
    atomic_init(&fs->refcount, 1);
    atomic_init(&fs->timeout_ms, timeout_ms);
    pthread_mutex_init(&fs->lock, NULL);
    fs->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fs->fd < 0) {
        dt_status s = dt_store_fail(DT_STORE_ERR_SERVER, "FileStore: cannot "
                                    "open %s: %s", path, strerror(errno));
        free(fs->path);
        free(fs);
        return s;
    }
    int64_t users;
    dt_status s = DT_OK;
    pthread_mutex_lock(&fs->lock);
    if ((s = lock_file(fs, LOCK_EX)) == DT_OK) {
        s = replay(fs);
        if (s == DT_OK) {
            s = add_locked(fs, &users, USERS_KEY, strlen(USERS_KEY), 1);
        }
        unlock_file(fs);
    }
    pthread_mutex_unlock(&fs->lock);
    if (s != DT_OK) {
        atomic_store(&fs->refcount, 0);
        close(fs->fd);
        free(fs->path);
        free(fs);
        return s;
    }
    *out = fs;
    return DT_OK;
}

void
dt_file_store_retain(dt_file_store *fs)
{
    atomic_fetch_add(&fs->refcount, 1);
}

void
dt_file_store_release(dt_file_store *fs)
{
    if (!fs || atomic_fetch_sub(&fs->refcount, 1) != 1) {
        return;
    }
    /* the last user of the file removes it, so the path can be reused */
    if (lock_file(fs, LOCK_EX) == DT_OK) {
        int64_t users = 1;
        if (replay(fs) == DT_OK &&
            add_locked(fs, &users, USERS_KEY, strlen(USERS_KEY), -1) ==
                DT_OK &&
            users <= 0) {
            unlink(fs->path);
        }
        unlock_file(fs);
    }
    close(fs->fd);
    for (size_t i = 0; i < fs->cap; i++) {
        free(fs->table[i].key);
        free(fs->table[i].value);
    }
    free(fs->table);
    free(fs->path);
    pthread_mutex_destroy(&fs->lock);
    free(fs);
}

void
dt_file_store_set_timeout(dt_file_store *fs, int64_t timeout_ms)
{
    atomic_store(&fs->timeout_ms, timeout_ms);
}

int64_t
dt_file_store_timeout(dt_file_store *fs)
{
    return atomic_load(&fs->timeout_ms);
}

const char *
dt_file_store_path(const dt_file_store *fs)
{
    return fs->path;
}

dt_status
dt_file_store_set(dt_file_store *fs, const void *key, size_t klen,
                  const void *value, size_t vlen)
{
    WITH_FILE(fs, LOCK_EX, s_ = append(fs, key, klen, value, vlen));
}

/* With everything locked and replayed. */
static dt_status
add_locked(dt_file_store *fs, int64_t *result, const void *key, size_t klen,
           int64_t delta)
{
    entry *e = lookup(fs, key, klen);
    int64_t v = 0;
    if (e) {
        char text[32];
        char *end;
        size_t n = e->vlen < sizeof text - 1 ? e->vlen : sizeof text - 1;
        memcpy(text, e->value, n);
        text[n] = '\0';
        errno = 0;
        v = strtoll(text, &end, 10);
        if (n == 0 || *end || errno) {
            return dt_store_fail(DT_STORE_ERR_SERVER, "FileStore.add: the "
                                 "value of the key is not an integer");
        }
    }
    v += delta;
    char text[32];
    int len = snprintf(text, sizeof text, "%" PRId64, v);
    *result = v;
    return append(fs, key, klen, text, (size_t)len);
}

dt_status
dt_file_store_add(dt_file_store *fs, int64_t *result, const void *key,
                  size_t klen, int64_t delta)
{
    WITH_FILE(fs, LOCK_EX, s_ = add_locked(fs, result, key, klen, delta));
}

static void *
copy_out(const dt_store_hook *hook, const void *p, size_t n)
{
    void *v = hook && hook->alloc ? hook->alloc(hook->ctx, n)
                                  : malloc(n ? n : 1);
    if (v) {
        memcpy(v, p, n);
    }
    return v;
}

static dt_status
compare_set_locked(dt_file_store *fs, const dt_store_hook *hook,
                   void **value, size_t *vlen, const void *key, size_t klen,
                   const void *expected, size_t elen, const void *desired,
                   size_t dlen)
{
    entry *e = lookup(fs, key, klen);
    const void *now;
    size_t nlen;
    if (!e && elen == 0) {
        DT_TRY(append(fs, key, klen, desired, dlen));
        now = desired, nlen = dlen;
    } else if (!e) {
        now = expected, nlen = elen;
    } else if (e->vlen == elen && memcmp(e->value, expected, elen) == 0) {
        DT_TRY(append(fs, key, klen, desired, dlen));
        now = desired, nlen = dlen;
    } else {
        now = e->value, nlen = e->vlen;
    }
    if (!(*value = copy_out(hook, now, nlen))) {
        return dt_fail(DT_ERR_NOMEM, "FileStore: out of memory");
    }
    *vlen = nlen;
    return DT_OK;
}

dt_status
dt_file_store_compare_set(dt_file_store *fs, const dt_store_hook *hook,
                          void **value, size_t *vlen, const void *key,
                          size_t klen, const void *expected, size_t elen,
                          const void *desired, size_t dlen)
{
    WITH_FILE(fs, LOCK_EX,
              s_ = compare_set_locked(fs, hook, value, vlen, key, klen,
                                      expected, elen, desired, dlen));
}

dt_status
dt_file_store_check(dt_file_store *fs, bool *all, const void *const *keys,
                    const size_t *klens, size_t nkeys)
{
    WITH_FILE(fs, LOCK_SH, {
        *all = true;
        for (size_t i = 0; i < nkeys && *all; i++) {
            *all = lookup(fs, keys[i], klens[i]) != NULL;
        }
    });
}

dt_status
dt_file_store_delete(dt_file_store *fs, bool *deleted, const void *key,
                     size_t klen)
{
    WITH_FILE(fs, LOCK_EX, {
        *deleted = lookup(fs, key, klen) != NULL;
        if (*deleted) {
            s_ = append(fs, key, klen, NULL, 0);
        }
    });
}

dt_status
dt_file_store_num_keys(dt_file_store *fs, int64_t *n)
{
    WITH_FILE(fs, LOCK_SH, {
        *n = 0;
        for (size_t i = 0; i < fs->cap; i++) {
            entry *e = &fs->table[i];
            *n += e->key && e->live &&
                  !(e->klen == strlen(USERS_KEY) &&
                    memcmp(e->key, USERS_KEY, e->klen) == 0);
        }
    });
}

dt_status
dt_file_store_try_get(dt_file_store *fs, const dt_store_hook *hook,
                      bool *found, void **value, size_t *vlen,
                      const void *key, size_t klen)
{
    WITH_FILE(fs, LOCK_SH, {
        entry *e = lookup(fs, key, klen);
        *found = e != NULL;
        if (e && !(*value = copy_out(hook, e->value, e->vlen))) {
            s_ = dt_fail(DT_ERR_NOMEM, "FileStore: out of memory");
        } else if (e) {
            *vlen = e->vlen;
        }
    });
}
