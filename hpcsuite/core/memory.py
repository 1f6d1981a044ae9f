"""How much memory a node has free, and a clear refusal when a job would not fit. Pure.

Refusing up front beats the alternative: a rank killed by the out-of-memory killer
mid-collective, or ``MemoryError`` with a traceback after a minute of work.
"""

from __future__ import annotations

import os

from hpcsuite.core.errors import InputError

#: Fraction of the available memory a job may plan to use; the rest is headroom for
#: Python, MPI buffers and the operating system.
USABLE = 0.9


def available_bytes(meminfo: str = "/proc/meminfo") -> int | None:
    """Memory available to new allocations on this node (``MemAvailable``), or None if unknown."""
    try:
        with open(meminfo, encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_fits(need: int, available: int | None, *, where: str, hint: str) -> None:
    """Raise :class:`InputError` when ``need`` bytes exceed the usable part of ``available``.

    Parameters
    ----------
    need : int
        Bytes the job will allocate on this node (all its ranks together).
    available : int or None
        Bytes free on the node; None (unknown) never refuses.
    where : str
        Names the node in the message.
    hint : str
        How to make the job fit (fewer ranks per node, a smaller shape...).
    """
    if available is None or need <= USABLE * available:
        return
    raise InputError(
        f"this job needs {need / 1e9:.2f} GB on {where} but only {available / 1e9:.2f} GB "
        f"is available there; {hint}"
    )
