"""``hvd.elastic``: out of scope. Horovod's elastic training (``hvd.elastic.run``,
``TorchState``, ``ElasticSampler``) re-forms the job when hosts come and go; an MPI job
here has a fixed set of ranks, and a failed rank ends it (restart from a checkpoint, as
``hpcsuite.train.mnist --resume`` does). Every name raises a clear error."""

from __future__ import annotations

from typing import Any

from hpcsuite.train.exceptions import NotSupported


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise NotSupported(
        f"hvd.elastic.{name}: elastic training is not supported by hpcsuite.train (the MPI job's "
        "ranks are fixed); restart failed jobs from a checkpoint instead"
    )
