/* py_store.h: what the store glue files (py_store.c, py_store_client.c,
 * py_file_store.c) share: the exception classes, GIL-free waiting, error
 * raising, and the Python methods common to _StoreClient and _FileStore. */
#ifndef DT_PY_STORE_H
#define DT_PY_STORE_H

#include "glue.h"

#include "../dist/store.h"

/* DistError(RuntimeError), DistStoreError(DistError),
 * DistNetworkError(DistError), DistStoreTimeoutError(DistStoreError,
 * TimeoutError); created by dt_py_store_init. */
extern PyObject *dt_py_dist_error, *dt_py_store_error, *dt_py_network_error,
    *dt_py_timeout_error;

extern PyType_Spec dt_py_store_client_spec;

typedef struct dt_py_store_wait {
    PyThreadState *save;
    PyObject *result;          /* the bytes object a value went into */
} dt_py_store_wait;

/* The hook the core calls between slices: takes the GIL back, runs the
 * signal handlers, lets go again; nonzero when one raised. */
int dt_py_store_interrupted(void *ctx);
/* The hook's allocator: receives values straight into a bytes object
 * (w->result), saving a copy of a large value. */
void *dt_py_store_alloc(void *ctx, size_t n);

/* Runs `expr` (which may use `hook`) without the GIL, with `w` (a
 * dt_py_store_wait) as the hook's context; `self->busy` counts calls in
 * flight so close() can refuse to free a client in use. */
#define DT_PY_STORE_CALL_W(status, self, w, expr)                            \
    do {                                                                     \
        dt_store_hook h_ = {dt_py_store_interrupted, dt_py_store_alloc,      \
                            &(w)};                                           \
        const dt_store_hook *hook = &h_;                                     \
        (self)->busy++;                                                      \
        (w).save = PyEval_SaveThread();                                      \
        (status) = (expr);                                                   \
        PyEval_RestoreThread((w).save);                                      \
        (self)->busy--;                                                      \
    } while (0)

#define DT_PY_STORE_CALL(status, self, expr)                                 \
    do {                                                                     \
        dt_py_store_wait w_ = {0};                                           \
        DT_PY_STORE_CALL_W(status, self, w_, expr);                          \
    } while (0)

/* Raises the exception class for the store failure just recorded (or
 * keeps the exception a signal handler raised); returns NULL. */
PyObject *dt_py_store_raise(dt_status s);
/* Seconds (a number) to milliseconds; 0 means no timeout. */
int dt_py_store_timeout_ms(PyObject *o, int64_t *out);

/* Raises (and drops `self`) unless the tp_new open call returned DT_OK;
 * else returns `self`. */
PyObject *dt_py_store_opened(PyObject *self, dt_status s);

/* ---------------------------------------------------------------------- */
/* the methods _StoreClient and _FileStore share                           */

/* What tells the two store types apart: the calls on their core store
 * (passed as `st`) and how they name themselves. A call that takes no
 * hook ignores it; `delete_key`/`check` report through ints. */
typedef struct dt_py_store_ops {
    const char *name;          /* "TCPStore" or "FileStore", in messages */
    bool bytes_keys;           /* wait/check take bytes keys, not only str */
    void (*free)(void *st);    /* NULL is fine */
    void (*set_timeout)(void *st, int64_t timeout_ms);
    int64_t (*timeout)(void *st);
    dt_status (*set)(void *st, const dt_store_hook *hook, const void *key,
                     size_t klen, const void *value, size_t vlen);
    dt_status (*get)(void *st, const dt_store_hook *hook, void **value,
                     size_t *vlen, const void *key, size_t klen);
    dt_status (*add)(void *st, const dt_store_hook *hook, int64_t *result,
                     const void *key, size_t klen, int64_t delta);
    dt_status (*compare_set)(void *st, const dt_store_hook *hook,
                             void **value, size_t *vlen, const void *key,
                             size_t klen, const void *expected, size_t elen,
                             const void *desired, size_t dlen);
    dt_status (*wait)(void *st, const dt_store_hook *hook,
                      const void *const *keys, const size_t *klens,
                      size_t nkeys, int64_t timeout_ms);
    dt_status (*check)(void *st, const dt_store_hook *hook, int *all_exist,
                       const void *const *keys, const size_t *klens,
                       size_t nkeys);
    dt_status (*delete_key)(void *st, const dt_store_hook *hook, int *deleted,
                            const void *key, size_t klen);
    dt_status (*num_keys)(void *st, const dt_store_hook *hook, int64_t *n);
} dt_py_store_ops;

