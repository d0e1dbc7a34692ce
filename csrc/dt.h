/* dt.h: the public C API of dtrain's core.
 *
 * A dt_tensor is a strided view (shape, strides and offset, all counted in
 * elements, as in PyTorch) into a refcounted dt_storage. Views share the
 * storage; every op reads strides, so views are free.
 *
 * Errors: every fallible function returns a dt_status. On failure it has
 * recorded a thread-local message (dt_last_error()) that names the op and
 * the shapes or dtypes involved. Only the Python glue turns a status into an
 * exception; the core never exits and never touches Python.
 *
 * Ownership: functions that produce a tensor take `dt_tensor **out`. When
 * *out is NULL they allocate a new tensor and store an owned reference;
 * when *out is a tensor they write into it (that is how in-place and out=
 * variants work). Inputs are borrowed.
 */
#ifndef DT_H
#define DT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DT_MAX_DIMS 8

/* ---------------------------------------------------------------------- */
/* status and errors                                                       */

typedef enum dt_status {
    DT_OK = 0,
    DT_ERR_VALUE,    /* ValueError: bad argument value */
    DT_ERR_TYPE,     /* TypeError: unsupported dtype or argument type */
    DT_ERR_INDEX,    /* IndexError: index or dim out of range */
    DT_ERR_RUNTIME,  /* RuntimeError: shape mismatch and everything else */
    DT_ERR_NOMEM,    /* MemoryError */
    DT_ERR_NOTIMPL,  /* NotImplementedError */
    DT_STATUS_COUNT
} dt_status;

