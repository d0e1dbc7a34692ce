/* glue.h: what the CPython glue files share.
 *
 * Every wrapper has one shape: parse the arguments, call the core, on a
 * failed status `goto fail`, release owned locals at one label. Only this
 * layer raises Python exceptions (dt_py_raise maps a dt_status to one).
 *
 * Each op family owns one glue file that exports a method table for the
 * Tensor type and a function table for the module; tensor_type.c and
 * module.c concatenate them.
 */
#ifndef DT_GLUE_H
#define DT_GLUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "../dt_impl.h"

/* The Python object behind dtrain.Tensor. */
typedef struct dt_py_tensor {
    PyObject_HEAD
    dt_tensor *t;            /* owned */
    Py_ssize_t exports;      /* live buffer-protocol views */
} dt_py_tensor;

/* The Python object behind dtrain.float32 and friends. */
typedef struct dt_py_dtype {
    PyObject_HEAD
    dt_dtype dtype;
} dt_py_dtype;

/* Module state; one module instance per process. */
typedef struct dt_py_state {
    PyTypeObject *tensor_base;          /* _C.TensorBase */
    PyTypeObject *tensor_class;         /* dtrain.Tensor, set by Python */
    PyTypeObject *dtype_type;           /* _C.dtype */
    PyObject *dtypes[DT_DTYPE_COUNT];   /* the dtype instances */
} dt_py_state;

extern dt_py_state *dt_py_st;

/* Raises the exception for `s` with the core's last message; returns NULL
 * so wrappers can `return dt_py_raise(s)`. */
PyObject *dt_py_raise(dt_status s);

/* A Python exception raised in a callable that C code ran (a hook during
 * backward, a DDP comm hook): dt_py_keep_error fetches and keeps it and
 * returns a failure status for the C caller; dt_py_raise_pending raises
 * the kept exception, or the status's own if none (py_autograd.c). */
dt_status dt_py_keep_error(const char *where);
PyObject *dt_py_raise_pending(dt_status s);

/* Steals `t`; returns a new dtrain.Tensor (NULL and t released on error). */
PyObject *dt_py_wrap(dt_tensor *t);
/* The dt_tensor inside a Tensor (borrowed), or NULL if o is not one. */
dt_tensor *dt_py_unwrap(PyObject *o);

/* Accepts a Tensor, or a Python bool/int/float which becomes a wrapped
 * 0-dim tensor (lowest priority in type promotion). Stores a new
 * reference. On failure raises TypeError naming `op` and `arg`. */
int dt_py_as_tensor(PyObject *o, dt_tensor **out, const char *op,
                    const char *arg);

/* Converters for PyArg_Parse's "O&". */
int dt_py_dtype_converter(PyObject *o, void *out);         /* dt_dtype * */
int dt_py_tensor_converter(PyObject *o, void *out);        /* dt_tensor ** borrowed */
PyObject *dt_py_dtype_object(dt_dtype dtype);              /* borrowed */

/* Parses a shape given as varargs ints or one sequence: view(2, 3) and
 * view((2, 3)) both work. Returns ndim, or -1 with an exception set. */
int dt_py_parse_shape(PyObject *args, int64_t *shape, const char *op);
/* Parses a sequence of ints (dims, sizes); returns its length or -1. */
int dt_py_parse_int_list(PyObject *seq, int64_t *out, int max,
                         const char *op);

/* The per-family tables (each NULL-terminated). */
extern PyMethodDef dt_py_core_methods[];        /* py_tensor_methods.c */
extern PyMethodDef dt_py_elementwise_methods[]; /* py_elementwise.c */
extern PyMethodDef dt_py_reduce_methods[];      /* py_reduce.c */
extern PyMethodDef dt_py_index_methods[];       /* py_index.c */
extern PyMethodDef dt_py_autograd_methods[];    /* py_autograd.c */
extern PyGetSetDef dt_py_autograd_getset[];     /* py_autograd.c */
extern PyMethodDef dt_py_core_functions[];      /* convert.c */
extern PyMethodDef dt_py_elementwise_functions[];
extern PyMethodDef dt_py_reduce_functions[];
extern PyMethodDef dt_py_index_functions[];
extern PyMethodDef dt_py_creation_functions[];  /* py_creation.c */
extern PyMethodDef dt_py_optim_functions[];     /* py_optim.c */
extern PyMethodDef dt_py_nn_loss_functions[];   /* py_nn_loss.c */
extern PyMethodDef dt_py_nn_conv_functions[];   /* py_nn_conv.c */
extern PyMethodDef dt_py_function_functions[];  /* py_function.c */

/* Number-protocol and subscript entry points the Tensor type's slots call,
 * implemented by the family glue files. */
PyObject *dt_py_binary(PyObject *a, PyObject *b, int op);     /* dt_op */
PyObject *dt_py_binary_inplace(PyObject *a, PyObject *b, int op);
PyObject *dt_py_unary(PyObject *a, int op);
PyObject *dt_py_matmul(PyObject *a, PyObject *b);
PyObject *dt_py_getitem(PyObject *self, PyObject *key);
int dt_py_setitem(PyObject *self, PyObject *key, PyObject *value);

/* NumPy bridge (convert.c). */
int dt_py_numpy_init(void);
PyObject *dt_py_to_numpy(PyObject *self);

#endif /* DT_GLUE_H */
