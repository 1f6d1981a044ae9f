"""Horovod-style data-parallel training over MPI: ``import hpcsuite.train as hvd``.

Names and semantics follow ``horovod.torch``::

    import hpcsuite.train as hvd
    hvd.init()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01 * hvd.size())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters(),
                                         compression=hvd.Compression.fp16)

Launch with ``mpirun -n N python train.py`` or ``srun`` (or ``hvd.run(main, num_proc=N)``
from inside the script); no rendezvous, no torchrun. Where this differs from Horovod -
and what is out of scope (Adasum, process sets, elastic: each a clear
``NotImplementedError``) - is the README's compatibility table.

Modules: :mod:`~hpcsuite.train.mpi_ops` (Horovod's API), :mod:`~hpcsuite.train.negotiation`
(how ranks agree), :mod:`~hpcsuite.train.ops` (the engine), :mod:`~hpcsuite.train.optimizer`,
:mod:`~hpcsuite.train.autograd`, :mod:`~hpcsuite.train.functions`.
"""

from __future__ import annotations

import importlib
from typing import Any

# Every public name is imported on first use (PEP 562), not here: `python -m
# hpcsuite.train.mnist --help` and its usage errors then answer before torch and MPI
# load (seconds per rank), as every other module's do; `import hpcsuite.train as hvd`
# then `hvd.init()` works as in Horovod. Name -> (module, attribute; None: the module).
_NAMES: dict[str, tuple[str, str | None]] = {
    "Adasum": ("hpcsuite.train.ops", "Adasum"),
    "add_process_set": ("hpcsuite.train.mpi_ops", "add_process_set"),
    "allgather": ("hpcsuite.train.autograd", "allgather"),
    "allgather_async": ("hpcsuite.train.mpi_ops", "allgather_async"),
    "allgather_object": ("hpcsuite.train.functions", "allgather_object"),
    "allreduce": ("hpcsuite.train.autograd", "allreduce"),
    "allreduce_": ("hpcsuite.train.mpi_ops", "allreduce_"),
    "allreduce_async": ("hpcsuite.train.mpi_ops", "allreduce_async"),
    "allreduce_async_": ("hpcsuite.train.mpi_ops", "allreduce_async_"),
    "alltoall": ("hpcsuite.train.autograd", "alltoall"),
    "alltoall_async": ("hpcsuite.train.mpi_ops", "alltoall_async"),
    "Average": ("hpcsuite.train.ops", "Average"),
    "barrier": ("hpcsuite.train.mpi_ops", "barrier"),
    "broadcast": ("hpcsuite.train.autograd", "broadcast"),
    "broadcast_": ("hpcsuite.train.mpi_ops", "broadcast_"),
    "broadcast_async": ("hpcsuite.train.mpi_ops", "broadcast_async"),
    "broadcast_async_": ("hpcsuite.train.mpi_ops", "broadcast_async_"),
    "broadcast_object": ("hpcsuite.train.functions", "broadcast_object"),
    "broadcast_optimizer_state": ("hpcsuite.train.functions", "broadcast_optimizer_state"),
    "broadcast_parameters": ("hpcsuite.train.functions", "broadcast_parameters"),
    "ccl_built": ("hpcsuite.train.ops", "ccl_built"),
    "CollectiveMismatch": ("hpcsuite.train.exceptions", "CollectiveMismatch"),
    "Compression": ("hpcsuite.train.compression", "Compression"),
    "cross_rank": ("hpcsuite.train.ops", "cross_rank"),
    "cross_size": ("hpcsuite.train.ops", "cross_size"),
    "cuda_built": ("hpcsuite.train.ops", "cuda_built"),
    "ddl_built": ("hpcsuite.train.ops", "ddl_built"),
    "DistributedOptimizer": ("hpcsuite.train.optimizer", "DistributedOptimizer"),
    "elastic": ("hpcsuite.train.elastic", None),
    "global_process_set": ("hpcsuite.train.mpi_ops", "global_process_set"),
    "gloo_built": ("hpcsuite.train.ops", "gloo_built"),
    "gloo_enabled": ("hpcsuite.train.ops", "gloo_enabled"),
    "grouped_allgather": ("hpcsuite.train.mpi_ops", "grouped_allgather"),
    "grouped_allgather_async": ("hpcsuite.train.mpi_ops", "grouped_allgather_async"),
    "grouped_allreduce": ("hpcsuite.train.autograd", "grouped_allreduce"),
    "grouped_allreduce_": ("hpcsuite.train.mpi_ops", "grouped_allreduce_"),
    "grouped_allreduce_async": ("hpcsuite.train.mpi_ops", "grouped_allreduce_async"),
    "grouped_allreduce_async_": ("hpcsuite.train.mpi_ops", "grouped_allreduce_async_"),
    "grouped_reducescatter": ("hpcsuite.train.mpi_ops", "grouped_reducescatter"),
    "grouped_reducescatter_async": ("hpcsuite.train.mpi_ops", "grouped_reducescatter_async"),
    "HorovodInternalError": ("hpcsuite.train.exceptions", "HorovodInternalError"),
    "init": ("hpcsuite.train.ops", "init"),
    "is_initialized": ("hpcsuite.train.ops", "is_initialized"),
    "join": ("hpcsuite.train.mpi_ops", "join"),
    "local_rank": ("hpcsuite.train.ops", "local_rank"),
    "local_size": ("hpcsuite.train.ops", "local_size"),
    "Max": ("hpcsuite.train.ops", "Max"),
    "Min": ("hpcsuite.train.ops", "Min"),
    "mpi_built": ("hpcsuite.train.ops", "mpi_built"),
    "mpi_enabled": ("hpcsuite.train.ops", "mpi_enabled"),
    "mpi_threads_supported": ("hpcsuite.train.ops", "mpi_threads_supported"),
    "nccl_built": ("hpcsuite.train.ops", "nccl_built"),
    "poll": ("hpcsuite.train.mpi_ops", "poll"),
    "ProcessSet": ("hpcsuite.train.mpi_ops", "ProcessSet"),
    "Product": ("hpcsuite.train.ops", "Product"),
    "rank": ("hpcsuite.train.ops", "rank"),
    "reducescatter": ("hpcsuite.train.autograd", "reducescatter"),
    "reducescatter_async": ("hpcsuite.train.mpi_ops", "reducescatter_async"),
    "remove_process_set": ("hpcsuite.train.mpi_ops", "remove_process_set"),
    "rocm_built": ("hpcsuite.train.ops", "rocm_built"),
    "run": ("hpcsuite.train.launch", "run"),
    "shutdown": ("hpcsuite.train.mpi_ops", "shutdown"),
    "size": ("hpcsuite.train.ops", "size"),
    "sparse_allreduce_async": ("hpcsuite.train.mpi_ops", "sparse_allreduce_async"),
    "start_timeline": ("hpcsuite.train.timeline", "start_timeline"),
    "stop_timeline": ("hpcsuite.train.timeline", "stop_timeline"),
    "Sum": ("hpcsuite.train.ops", "Sum"),
    "SyncBatchNorm": ("hpcsuite.train.sync_batch_norm", "SyncBatchNorm"),
    "synchronize": ("hpcsuite.train.mpi_ops", "synchronize"),
}


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        module, attribute = _NAMES[name]
        value = importlib.import_module(module)
        if attribute is not None:
            value = getattr(value, attribute)
    elif not name.startswith("__"):
        try:  # a submodule (hvd.ops, hvd.timeline...)
            value = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # once: later lookups never come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_NAMES))


