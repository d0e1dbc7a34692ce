/* optim_impl.h: what the optimizer kernels share (csrc/ops/optim.c and
 * optim_avx2.c); not part of the API.
 *
 * The per-element math repeats ATen's, op for op, including where ATen's
 * CPU kernels fuse a multiply and an add into one rounding on FMA
 * hardware (add with alpha, lerp, addcmul) and where they don't (mul,
 * div, addcdiv). The loops are compiled with fp-contract off so that GCC
 * fuses nothing else, and pick their fused or plain flavour at run time,
 * as ATen picks its CPU capability.
 */
#ifndef DT_OPS_OPTIM_IMPL_H
#define DT_OPS_OPTIM_IMPL_H

#include "../dt_impl.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define OPTIM_X86 1
/* the fused flavour: AVX2 + FMA (+ F16C for half conversions) */
#define OPTIM_FMA_ATTR                                                    \
    __attribute__((target("avx2,fma,f16c"), optimize("fp-contract=off")))
#define OPTIM_BASE_ATTR __attribute__((optimize("fp-contract=off")))
#else
#define OPTIM_X86 0
#define OPTIM_BASE_ATTR
#endif

/* SGD's per-step constants (computed in double; see sgd.py). */
typedef struct dt_optim_sgd_consts {
    double neg_lr;     /* -lr */
    double momentum;
    double damp1;      /* 1 - dampening */
    double wd;
    bool maximize, has_wd, has_mom, first, nesterov;
} dt_optim_sgd_consts;

/* Adam's per-step constants, each computed in double as adam.py computes
 * its Python floats; loops cast them to their compute type. */
typedef struct dt_optim_adam_consts {
    double decay;      /* AdamW: 1 - lr * weight_decay */
    double wd;         /* Adam: L2 weight decay */
    double w1;         /* lerp weight 1 - beta1 */
    double beta2;
    double w2;         /* 1 - beta2 */
    double bc2_sqrt;   /* (1 - beta2 ** step) ** 0.5 */
    double eps;
    double neg_step;   /* -lr / (1 - beta1 ** step) */
    bool maximize, l2, decoupled, amsgrad;
} dt_optim_adam_consts;

#if OPTIM_X86
/* Hand-vectorised AVX2 + FMA loops for the four floating dtypes (GCC 12
 * vectorises neither sqrt under -fmath-errno nor _Float16 conversions).
 * They do whole vectors and return how many elements that was (0 for
 * other dtypes); the caller finishes the tail with the scalar fused loop,
 * which does the same math lane for lane. */
int64_t dt_optim_sgd_avx2(dt_dtype dtype, void *p, const void *g, void *b,
                          int64_t n, const dt_optim_sgd_consts *k);
int64_t dt_optim_adam_avx2(dt_dtype dtype, void *p, const void *g, void *m,
                           void *v, void *x, int64_t n,
                           const dt_optim_adam_consts *k);
#endif

#endif /* DT_OPS_OPTIM_IMPL_H */
