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


def broadcast_parameters(
    params: Mapping[str, torch.Tensor] | Iterable[Any], root_rank: int = 0
) -> None:
    """Overwrite every rank's parameters (``state_dict()``/``named_parameters()``) with root's.

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
                t.copy_(flat[offset : offset + n].view_as(t))
                offset += n


def broadcast_optimizer_state(
    optimizer: torch.optim.Optimizer, root_rank: int = 0, model: Any = None, process_set: Any = None
) -> None:
    """Overwrite every rank's optimizer state (steps, momenta, hyper-parameters) with root's.

    As Horovod's, the state's tensors travel as tensors (one named broadcast each, all
    started in one negotiation round: no 2 GiB limit of a pickled message); only the
    structure and the hyper-parameters are pickled. Every rank ends with the root's
    state even where it had none yet (no step taken). ``model`` is accepted for Horovod's
    signature; the state is complete without it.
    """
    del model
    mpi_ops._no_process_set(process_set)
    root = ops.rank() == root_rank
    state_dict = optimizer.state_dict() if root else None
    tensors: list[torch.Tensor] = []

    def strip(value: Any) -> Any:  # tensors -> placeholders (their index, shape, dtype)
        if isinstance(value, torch.Tensor):
            tensors.append(value)
            return _Placeholder(len(tensors) - 1, tuple(value.shape), str(value.dtype))
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(strip(v) for v in value)
        return value

    skeleton = mpi_ops.broadcast_object(
        strip(state_dict) if root else None, root_rank, name="optimizer state structure"
    )
    params = [p for g in optimizer.param_groups for p in g["params"]]
    device_of = {
        i: p.device for i, p in enumerate(params)
    }  # state_dict keys state by parameter index
    received: dict[int, torch.Tensor] = {}

    def placeholders(value: Any, key: Any = None) -> None:
        if isinstance(value, _Placeholder):
            device = (
                device_of.get(key, torch.device("cpu"))
                if isinstance(key, int)
                else torch.device("cpu")
            )
            received[value.index] = (
                tensors[value.index]
                if root
                else torch.empty(
                    value.shape,
                    dtype=getattr(torch, value.dtype.removeprefix("torch.")),
                    device=device,
                )
            )
        elif isinstance(value, dict):
            for k, v in value.items():
                placeholders(v, k)
        elif isinstance(value, (list, tuple)):
            for v in value:
                placeholders(v, key)

    for pid, entry in skeleton["state"].items():
        placeholders(entry, pid)
    # Root's own tensors are sent from copies: the broadcast writes into its buffer too.
    handles = [
        mpi_ops.broadcast_async_(
            received[i].detach().clone() if root else received[i],
            root_rank,
            name=f"optimizer state tensor {i}",
        )
        for i in sorted(received)
    ]
    values = dict(zip(sorted(received), (mpi_ops.synchronize(h) for h in handles)))
    if root:
        return

    def fill(value: Any) -> Any:
        if isinstance(value, _Placeholder):
            return values[value.index]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(fill(v) for v in value)
        return value

    optimizer.load_state_dict(fill(skeleton))


class _Placeholder:
    """Where a tensor of the optimizer state goes (it travels as a tensor, not pickled)."""

    def __init__(self, index: int, shape: tuple[int, ...], dtype: str) -> None:
        self.index, self.shape, self.dtype = index, shape, dtype


def broadcast_object(obj: Any, root_rank: int = 0, name: str | None = None) -> Any:
    """The root's picklable object on every rank."""
    return mpi_ops.broadcast_object(obj, root_rank, name)


def allgather_object(obj: Any, name: str | None = None) -> list[Any]:
    """Every rank's picklable object, in rank order."""
    return mpi_ops.allgather_object(obj, name)
