"""Horovod-style data-parallel training over MPI: ``import hpcsuite.train as hvd``.

Names and semantics follow ``horovod.torch``::

    import hpcsuite.train as hvd
    hvd.init()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01 * hvd.size())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)
    optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters(),
                                         compression=hvd.Compression.fp16)

Launch with ``mpirun -n N python train.py`` or ``srun``; no rendezvous, no torchrun.
"""

from hpcsuite.train.compression import Compression
from hpcsuite.train.functions import (
    allgather_object,
    broadcast_object,
    broadcast_optimizer_state,
    broadcast_parameters,
)
from hpcsuite.train.ops import (
    Average,
    CollectiveMismatch,
    Sum,
    allgather,
    allreduce,
    allreduce_,
    allreduce_async,
    allreduce_async_,
    barrier,
    broadcast,
    broadcast_,
    init,
    is_initialized,
    local_rank,
    local_size,
    poll,
    rank,
    shutdown,
    size,
    synchronize,
)
from hpcsuite.train.optimizer import DistributedOptimizer

__all__ = [
    "Average", "CollectiveMismatch", "Compression", "DistributedOptimizer", "Sum", "allgather",
    "allgather_object", "allreduce", "allreduce_", "allreduce_async", "allreduce_async_", "barrier",
    "broadcast", "broadcast_", "broadcast_object", "broadcast_optimizer_state", "broadcast_parameters",
    "init", "is_initialized", "local_rank", "local_size", "poll", "rank", "shutdown", "size", "synchronize",
]
