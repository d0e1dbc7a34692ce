/* py_pg.h: what the process-group glue files share (py_pg.c: the
 * ProcessGroup type and module init; py_work.c: the Work type;
 * py_file_store.c: the FileStore type). */
#ifndef DT_PY_PG_H
#define DT_PY_PG_H

#include "py_store.h"

#include "../dist/file_store.h"
#include "../dist/pg.h"

/* DistBackendError(DistError): a collective failed or timed out. */
extern PyObject *dt_py_backend_error;

extern PyType_Spec dt_py_work_spec;
extern PyType_Spec dt_py_file_store_spec;
extern PyTypeObject *dt_py_work_type;
extern PyTypeObject *dt_py_file_store_type;

typedef struct py_pg {
    PyObject_HEAD
    dt_pg *pg;                 /* owned; NULL once shut down */
} py_pg;

/* The group, or NULL with DistBackendError set after shutdown(). */
dt_pg *dt_py_pg_get(py_pg *self);
/* The dt_pg inside a _C._ProcessGroupGloo (borrowed; retain it to keep
 * it), or NULL with TypeError set: how C code such as the DDP reducer
 * gets at a group created from Python. */
dt_pg *dt_py_pg_unwrap(PyObject *o);

/* py_pg_coll.c: the collective methods of _ProcessGroupGloo. */
extern PyMethodDef dt_py_pg_coll_methods[];

/* Wraps w (stolen) in a _C._Work; NULL and w released on error. */
PyObject *dt_py_work_wrap(dt_work *w);
/* Waits for w without the GIL, in slices that run the signal handlers;
 * raises DistBackendError on failure. timeout_ms <= 0: no limit. */
int dt_py_work_wait(dt_work *w, int64_t timeout_ms);
/* The dt_file_store inside a _C._FileStore (borrowed) or NULL. */
dt_file_store *dt_py_file_store_get(PyObject *o);

#endif /* DT_PY_PG_H */
