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

from hpcsuite.train.autograd import allgather, allreduce, alltoall, broadcast, grouped_allreduce, reducescatter
from hpcsuite.train.compression import Compression
from hpcsuite.train.exceptions import CollectiveMismatch, HorovodInternalError
from hpcsuite.train.functions import (
    allgather_object,
    broadcast_object,
    broadcast_optimizer_state,
    broadcast_parameters,
)
from hpcsuite.train import elastic
from hpcsuite.train.launch import run
from hpcsuite.train.mpi_ops import (
    ProcessSet,
    add_process_set,
    allgather_async,
    allreduce_,
    allreduce_async,
    allreduce_async_,
    alltoall_async,
    barrier,
    broadcast_,
    broadcast_async,
    broadcast_async_,
    global_process_set,
    grouped_allgather,
    grouped_allgather_async,
    grouped_allreduce_,
    grouped_allreduce_async,
    grouped_allreduce_async_,
    grouped_reducescatter,
    grouped_reducescatter_async,
    join,
    poll,
    reducescatter_async,
    remove_process_set,
    shutdown,
    sparse_allreduce_async,
    synchronize,
)
from hpcsuite.train.ops import (
    Adasum,
    Average,
    Max,
    Min,
    Product,
    Sum,
    ccl_built,
    cross_rank,
    cross_size,
    cuda_built,
    ddl_built,
    gloo_built,
    gloo_enabled,
    init,
    is_initialized,
    local_rank,
    local_size,
    mpi_built,
    mpi_enabled,
    mpi_threads_supported,
    nccl_built,
    rank,
    rocm_built,
    size,
)
from hpcsuite.train.optimizer import DistributedOptimizer
from hpcsuite.train.sync_batch_norm import SyncBatchNorm
from hpcsuite.train.timeline import start_timeline, stop_timeline

__all__ = [
    "Adasum", "add_process_set", "allgather", "allgather_async", "allgather_object", "allreduce", "allreduce_",
    "allreduce_async", "allreduce_async_", "alltoall", "alltoall_async", "Average", "barrier", "broadcast",
    "broadcast_", "broadcast_async", "broadcast_async_", "broadcast_object", "broadcast_optimizer_state",
    "broadcast_parameters", "ccl_built", "CollectiveMismatch", "Compression", "cross_rank", "cross_size",
    "cuda_built", "ddl_built", "DistributedOptimizer", "elastic", "global_process_set", "gloo_built", "gloo_enabled",
    "grouped_allgather", "grouped_allgather_async", "grouped_allreduce", "grouped_allreduce_",
    "grouped_allreduce_async", "grouped_allreduce_async_", "grouped_reducescatter", "grouped_reducescatter_async",
    "HorovodInternalError", "init", "is_initialized", "join", "local_rank", "local_size", "Max", "Min", "mpi_built",
    "mpi_enabled", "mpi_threads_supported", "nccl_built", "poll", "ProcessSet", "Product", "rank", "reducescatter",
    "reducescatter_async", "remove_process_set", "rocm_built", "run", "shutdown", "size", "sparse_allreduce_async",
    "start_timeline", "stop_timeline", "Sum", "synchronize", "SyncBatchNorm",
]
