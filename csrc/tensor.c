/* tensor.c: storage and tensor lifetime, shape queries, dims, broadcasting. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "dt_impl.h"

#define DT_ALIGN 64
#define DT_HUGE_MIN ((size_t)4 << 20)     /* below this, not worth it */

/* Live counts, read by the leak test through dt_live_counts(). */
static _Atomic int64_t live_tensors, live_storages, live_bytes;

void
dt_count_tensor_(int delta)
{
    atomic_fetch_add(&live_tensors, delta);
}

void
dt_live_counts(int64_t *tensors, int64_t *storages, int64_t *bytes)
{
    *tensors = atomic_load(&live_tensors);
    *storages = atomic_load(&live_storages);
    *bytes = atomic_load(&live_bytes);
}

/* ---------------------------------------------------------------------- */
/* storage                                                                 */

/* Asks for transparent huge pages over the whole pages inside a large
 * buffer (as NumPy does): streaming kernels then take far fewer TLB
 * misses. The buffer keeps glibc's normal alignment so freed blocks are
 * reused without new page faults; the advice sticks to reused memory. */
static void
advise_huge_pages(void *data, size_t nbytes)
{
    uintptr_t page = 4096, lo = ((uintptr_t)data + page - 1) & ~(page - 1);
    uintptr_t hi = ((uintptr_t)data + nbytes) & ~(page - 1);
    if (hi > lo) {
        madvise((void *)lo, hi - lo, MADV_HUGEPAGE);   /* advice only */
    }
}

static dt_status
storage_new(dt_storage **out, size_t nbytes, dt_device device)
{
    if (device.type != DT_CPU) {
        return dt_fail(DT_ERR_RUNTIME,
                       "dtrain was built without CUDA support");
    }
    dt_storage *s = calloc(1, sizeof *s);
    /* aligned_alloc needs a multiple of the alignment; never 0 bytes. */
    size_t padded = (nbytes + DT_ALIGN - 1) / DT_ALIGN * DT_ALIGN;
    void *data = s ? aligned_alloc(DT_ALIGN, padded ? padded : DT_ALIGN)
                   : NULL;
    if (data && nbytes >= DT_HUGE_MIN) {
        advise_huge_pages(data, nbytes);
    }
    if (!data) {
        free(s);
        return dt_fail(DT_ERR_NOMEM, "out of memory allocating %zu bytes",
                       nbytes);
    }
    atomic_init(&s->refcount, 1);
    s->data = data;
    s->nbytes = nbytes;
    s->device = device;
    atomic_fetch_add(&live_storages, 1);
    atomic_fetch_add(&live_bytes, (int64_t)nbytes);
    *out = s;
    return DT_OK;
}

void
dt_storage_release(dt_storage *s)
{
    if (atomic_fetch_sub(&s->refcount, 1) != 1) {
        return;
    }
    if (s->release) {
        s->release(s->release_ctx);
    } else {
        free(s->data);
        atomic_fetch_sub(&live_bytes, (int64_t)s->nbytes);
    }
    atomic_fetch_sub(&live_storages, 1);
    free(s);
}

/* ---------------------------------------------------------------------- */
/* tensors                                                                 */

static dt_status
check_shape(const int64_t *shape, int ndim, size_t itemsize, size_t *nbytes)
{
    if (ndim < 0 || ndim > DT_MAX_DIMS) {
        return dt_fail(DT_ERR_VALUE,
                       "tensors have at most %d dimensions, got %d",
                       DT_MAX_DIMS, ndim);
    }
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            return dt_fail(DT_ERR_VALUE,
                           "negative dimension %" PRId64 " in shape",
                           shape[i]);
        }
        if (shape[i] && n > (UINT64_C(1) << 50) / (uint64_t)shape[i]) {
            return dt_fail(DT_ERR_NOMEM, "shape too large to allocate");
        }
        n *= (uint64_t)shape[i];
    }
    *nbytes = (size_t)n * itemsize;
    return DT_OK;
}

