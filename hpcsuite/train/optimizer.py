"""``DistributedOptimizer``: average gradients over ranks before each optimizer step.

As Horovod's, it subclasses the wrapped optimizer's own class, so learning-rate
schedulers and ``isinstance`` checks keep working. Gradients are reduced with tensor
fusion: the gradients of a dtype are gathered in one flat buffer (and left there as
views, so backward can write straight into it when ``zero_grad(set_to_none=False)``),
which is reduced in place in chunks of at most ``fusion_bytes`` -
``ceil(gradient bytes / fusion_bytes)`` MPI calls per dtype and step, whatever the
number of tensors. On one rank nothing is exchanged. One negotiation per step checks
that all ranks reduce the same gradients (see :mod:`hpcsuite.train.ops`).

The reduction runs when ``step()`` (or ``synchronize()``) is called, after backward.
Overlapping it with backward (reductions started from gradient hooks) is not built
yet: MPI's non-blocking reductions make no progress without MPI calls, and which of a
progress thread, polling or this synchronous scheme is fastest has still to be measured.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Any

import torch

from hpcsuite.core.errors import HpcsuiteError
from hpcsuite.train import ops
from hpcsuite.train.compression import Compression

#: Default fusion buffer: the largest chunk one MPI reduction carries.
FUSION_BYTES = 64 << 20


class _DistributedOptimizer(torch.optim.Optimizer):
    def __init__(self, params: Any, named_parameters: Iterable[tuple[str, torch.Tensor]] | None,
                 compression: Any, backward_passes_per_step: int, op: str, fusion_bytes: int) -> None:
        super(self.__class__, self).__init__(params)
        if backward_passes_per_step < 1:
            raise HpcsuiteError(f"backward_passes_per_step={backward_passes_per_step!r} must be at least 1")
        if fusion_bytes < 64:
            raise HpcsuiteError(f"fusion_bytes={fusion_bytes!r} is too small; use at least 64 (bytes)")
        if op not in (ops.Average, ops.Sum):
            raise HpcsuiteError(f"unknown reduction op {op!r}; use hvd.Average or hvd.Sum")
        self._compression = compression
        self._passes_per_step = backward_passes_per_step
        self._op = op
        self._fusion_bytes = fusion_bytes
        params_in_order = [p for g in self.param_groups for p in g["params"]]
        if named_parameters is not None:
            names = {id(p): n for n, p in named_parameters}
            missing = [i for i, p in enumerate(params_in_order) if id(p) not in names]
            if missing:
                raise HpcsuiteError(f"named_parameters misses {len(missing)} of the optimizer's parameters; "
                                    "pass model.named_parameters() of the model the optimizer trains")
        else:
            names = {id(p): f"param.{i}" for i, p in enumerate(params_in_order)}
        self._names = names
        self._passes: dict[int, int] = {}
        self._synchronized = False
        self._skip = False
        # Gradients live in one flat buffer per dtype and device (as DDP's
        # gradient_as_bucket_view): backward accumulates straight into it, and the
        # reduction needs no packing or unpacking copies.
        trained = [p for p in params_in_order if p.requires_grad]
        self._buckets: list[tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]] = []
        by_kind: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for p in trained:
            by_kind.setdefault((p.dtype, p.device), []).append(p)
            p.register_post_accumulate_grad_hook(self._count_pass)
        for (dtype, device), params in by_kind.items():
            flat = torch.zeros(sum(p.numel() for p in params), dtype=dtype, device=device)
            views, offset = [], 0
            for p in params:
                view = flat[offset:offset + p.numel()].view_as(p)
                if p.grad is not None:
                    view.copy_(p.grad)
                p.grad = view
                views.append(view)
                offset += p.numel()
            self._buckets.append((flat, params, views))

    def _count_pass(self, p: torch.Tensor) -> None:
        self._passes[id(p)] = self._passes.get(id(p), 0) + 1

    def synchronize(self) -> None:
        """Reduce the gradients now (e.g. before clipping them); ``step()`` then skips it
        inside :meth:`skip_synchronize`."""
        passes = max(self._passes.values(), default=0)
        if passes != self._passes_per_step:
            raise HpcsuiteError(f"{passes} backward passes before the step, but backward_passes_per_step="
                                f"{self._passes_per_step}: call step() after exactly that many")
        ops.negotiate("gradients", [(self._names[id(p)], p) for _, params, _ in self._buckets for p in params],
                      (self._op, self._compression.__name__, self._passes_per_step))
        size = ops.size()
        scale = self._passes_per_step * (size if self._op == ops.Average else 1)
        with torch.no_grad():
            for flat, params, views in self._buckets:
                if size == 1:  # nothing to exchange: leave the gradients where backward put them
                    if self._passes_per_step > 1:
                        for p in params:
                            if p.grad is not None:
                                p.grad.div_(self._passes_per_step)
                    continue
                for p, view in zip(params, views):
                    if p.grad is None:  # unused this step: contributes zeros, receives the average
                        view.zero_()
                        p.grad = view
                    elif p.grad.data_ptr() != view.data_ptr():  # replaced (model.zero_grad())
                        view.copy_(p.grad)
                        p.grad = view
                if scale != 1:
                    flat.div_(scale)  # before compressing: a sum of many can overflow float16
                wire, ctx = self._compression.compress(flat)
                wire = wire.contiguous()
                chunk = max(1, self._fusion_bytes // wire.element_size())
                with ops._watchdog(f"gradient reduction ({len(params)} tensors)"):
                    for start in range(0, wire.numel(), chunk):
                        ops._allreduce_inplace(wire[start:start + chunk], ops.Sum)
                if wire.data_ptr() != flat.data_ptr():
                    flat.copy_(self._compression.decompress(wire, ctx))
        self._synchronized = True

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: to None (the default, as torch), or to zero in the fused buffers.

        ``None`` is cheaper: backward then writes fresh gradients instead of adding to
        zeroed ones, and they are copied into the fused buffer only when there are
        other ranks to exchange with.
        """
        for flat, params, views in self._buckets:
            if set_to_none:
                for p in params:
                    p.grad = None
            else:
                flat.zero_()
                for p, view in zip(params, views):
                    p.grad = view

    @contextmanager
    def skip_synchronize(self):
        """Within this block ``step()`` does not reduce (after a manual ``synchronize()``)."""
        self._skip = True
        try:
            yield
        finally:
            self._skip = False

    def step(self, closure: Any = None) -> Any:
        if not self._synchronized:
            if self._skip:
                raise HpcsuiteError("step() inside skip_synchronize() without synchronize() first: "
                                    "the gradients would not be reduced")
            self.synchronize()
        self._synchronized = False
        self._passes.clear()
        return super(self.__class__, self).step(closure)


