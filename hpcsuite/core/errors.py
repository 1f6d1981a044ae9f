"""The few exception types hpcsuite raises on purpose.

Everything deriving from :class:`HpcsuiteError` is a *user-facing* failure: the CLI
prints its message on one line, without a traceback, and exits with ``exit_code``.
Any other exception is a bug or an environment fault and gets a traceback tagged
with the rank plus an ``MPI_Abort`` of the whole job (see :mod:`hpcsuite.core.cli`).
"""

from __future__ import annotations


class HpcsuiteError(Exception):
    """A failure the user can fix; the message says how.

    Attributes
    ----------
    exit_code : int
        Process exit status for this kind of failure.
    collective : bool
        True once every rank of the job knows about this error (set by
        :func:`hpcsuite.core.mpi.agree`); the CLI then exits cleanly on every rank
        instead of aborting the job.
    """

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.collective = False

    def __reduce__(self):
        # Keep the class when the error travels between ranks (pickled metadata).
        return (_rebuild, (type(self), str(self), self.collective))


def _rebuild(cls: type, message: str, collective: bool) -> HpcsuiteError:
    err = cls(message)
    err.collective = collective
    return err


class UsageError(HpcsuiteError):
    """Bad command-line arguments or option combinations."""


class InputError(HpcsuiteError):
    """Unreadable, malformed or inconsistent input data (files, shapes, dtypes)."""


class OutputError(HpcsuiteError):
    """A result could not be written (disk full, I/O error); what was there is left as it was."""


class BackendError(HpcsuiteError):
    """An array backend (device) was asked for but cannot be used here."""


class CheckError(HpcsuiteError):
    """A ``--check`` comparison against the reference failed."""

    exit_code = 3