/* A tensor header with contiguous strides over `storage` (retained). */
static dt_tensor *
tensor_header(const int64_t *shape, int ndim, dt_dtype dtype,
              dt_storage *storage)
{
    dt_tensor *t = calloc(1, sizeof *t);
    if (!t) {
        return NULL;
    }
    atomic_init(&t->refcount, 1);
    atomic_fetch_add(&live_tensors, 1);
    t->dtype = dtype;
    t->ndim = ndim;
    int64_t stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = shape[i];
        t->strides[i] = stride;
        stride *= shape[i] ? shape[i] : 1;
    }
    t->storage = storage;
    atomic_fetch_add(&storage->refcount, 1);
    return t;
}

dt_status
dt_tensor_empty(dt_tensor **out, const int64_t *shape, int ndim,
                dt_dtype dtype, dt_device device)
{
    size_t nbytes = 0;
    dt_storage *s = NULL;
    DT_TRY(check_shape(shape, ndim, dt_dtype_size(dtype), &nbytes));
    DT_TRY(storage_new(&s, nbytes, device));
    dt_tensor *t = tensor_header(shape, ndim, dtype, s);
    dt_storage_release(s);
    if (!t) {
        return dt_fail(DT_ERR_NOMEM, "out of memory");
    }
    *out = t;
    return DT_OK;
}

dt_status
dt_tensor_zeros(dt_tensor **out, const int64_t *shape, int ndim,
                dt_dtype dtype, dt_device device)
{
    DT_TRY(dt_tensor_empty(out, shape, ndim, dtype, device));
    memset((*out)->storage->data, 0, (*out)->storage->nbytes);
    return DT_OK;
}

dt_status
dt_tensor_from_blob(dt_tensor **out, void *data, size_t nbytes,
                    const int64_t *shape, const int64_t *strides, int ndim,
                    dt_dtype dtype, dt_device device, void (*release)(void *),
                    void *ctx)
{
    size_t unused;
    DT_TRY(check_shape(shape, ndim, dt_dtype_size(dtype), &unused));
    dt_storage *s = calloc(1, sizeof *s);
    if (!s) {
        return dt_fail(DT_ERR_NOMEM, "out of memory");
    }
    atomic_init(&s->refcount, 1);
    s->data = data;
    s->nbytes = nbytes;
    s->device = device;
    s->release = release;
    s->release_ctx = ctx;
    dt_tensor *t = tensor_header(shape, ndim, dtype, s);
    if (!t) {
        /* The caller keeps ownership of data when we fail. */
        free(s);
        return dt_fail(DT_ERR_NOMEM, "out of memory");
    }
    atomic_fetch_add(&live_storages, 1);
    atomic_fetch_sub(&s->refcount, 1);
    memcpy(t->strides, strides, (size_t)ndim * sizeof *strides);
    *out = t;
    return DT_OK;
}

dt_status
dt_tensor_scalar(dt_tensor **out, double value, dt_dtype dtype)
{
    DT_TRY(dt_tensor_empty(out, NULL, 0, dtype, DT_DEVICE_CPU));
    dt_store_double((*out)->storage->data, dtype, value);
    return DT_OK;
}

void
dt_tensor_retain(dt_tensor *t)
{
    atomic_fetch_add(&t->refcount, 1);
}

void
dt_tensor_release(dt_tensor *t)
{
    if (!t || atomic_fetch_sub(&t->refcount, 1) != 1) {
        return;
    }
    if (t->ag) {
        dt_autograd_meta_free(t->ag);
    }
    dt_storage_release(t->storage);
    atomic_fetch_sub(&live_tensors, 1);
    free(t);
}

int64_t
dt_tensor_numel(const dt_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) {
        n *= t->shape[i];
    }
    return n;
}

