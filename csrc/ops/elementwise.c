/* elementwise.c: the driver every elementwise op runs through
 * (dt_ew_run): devices, broadcasting, input casts, output checks and
 * aliasing, then the strided loop. The ops themselves only pick dtypes
 * and a loop (unary.c, binary.c, compare.c, pow.c, clamp.c). Also the
 * autograd plumbing their entry points and backwards share. */
#include <stdio.h>

#include "ew_impl.h"

const char *
dt_ew_name(char *buf, dt_tensor *const *out, const dt_tensor *self,
           const char *op)
{
    snprintf(buf, 32, "%s%s", op, *out && *out == self ? "_" : "");
    return buf;
}

dt_dtype
dt_ew_result_type(const dt_tensor *const *ts, int n)
{
    const dt_tensor *present[4];
    int m = 0;
    DT_ASSERT(n <= 4);
    for (int i = 0; i < n; i++) {
        if (ts[i]) {
            present[m++] = ts[i];
        }
    }
    return dt_result_type(present, m);
}

dt_status
dt_ew_not_impl(const char *name, dt_dtype dtype)
{
    return dt_fail(DT_ERR_NOTIMPL, "%s: not implemented for '%s'", name,
                   dt_dtype_name(dtype));
}

/* ---------------------------------------------------------------------- */
/* checks                                                                  */

/* All inputs on one device, except that 0-dim CPU tensors (Python
 * numbers) go with any device, as in PyTorch. The device of the first
 * input that counts is the result's. */
static dt_status
common_device(dt_device *dev, const dt_ew_spec *sp)
{
    const dt_tensor *first = NULL;
    for (int k = 0; k < sp->nin; k++) {
        const dt_tensor *t = sp->in[k];
        if (t->ndim == 0 && dt_tensor_device(t).type == DT_CPU) {
            continue;
        }
        if (!first) {
            first = t;
        } else {
            DT_TRY(dt_check_same_device(first, t, sp->name));
        }
    }
    *dev = dt_tensor_device(first ? first : sp->in[0]);
    return DT_OK;
}

static dt_status
broadcast_all(int64_t *shape, int *ndim, const dt_ew_spec *sp)
{
    const dt_tensor *t0 = sp->in[0];
    *ndim = t0->ndim;
    memcpy(shape, t0->shape, sizeof(int64_t) * (size_t)t0->ndim);
    for (int k = 1; k < sp->nin; k++) {
        int64_t acc[DT_MAX_DIMS];
        memcpy(acc, shape, sizeof acc);
        DT_TRY(dt_broadcast_shapes(shape, ndim, acc, *ndim, sp->in[k]->shape,
                                   sp->in[k]->ndim, sp->name));
    }
    return DT_OK;
}

/* An output with a stride-0 dim would be written twice per element. */
static dt_status
check_out_overlap(const dt_tensor *out, const char *name)
{
    for (int d = 0; d < out->ndim; d++) {
        if (out->shape[d] > 1 && out->strides[d] == 0) {
            return dt_fail(DT_ERR_RUNTIME,
                           "%s: unsupported operation: more than one element "
                           "of the written-to tensor refers to a single "
                           "memory location. Please clone() the tensor before "
                           "performing the operation.", name);
        }
    }
    return DT_OK;
}

/* Byte range [lo, hi) that t's elements touch. */
static void
byte_extent(const dt_tensor *t, const char **lo, const char **hi)
{
    const char *base = dt_tensor_data(t);
    int64_t first = 0, last = 0, isz = (int64_t)dt_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++) {
        int64_t span = (t->shape[d] - 1) * t->strides[d] * isz;
        if (span < 0) {
            first += span;
        } else {
            last += span;
        }
    }
    *lo = base + first;
    *hi = base + last + isz;
}

/* Whether writing `out` element by element could change what is still to
 * be read from `in` (both of out's shape): the same memory, but not the
 * very same elements in the same order. */
static bool
partial_overlap(const dt_tensor *out, const dt_tensor *in)
{
    if (out->storage != in->storage || dt_tensor_numel(out) == 0) {
        return false;
    }
    bool same = dt_tensor_data(out) == dt_tensor_data(in) &&
                out->dtype == in->dtype;
    for (int d = 0; same && d < out->ndim; d++) {
        same = out->shape[d] == 1 || out->strides[d] == in->strides[d];
    }
    if (same) {
        return false;
    }
    const char *olo, *ohi, *ilo, *ihi;
    byte_extent(out, &olo, &ohi);
    byte_extent(in, &ilo, &ihi);
    return olo < ihi && ilo < ohi;
}

/* ---------------------------------------------------------------------- */
/* the driver                                                              */

/* Casts `t` to `dtype` and expands it to the output's shape; copies it
 * first if the output overlaps it in any way but element for element. */
static dt_status
prepare_input(dt_tensor **res, const dt_tensor *t, dt_dtype dtype,
              const dt_tensor *out, const char *name)
{
    dt_tensor *c = NULL, *e = NULL;
    DT_TRY(dt_to_dtype(&c, t, dtype));
    dt_status s = dt_expand_to(&e, c, out->shape, out->ndim, name);
    if (s == DT_OK && partial_overlap(out, e)) {
        dt_tensor *copy = NULL;
        dt_tensor_release(e);
        e = NULL;
        s = dt_clone(&copy, c);
        if (s == DT_OK) {
            s = dt_expand_to(&e, copy, out->shape, out->ndim, name);
            dt_tensor_release(copy);
        }
    }
    dt_tensor_release(c);
    *res = e;
    return s;
}

