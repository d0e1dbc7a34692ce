/* index.c: t[key] and t[key] = v. A key's basic part (ints, slices,
 * None, ...) is a view, differentiated as one node through its
 * dt_basic_key; its advanced part (index tensors, masks) is a gather
 * (index) or a scatter (index_put_) following a plan (index_plan.c) run
 * by the loops of index_kernel.c.
 *
 * Letters: t is the indexed tensor, R the shape of the indexing result.
 */
#include <inttypes.h>

#include "../autograd/autograd.h"
#include "../dt_impl.h"
#include "index.h"

static int64_t
numel_of(const int64_t *shape, int ndim)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        n *= shape[i];
    }
    return n;
}

/* ---------------------------------------------------------------------- */
/* basic keys: ints, slices, None                                          */

void
dt_basic_key_init(dt_basic_key *key, int ndim)
{
    memset(key, 0, sizeof *key);
    key->ndim = ndim;
    for (int d = 0; d < ndim; d++) {
        key->step[d] = 1;
    }
}

dt_status
dt_basic_key_view(dt_tensor **out, const dt_tensor *t,
                  const dt_basic_key *key, const int64_t *shape, int ndim)
{
    int64_t strides[DT_MAX_DIMS], offset = t->offset;
    int d = 0;
    DT_ASSERT(key->ndim == t->ndim);
    for (int r = 0; r <= ndim; r++) {
        /* an int drops its dim: it only moves the start */
        while (d < key->ndim && key->step[d] == 0) {
            offset += key->start[d] * t->strides[d];
            d++;
        }
        if (r == ndim) {
            break;
        }
        if (key->new_dims >> r & 1) {
            strides[r] = 0;
            continue;
        }
        DT_ASSERT(d < key->ndim);
        offset += key->start[d] * t->strides[d];
        strides[r] = key->step[d] * t->strides[d];
        d++;
    }
    DT_ASSERT(d == key->ndim);
    return dt_view_as_strided(out, t, shape, strides, ndim, offset);
}

/* A node keeps a key in iargs[0..KEY_ARGS): starts, steps, new_dims,
 * ndim. */
#define KEY_ARGS (2 * DT_MAX_DIMS + 2)
_Static_assert(KEY_ARGS + 2 <= DT_NODE_MAX_ARGS, "index_put_'s arguments");

static void
key_to_args(int64_t *args, const dt_basic_key *key)
{
    memcpy(args, key->start, sizeof key->start);
    memcpy(args + DT_MAX_DIMS, key->step, sizeof key->step);
    args[2 * DT_MAX_DIMS] = key->new_dims;
    args[2 * DT_MAX_DIMS + 1] = key->ndim;
}

static void
key_from_args(dt_basic_key *key, const int64_t *args)
{
    memcpy(key->start, args, sizeof key->start);
    memcpy(key->step, args + DT_MAX_DIMS, sizeof key->step);
    key->new_dims = (uint32_t)args[2 * DT_MAX_DIMS];
    key->ndim = (int)args[2 * DT_MAX_DIMS + 1];
}

/* gi[0] = zeros like the input, with go[0] written through the key. */
static dt_status
dt_index_view_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    const dt_input_meta *im = &n->in_meta[0];
    dt_basic_key key;
    dt_tensor *z = NULL, *part = NULL;
    key_from_args(&key, n->iargs);
    DT_TRY(dt_tensor_zeros(&z, im->shape, im->ndim, go[0]->dtype,
                           dt_tensor_device(go[0])));
    dt_status s = dt_basic_key_view(&part, z, &key, go[0]->shape,
                                    go[0]->ndim);
    if (s == DT_OK) {
        s = dt_copy_(part, go[0]);
    }
    dt_tensor_release(part);
    if (s != DT_OK) {
        dt_tensor_release(z);
        return s;
    }
    gi[0] = z;
    return DT_OK;
}

