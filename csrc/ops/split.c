/* split.c: split, chunk and unbind (views of the input along one dim),
 * and their gradient: one node for all the pieces, whose backward writes
 * each piece's gradient into its slice of zeros like the input. */
#include <inttypes.h>
#include <stdio.h>

#include "../autograd/autograd.h"
#include "../dt_impl.h"
#include "index.h"

/* ---------------------------------------------------------------------- */
/* split, chunk, unbind                                                    */

static dt_status
check_splittable(const dt_tensor *t, int64_t *dim, const char *op)
{
    if (t->ndim == 0) {
        return dt_fail(DT_ERR_RUNTIME, "%s expects at least a 1-dimensional "
                       "tensor", op);
    }
    return dt_wrap_dim(dim, t->ndim, op);
}

dt_status
dt_split_count(int64_t *n, const dt_tensor *t, int64_t split_size,
               int64_t *dim)
{
    DT_TRY(check_splittable(t, dim, "split"));
    int64_t size = t->shape[*dim];
    if (split_size < 0) {
        return dt_fail(DT_ERR_RUNTIME, "split expects split_size be "
                       "non-negative, but got split_size=%" PRId64,
                       split_size);
    }
    if (split_size == 0 && size != 0) {
        return dt_fail(DT_ERR_RUNTIME, "split_size can only be 0 if "
                       "dimension size is 0, but got dimension size of %"
                       PRId64, size);
    }
    *n = split_size ? (size + split_size - 1) / split_size : 1;
    *n = *n ? *n : 1;   /* an empty dim still gives one (empty) piece */
    return DT_OK;
}

dt_status
dt_chunk_count(int64_t *n, int64_t *split_size, const dt_tensor *t,
               int64_t chunks, int64_t *dim)
{
    DT_TRY(check_splittable(t, dim, "chunk"));
    if (chunks <= 0) {
        return dt_fail(DT_ERR_RUNTIME, "chunk expects `chunks` to be greater "
                       "than 0, got: %" PRId64, chunks);
    }
    int64_t size = t->shape[*dim];
    *split_size = (size + chunks - 1) / chunks;
    if (*split_size == 0 && size == 0) {
        *n = chunks;   /* PyTorch gives `chunks` empty pieces */
        return DT_OK;
    }
    return dt_split_count(n, t, *split_size, dim);
}

void
dt_split_even_sizes(int64_t *sizes, int64_t n, int64_t dim_size,
                    int64_t split_size)
{
    for (int64_t i = 0; i < n; i++) {
        int64_t left = dim_size - i * split_size;
        sizes[i] = left < split_size ? (left > 0 ? left : 0) : split_size;
    }
}

/* "[1, 2, 3]" (cut short with "..." past the buffer) */
static void
format_sizes(char *buf, size_t cap, const int64_t *sizes, int64_t n)
{
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int64_t i = 0; i < n && used + 24 < cap; i++) {
        used += (size_t)snprintf(buf + used, cap - used, "%s%" PRId64,
                                 i ? ", " : "", sizes[i]);
    }
    snprintf(buf + used, cap - used, "%s", used + 24 < cap ? "]" : "...]");
}

static dt_status
check_split_sizes(const int64_t *sizes, int64_t n, int64_t size, int64_t dim)
{
    int64_t sum = 0;
    bool negative = false;
    for (int64_t i = 0; i < n; i++) {
        negative |= sizes[i] < 0;
        sum += sizes[i];
    }
    if (!negative && sum == size) {
        return DT_OK;
    }
    char buf[256];
    format_sizes(buf, sizeof buf, sizes, n);
    if (negative) {
        return dt_fail(DT_ERR_RUNTIME, "split_with_sizes expects split_sizes "
                       "have only non-negative entries, but got "
                       "split_sizes=%s", buf);
    }
    return dt_fail(DT_ERR_RUNTIME, "split_with_sizes expects split_sizes to "
                   "sum exactly to %" PRId64 " (input tensor's size at "
                   "dimension %" PRId64 "), but got split_sizes=%s", size,
                   dim, buf);
}

dt_status
dt_split_forward(dt_tensor **outs, const dt_tensor *t, const int64_t *sizes,
                 int64_t n, int64_t dim)
{
    DT_TRY(check_splittable(t, &dim, "split"));
    DT_TRY(check_split_sizes(sizes, n, t->shape[dim], dim));
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        outs[i] = NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        dt_status s = dt_slice(&outs[i], t, dim, at, at + sizes[i], 1);
        if (s != DT_OK) {
            for (int64_t j = 0; j < i; j++) {
                dt_tensor_release(outs[j]);
                outs[j] = NULL;
            }
            return s;
        }
        at += sizes[i];
    }
    return DT_OK;
}

dt_status
dt_unbind_forward(dt_tensor **outs, const dt_tensor *t, int64_t dim)
{
    if (t->ndim == 0) {
        return dt_fail(DT_ERR_INDEX, "unbind: Dimension specified as %"
                       PRId64 " but tensor has no dimensions", dim);
    }
    DT_TRY(dt_wrap_dim(&dim, t->ndim, "unbind"));
    for (int64_t i = 0; i < t->shape[dim]; i++) {
        dt_status s = dt_select(&outs[i], t, dim, i);
        if (s != DT_OK) {
            for (int64_t j = 0; j < i; j++) {
                dt_tensor_release(outs[j]);
                outs[j] = NULL;
            }
            return s;
        }
    }
    return DT_OK;
}

/* ---------------------------------------------------------------------- */
/* gradient                                                                */

