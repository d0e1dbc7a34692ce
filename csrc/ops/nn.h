/* nn.h: neural-network layers on the CPU, forward and backward, with
 * PyTorch's semantics (torch.nn.functional):
 *
 *   nn_linear.c     linear, and the GEMM/dtype helpers the others share
 *   nn_conv.c       conv2d (im2col + one GEMM per sample and group)
 *   nn_im2col.c     im2col / col2im
 *   nn_winograd.c   3x3 stride-1 conv2d by Winograd F(2x2, 3x3)
 *   nn_pool.c       max_pool2d, and the checks the pools share
 *   nn_avgpool.c    avg_pool2d
 *   nn_adaptive.c   adaptive_avg_pool2d
 *   nn_embedding.c  embedding
 *   nn_dropout.c    dropout (Philox, the default generator)
 *
 * dt_<op>_forward is the pure kernel; dt_<op> is the autograd entry point
 * the Python glue calls (it records <Op>Backward when an input requires
 * grad). Outputs follow dt.h's rule (*out NULL allocates). float16 and
 * bfloat16 compute in float32; integer dtypes (where PyTorch allows them)
 * compute in int64 with wrap-around, as PyTorch's integer kernels do.
 */
#ifndef DT_NN_H
#define DT_NN_H

#include "../autograd/autograd.h"
#include "../dt_impl.h"

/* Hot loops are compiled for AVX-512, AVX2 and baseline x86-64, picked
 * at load time (the build itself stays portable). */
#define DT_NNC_CLONES                                                     \
    __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3",      \
                                 "default")))

/* ---------------------------------------------------------------------- */
/* shared helpers (nn_linear.c)                                            */

/* The dtype a kernel computes in: float32/float64 themselves, float16 and
 * bfloat16 in float32, integers in int64. bool is refused (naming op). */
dt_status dt_nnc_compute_dtype(dt_dtype *cdt, dt_dtype dtype,
                               const char *op);
/* A contiguous tensor holding t's values in dtype cdt (new reference;
 * t itself when it already is one). */
dt_status dt_nnc_prep(dt_tensor **out, const dt_tensor *t, dt_dtype cdt);
/* Hands a result computed in its compute dtype to the caller: casts it to
 * `dtype` and delivers it into *out (allocated or given). Steals res. */
dt_status dt_nnc_deliver(dt_tensor **out, dt_tensor *res, dt_dtype dtype,
                         const char *op);
/* Row-major C (M, N) = op(A) (M, K) @ op(B) (K, N) (+ C when accumulate),
 * op = transpose when ta/tb. cdt: float32, float64 or int64. */
void dt_nnc_gemm(dt_dtype cdt, bool ta, bool tb, int64_t M, int64_t N,
                 int64_t K, const void *A, int64_t lda, const void *B,
                 int64_t ldb, bool accumulate, void *C, int64_t ldc);

/* Sums of n contiguous values, vectorised, accumulated in double. */
double dt_nnc_sum_f32(const float *p, int64_t n);
double dt_nnc_sum_f64(const double *p, int64_t n);

/* When an input requires grad: records `name` with backward fn as the
 * grad_fn of *out and saves save[0..nsave) (NULL entries allowed). On
 * failure releases *out. *node (may be NULL) gets the node, or NULL when
 * nothing was recorded. */
dt_status dt_nnc_record(dt_tensor **out, dt_node **node, const char *name,
                        dt_backward_fn fn, const dt_tensor *const *in,
                        int nin, const dt_tensor *const *save, int nsave);

/* ---------------------------------------------------------------------- */
/* im2col (nn_im2col.c)                                                    */

/* One image's geometry: C channels of H x W, a kh x kw kernel with its
 * stride, padding and dilation, and the output size. */
typedef struct dt_nnc_geom {
    int64_t C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, OH, OW;
} dt_nnc_geom;

/* cols (C * kh * kw, OH * OW) from img (C, H, W); padding reads zero. */
void dt_nnc_im2col(dt_dtype cdt, void *cols, const void *img,
                   const dt_nnc_geom *g);
/* img (C, H, W) += the columns scattered back (float32/float64). cols is
 * scratch: the entries that fall on padding are zeroed. */
void dt_nnc_col2im(dt_dtype cdt, void *img, void *cols,
                   const dt_nnc_geom *g);

/* ---------------------------------------------------------------------- */
/* Winograd F(2x2, 3x3) for 3x3 stride-1 convolutions (nn_winograd.c)     */

/* Whether conv2d with this geometry (C input, O output channels) takes
 * the Winograd path: float32/float64, 3x3, stride and dilation 1, one
 * group, padding <= 2, and enough channels for it to pay off. */
bool dt_nnc_winograd_ok(const dt_nnc_geom *g, int64_t C, int64_t O,
                        int64_t groups, dt_dtype cdt);
/* out (N, O, OH, OW) = conv2d(x (N, C, H, W), w (O, C, 3, 3)) + bias
 * (O, or NULL); all contiguous in cdt. */
dt_status dt_nnc_winograd_forward(dt_dtype cdt, void *out, const void *x,
                                  const void *w, const void *bias,
                                  int64_t N, int64_t C, int64_t O,
                                  const dt_nnc_geom *g);
/* gx (N, C, H, W) = the input gradient for gy (N, O, OH, OW) (written,
 * not accumulated). */
