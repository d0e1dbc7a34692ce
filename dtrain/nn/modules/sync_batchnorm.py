"""SyncBatchNorm: batch norm whose training statistics span every rank of
a process group, as torch.nn.SyncBatchNorm.

Each rank normalises its own slice of the global batch with the mean and
variance of the whole batch: forward all-reduces per-channel [sum, sum of
squares] and the element count in one collective (ranks may hold uneven
or empty slices), backward all-reduces per-channel [sum dy, sum dy*xhat]
in one collective, so grad_input equals what BatchNorm on the
concatenated batch gives. grad_weight/grad_bias stay per-rank (the sum
over ranks is the full-batch gradient; DDP's all-reduce supplies it).
Outside training, with world size 1 or without a process group, it is
plain batch_norm.
"""
from ... import _C
from ..._dtypes import float32, float64
from ..._ops.index import cat
from ...autograd.function import Function
from .. import functional as F
from .normalization import _BatchNorm

__all__ = ["SyncBatchNorm"]


def _channel_view(t, ndim):
    """A per-channel (C,) tensor shaped (1, C, 1, ...) for broadcasting."""
    return t.reshape((1, t.shape[0]) + (1,) * (ndim - 2))


class _SyncBatchNormFunction(Function):

    @staticmethod
    def forward(ctx, input, weight, bias, running_mean, running_var, eps,
                momentum, process_group, world_size):
        from ... import distributed as dist
        c = input.shape[1]
        dims = (0,) + tuple(range(2, input.ndim))
        compute = float64 if input.dtype == float64 else float32
        # float64 sums: the variance E[x^2] - mean^2 must not cancel
        x64 = input.to(float64)
        stats = _C._full((2 * c + 1,), None, float64, "zeros")
        stats[:c] = x64.sum(dims)
        stats[c:2 * c] = (x64 * x64).sum(dims)
        stats[2 * c] = input.numel() // c
        del x64
        dist.all_reduce(stats, group=process_group)
        n = int(stats[2 * c].item())
        if n <= 1:
            raise ValueError(f"Expected more than 1 value per channel when "
                             f"training, got {n} over the process group "
                             f"(local input size {list(input.shape)})")
        mean = stats[:c] / n
        var = (stats[c:2 * c] / n - mean * mean).clamp(min=0)
        invstd = (var + eps).rsqrt().to(compute)
        if running_mean is not None:
            running_mean.copy_(running_mean * (1 - momentum) +
                               mean.to(running_mean.dtype) * momentum)
        if running_var is not None:
            unbiased = (var * (n / (n - 1))).to(running_var.dtype)
            running_var.copy_(running_var * (1 - momentum) +
                              unbiased * momentum)
        nd = input.ndim
        xhat = ((input.to(compute) - _channel_view(mean.to(compute), nd)) *
                _channel_view(invstd, nd))
        out = xhat
        if weight is not None:
            out = out * _channel_view(weight.to(compute), nd)
        if bias is not None:
            out = out + _channel_view(bias.to(compute), nd)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.count = n
        ctx.process_group = process_group
        return out.to(input.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        from ... import distributed as dist
        xhat, invstd, weight = ctx.saved_tensors
        nd = xhat.ndim
        c = xhat.shape[1]
        dims = (0,) + tuple(range(2, nd))
        dy = grad_output.to(xhat.dtype)
        sum_dy = dy.sum(dims)
        sum_dy_xhat = (dy * xhat).sum(dims)
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            both = cat([sum_dy, sum_dy_xhat], 0)
            dist.all_reduce(both, group=ctx.process_group)
            mean_dy = _channel_view(both[:c] / ctx.count, nd)
            mean_dy_xhat = _channel_view(both[c:] / ctx.count, nd)
            scale = invstd if weight is None else invstd * weight.to(
                invstd.dtype)
            grad_input = ((dy - mean_dy - xhat * mean_dy_xhat) *
                          _channel_view(scale, nd))
        if weight is not None and ctx.needs_input_grad[1]:
            grad_weight = sum_dy_xhat       # this rank's share
        if ctx.needs_input_grad[2]:
            grad_bias = sum_dy
        return (grad_input, grad_weight, grad_bias, None, None, None, None,
                None, None)


class SyncBatchNorm(_BatchNorm):
    """BatchNorm over (N, C, +) inputs whose training statistics cover the
    whole batch across the ranks of process_group (default: the world)."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, process_group=None, device=None,
                 dtype=None):
        super().__init__(num_features, eps, momentum, affine,
                         track_running_stats, device, dtype)
        self.process_group = process_group

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got "
                             f"{input.dim()}D input)")

    def _sync_world_size(self, bn_training):
        """The group's size when statistics must be synchronised, else 0."""
        from ... import distributed as dist
        if not (bn_training and self.training and dist.is_initialized()):
            return 0
        world = dist.get_world_size(self.process_group)
        return world if world > 1 else 0

    def forward(self, input):
        self._check_input_dim(input)
        if input.shape[1] == 0:
            raise ValueError("SyncBatchNorm number of input channels should "
                             "be non-zero")
        factor, bn_training, running_mean, running_var = self._step_stats()
        world = self._sync_world_size(bn_training)
        if not world:
            return F.batch_norm(input, running_mean, running_var,
                                self.weight, self.bias, bn_training, factor,
                                self.eps)
        return _SyncBatchNormFunction.apply(
            input, self.weight, self.bias, running_mean, running_var,
            self.eps, factor, self.process_group, world)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """Returns module with every BatchNorm layer replaced by a
        SyncBatchNorm sharing its parameters and buffers (so
        requires_grad and the state carry over), as torch does."""
        out = module
        if isinstance(module, _BatchNorm):
            out = cls(module.num_features, module.eps, module.momentum,
                      module.affine, module.track_running_stats,
                      process_group)
            if module.affine:
                out.weight = module.weight
                out.bias = module.bias
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
            out.training = module.training
            if hasattr(module, "qconfig"):
                out.qconfig = module.qconfig
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child,
                                                            process_group))
        return out
