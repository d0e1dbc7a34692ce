/* index.h: indexing, gather/scatter, joining and splitting.
 *
 *   index.c         t[key] and t[key] = v (views, index, index_put_)
 *   index_plan.c    the plan turning an index list into offsets
 *   index_kernel.c  the gather/scatter loops they all run; nonzero
 *   scatter.c       gather, scatter_add_, index_select, index_add_
 *   masked.c        masked_fill, one_hot
 *   join.c          cat, stack
 *   split.c         split/chunk, unbind
 *
 * Each differentiable op has dt_<op>_forward (a pure kernel, what other
 * kernels call), its backward, and the entry point dt_<op> the glue calls
 * (forward, then record the autograd node).
 *
 * Basic indexing (ints, slices, None, ...) is a chain of views from
 * view.c, built by the Python glue's key parser, which also sums the
 * chain up as a dt_basic_key so that it can be differentiated as one.
 */
#ifndef DT_OPS_INDEX_H
#define DT_OPS_INDEX_H

#include "../dt.h"

/* ---------------------------------------------------------------------- */
/* indexing (index.c, index_plan.c, index_kernel.c)                        */

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

/* A basic key (ints, slices, None, ...) summed up against the indexed
 * tensor t: per dim of t, the first index it takes and the step (0: an
 * int, which drops the dim); bit r of new_dims marks dim r of the result
 * as a new size-1 dim (None). The result's sizes are the view's own. */
typedef struct dt_basic_key {
    int ndim;                      /* t's */
    int64_t start[DT_MAX_DIMS];
    int64_t step[DT_MAX_DIMS];
    uint32_t new_dims;
} dt_basic_key;

/* The key of t[...] (every dim whole). */
void dt_basic_key_init(dt_basic_key *key, int ndim);
/* t seen through key, with the result's shape (a view of t). */
dt_status dt_basic_key_view(dt_tensor **out, const dt_tensor *t,
                            const dt_basic_key *key, const int64_t *shape,
                            int ndim);

/* Entry points (record autograd nodes). */

/* *view was made from t by the views that key sums up: records it as one
 * differentiable view of t (an alias when *view is t itself). */
dt_status dt_index_view(dt_tensor **view, const dt_tensor *t,
                        const dt_basic_key *key);
dt_status dt_index(dt_tensor **out, const dt_tensor *t,
                   dt_tensor *const *indices, int n);
/* t[key] = values: slot is t seen through the key's basic part, indices
 * (n of them, n == 0 for none) its advanced part. values is cast to t's
 * dtype; leading size-1 dims of values are ignored, as in PyTorch. */
dt_status dt_index_assign(dt_tensor *t, const dt_basic_key *key,
                          dt_tensor *slot, dt_tensor *const *indices, int n,
                          const dt_tensor *values);
dt_status dt_index_put_(dt_tensor *t, dt_tensor *const *indices, int n,
                        const dt_tensor *values, bool accumulate);

/* ---------------------------------------------------------------------- */
/* gather and scatter (scatter.c, masked.c)                                */

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
/* t.index_add_(dim, index, src): t[.., index[i], ..] += src[.., i, ..],
 * in place; duplicates accumulate. src has t's shape with index's length
 * on dim, and t's dtype. */
dt_status dt_index_add_forward(dt_tensor *t, int64_t dim,
                               const dt_tensor *index, const dt_tensor *src);
/* out = t where !mask, value where mask; mask (bool) and t broadcast.
 * *out == t fills t in place (then mask must broadcast to t's shape).
 * value: a 0-dim tensor, cast to t's dtype. */
dt_status dt_masked_fill_forward(dt_tensor **out, const dt_tensor *t,
                                 const dt_tensor *mask,
                                 const dt_tensor *value);
/* out (..., num_classes) int64; num_classes -1 infers max(t) + 1. */
dt_status dt_one_hot_forward(dt_tensor **out, const dt_tensor *t,
                             int64_t num_classes);

/* Entry points. scatter_add_ and masked_fill with *out == t work in
 * place. */
dt_status dt_gather(dt_tensor **out, const dt_tensor *t, int64_t dim,
                    const dt_tensor *index);
dt_status dt_scatter_add_(dt_tensor *t, int64_t dim, const dt_tensor *index,
                          const dt_tensor *src);
dt_status dt_index_select(dt_tensor **out, const dt_tensor *t, int64_t dim,
                          const dt_tensor *index);
dt_status dt_masked_fill(dt_tensor **out, const dt_tensor *t,
                         const dt_tensor *mask, const dt_tensor *value);

/* ---------------------------------------------------------------------- */
/* joining and splitting (join.c, split.c)                                 */

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

/* Entry points. cat with out= given refuses inputs that require grad, as
 * PyTorch does. split's and unbind's outputs are views of t recorded as
 * one node. */
dt_status dt_cat(dt_tensor **out, dt_tensor *const *ts, int n, int64_t dim);
dt_status dt_stack(dt_tensor **out, dt_tensor *const *ts, int n,
                   int64_t dim);
dt_status dt_split(dt_tensor **outs, const dt_tensor *t,
                   const int64_t *sizes, int64_t n, int64_t dim);
dt_status dt_unbind(dt_tensor **outs, const dt_tensor *t, int64_t dim);

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

/* The plan of an advanced index (index_plan.c). Letters: t is the
 * indexed tensor, B the broadcast shape of the index tensors, R the
 * result's shape (B placed among t's unindexed dims). */
typedef struct dt_index_plan {
    dt_tensor *list[DT_MAX_DIMS];  /* per dim of t: int64 index or NULL */
    int rnd;                       /* result dims */
    int64_t rshape[DT_MAX_DIMS];   /* R */
    int64_t tstrides[DT_MAX_DIMS]; /* t restrided to R: 0 on B dims */
    int bpos, bnd;                 /* where B sits in R, and its dims */
    dt_tensor *index;              /* (B) int64: one index, or offsets */
    dt_index_map map;              /* how p->index reads */
} dt_index_plan;

dt_status dt_index_plan_build(dt_index_plan *p, const dt_tensor *t,
                              dt_tensor *const *indices, int n);
void dt_index_plan_free(dt_index_plan *p);
/* t restrided to R, and p->index expanded to R (both views). */
dt_status dt_index_plan_views(dt_tensor **tv, dt_tensor **xv,
                              const dt_index_plan *p, const dt_tensor *t);
/* The IndexError for an out-of-range value `bad`. */
dt_status dt_index_plan_oob(const dt_index_plan *p, const dt_tensor *t,
                            int64_t bad);

#endif /* DT_OPS_INDEX_H */
