"""The out-of-place collectives as autograd functions, as Horovod's: gradients flow
through ``allreduce``, ``grouped_allreduce``, ``allgather`` and ``broadcast`` (e.g. a
contrastive loss over embeddings gathered from every rank).

Backward follows Horovod: an allreduce's gradient is the same allreduce of the incoming
gradients; allgather and broadcast average the incoming gradients over ranks, then
allgather keeps this rank's rows and broadcast keeps them on the root only (zeros
elsewhere). Every backward collective is negotiated like the forward one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from hpcsuite.core.errors import HpcsuiteError
from hpcsuite.train import mpi_ops, ops


def _compressed(tensor: torch.Tensor, compression: Any) -> tuple[torch.Tensor, Any]:
    return compression.compress(tensor) if compression is not None else (tensor, None)


def _decompressed(tensor: torch.Tensor, ctx: Any, compression: Any) -> torch.Tensor:
    return compression.decompress(tensor, ctx) if compression is not None else tensor


def _gradient_op(op: str) -> str:
    if op not in (ops.Sum, ops.Average):
        raise HpcsuiteError(
            f"an allreduce with op {op!r} has no gradient here; use hvd.Sum or hvd.Average"
        )
    return op


class _Allreduce(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, tensor: torch.Tensor, op: str, name: str | None, pre: float, post: float
    ) -> torch.Tensor:
        ctx.op, ctx.name, ctx.scales = op, name, (pre, post)
        return mpi_ops.allreduce_(tensor.detach().clone(), None, name, op, pre, post)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        op = _gradient_op(ctx.op)
        out = mpi_ops.allreduce_(
            grad.contiguous().clone(), None, f"{ctx.name or 'tensor'}.grad", op, *ctx.scales
        )
        return out, None, None, None, None


def allreduce(
    tensor: torch.Tensor,
    average: bool | None = None,
    name: str | None = None,
    compression: Any = None,
    op: str | None = None,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
) -> torch.Tensor:
    """Reduce a copy of ``tensor`` over ranks (``op`` ``Average`` by default; ``Sum``, ``Min``,
    ``Max``, ``Product``), scaled by ``prescale_factor`` before and ``postscale_factor``
    after, sent as ``compression`` makes it. Differentiable for sums and averages."""
    try:
        op = mpi_ops._resolve(op, average)
    except (
        ValueError,
        NotImplementedError,
    ):  # refused: fails on every rank, through the negotiation
        return mpi_ops.allreduce_(
            tensor.detach().clone(), average, name, op, prescale_factor, postscale_factor
        )
    wire, ctx = _compressed(tensor, compression)
    return _decompressed(
        _Allreduce.apply(wire, op, name, prescale_factor, postscale_factor), ctx, compression
    )


class _GroupedAllreduce(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, op: str, name: str | None, pre: float, post: float, *tensors: torch.Tensor
    ) -> tuple:
        ctx.op, ctx.name, ctx.scales = op, name, (pre, post)
        return tuple(
            mpi_ops.grouped_allreduce_(
                [t.detach().clone() for t in tensors], None, name, op, pre, post
            )
        )

    @staticmethod
    def backward(ctx: Any, *grads: torch.Tensor) -> tuple[Any, ...]:
        op = _gradient_op(ctx.op)
        out = mpi_ops.grouped_allreduce_(
            [g.contiguous().clone() for g in grads],
            None,
            f"{ctx.name or 'group'}.grad",
            op,
            *ctx.scales,
        )
        return (None, None, None, None, *out)


def grouped_allreduce(
    tensors: Sequence[torch.Tensor],
    average: bool | None = None,
    name: str | None = None,
    compression: Any = None,
    op: str | None = None,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
) -> list[torch.Tensor]:
    """Reduced copies of several tensors, one fused reduction per dtype and device
    (arguments as :func:`allreduce`). Differentiable for sums and averages."""
    try:
        op = mpi_ops._resolve(op, average)
    except (
        ValueError,
        NotImplementedError,
    ):  # refused: fails on every rank, through the negotiation
        return mpi_ops.grouped_allreduce_(
            [t.detach().clone() for t in tensors],
            average,
            name,
            op,
            prescale_factor,
            postscale_factor,
        )
    pairs = [_compressed(t, compression) for t in tensors]
    outs = _GroupedAllreduce.apply(
        op, name, prescale_factor, postscale_factor, *[w for w, _ in pairs]
    )
    return [_decompressed(o, c, compression) for o, (_, c) in zip(outs, pairs)]


class _Allgather(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, name: str | None) -> torch.Tensor:
        out, counts = mpi_ops.allgather_counts(tensor.detach(), name)
        ctx.name, ctx.offset, ctx.rows = name, sum(counts[: ops.rank()]), int(tensor.shape[0])
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        total = mpi_ops.allreduce_(
            grad.contiguous().clone(), None, f"{ctx.name or 'tensor'}.grad", ops.Average
        )
        return total.narrow(0, ctx.offset, ctx.rows), None


def allgather(tensor: torch.Tensor, name: str | None = None) -> torch.Tensor:
    """Every rank's ``tensor`` concatenated along dimension 0 (first dimensions may differ).
    Differentiable: this rank's rows of the gradient, averaged over ranks."""
    return _Allgather.apply(tensor, name)


