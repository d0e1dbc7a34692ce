/* nn_loss.h: the neural-network ops with their gradients, PyTorch
 * semantics (torch.nn.functional):
 *
 *   nn_softmax.c    softmax, log_softmax along any dim
 *   nn_loss_ce.c    cross_entropy (class indices or probabilities, class
 *                   weights, ignore_index, label smoothing), nll_loss
 *   nn_loss.c       mse_loss, binary_cross_entropy_with_logits
 *   nn_norm.c       layer_norm
 *   nn_batch_norm.c batch_norm
 *
 * Each op has dt_<op>_forward (the kernel: never records), its backward
 * (static, right below it) and the entry point dt_<op>, which runs the
 * forward and records the node when autograd needs it. The glue calls the
 * entry points. Outputs follow dt.h: *out == NULL allocates, a tensor in
 * *out receives the result (no autograd through out=).
 *
 * Inputs are floating (float16/bfloat16 compute in float32 and round the
 * result). Kernels run on contiguous float32/float64 data (a copy only
 * when the input is not already that), so any view works; their loops
 * are written once in the nn_*_gen.h templates, compiled for float and
 * double by nn_types_gen.h, and as AVX2/AVX-512 clones.
 */
#ifndef DT_NN_LOSS_H
#define DT_NN_LOSS_H

#include "../dt_impl.h"

/* Reductions, as in torch's Reduction enum. */
typedef enum dt_reduction {
    DT_REDUCTION_NONE = 0,
    DT_REDUCTION_MEAN = 1,
    DT_REDUCTION_SUM = 2,
} dt_reduction;

/* ---------------------------------------------------------------------- */
/* nn_softmax.c                                                            */

dt_status dt_softmax_forward(dt_tensor **out, const dt_tensor *x,
                             int64_t dim);
dt_status dt_softmax(dt_tensor **out, const dt_tensor *x, int64_t dim);
dt_status dt_log_softmax_forward(dt_tensor **out, const dt_tensor *x,
                                 int64_t dim);
dt_status dt_log_softmax(dt_tensor **out, const dt_tensor *x, int64_t dim);

/* ---------------------------------------------------------------------- */
/* nn_loss_ce.c                                                            */

/* input (C,), (N, C) or (N, C, d1, ...). target: int64 or uint8 class
 * indices of shape (), (N,) or (N, d1, ...), or class probabilities of
 * input's own shape (floating). weight: NULL or (C,). */
dt_status dt_cross_entropy_forward(dt_tensor **out, const dt_tensor *input,
                                   const dt_tensor *target,
                                   const dt_tensor *weight,
                                   int64_t ignore_index,
                                   dt_reduction reduction,
                                   double label_smoothing);
dt_status dt_cross_entropy(dt_tensor **out, const dt_tensor *input,
                           const dt_tensor *target, const dt_tensor *weight,
                           int64_t ignore_index, dt_reduction reduction,
                           double label_smoothing);
/* input holds log-probabilities; class-index targets only. */
dt_status dt_nll_loss_forward(dt_tensor **out, const dt_tensor *input,
                              const dt_tensor *target,
                              const dt_tensor *weight, int64_t ignore_index,
                              dt_reduction reduction);
dt_status dt_nll_loss(dt_tensor **out, const dt_tensor *input,
                      const dt_tensor *target, const dt_tensor *weight,
                      int64_t ignore_index, dt_reduction reduction);

/* ---------------------------------------------------------------------- */
/* nn_loss.c                                                               */

/* (input - target)**2, broadcasting the two. */
dt_status dt_mse_loss_forward(dt_tensor **out, const dt_tensor *input,
                              const dt_tensor *target,
                              dt_reduction reduction);
dt_status dt_mse_loss(dt_tensor **out, const dt_tensor *input,
                      const dt_tensor *target, dt_reduction reduction);