dt_status
dt_ew_run(dt_tensor **out, const dt_ew_spec *sp)
{
    int64_t shape[DT_MAX_DIMS];
    int ndim;
    dt_device dev;
    DT_ASSERT(sp->nin >= 1 && sp->nin <= 3 && sp->loop);
    DT_TRY(common_device(&dev, sp));
    DT_TRY(broadcast_all(shape, &ndim, sp));
    bool fresh = *out == NULL;
    DT_TRY(dt_prepare_out(out, shape, ndim, sp->out_dtype, dev, sp->name));
    dt_tensor *ops[4] = {NULL, NULL, NULL, NULL}, *tmp = NULL;
    dt_status s = fresh ? DT_OK : check_out_overlap(*out, sp->name);
    for (int k = 0; s == DT_OK && k < sp->nin; k++) {
        s = prepare_input(&ops[k + 1], sp->in[k], sp->in_dtype[k], *out,
                          sp->name);
    }
    if (s == DT_OK && (*out)->dtype != sp->out_dtype) {
        s = dt_tensor_empty(&tmp, shape, ndim, sp->out_dtype, dev);
    }
    if (s == DT_OK) {
        ops[0] = tmp ? tmp : *out;
        dt_iter_run(ops, sp->nin + 1, sp->loop, sp->ctx);
        if (!tmp && !fresh) {
            dt_tensor_bump_version(*out);  /* written, even if `after` fails */
        }
        s = sp->after ? sp->after(sp->ctx) : DT_OK;
    }
    if (s == DT_OK && tmp) {
        s = dt_copy_(*out, tmp);           /* bumps the version */
    }
    for (int k = 1; k <= sp->nin; k++) {
        dt_tensor_release(ops[k]);
    }
    dt_tensor_release(tmp);
    if (s != DT_OK && fresh) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

/* ---------------------------------------------------------------------- */
/* autograd helpers for the entry points and backwards                     */

dt_status
dt_ew_rec_begin(dt_ew_rec *r, dt_tensor *const *out,
                const dt_tensor *const *in, int nin, const char *name)
{
    DT_ASSERT(nin >= 1 && nin <= 3);
    memset(r, 0, sizeof *r);
    r->nin = nin;
    r->inplace = *out && *out == in[0];
    r->fresh = *out == NULL;
    r->record = dt_autograd_needed(in, nin);
    if (*out && !r->inplace && dt_grad_enabled() &&
        (r->record || dt_requires_grad(*out))) {
        return dt_fail(DT_ERR_RUNTIME, "%s(): functions with out=... "
                       "arguments don't support automatic differentiation, "
                       "but one of the arguments requires grad.", name);
    }
    if (r->record && r->inplace) {
        DT_TRY(dt_autograd_check_inplace(in[0], name));
    }
    for (int k = 0; k < nin; k++) {
        r->in[k] = in[k];
        r->version[k] = in[k] ? atomic_load(&in[k]->storage->version) : 0;
    }
    return DT_OK;
}

dt_status
dt_ew_rec_keep_self(dt_ew_rec *r)
{
    return r->inplace ? dt_clone(&r->old_self, r->in[0]) : DT_OK;
}

dt_status
dt_ew_rec_node(dt_node **n, const dt_ew_rec *r, dt_tensor **out,
               const char *name, dt_backward_fn fn)
{
    return dt_node_record(n, name, fn, r->in, r->nin, out, 1);
}

dt_status
dt_ew_save_input(dt_node *n, const dt_ew_rec *r, int k)
{
    DT_TRY(dt_node_save(n, r->in[k]));
    if (r->in[k]) {
        n->saved_version[n->num_saved - 1] = r->version[k];
    }
    return DT_OK;
}

dt_status
dt_ew_save_self(dt_node *n, const dt_ew_rec *r)
{
    return r->old_self ? dt_node_save(n, r->old_self)
                       : dt_ew_save_input(n, r, 0);
}

dt_status
dt_ew_rec_end(dt_ew_rec *r, dt_tensor **out, dt_status s)
{
    dt_tensor_release(r->old_self);
    r->old_self = NULL;
    if (s != DT_OK && r->fresh) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

dt_dtype
dt_ew_grad_dtype(const dt_tensor *grad)
{
    return dt_dtype_is_floating(grad->dtype) ? grad->dtype
                                             : DT_DEFAULT_FLOAT;
}

dt_status
dt_ew_grad_run(dt_tensor **out, dt_dtype d, dt_loop_fn loop, void *ctx,
               const dt_tensor *a, const dt_tensor *b, const dt_tensor *c)
{
    dt_ew_spec sp = {.name = "backward", .nin = 1 + (b != NULL) + (c != NULL),
                     .in = {a, b, c}, .in_dtype = {d, d, d}, .out_dtype = d,
                     .loop = loop, .ctx = ctx};
    DT_ASSERT(loop && (b || !c));
    *out = NULL;
    return dt_ew_run(out, &sp);
}

dt_status
dt_ew_zero_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    for (int i = 0; i < n->num_inputs; i++) {
        const dt_input_meta *m = &n->in_meta[i];
        if (dt_node_needs_grad(n, i)) {
            DT_TRY(dt_tensor_zeros(&gi[i], m->shape, m->ndim, m->dtype,
                                   go[0] ? dt_tensor_device(go[0])
                                         : DT_DEVICE_CPU));
        }
    }
    return DT_OK;
}

dt_status
dt_ew_number(dt_tensor **out, double v)
{
    DT_TRY(dt_tensor_scalar(out, v, DT_FLOAT64));
    (*out)->is_wrapped_number = true;
    return DT_OK;
}