/* The object layout of both store types. */
typedef struct dt_py_store {
    PyObject_HEAD
    void *st;                  /* the core store, owned; NULL once closed */
    const dt_py_store_ops *ops;
    int busy;                  /* calls in flight without the GIL */
} dt_py_store;

/* py_store_client.c */
void dt_py_store_dealloc(dt_py_store *self);
PyObject *dt_py_store_meth_close(dt_py_store *self, PyObject *ignored);
PyObject *dt_py_store_meth_timeout(dt_py_store *self, void *closure);
PyObject *dt_py_store_meth_set(dt_py_store *self, PyObject *args);
PyObject *dt_py_store_meth_get(dt_py_store *self, PyObject *args);
PyObject *dt_py_store_meth_add(dt_py_store *self, PyObject *args);
PyObject *dt_py_store_meth_compare_set(dt_py_store *self, PyObject *args);
PyObject *dt_py_store_meth_wait(dt_py_store *self, PyObject *args);
PyObject *dt_py_store_meth_check(dt_py_store *self, PyObject *seq);
PyObject *dt_py_store_meth_delete_key(dt_py_store *self, PyObject *args);
PyObject *dt_py_store_meth_num_keys(dt_py_store *self, PyObject *ignored);
PyObject *dt_py_store_meth_set_timeout(dt_py_store *self, PyObject *timeout);

/* The entries of a store type's method table, all but close() (whose
 * doc differs). */
#define DT_PY_STORE_METHODS                                                  \
    {"set", (PyCFunction)dt_py_store_meth_set, METH_VARARGS,                 \
     "set(key, value)\n--\n\nStores value (str or bytes) under key."},       \
    {"get", (PyCFunction)dt_py_store_meth_get, METH_VARARGS,                 \
     "get(key)\n--\n\nThe value (bytes); blocks until the key exists."},     \
    {"add", (PyCFunction)dt_py_store_meth_add, METH_VARARGS,                 \
     "add(key, amount)\n--\n\nAdds to an integer key; the new value."},      \
    {"compare_set", (PyCFunction)dt_py_store_meth_compare_set, METH_VARARGS, \
     "compare_set(key, expected, desired)\n--\n\n"                           \
     "Swaps if the value equals expected; the value afterwards."},           \
    {"wait", (PyCFunction)dt_py_store_meth_wait, METH_VARARGS,               \
     "wait(keys, timeout=None)\n--\n\nBlocks until every key exists."},      \
    {"check", (PyCFunction)dt_py_store_meth_check, METH_O,                   \
     "check(keys)\n--\n\nWhether every key exists, without waiting."},       \
    {"delete_key", (PyCFunction)dt_py_store_meth_delete_key, METH_VARARGS,   \
     "delete_key(key)\n--\n\nDeletes key; whether it existed."},             \
    {"num_keys", (PyCFunction)dt_py_store_meth_num_keys, METH_NOARGS,        \
     "num_keys()\n--\n\nThe number of keys stored."},                        \
    {"set_timeout", (PyCFunction)dt_py_store_meth_set_timeout, METH_O,       \
     "set_timeout(seconds)\n--\n\nThe default timeout of later calls."}

#endif /* DT_PY_STORE_H */
