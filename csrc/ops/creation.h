/* creation.h: creation ops (csrc/ops/creation.c): new tensors from sizes
 * and scalars (empty, full, arange, linspace, eye) and random ones (rand,
 * randn, randint, randperm; the in-place draws are in rng.h).
 *
 * All follow dt.h's `dt_tensor **out` rule: *out NULL allocates, else the
 * result is written into *out, whose shape must match. Errors name `op`
 * or the op itself. A NULL generator means the default one.
 */
#ifndef DT_CREATION_H
#define DT_CREATION_H

#include "../dt.h"
#include "../rng.h"

/* Rejects negative sizes with a RuntimeError naming `op`. */
dt_status dt_check_size(const int64_t *shape, int ndim, const char *op);

dt_status dt_empty_forward(dt_tensor **out, const int64_t *shape, int ndim,
                           dt_dtype dtype, dt_device device, const char *op);
/* Every element = value (a 0-dim tensor, cast to dtype); value NULL gives
 * zeros. */
dt_status dt_full_forward(dt_tensor **out, const dt_tensor *value,
                          const int64_t *shape, int ndim, dt_dtype dtype,
                          dt_device device, const char *op);

/* [start, end) by step, ceil((end - start) / step) elements, each
 * start + i * step computed in double (a floating dtype). */
dt_status dt_arange_forward(dt_tensor **out, double start, double end,
                            double step, dt_dtype dtype, dt_device device);
/* The same in exact int64 arithmetic, for integral dtypes. */
dt_status dt_arange_int_forward(dt_tensor **out, int64_t start, int64_t end,
                                int64_t step, dt_dtype dtype,
                                dt_device device);
/* `steps` points from start to end inclusive. */
dt_status dt_linspace_forward(dt_tensor **out, double start, double end,
                              int64_t steps, dt_dtype dtype,
                              dt_device device);
/* n x m, ones on the diagonal. */
dt_status dt_eye_forward(dt_tensor **out, int64_t n, int64_t m,
                         dt_dtype dtype, dt_device device);

/* Uniform [0, 1) and standard normal; floating dtypes only. */
dt_status dt_rand_forward(dt_tensor **out, const int64_t *shape, int ndim,
                          dt_dtype dtype, dt_device device, dt_generator *g);
dt_status dt_randn_forward(dt_tensor **out, const int64_t *shape, int ndim,
                           dt_dtype dtype, dt_device device,
                           dt_generator *g);
/* Integers uniform in [low, high); they must fit dtype exactly. */
dt_status dt_randint_forward(dt_tensor **out, int64_t low, int64_t high,
                             const int64_t *shape, int ndim, dt_dtype dtype,
                             dt_device device, dt_generator *g);
/* A random permutation of 0 .. n-1 (Fisher-Yates). */
dt_status dt_randperm_forward(dt_tensor **out, int64_t n, dt_dtype dtype,
                              dt_device device, dt_generator *g);

#endif /* DT_CREATION_H */