dt_status
dt_index_view(dt_tensor **view, const dt_tensor *t, const dt_basic_key *key)
{
    dt_node *n = NULL;
    if (!dt_autograd_needed1(t)) {
        return DT_OK;
    }
    if (*view == t) {
        /* t[:] or t[...]: a view of its own, as in PyTorch */
        dt_tensor *alias = NULL;
        DT_TRY(dt_detach(&alias, t));
        dt_tensor_release(*view);
        *view = alias;
    }
    dt_status s = dt_node_record_view(&n, "IndexViewBackward0",
                                      dt_index_view_backward, t, *view);
    if (s != DT_OK) {
        dt_tensor_release(*view);
        *view = NULL;
        return s;
    }
    key_to_args(n->iargs, key);
    n->num_iargs = KEY_ARGS;
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* index: t[indices]                                                       */

dt_status
dt_index_forward(dt_tensor **out, const dt_tensor *t,
                 dt_tensor *const *indices, int n)
{
    dt_index_plan p;
    dt_tensor *tv = NULL, *xv = NULL;
    int64_t bad;
    dt_status s = dt_index_plan_build(&p, t, indices, n);
    if (s == DT_OK) {
        s = dt_index_prepare_out(out, p.rshape, p.rnd, t->dtype,
                                 dt_tensor_device(t), "index");
    }
    if (s == DT_OK) {
        s = dt_index_plan_views(&tv, &xv, &p, t);
    }
    if (s == DT_OK && !dt_index_gather_(*out, tv, xv, p.map, &bad)) {
        s = dt_index_plan_oob(&p, t, bad);
    }
    if (s == DT_OK) {
        dt_tensor_bump_version(*out);
    }
    dt_tensor_release(tv);
    dt_tensor_release(xv);
    dt_index_plan_free(&p);
    return s;
}

/* gi[0] = zeros like the input, go[0] added at the indexed positions
 * (duplicates accumulate): one pass of the accumulate kernel. */
static dt_status
dt_index_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    const dt_input_meta *im = &n->in_meta[0];
    dt_tensor *idx[DT_MAX_DIMS], *z = NULL;
    int nidx = (int)n->iargs[0];
    for (int i = 0; i < nidx; i++) {
        DT_TRY(dt_node_saved(&idx[i], n, i));
    }
    DT_TRY(dt_tensor_zeros(&z, im->shape, im->ndim, go[0]->dtype,
                           dt_tensor_device(go[0])));
    dt_status s = dt_index_put_forward(z, idx, nidx, go[0], true);
    if (s != DT_OK) {
        dt_tensor_release(z);
        return s;
    }
    gi[0] = z;
    return DT_OK;
}

/* Saves the index list (NULL entries too) of a node. */
static dt_status
save_indices(dt_node *n, dt_tensor *const *indices, int nidx)
{
    for (int i = 0; i < nidx; i++) {
        DT_TRY(dt_node_save(n, indices[i]));
    }
    return DT_OK;
}

dt_status
dt_index(dt_tensor **out, const dt_tensor *t, dt_tensor *const *indices,
         int n)
{
    DT_TRY(dt_index_forward(out, t, indices, n));
    if (!dt_autograd_needed1(t)) {
        return DT_OK;
    }
    dt_node *node = NULL;
    dt_status s = dt_node_record(&node, "IndexBackward0", dt_index_backward,
                                 &t, 1, out, 1);
    if (s == DT_OK) {
        node->iargs[0] = n;
        node->num_iargs = 1;
        s = save_indices(node, indices, n);
    }
    if (s != DT_OK) {
        dt_tensor_release(*out);
        *out = NULL;
    }
    return s;
}

/* ---------------------------------------------------------------------- */
/* index_put_: t[indices] = values                                         */

/* values without leading size-1 dims (PyTorch's slicePrefix1sSize), so
 * a (1, 1, 3) value fits a (3,) slot; unaliased from t; expanded to R */
static dt_status
put_values(dt_tensor **out, const dt_tensor *t, const dt_tensor *values,
           const dt_index_plan *p)
{
    dt_tensor *v = NULL, *u = NULL;
    int k = 0;
    while (k < values->ndim && values->shape[k] == 1) {
        k++;
    }
    DT_TRY(dt_view_as_strided(&v, values, values->shape + k,
                              values->strides + k, values->ndim - k,
                              values->offset));
    dt_status s = dt_index_unalias(&u, v, t);
    dt_tensor_release(v);
    if (s != DT_OK) {
        return s;
    }
    s = dt_expand(out, u, p->rshape, p->rnd);
    if (s != DT_OK) {
        char vs[160], rs[160];
        dt_shape_format(vs, sizeof vs, values->shape, values->ndim);
        dt_shape_format(rs, sizeof rs, p->rshape, p->rnd);
        s = dt_fail(DT_ERR_RUNTIME, "index_put_: shape mismatch: value "
                    "tensor of shape %s cannot be broadcast to indexing "
                    "result of shape %s", vs, rs);
    }
    dt_tensor_release(u);
    return s;
}

