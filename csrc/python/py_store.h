/* py_store.h: what the store glue files (py_store.c, py_store_client.c)
 * share: the exception classes, GIL-free waiting and error raising. */
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
#define DT_PY_STORE_CALL_W(status, self, w, expr)                         \
    do {                                                                  \
        dt_store_hook h_ = {dt_py_store_interrupted, dt_py_store_alloc,   \
                            &(w)};                                        \
        const dt_store_hook *hook = &h_;                                  \
        (self)->busy++;                                                   \
        (w).save = PyEval_SaveThread();                                   \
        (status) = (expr);                                                \
        PyEval_RestoreThread((w).save);                                   \
        (self)->busy--;                                                   \
    } while (0)

#define DT_PY_STORE_CALL(status, self, expr)                              \
    do {                                                                  \
        dt_py_store_wait w_ = {0};                                        \
        DT_PY_STORE_CALL_W(status, self, w_, expr);                       \
    } while (0)

/* Raises the exception class for the store failure just recorded (or
 * keeps the exception a signal handler raised); returns NULL. */
PyObject *dt_py_store_raise(dt_status s);
/* Seconds (a number) to milliseconds; 0 means no timeout. */
int dt_py_store_timeout_ms(PyObject *o, int64_t *out);

#endif /* DT_PY_STORE_H */