class _Broadcast(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor, root_rank: int, name: str | None) -> torch.Tensor:
        ctx.root, ctx.name = root_rank, name
        return mpi_ops.broadcast_(tensor.detach().clone(), root_rank, name)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        total = mpi_ops.allreduce_(
            grad.contiguous().clone(), None, f"{ctx.name or 'tensor'}.grad", ops.Average
        )
        if ops.rank() != ctx.root:
            total.zero_()
        return total, None, None


def broadcast(tensor: torch.Tensor, root_rank: int = 0, name: str | None = None) -> torch.Tensor:
    """``root_rank``'s ``tensor`` as a new tensor on every rank. Differentiable: the root
    receives the gradients averaged over ranks, the others zeros."""
    return _Broadcast.apply(tensor, root_rank, name)


class _Alltoall(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, tensor: torch.Tensor, splits: Any, name: str | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, received = mpi_ops.alltoall_splits(tensor.detach(), splits, name)
        ctx.received, ctx.name = received, name
        counts = torch.tensor(received, dtype=torch.int32)
        ctx.mark_non_differentiable(counts)
        return out, counts

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _counts: Any) -> tuple[Any, ...]:
        back, _ = mpi_ops.alltoall_splits(
            grad.contiguous(), ctx.received, f"{ctx.name or 'tensor'}.grad"
        )
        return back, None, None


def alltoall(tensor: torch.Tensor, splits: Any = None, name: str | None = None) -> Any:
    """Send ``splits[r]`` rows of ``tensor`` (in order) to rank ``r``; returns the rows received
    in rank order, and - when ``splits`` is given - how many came from each rank (Horovod's
    return convention). Differentiable: gradients travel back the same way."""
    out, counts = _Alltoall.apply(tensor, splits, name)
    return out if splits is None else (out, counts)


class _Reducescatter(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, tensor: torch.Tensor, op: str, name: str | None, pre: float, post: float
    ) -> torch.Tensor:
        ctx.op, ctx.name, ctx.scale = op, name, pre * post
        return mpi_ops.reducescatter_(tensor.detach(), op, name, pre, post)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        grad = grad * (ctx.scale * (ops.size() if ctx.op == ops.Sum else 1))  # Horovod's scaling
        back, _ = mpi_ops.allgather_counts(grad.contiguous(), f"{ctx.name or 'tensor'}.grad")
        return back, None, None, None, None


def reducescatter(
    tensor: torch.Tensor,
    name: str | None = None,
    compression: Any = None,
    op: str = ops.Average,
    prescale_factor: float = 1.0,
    postscale_factor: float = 1.0,
) -> torch.Tensor:
    """Reduce ``tensor`` over ranks (``Average`` or ``Sum``) and keep this rank's block of rows
    (the first dimension split evenly, the first ranks one more). Differentiable, with
    Horovod's backward: the gradients allgathered (times the rank count for ``Sum``)."""
    wire, ctx = _compressed(tensor, compression)
    return _decompressed(
        _Reducescatter.apply(wire, op, name, prescale_factor, postscale_factor), ctx, compression
    )
