"""The exceptions ``hpcsuite.train`` raises, as subclasses of what Horovod raises in each case.

A script written for Horovod catches ``ValueError`` around argument checks,
``RuntimeError`` (or ``hvd.HorovodInternalError``) around collectives, and
``NotImplementedError`` where an option is not built in. Ours are those classes *and*
:class:`~hpcsuite.core.errors.HpcsuiteError`, so the same ``except`` clauses work, and
the CLI still prints them as one line (their messages say what to change).
"""

from __future__ import annotations

from hpcsuite.core.errors import HpcsuiteError


class HorovodInternalError(HpcsuiteError, RuntimeError):
    """A collective failed (Horovod's class, raised where Horovod's ``synchronize`` raises it):
    a rank's arguments were refused, ranks disagree, or a peer failed. ``collective`` is True
    when every rank raises it for the same operation (the job may go on)."""


class CollectiveMismatch(HorovodInternalError):
    """Ranks called different collectives, or the same one on different tensors."""


class ArgumentError(HpcsuiteError, ValueError):
    """An argument Horovod refuses with ``ValueError`` (wrong type, duplicate name, no init)."""


class NotSupported(HpcsuiteError, NotImplementedError):
    """A Horovod feature outside this package's scope (Adasum, process sets, elastic)."""


class InvalidArgument(HorovodInternalError, ValueError):
    """An argument a collective refuses where Horovod's core does (uneven ``alltoall`` rows,
    splits that do not add up, a name already in flight): Horovod raises it as
    ``ValueError`` when enqueueing and ``RuntimeError`` when synchronizing, so this is both."""