bool
dt_tensor_is_contiguous(const dt_tensor *t)
{
    int64_t expected = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] == 0) {
            return true;
        }
        if (t->shape[i] != 1 && t->strides[i] != expected) {
            return false;
        }
        expected *= t->shape[i];
    }
    return true;
}

dt_device
dt_tensor_device(const dt_tensor *t)
{
    return t->storage->device;
}

void *
dt_tensor_data(const dt_tensor *t)
{
    return (char *)t->storage->data +
           t->offset * (int64_t)dt_dtype_size(t->dtype);
}

void
dt_tensor_bump_version(dt_tensor *t)
{
    atomic_fetch_add(&t->storage->version, 1);
}

dt_status
dt_tensor_item(double *value, const dt_tensor *t)
{
    if (dt_tensor_numel(t) != 1) {
        return dt_fail(DT_ERR_RUNTIME,
                       "a Tensor with %" PRId64
                       " elements cannot be converted to Scalar",
                       dt_tensor_numel(t));
    }
    *value = dt_load_double(dt_tensor_data(t), t->dtype);
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* shapes, dims, devices                                                   */

void
dt_shape_format(char *buf, size_t n, const int64_t *shape, int ndim)
{
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && used < n; i++) {
        used += (size_t)snprintf(buf + used, n - used, "%s%" PRId64,
                                 i ? ", " : "", shape[i]);
    }
    if (used < n) {
        snprintf(buf + used, n - used, ndim == 1 ? ",)" : ")");
    }
}

dt_status
dt_wrap_dim(int64_t *dim, int ndim, const char *op)
{
    int64_t lo = ndim ? -ndim : -1, hi = ndim ? ndim - 1 : 0;
    if (*dim < lo || *dim > hi) {
        return dt_fail(DT_ERR_INDEX,
                       "%s: Dimension out of range (expected to be in range "
                       "of [%" PRId64 ", %" PRId64 "], but got %" PRId64 ")",
                       op, lo, hi, *dim);
    }
    if (*dim < 0) {
        *dim += ndim ? ndim : 1;
    }
    return DT_OK;
}

dt_status
dt_broadcast_shapes(int64_t *out, int *out_ndim, const int64_t *a,
                    int a_ndim, const int64_t *b, int b_ndim, const char *op)
{
    int n = a_ndim > b_ndim ? a_ndim : b_ndim;
    for (int i = 0; i < n; i++) {
        int ia = a_ndim - n + i, ib = b_ndim - n + i;
        int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char sha[128], shb[128];
            dt_shape_format(sha, sizeof sha, a, a_ndim);
            dt_shape_format(shb, sizeof shb, b, b_ndim);
            return dt_fail(DT_ERR_RUNTIME,
                           "%s: shapes %s and %s cannot be broadcast: the "
                           "size of dimension %d must match (%" PRId64
                           " vs %" PRId64 ")",
                           op, sha, shb, i - n, sa, sb);
        }
        out[i] = sa == 1 ? sb : sa;
    }
    *out_ndim = n;
    return DT_OK;
}

bool
dt_device_equal(dt_device a, dt_device b)
{
    return a.type == b.type && (a.type == DT_CPU || a.index == b.index);
}

void
dt_device_format(char *buf, size_t n, dt_device device)
{
    if (device.type == DT_CPU) {
        snprintf(buf, n, "cpu");
    } else {
        snprintf(buf, n, "cuda:%d", device.index);
    }
}

dt_status
dt_check_same_device(const dt_tensor *a, const dt_tensor *b, const char *op)
{
    if (dt_device_equal(dt_tensor_device(a), dt_tensor_device(b))) {
        return DT_OK;
    }
    char da[32], db[32];
    dt_device_format(da, sizeof da, dt_tensor_device(a));
    dt_device_format(db, sizeof db, dt_tensor_device(b));
    return dt_fail(DT_ERR_RUNTIME,
                   "%s: expected all tensors to be on the same device, but "
                   "found at least two devices, %s and %s",
                   op, da, db);
}
