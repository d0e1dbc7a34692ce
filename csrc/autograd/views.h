/* views.h: the differentiable entry points of the view and copy ops.
 *
 * The pure functions in dt.h (dt_view, dt_transpose, dt_copy_, ...) are
 * what kernels call internally and never record a graph; these dt_ag_*
 * versions are what the Python glue calls: forward, then record a node
 * when an input requires grad.
 */
#ifndef DT_AUTOGRAD_VIEWS_H
#define DT_AUTOGRAD_VIEWS_H

#include "autograd.h"

dt_status dt_ag_view(dt_tensor **out, const dt_tensor *t,
                     const int64_t *shape, int ndim);
dt_status dt_ag_reshape(dt_tensor **out, const dt_tensor *t,
                        const int64_t *shape, int ndim);
dt_status dt_ag_transpose(dt_tensor **out, const dt_tensor *t, int64_t d0,
                          int64_t d1);
dt_status dt_ag_permute(dt_tensor **out, const dt_tensor *t,
                        const int64_t *dims, int ndim);
dt_status dt_ag_squeeze(dt_tensor **out, const dt_tensor *t,
                        const int64_t *dim);
dt_status dt_ag_unsqueeze(dt_tensor **out, const dt_tensor *t, int64_t dim);
dt_status dt_ag_expand(dt_tensor **out, const dt_tensor *t,
                       const int64_t *shape, int ndim);
dt_status dt_ag_narrow(dt_tensor **out, const dt_tensor *t, int64_t dim,
                       int64_t start, int64_t length);
dt_status dt_ag_slice(dt_tensor **out, const dt_tensor *t, int64_t dim,
                      int64_t start, int64_t stop, int64_t step);
dt_status dt_ag_select(dt_tensor **out, const dt_tensor *t, int64_t dim,
                       int64_t index);
dt_status dt_ag_flatten(dt_tensor **out, const dt_tensor *t, int64_t start,
                        int64_t end);
dt_status dt_ag_as_strided(dt_tensor **out, const dt_tensor *t,
                           const int64_t *shape, const int64_t *strides,
                           int ndim, int64_t offset);
dt_status dt_ag_clone(dt_tensor **out, const dt_tensor *t);
dt_status dt_ag_contiguous(dt_tensor **out, const dt_tensor *t);
dt_status dt_ag_to_dtype(dt_tensor **out, const dt_tensor *t,
                         dt_dtype dtype);
dt_status dt_ag_copy_(dt_tensor *dst, const dt_tensor *src);
dt_status dt_ag_fill_(dt_tensor *t, const dt_tensor *value);

#endif /* DT_AUTOGRAD_VIEWS_H */