/* How the backward finds the pieces (iargs[1]); iargs[0] is the dim. */
enum {
    PIECES_SELECT,   /* unbind: piece i is select(dim, i) */
    PIECES_EVEN,     /* iargs[2] each, the last ones smaller or empty */
    PIECES_LISTED,   /* sizes in iargs[2..] */
    PIECES_SAVED     /* sizes in saved[0], an int64 tensor */
};

#define MAX_LISTED (DT_NODE_MAX_ARGS - 2)

/* Piece o's size along dim. */
static int64_t
piece_size(const dt_node *n, const int64_t *saved, int64_t o, int64_t at,
           int64_t dim_size)
{
    int64_t even = n->iargs[2];
    switch (n->iargs[1]) {
    case PIECES_SELECT: return 1;
    case PIECES_EVEN:
        return dim_size - at < even ? (dim_size > at ? dim_size - at : 0)
                                    : even;
    case PIECES_LISTED: return n->iargs[2 + o];
    default: return saved[o];
    }
}

/* gi[0] = zeros like t with each piece's gradient (NULL: none reached
 * that piece) in its place. */
static dt_status
dt_split_backward(dt_node *n, dt_tensor **gi, dt_tensor *const *go)
{
    const dt_input_meta *im = &n->in_meta[0];
    const dt_tensor *any = NULL;
    dt_tensor *sizes = NULL, *z = NULL;
    int64_t dim = n->iargs[0], at = 0;
    for (int o = 0; o < n->num_outputs && !any; o++) {
        any = go[o];
    }
    if (n->iargs[1] == PIECES_SAVED) {
        DT_TRY(dt_node_saved(&sizes, n, 0));
    }
    const int64_t *saved = sizes ? dt_tensor_data(sizes) : NULL;
    DT_TRY(dt_tensor_zeros(&z, im->shape, im->ndim, any->dtype,
                           dt_tensor_device(any)));
    dt_status s = DT_OK;
    for (int o = 0; o < n->num_outputs && s == DT_OK; o++) {
        int64_t len = piece_size(n, saved, o, at, im->shape[dim]);
        dt_tensor *part = NULL;
        if (go[o]) {
            s = n->iargs[1] == PIECES_SELECT
                    ? dt_select(&part, z, dim, o)
                    : dt_slice(&part, z, dim, at, at + len, 1);
            s = s == DT_OK ? dt_copy_(part, go[o]) : s;
        }
        dt_tensor_release(part);
        at += len;
    }
    if (s != DT_OK) {
        dt_tensor_release(z);
        return s;
    }
    gi[0] = z;
    return DT_OK;
}

/* Whether sizes are what splitting size into pieces of sizes[0] gives. */
static bool
sizes_even(const int64_t *sizes, int64_t n, int64_t size)
{
    int64_t expect[1];
    for (int64_t i = 0; i < n; i++) {
        dt_split_even_sizes(expect, 1, size - i * sizes[0], sizes[0]);
        if (sizes[i] != expect[0]) {
            return false;
        }
    }
    return true;
}

/* Stores how to find the pieces: as few numbers as will do. */
static dt_status
describe_pieces(dt_node *node, const int64_t *sizes, int64_t n,
                int64_t size)
{
    node->num_iargs = 3;
    if (!sizes) {
        node->iargs[1] = PIECES_SELECT;
    } else if (sizes_even(sizes, n, size)) {
        node->iargs[1] = PIECES_EVEN;
        node->iargs[2] = sizes[0];
    } else if (n <= MAX_LISTED) {
        node->iargs[1] = PIECES_LISTED;
        memcpy(node->iargs + 2, sizes, (size_t)n * sizeof *sizes);
        node->num_iargs = 2 + (int)n;
    } else {
        dt_tensor *t = NULL;
        node->iargs[1] = PIECES_SAVED;
        DT_TRY(dt_tensor_empty(&t, &n, 1, DT_INT64, DT_DEVICE_CPU));
        memcpy(dt_tensor_data(t), sizes, (size_t)n * sizeof *sizes);
        dt_status s = dt_node_save(node, t);
        dt_tensor_release(t);
        return s;
    }
    return DT_OK;
}

/* One node for outs[0..n): views of t, so in-place writes to them are
 * refused. sizes NULL: unbind. On failure releases the outputs. */
static dt_status
record_pieces(dt_tensor **outs, const dt_tensor *t, const int64_t *sizes,
              int64_t n, int64_t dim, const char *name)
{
    dt_node *node = NULL;
    dt_status s = DT_OK;
    if (n == 0 || !dt_autograd_needed1(t)) {
        return DT_OK;
    }
    s = dt_wrap_dim(&dim, t->ndim, name);
    if (s == DT_OK) {
        s = dt_node_record(&node, name, dt_split_backward, &t, 1, outs,
                           (int)n);
    }
    if (s == DT_OK) {
        node->iargs[0] = dim;
        s = describe_pieces(node, sizes, n, t->shape[dim]);
    }
    for (int64_t i = 0; i < n; i++) {
        if (s == DT_OK) {
            outs[i]->ag->is_view = true;
        } else {
            dt_tensor_release(outs[i]);
            outs[i] = NULL;
        }
    }
    return s;
}

dt_status
dt_split(dt_tensor **outs, const dt_tensor *t, const int64_t *sizes,
         int64_t n, int64_t dim)
{
    DT_TRY(dt_split_forward(outs, t, sizes, n, dim));
    return record_pieces(outs, t, sizes, n, dim, "SplitWithSizesBackward0");
}

dt_status
dt_unbind(dt_tensor **outs, const dt_tensor *t, int64_t dim)
{
    DT_TRY(dt_unbind_forward(outs, t, dim));
    int64_t d = dim;
    DT_TRY(dt_wrap_dim(&d, t->ndim, "unbind"));
    return record_pieces(outs, t, NULL, t->shape[d], d, "UnbindBackward0");
}