/* weight and pos_weight: NULL or broadcastable to input's shape. */
dt_status dt_bce_with_logits_forward(dt_tensor **out, const dt_tensor *input,
                                     const dt_tensor *target,
                                     const dt_tensor *weight,
                                     const dt_tensor *pos_weight,
                                     dt_reduction reduction);
dt_status dt_bce_with_logits(dt_tensor **out, const dt_tensor *input,
                             const dt_tensor *target,
                             const dt_tensor *weight,
                             const dt_tensor *pos_weight,
                             dt_reduction reduction);

/* ---------------------------------------------------------------------- */
/* nn_norm.c, nn_batch_norm.c                                              */

/* Normalises over the trailing dims `normalized_shape`; weight and bias
 * NULL or of that shape. */
dt_status dt_layer_norm_forward(dt_tensor **out, const dt_tensor *input,
                                const int64_t *normalized_shape, int nshape,
                                const dt_tensor *weight,
                                const dt_tensor *bias, double eps);
dt_status dt_layer_norm(dt_tensor **out, const dt_tensor *input,
                        const int64_t *normalized_shape, int nshape,
                        const dt_tensor *weight, const dt_tensor *bias,
                        double eps);
/* input (N, C, *). Training: batch statistics, and the running stats
 * (when given) move by `momentum` toward the batch mean and unbiased
 * variance, in place. Eval: the running stats (required). */
dt_status dt_batch_norm_forward(dt_tensor **out, const dt_tensor *input,
                                dt_tensor *running_mean,
                                dt_tensor *running_var,
                                const dt_tensor *weight,
                                const dt_tensor *bias, bool training,
                                double momentum, double eps);
dt_status dt_batch_norm(dt_tensor **out, const dt_tensor *input,
                        dt_tensor *running_mean, dt_tensor *running_var,
                        const dt_tensor *weight, const dt_tensor *bias,
                        bool training, double momentum, double eps);

/* ---------------------------------------------------------------------- */
/* helpers the nn files share (in nn_softmax.c)                               */

/* The floating dtype kernels compute in, or a NotImplementedError naming
 * the op for integer and bool inputs. */
dt_status dt_nn_compute_dtype(dt_dtype *ct, const dt_tensor *t,
                              const char *op);
/* A contiguous tensor of dtype ct holding t's values (t itself, retained,
 * when it already is one). */
dt_status dt_nn_contig(dt_tensor **out, const dt_tensor *t, dt_dtype ct);
/* Hands the result r (owned, stolen) to the caller's *out as `dtype`:
 * stored (or cast) when *out is NULL, else copied into *out after a shape
 * check. */
dt_status dt_nn_deliver(dt_tensor **out, dt_tensor *r, dt_dtype dtype,
                        const char *op);
/* torch's out= rule: no autograd through a caller-provided output. */
dt_status dt_nn_check_out(dt_tensor *const *out, bool recording,
                          const char *op);
/* torch's error for a tensor argument it does not differentiate. */
dt_status dt_nn_no_grad_arg(const dt_tensor *t, const char *fn,
                            const char *arg);
/* Writes "[2, 3]" (torch's list format) into buf. */
void dt_nn_shape_str(char *buf, size_t n, const int64_t *shape, int ndim);

/* The hot loops' clones, picked at load time (the build stays portable). */
#if defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define DT_NN_KERNEL                                                      \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3",      \
                                 "default")))
#else
#define DT_NN_KERNEL
#endif
#define DT_NN_INLINE static inline __attribute__((always_inline))

/* The tensor seen as (outer, n, inner) around `dim`. */
static inline void
dt_nn_split(const dt_tensor *t, int dim, int64_t *outer, int64_t *n,
            int64_t *inner)
{
    *outer = *inner = 1;
    *n = t->ndim ? t->shape[dim] : 1;
    for (int i = 0; i < dim; i++) {
        *outer *= t->shape[i];
    }
    for (int i = dim + 1; i < t->ndim; i++) {
        *inner *= t->shape[i];
    }
}

#endif /* DT_NN_LOSS_H */