/* Records "fmt" as this thread's last error and returns `code`. */
dt_status dt_fail(dt_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *dt_last_error(void);

/* Propagates a failed status to the caller. */
#define DT_TRY(expr)                                                      \
    do {                                                                  \
        dt_status dt_try_s_ = (expr);                                     \
        if (dt_try_s_ != DT_OK) {                                         \
            return dt_try_s_;                                             \
        }                                                                 \
    } while (0)

/* Internal invariants only: user mistakes must return a status instead. */
#define DT_ASSERT(x)                                                      \
    do {                                                                  \
        if (!(x)) {                                                       \
            dt_abort_(__FILE__, __LINE__, #x);                            \
        }                                                                 \
    } while (0)
_Noreturn void dt_abort_(const char *file, int line, const char *expr);

/* ---------------------------------------------------------------------- */
/* dtypes                                                                  */

/* The order is the promotion order within a category. */
typedef enum dt_dtype {
    DT_BOOL = 0,
    DT_UINT8,
    DT_INT32,
    DT_INT64,
    DT_FLOAT16,
    DT_BFLOAT16,
    DT_FLOAT32,
    DT_FLOAT64,
    DT_DTYPE_COUNT
} dt_dtype;

#define DT_DEFAULT_FLOAT DT_FLOAT32

size_t dt_dtype_size(dt_dtype dtype);
const char *dt_dtype_name(dt_dtype dtype);   /* "float32", ... */
bool dt_dtype_is_floating(dt_dtype dtype);
bool dt_dtype_is_integral(dt_dtype dtype);   /* bool counts as integral */

/* ---------------------------------------------------------------------- */
/* devices and storage                                                     */

typedef enum dt_device_type { DT_CPU = 0, DT_CUDA = 1 } dt_device_type;

typedef struct dt_device {
    dt_device_type type;
    int index;                   /* CUDA ordinal; 0 for the CPU */
} dt_device;

#define DT_DEVICE_CPU ((dt_device){DT_CPU, 0})

bool dt_device_equal(dt_device a, dt_device b);
/* Writes "cpu" or "cuda:N" into buf. */
void dt_device_format(char *buf, size_t n, dt_device device);

typedef struct dt_storage {
    _Atomic int64_t refcount;
    void *data;
    size_t nbytes;
    dt_device device;
    /* Foreign memory (a NumPy array, say) is handed back through release;
     * NULL means the core allocated it. */
    void (*release)(void *ctx);
    void *release_ctx;
    /* Bumped by every in-place write; autograd compares it to detect a
     * saved tensor that was modified. */
    _Atomic uint32_t version;
} dt_storage;

/* Drops one reference; frees (or hands back) the memory with the last. */
void dt_storage_release(dt_storage *s);

/* ---------------------------------------------------------------------- */
/* tensors                                                                 */

struct dt_autograd_meta;   /* csrc/autograd/autograd.h */

typedef struct dt_tensor {
    _Atomic int64_t refcount;
    dt_dtype dtype;
    int ndim;
    int64_t shape[DT_MAX_DIMS];
    int64_t strides[DT_MAX_DIMS];    /* in elements; 0 for expanded dims */
    int64_t offset;                  /* in elements, into storage */
    dt_storage *storage;             /* shared by every view */
    /* A Python scalar wrapped as a 0-dim tensor: it takes part in type
     * promotion only by category, as in PyTorch. */
    bool is_wrapped_number;
    /* requires_grad, .grad, grad_fn, hooks; NULL when none of them */
    struct dt_autograd_meta *ag;
} dt_tensor;

/* Frees a tensor's autograd metadata (csrc/autograd/node.c). */
void dt_autograd_meta_free(struct dt_autograd_meta *m);

dt_status dt_tensor_empty(dt_tensor **out, const int64_t *shape, int ndim,
                          dt_dtype dtype, dt_device device);
dt_status dt_tensor_zeros(dt_tensor **out, const int64_t *shape, int ndim,
                          dt_dtype dtype, dt_device device);
/* Wraps foreign memory; `release(ctx)` runs when the last view dies. */
dt_status dt_tensor_from_blob(dt_tensor **out, void *data, size_t nbytes,
                              const int64_t *shape, const int64_t *strides,
                              int ndim, dt_dtype dtype, dt_device device,
                              void (*release)(void *), void *ctx);
/* A 0-dim tensor holding `value`, cast to `dtype`. */
dt_status dt_tensor_scalar(dt_tensor **out, double value, dt_dtype dtype);

void dt_tensor_retain(dt_tensor *t);
void dt_tensor_release(dt_tensor *t);      /* NULL is fine */

int64_t dt_tensor_numel(const dt_tensor *t);
bool dt_tensor_is_contiguous(const dt_tensor *t);
dt_device dt_tensor_device(const dt_tensor *t);
/* Address of the first element. */
void *dt_tensor_data(const dt_tensor *t);
/* Marks an in-place write for autograd's version check. */
void dt_tensor_bump_version(dt_tensor *t);
/* Live tensor headers, storages and core-allocated bytes (leak tests). */
void dt_live_counts(int64_t *tensors, int64_t *storages, int64_t *bytes);
/* Reads element 0 of a one-element tensor as a double. */
dt_status dt_tensor_item(double *value, const dt_tensor *t);
/* Writes "(2, 3)" into buf. */
void dt_shape_format(char *buf, size_t n, const int64_t *shape, int ndim);

/* Normalises a possibly negative dim; IndexError names the op. */
dt_status dt_wrap_dim(int64_t *dim, int ndim, const char *op);
/* NumPy broadcasting of two shapes; RuntimeError names the op. */
dt_status dt_broadcast_shapes(int64_t *out, int *out_ndim,
                              const int64_t *a, int a_ndim,
                              const int64_t *b, int b_ndim, const char *op);
/* Same device, or a RuntimeError naming the op and both devices. */
dt_status dt_check_same_device(const dt_tensor *a, const dt_tensor *b,
                               const char *op);

/* ---------------------------------------------------------------------- */
/* views (csrc/view.c): all share storage with the input                   */

dt_status dt_view_as_strided(dt_tensor **out, const dt_tensor *t,
                             const int64_t *shape, const int64_t *strides,
                             int ndim, int64_t offset);
/* shape may hold one -1; fails if the strides do not allow a view. */
dt_status dt_view(dt_tensor **out, const dt_tensor *t, const int64_t *shape,
                  int ndim);
/* A view when the strides allow one, else a contiguous copy. */
dt_status dt_reshape(dt_tensor **out, const dt_tensor *t,
                     const int64_t *shape, int ndim);
dt_status dt_transpose(dt_tensor **out, const dt_tensor *t, int64_t d0,
                       int64_t d1);
dt_status dt_permute(dt_tensor **out, const dt_tensor *t, const int64_t *dims,
                     int ndim);
/* dim == NULL squeezes every size-1 dim. */
dt_status dt_squeeze(dt_tensor **out, const dt_tensor *t, const int64_t *dim);
dt_status dt_unsqueeze(dt_tensor **out, const dt_tensor *t, int64_t dim);
/* shape entries of -1 keep the size; new leading dims are allowed. */
dt_status dt_expand(dt_tensor **out, const dt_tensor *t, const int64_t *shape,
                    int ndim);
dt_status dt_narrow(dt_tensor **out, const dt_tensor *t, int64_t dim,
                    int64_t start, int64_t length);
/* Python slice semantics on one dim: start/stop already clamped. */
dt_status dt_slice(dt_tensor **out, const dt_tensor *t, int64_t dim,
                   int64_t start, int64_t stop, int64_t step);
/* Drops `dim`, picking `index` (negative counts from the end). */
dt_status dt_select(dt_tensor **out, const dt_tensor *t, int64_t dim,
                    int64_t index);
dt_status dt_flatten(dt_tensor **out, const dt_tensor *t, int64_t start,
                     int64_t end);

/* ---------------------------------------------------------------------- */
/* copies and casts (csrc/ops/copy.c)                                      */

/* dst[...] = src, broadcasting src to dst's shape and casting its dtype. */
dt_status dt_copy_(dt_tensor *dst, const dt_tensor *src);
dt_status dt_contiguous(dt_tensor **out, const dt_tensor *t);
dt_status dt_clone(dt_tensor **out, const dt_tensor *t);
/* A new tensor unless the dtype already matches (then a new reference). */
dt_status dt_to_dtype(dt_tensor **out, const dt_tensor *t, dt_dtype dtype);
dt_status dt_fill_(dt_tensor *t, double value);

#endif /* DT_H */
