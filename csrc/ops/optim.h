/* optim.h: fused optimizer updates (csrc/ops/optim.c).
 *
 * Each call updates one parameter in place with one pass over its elements:
 * no temporaries, no per-element Python. The math follows PyTorch's
 * single-tensor ("for-loop") implementations op by op (torch/optim/sgd.py,
 * adam.py), so results agree with torch to rounding. float32 and float64
 * compute in their own type; float16/bfloat16 compute in float32 and round
 * once per stored value. Every tensor must be contiguous and have the
 * param's shape and dtype; each written tensor's version is bumped.
 */
#ifndef DT_OPS_OPTIM_H
#define DT_OPS_OPTIM_H

#include "../dt.h"

typedef struct dt_sgd_hparams {
    double lr;
    double momentum;       /* 0: no momentum buffer */
    double dampening;
    double weight_decay;   /* L2 penalty added to the gradient */
    bool nesterov;
    bool maximize;
} dt_sgd_hparams;

/* momentum_buf: NULL when h->momentum == 0. first_step: the buffer holds
 * garbage and is set to the (decayed) gradient, as torch's
 * `buf = grad.clone()`. */
dt_status dt_sgd_step(dt_tensor *param, const dt_tensor *grad,
                      dt_tensor *momentum_buf, const dt_sgd_hparams *h,
                      bool first_step);

typedef struct dt_adam_hparams {
    double lr;
    double beta1;
    double beta2;
    double eps;
    double weight_decay;
    bool decoupled;        /* AdamW: param *= 1 - lr * weight_decay */
    bool amsgrad;
    bool maximize;
} dt_adam_hparams;

/* step: the one-element floating tensor state["step"]; it is incremented
 * first and its new value drives the bias corrections. max_exp_avg_sq:
 * NULL unless h->amsgrad. */
dt_status dt_adam_step(dt_tensor *param, const dt_tensor *grad,
                       dt_tensor *exp_avg, dt_tensor *exp_avg_sq,
                       dt_tensor *max_exp_avg_sq, dt_tensor *step,
                       const dt_adam_hparams *h);

/* Whether updates run the fused-multiply-add flavour (as ATen does on
 * AVX2/FMA CPUs) rather than the plain one (other CPUs). Tests may force
 * the plain one with dt_optim_set_flavour(0); -1 restores the default. */
bool dt_optim_fused(void);
void dt_optim_set_flavour(int mode);

#endif /* DT_OPS_OPTIM_H */
