/* index.h: indexing, gather/scatter, joining and splitting.
 *
 *   index.c         advanced indexing (t[idx], t[mask]), index_put_
 *   index_kernel.c  the gather/scatter loops they all run; nonzero
 *   scatter.c       gather, scatter_add_, index_select, masked_fill,
 *                   one_hot
 *   join.c          cat, stack, split/chunk, unbind
 *
 * Basic indexing (ints, slices, None, ...) needs no op of its own: it is a
 * chain of views from view.c, built by the Python glue's key parser.
 */
#ifndef DT_OPS_INDEX_H
#define DT_OPS_INDEX_H

#include "../dt.h"

/* ---------------------------------------------------------------------- */
/* advanced indexing (index.c, index_kernel.c)                             */

/* An index list as PyTorch's aten::index takes it: entry j applies to the
 * next dims of t in order. NULL takes a whole dim (':'); an int64/int32
 * tensor takes one dim (negative values count from the end); a bool/uint8
 * mask of k dims takes k dims and must match their sizes. Index tensors
 * broadcast together; their dims land where the first indexed dim was if
 * the indexed dims are adjacent, else in front (NumPy's rule). */

/* out = t[indices]: always a new tensor. */
dt_status dt_index_forward(dt_tensor **out, const dt_tensor *t,
                           dt_tensor *const *indices, int n);
/* t[indices] = values (or += with accumulate), in place. values must have
 * t's dtype and broadcast to the indexing result's shape. Duplicate
 * indices: the last write wins unless accumulating. */
dt_status dt_index_put_forward(dt_tensor *t, dt_tensor *const *indices,
                               int n, const dt_tensor *values,
                               bool accumulate);
/* out (nnz, ndim) int64: coordinates of the non-zero elements of t, in
 * row-major order. */
dt_status dt_nonzero_forward(dt_tensor **out, const dt_tensor *t);

/* ---------------------------------------------------------------------- */
/* gather and scatter (scatter.c)                                          */

/* out = t.index_select(dim, index): index is 1-D (or 0-dim) int64/int32. */
dt_status dt_index_select_forward(dt_tensor **out, const dt_tensor *t,
                                  int64_t dim, const dt_tensor *index);
/* out[i][j][k] = t[i][index[i][j][k]][k] for dim = 1; out has index's
 * shape; index is int64 with t's number of dims. */
dt_status dt_gather_forward(dt_tensor **out, const dt_tensor *t, int64_t dim,
                            const dt_tensor *index);
/* t[i][index[i][j][k]][k] += src[i][j][k] for dim = 1, in place. */
dt_status dt_scatter_add_forward(dt_tensor *t, int64_t dim,
                                 const dt_tensor *index,
                                 const dt_tensor *src);
/* out = t where !mask, value where mask; mask (bool) and t broadcast.
 * *out == t fills t in place (then mask must broadcast to t's shape).
 * value: a 0-dim tensor, cast to t's dtype. */
dt_status dt_masked_fill_forward(dt_tensor **out, const dt_tensor *t,
                                 const dt_tensor *mask,
                                 const dt_tensor *value);
/* out (..., num_classes) int64; num_classes -1 infers max(t) + 1. */
dt_status dt_one_hot_forward(dt_tensor **out, const dt_tensor *t,
                             int64_t num_classes);

/* ---------------------------------------------------------------------- */
/* joining and splitting (join.c)                                          */

/* Concatenates along dim with type promotion; 1-D tensors of shape (0,)
 * are skipped as in PyTorch. */
dt_status dt_cat_forward(dt_tensor **out, dt_tensor *const *ts, int n,
                         int64_t dim);
/* Stacks equal-shaped tensors along a new dim. */
dt_status dt_stack_forward(dt_tensor **out, dt_tensor *const *ts, int n,
                           int64_t dim);
/* How many pieces split(split_size, dim) makes (the last may be smaller);
 * *dim is normalised. */
dt_status dt_split_count(int64_t *n, const dt_tensor *t, int64_t split_size,
                         int64_t *dim);
/* chunk(chunks, dim): the split size (ceil(size / chunks)) and count. */
dt_status dt_chunk_count(int64_t *n, int64_t *split_size, const dt_tensor *t,
                         int64_t chunks, int64_t *dim);
/* outs[0..n) = views of t along dim with the given sizes, which must be
 * non-negative and sum to t's size there. */
dt_status dt_split_forward(dt_tensor **outs, const dt_tensor *t,
                           const int64_t *sizes, int64_t n, int64_t dim);
/* Fills sizes[0..n) for n pieces of split_size over a dim of dim_size. */
void dt_split_even_sizes(int64_t *sizes, int64_t n, int64_t dim_size,
                         int64_t split_size);
/* outs[0..size(dim)) = t.select(dim, i). */
dt_status dt_unbind_forward(dt_tensor **outs, const dt_tensor *t,
                            int64_t dim);

/* ---------------------------------------------------------------------- */
/* kernels shared by the indexing files (index_kernel.c)                   */

/* How int64 index values become element offsets into the indexed tensor:
 * value * stride, where values must lie in [0, size) (or [-size, size)
 * with wrap, negatives counting from the end). size < 0 means the values
 * are element offsets already (built and checked beforehand). */
typedef struct dt_index_map {
    int64_t size;
    int64_t stride;
    bool wrap;
} dt_index_map;

/* Read-only pass over index: false and the first bad value in *bad when
 * one is out of range. Scatters call it before they write anything. */
bool dt_index_check(const dt_tensor *index, dt_index_map map, int64_t *bad);
/* out[i] = src[i + offset(index[i])] over out's shape; src and index are
 * restrided views of that shape (stride 0 where they do not vary). Same
 * dtypes. False and *bad on an out-of-range index (out partly written). */
bool dt_index_gather_(dt_tensor *out, const dt_tensor *src,
                      const dt_tensor *index, dt_index_map map,
                      int64_t *bad);
/* dst[i + offset(index[i])] = values[i] (or += with accumulate): the
 * scatter twin. The index must have passed dt_index_check. */
void dt_index_scatter_(dt_tensor *dst, const dt_tensor *values,
                       const dt_tensor *index, dt_index_map map,
                       bool accumulate);
/* (nnz,) element offsets into t of the true elements of a bool/uint8
 * mask over dims d.. of t (whose sizes the caller has matched), in
 * row-major order: a lone mask index in one pass, instead of nonzero()
 * columns combined. */
dt_status dt_index_mask_offsets(dt_tensor **out, const dt_tensor *t,
                                const dt_tensor *mask, int d);
/* dt_prepare_out, and a given out must also have exactly `dtype`. */
dt_status dt_index_prepare_out(dt_tensor **out, const int64_t *shape,
                               int ndim, dt_dtype dtype, dt_device device,
                               const char *op);
/* RuntimeError if t has a stride-0 dim of size > 1: an in-place write
 * would hit one element through several indices. */
dt_status dt_index_check_writable(const dt_tensor *t, const char *op);
/* *out = t, or a clone of t if it shares storage with `dst`, so that a
 * write into dst cannot change what is read from t. */
dt_status dt_index_unalias(dt_tensor **out, const dt_tensor *t,
                           const dt_tensor *dst);

#endif /* DT_OPS_INDEX_H */