static dt_status
check_put_args(const dt_tensor *t, const dt_tensor *values)
{
    if (values->dtype != t->dtype) {
        return dt_fail(DT_ERR_RUNTIME, "index_put_: Index put requires the "
                       "source and destination dtypes match, got %s for "
                       "the destination and %s for the source.",
                       dt_dtype_name(t->dtype), dt_dtype_name(values->dtype));
    }
    DT_TRY(dt_check_same_device(t, values, "index_put_"));
    return dt_index_check_writable(t, "index_put_");
}

dt_status
dt_index_put_forward(dt_tensor *t, dt_tensor *const *indices, int n,
                     const dt_tensor *values, bool accumulate)
{
    dt_index_plan p;
    dt_tensor *tv = NULL, *xv = NULL, *v = NULL;
    int64_t bad;
    DT_TRY(check_put_args(t, values));
    dt_status s = dt_index_plan_build(&p, t, indices, n);
    if (s == DT_OK && p.index->storage == t->storage) {
        dt_tensor *ix = p.index;   /* an index that is a view of t */
        p.index = NULL;
        s = dt_clone(&p.index, ix);
        dt_tensor_release(ix);
    }
    if (s == DT_OK) {
        s = put_values(&v, t, values, &p);
    }
    /* check every index before the first write */
    if (s == DT_OK && numel_of(p.rshape, p.rnd) > 0 &&
        !dt_index_check(p.index, p.map, &bad)) {
        s = dt_index_plan_oob(&p, t, bad);
    }
    if (s == DT_OK) {
        s = dt_index_plan_views(&tv, &xv, &p, t);
    }
    if (s == DT_OK) {
        dt_index_scatter_(tv, v, xv, p.map, accumulate);
        dt_tensor_bump_version(t);
    }
    dt_tensor_release(v);
    dt_tensor_release(tv);
    dt_tensor_release(xv);
    dt_index_plan_free(&p);
    return s;
}

/* ---------------------------------------------------------------------- */
/* t[key] = values and index_put_: one node for both                       */

/* slot[...] = values for a key without index tensors. */
static dt_status
assign_basic(dt_tensor *slot, const dt_tensor *values)
{
    dt_tensor *v = NULL, *u = NULL;
    int lead = 0;
    while (lead < values->ndim && values->shape[lead] == 1) {
        lead++;   /* a (1, 1, 3) value fits a (3,) slot, as in PyTorch */
    }
    DT_TRY(dt_index_check_writable(slot, "__setitem__"));
    DT_TRY(dt_view_as_strided(&v, values, values->shape + lead,
                              values->strides + lead, values->ndim - lead,
                              values->offset));
    dt_status s = dt_index_unalias(&u, v, slot);
    if (s == DT_OK) {
        s = dt_copy_(slot, u);   /* casts on the fly */
    }
    dt_tensor_release(v);
    dt_tensor_release(u);
    return s;
}

/* The gradient of values: g (the slot's or the indexing result's shape)
 * summed to values without its leading size-1 dims, then given them
 * back (the engine only sums broadcast dims). */
static dt_status
values_grad(dt_tensor **out, const dt_tensor *g, const dt_input_meta *vm)
{
    dt_tensor *summed = NULL;
    int lead = 0;
    while (lead < vm->ndim && vm->shape[lead] == 1) {
        lead++;
    }
    DT_TRY(dt_sum_to_shape(&summed, g, vm->shape + lead, vm->ndim - lead));
    dt_status s = dt_reshape(out, summed, vm->shape, vm->ndim);
    dt_tensor_release(summed);
    return s;
}

/* gi[1] = go[0] read at the written positions. */
static dt_status
put_grad_values(dt_tensor **gi1, const dt_tensor *slot, dt_tensor **idx,
                int nidx, const dt_input_meta *vm)
{
    dt_tensor *g = NULL;
    DT_TRY(nidx ? dt_index_forward(&g, slot, idx, nidx)
                : dt_clone(&g, slot));
    dt_status s = values_grad(gi1, g, vm);
    dt_tensor_release(g);
    return s;
}

