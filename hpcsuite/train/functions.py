"""Making ranks identical: parameters, optimizer state and Python objects from a root rank."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch

from hpcsuite.train import mpi_ops, ops


def _named(params: Any) -> list[tuple[str, torch.Tensor]]:
    if isinstance(params, Mapping):
        items = list(params.items())
    else:
        items = list(params)
        if items and not isinstance(items[0], tuple):
            items = [(f"param.{i}", p) for i, p in enumerate(items)]
    return [(str(n), p) for n, p in items if isinstance(p, torch.Tensor)]


def broadcast_parameters(params: Mapping[str, torch.Tensor] | Iterable[Any], root_rank: int = 0) -> None:
    """Overwrite every rank's parameters (``state_dict()`` or ``named_parameters()``) with the root's.

    All tensors of a dtype travel in one fused buffer, so a model costs a few broadcasts,
    not one per tensor.
    """
    named = _named(params)
    mpi_ops.negotiate("broadcast_parameters", named, root_rank)
    by_dtype: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for _, t in named:
        by_dtype.setdefault((t.dtype, t.device), []).append(t)
    for (dtype, device), tensors in by_dtype.items():
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        mpi_ops.broadcast_(flat, root_rank, name=f"fused {dtype} parameters")
        offset = 0
        with torch.no_grad():
            for t in tensors:
                n = t.numel()
                t.copy_(flat[offset:offset + n].view_as(t))
                offset += n


def broadcast_optimizer_state(optimizer: torch.optim.Optimizer, root_rank: int = 0) -> None:
    """Overwrite every rank's optimizer state (step counts, momenta, hyper-parameters) with the root's."""
    state = optimizer.state_dict() if ops.rank() == root_rank else None
    state = mpi_ops.broadcast_object(state, root_rank, name="optimizer state")
    if ops.rank() != root_rank:
        optimizer.load_state_dict(state)


def broadcast_object(obj: Any, root_rank: int = 0, name: str | None = None) -> Any:
    """The root's picklable object on every rank."""
    return mpi_ops.broadcast_object(obj, root_rank, name)


def allgather_object(obj: Any, name: str | None = None) -> list[Any]:
    """Every rank's picklable object, in rank order."""
    return mpi_ops.allgather_object(obj, name)