def DistributedOptimizer(optimizer: torch.optim.Optimizer, named_parameters: Any = None,
                         compression: Any = Compression.none, backward_passes_per_step: int = 1,
                         op: str = ops.Average, fusion_bytes: int = FUSION_BYTES) -> torch.optim.Optimizer:
    """Wrap ``optimizer`` so that ``step()`` averages (or sums) gradients over ranks first.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer to wrap (its parameter groups and hyper-parameters are kept).
    named_parameters : iterable of (str, Tensor), optional
        ``model.named_parameters()``: names in error messages and the negotiation.
    compression : Compression.none, Compression.fp16 or Compression.bf16
    backward_passes_per_step : int
        Backward passes accumulated (and averaged) before each reduction.
    op : hvd.Average or hvd.Sum
    fusion_bytes : int
        Largest chunk of gradients one MPI reduction carries.
    """
    cls = type(optimizer.__class__.__name__, (optimizer.__class__,), dict(_DistributedOptimizer.__dict__))
    wrapped = cls(optimizer.param_groups, named_parameters, compression, backward_passes_per_step, op, fusion_bytes)
    # Keep what the optimizer already holds (momenta, step counts - e.g. from a checkpoint):
    # re-initializing the class with the parameter groups alone would drop it.
    wrapped.load_state_dict(optimizer.state_dict())
    return wrapped


def calls_per_step(grad_bytes: int, fusion_bytes: int = FUSION_BYTES) -> int:
    """The reductions one step needs for one dtype's gradients. Pure."""
    return max(1, math.ceil(grad_bytes / fusion_bytes))