/* gi[0] = go[0] with the written positions zeroed. */
static dt_status
put_grad_self(dt_tensor **gi0, const dt_tensor *go, const dt_basic_key *key,
              const dt_input_meta *sm, dt_tensor **idx, int nidx)
{
    dt_tensor *c = NULL, *slot = NULL, *zero = NULL;
    DT_TRY(dt_clone(&c, go));
    dt_status s = dt_basic_key_view(&slot, c, key, sm->shape, sm->ndim);
    if (s == DT_OK && nidx) {
        s = dt_tensor_scalar(&zero, 0.0, go->dtype);
        s = s == DT_OK ? dt_index_put_forward(slot, idx, nidx, zero, false)
                       : s;
    } else if (s == DT_OK) {
        s = dt_fill_(slot, 0.0);
    }
    dt_tensor_release(slot);
    dt_tensor_release(zero);
    if (s != DT_OK) {
        dt_tensor_release(c);
        return s;
    }
    *gi0 = c;
    return DT_OK;
}

/* Inputs: t, values, and the slot (no edge: only its shape is read).
 * iargs: the key, then the number of indices and accumulate. */
static dt_status
dt_index_put_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    dt_basic_key key;
    dt_tensor *idx[DT_MAX_DIMS], *slot = NULL;
    int nidx = (int)n->iargs[KEY_ARGS];
    bool accumulate = n->iargs[KEY_ARGS + 1];
    const dt_input_meta *sm = &n->in_meta[2];
    key_from_args(&key, n->iargs);
    for (int i = 0; i < nidx; i++) {
        DT_TRY(dt_node_saved(&idx[i], n, i));
    }
    if (dt_node_needs_grad(n, 1)) {
        DT_TRY(dt_basic_key_view(&slot, go[0], &key, sm->shape, sm->ndim));
        dt_status s = put_grad_values(&gi[1], slot, idx, nidx,
                                      &n->in_meta[1]);
        dt_tensor_release(slot);
        DT_TRY(s);
    }
    if (!dt_node_needs_grad(n, 0)) {
        return DT_OK;
    }
    if (accumulate) {
        dt_tensor_retain(go[0]);
        gi[0] = go[0];
        return DT_OK;
    }
    return put_grad_self(&gi[0], go[0], &key, sm, idx, nidx);
}

/* Records the in-place write of values into t through key and indices. */
static dt_status
record_put(dt_tensor *t, const dt_basic_key *key, const dt_tensor *slot,
           dt_tensor *const *indices, int nidx, const dt_tensor *values,
           bool accumulate)
{
    dt_tensor *shape_of = NULL;
    dt_node *n = NULL;
    DT_TRY(dt_detach(&shape_of, slot));   /* no history: no edge */
    const dt_tensor *in[3] = {t, values, shape_of};
    dt_status s = dt_node_record(&n, nidx ? "IndexPutBackward0"
                                          : "CopySlices",
                                 dt_index_put_backward, in, 3, &t, 1);
    dt_tensor_release(shape_of);
    DT_TRY(s);
    key_to_args(n->iargs, key);
    n->iargs[KEY_ARGS] = nidx;
    n->iargs[KEY_ARGS + 1] = accumulate;
    n->num_iargs = KEY_ARGS + 2;
    return save_indices(n, indices, nidx);
}

dt_status
dt_index_assign(dt_tensor *t, const dt_basic_key *key, dt_tensor *slot,
                dt_tensor *const *indices, int n, const dt_tensor *values)
{
    /* an integer t carries no gradient, whatever is written into it */
    bool record = dt_autograd_needed2(t, values) &&
                  dt_dtype_is_floating(t->dtype);
    dt_tensor *cast = NULL;
    if (record) {
        DT_TRY(dt_autograd_check_inplace(t, "__setitem__"));
    }
    if (!n) {
        DT_TRY(assign_basic(slot, values));
    } else {
        DT_TRY(dt_to_dtype(&cast, values, t->dtype));
        dt_status s = dt_index_put_forward(slot, indices, n, cast, false);
        dt_tensor_release(cast);
        DT_TRY(s);
    }
    return record ? record_put(t, key, slot, indices, n, values, false)
                  : DT_OK;
}

dt_status
dt_index_put_(dt_tensor *t, dt_tensor *const *indices, int n,
              const dt_tensor *values, bool accumulate)
{
    bool record = dt_autograd_needed2(t, values) &&
                  dt_dtype_is_floating(t->dtype);
    dt_basic_key key;
    if (record) {
        DT_TRY(dt_autograd_check_inplace(t, "index_put_"));
    }
    DT_TRY(dt_index_put_forward(t, indices, n, values, accumulate));
    if (!record) {
        return DT_OK;
    }
    dt_basic_key_init(&key, t->ndim);
    return record_put(t, &key, t, indices, n, values, accumulate);
}
