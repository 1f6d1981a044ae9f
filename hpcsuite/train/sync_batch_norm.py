"""``hvd.SyncBatchNorm``: batch normalization with statistics over the whole global batch.

In training, each rank sums its per-channel ``x`` and ``x**2`` (in float64) and the
count; one allreduce of these gives every rank the global mean and variance, so the
output equals ``BatchNorm`` on the concatenated batch. The allreduce is the autograd
one (:mod:`hpcsuite.train.autograd`), whose backward sums every rank's gradient of the
statistics: the input gradients are those of the one-process layer too. In evaluation,
and on one rank, it is ``torch.nn.functional.batch_norm`` with the running statistics.
"""

from __future__ import annotations

from typing import Any

import torch

from hpcsuite.train import autograd, ops
from hpcsuite.train.exceptions import ArgumentError


class SyncBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """Drop-in for ``torch.nn.BatchNorm1d/2d/3d`` that normalizes over all ranks' samples
    (Horovod's and torch's ``SyncBatchNorm``); input ``(N, C, ...)``."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ArgumentError(
                f"SyncBatchNorm expects (N, C, ...) input; got {x.dim()}-D of shape"
                f" {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input_dim(x)
        if not self.training or ops.size() == 1:
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        channels = x.shape[1]
        wide = x.double()
        count = torch.full(
            (1,), float(x.numel() // max(channels, 1)), dtype=torch.float64, device=x.device
        )
        stats = autograd.allreduce(
            torch.cat([wide.sum(dims), (wide * wide).sum(dims), count]),
            op=ops.Sum,
            name="SyncBatchNorm statistics",
        )
        total = stats[-1]
        if total.item() <= 1:
            raise ArgumentError(
                "SyncBatchNorm needs more than one value per channel over all ranks; got "
                f"{int(total.item())}"
            )
        mean = stats[:channels] / total
        var = stats[channels : 2 * channels] / total - mean * mean
        if self.track_running_stats:
            self._update_running(mean.detach(), var.detach() * total / (total - 1))
        shape = [1, channels] + [1] * (x.dim() - 2)
        y = (wide - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        y = y.to(x.dtype)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y

    def _update_running(self, mean: torch.Tensor, unbiased_var: torch.Tensor) -> None:
        """As ``_BatchNorm``: exponential average, or cumulative when ``momentum`` is None."""
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            factor = (
                1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            )
            self.running_mean.mul_(1 - factor).add_(mean.to(self.running_mean.dtype), alpha=factor)
            self.running_var.mul_(1 - factor).add_(
                unbiased_var.to(self.running_var.dtype), alpha=factor
            )

    @classmethod
    def convert_sync_batchnorm(cls, module: Any) -> Any:
        """``module`` with each ``BatchNorm*d`` replaced by a ``SyncBatchNorm`` with its state."""
        out = module
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(
            module, cls
        ):
            out = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
            )
            if module.affine:
                with torch.no_grad():
                    out.weight.copy_(module.weight)
                    out.bias.copy_(module.bias)
            if module.track_running_stats:
                out.running_mean, out.running_var = module.running_mean, module.running_var
                out.num_batches_tracked = module.num_batches_tracked
            state = next(iter([*module.parameters(), *module.buffers()]), None)
            if state is not None:
                out = out.to(state.device)
        for name, child in module.named_children():
            out.add_module(name, cls.convert_sync_batchnorm(child))
        return out