dt_status dt_nnc_winograd_grad_input(dt_dtype cdt, void *gx, const void *gy,
                                     const void *w, int64_t N, int64_t C,
                                     int64_t O, const dt_nnc_geom *g);
/* gw (O, C, 3, 3) = the weight gradient (written, not accumulated). */
dt_status dt_nnc_winograd_grad_weight(dt_dtype cdt, void *gw,
                                      const void *gy, const void *x,
                                      int64_t N, int64_t C, int64_t O,
                                      const dt_nnc_geom *g);

/* ---------------------------------------------------------------------- */
/* pooling helpers (nn_pool.c)                                             */

/* A pooling problem: P planes of H x W (C of them per sample), a window
 * with stride, padding and dilation, and the output size. */
typedef struct dt_nnc_pool {
    int64_t P, C, H, W, OH, OW, kh, kw, sh, sw, ph, pw, dh, dw;
} dt_nnc_pool;

/* "[2, 3, 4]" as PyTorch prints sizes in messages. */
void dt_nnc_size_list(char *buf, size_t n, const int64_t *shape, int ndim);
/* Fills P, C, H, W from a (N, C, H, W) or (C, H, W) shape; a zero size
 * other than N is an error, as in PyTorch. */
dt_status dt_nnc_pool_planes(dt_nnc_pool *a, const int64_t *shape, int ndim,
                             const char *op);
/* Checks a window (kernel, stride, padding, dilation pairs) and the input
 * shape like PyTorch's pool2d_shape_check, and fills a. */
dt_status dt_nnc_pool_setup(dt_nnc_pool *a, const int64_t *shape, int ndim,
                            const int64_t *kernel, const int64_t *stride,
                            const int64_t *padding, const int64_t *dilation,
                            bool ceil_mode, const char *op);
/* An empty tensor of shape[:-2] + (OH, OW). */
dt_status dt_nnc_pool_output(dt_tensor **res, const int64_t *shape,
                             int ndim, int64_t OH, int64_t OW,
                             dt_dtype dtype);

/* ---------------------------------------------------------------------- */
/* layers                                                                  */

/* input (..., in), weight (out, in), bias (out) or NULL -> (..., out) */
dt_status dt_linear_forward(dt_tensor **out, const dt_tensor *input,
                            const dt_tensor *weight, const dt_tensor *bias);
dt_status dt_linear(dt_tensor **out, const dt_tensor *input,
                    const dt_tensor *weight, const dt_tensor *bias);

/* input (N, C, H, W) or (C, H, W), weight (O, C / groups, kh, kw), bias
 * (O) or NULL. stride, padding, dilation: (h, w) pairs. */
dt_status dt_conv2d_forward(dt_tensor **out, const dt_tensor *input,
                            const dt_tensor *weight, const dt_tensor *bias,
                            const int64_t *stride, const int64_t *padding,
                            const int64_t *dilation, int64_t groups);
dt_status dt_conv2d(dt_tensor **out, const dt_tensor *input,
                    const dt_tensor *weight, const dt_tensor *bias,
                    const int64_t *stride, const int64_t *padding,
                    const int64_t *dilation, int64_t groups);

/* out and indices (int64, flat positions in each input plane). */
dt_status dt_max_pool2d_forward(dt_tensor **out, dt_tensor **indices,
                                const dt_tensor *input, const int64_t *kernel,
                                const int64_t *stride, const int64_t *padding,
                                const int64_t *dilation, bool ceil_mode);
dt_status dt_max_pool2d(dt_tensor **out, dt_tensor **indices,
                        const dt_tensor *input, const int64_t *kernel,
                        const int64_t *stride, const int64_t *padding,
                        const int64_t *dilation, bool ceil_mode);

/* divisor 0: none (count_include_pad decides). */
dt_status dt_avg_pool2d_forward(dt_tensor **out, const dt_tensor *input,
                                const int64_t *kernel, const int64_t *stride,
                                const int64_t *padding, bool ceil_mode,
                                bool count_include_pad, int64_t divisor);
dt_status dt_avg_pool2d(dt_tensor **out, const dt_tensor *input,
                        const int64_t *kernel, const int64_t *stride,
                        const int64_t *padding, bool ceil_mode,
                        bool count_include_pad, int64_t divisor);

dt_status dt_adaptive_avg_pool2d_forward(dt_tensor **out,
                                         const dt_tensor *input,
                                         const int64_t *size);
dt_status dt_adaptive_avg_pool2d(dt_tensor **out, const dt_tensor *input,
                                 const int64_t *size);

/* indices (any shape, int32/int64), weight (V, D) -> indices.shape + (D,).
 * padding_idx -1: none. */
dt_status dt_embedding_forward(dt_tensor **out, const dt_tensor *indices,
                               const dt_tensor *weight);
dt_status dt_embedding(dt_tensor **out, const dt_tensor *indices,
                       const dt_tensor *weight, int64_t padding_idx);

/* Training-mode dropout: out = input * mask / (1 - p), mask ~ Bernoulli
 * (1 - p) drawn from the default generator; *mask (uint8) may be NULL
 * when the caller does not want it. */
dt_status dt_dropout_forward(dt_tensor **out, dt_tensor **mask,
                             const dt_tensor *input, double p);
dt_status dt_dropout(dt_tensor **out, const dt_tensor *input, double p);

#endif /* DT_NN_H */