__all__ = [
    "Adasum",
    "add_process_set",
    "allgather",
    "allgather_async",
    "allgather_object",
    "allreduce",
    "allreduce_",
    "allreduce_async",
    "allreduce_async_",
    "alltoall",
    "alltoall_async",
    "Average",
    "barrier",
    "broadcast",
    "broadcast_",
    "broadcast_async",
    "broadcast_async_",
    "broadcast_object",
    "broadcast_optimizer_state",
    "broadcast_parameters",
    "ccl_built",
    "CollectiveMismatch",
    "Compression",
    "cross_rank",
    "cross_size",
    "cuda_built",
    "ddl_built",
    "DistributedOptimizer",
    "elastic",
    "global_process_set",
    "gloo_built",
    "gloo_enabled",
    "grouped_allgather",
    "grouped_allgather_async",
    "grouped_allreduce",
    "grouped_allreduce_",
    "grouped_allreduce_async",
    "grouped_allreduce_async_",
    "grouped_reducescatter",
    "grouped_reducescatter_async",
    "HorovodInternalError",
    "init",
    "is_initialized",
    "join",
    "local_rank",
    "local_size",
    "Max",
    "Min",
    "mpi_built",
    "mpi_enabled",
    "mpi_threads_supported",
    "nccl_built",
    "poll",
    "ProcessSet",
    "Product",
    "rank",
    "reducescatter",
    "reducescatter_async",
    "remove_process_set",
    "rocm_built",
    "run",
    "shutdown",
    "size",
    "sparse_allreduce_async",
    "start_timeline",
    "stop_timeline",
    "Sum",
    "synchronize",
    "SyncBatchNorm",
]
