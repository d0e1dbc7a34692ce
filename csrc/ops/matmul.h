/* matmul.h: matrix products on the CPU through OpenBLAS's CBLAS.
 *
 * Letters: a is (..., M, K), b is (..., K, N), the result (..., M, N).
 * Both operands must have the same dtype (PyTorch does not promote here).
 * float32/float64 go to sgemm/dgemm (gemv when M or N is 1), float16 and
 * bfloat16 compute in float32 and round, integer dtypes use a plain loop
 * that wraps like PyTorch's; bool is not supported.
 *
 * dt_<op>_forward never records autograd history; dt_<op> (what the
 * Python glue calls) runs it and records the backward when an input
 * requires grad (matmul_backward.c).
 */
#ifndef DT_MATMUL_H
#define DT_MATMUL_H

#include "../dt_impl.h"

/* torch.matmul: 1-D.1-D is a dot product, a 1-D operand gains a dim (M or
 * N = 1) that the result drops again, and batch dims broadcast. */
dt_status dt_matmul_forward(dt_tensor **out, const dt_tensor *a,
                            const dt_tensor *b);
/* (M, K) @ (K, N) */
dt_status dt_mm_forward(dt_tensor **out, const dt_tensor *a,
                        const dt_tensor *b);
/* (B, M, K) @ (B, K, N), no broadcasting */
dt_status dt_bmm_forward(dt_tensor **out, const dt_tensor *a,
                         const dt_tensor *b);
/* (M, K) @ (K,) */
dt_status dt_mv_forward(dt_tensor **out, const dt_tensor *a,
                        const dt_tensor *b);
/* (K,) . (K,) -> 0-dim */
dt_status dt_dot_forward(dt_tensor **out, const dt_tensor *a,
                         const dt_tensor *b);

/* The recording entry points (same arguments). */
dt_status dt_matmul(dt_tensor **out, const dt_tensor *a, const dt_tensor *b);
dt_status dt_mm(dt_tensor **out, const dt_tensor *a, const dt_tensor *b);
dt_status dt_bmm(dt_tensor **out, const dt_tensor *a, const dt_tensor *b);
dt_status dt_mv(dt_tensor **out, const dt_tensor *a, const dt_tensor *b);
dt_status dt_dot(dt_tensor **out, const dt_tensor *a, const dt_tensor *b);

/* The engine (matmul_gemm.c): c (B.., M, N) = a (B.., M, K) @ b (B.., K,
 * N), one dtype, batch dims already equal (a and b may be any strided
 * views, expanded ones included). c's rows must have unit stride; where
 * one of c's batch strides is 0, the products along that dim are summed
 * into the shared matrix (float16/bfloat16: c must be contiguous). */
dt_status dt_gemm_batched(dt_tensor *c, const dt_tensor *a,
                          const dt_tensor *b, const char *op);

/* Whether BLAS reads t's last two dims as they are (no copy). */
bool dt_gemm_readable(const dt_tensor *t);

/* OpenBLAS's thread pool size (benchmarks pin it to 1). */
void dt_blas_set_num_threads(int n);
int dt_blas_get_num_threads(void);

#endif /* DT_MATMUL_H */
