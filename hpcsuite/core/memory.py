"""How much memory this job may use on a node, and a clear refusal when it would not fit. Pure.

Refusing up front beats the alternative: a rank killed by the out-of-memory killer
mid-collective, or ``MemoryError`` with a traceback after a minute of work.

What a job may use on a node is the smallest of:

* free memory: ``MemAvailable`` of ``/proc/meminfo``;
* the cgroup limit of this process (what Slurm's ``ConstrainRAMSpace``, a container
  or systemd enforces): the least headroom ``limit - usage`` over the process's
  cgroup and its ancestors (a Slurm job sets the limit on ``job_N``, the rank lives
  in ``job_N/step_M/...``), cgroup v2 (``memory.max``, ``memory.current``) or v1
  (``memory.limit_in_bytes``, ``memory.usage_in_bytes``);
* Slurm's ``--mem`` (``SLURM_MEM_PER_NODE``, MiB) and ``--mem-per-cpu``
  (``SLURM_MEM_PER_CPU`` MiB times the job's CPUs on this node), which bind even
  where Slurm enforces them by polling rather than by a cgroup.

Every input is a parameter (file paths, the environment), so tests can fake a
cgroup tree and a Slurm job. ``HPCSUITE_CGROUP_ROOT`` (a test hook, not a user
setting) names a folder that stands in for the cgroup file system: it is read as a
v2 hierarchy when it holds ``cgroup.controllers``, else as v1 with the memory
controller in ``ROOT/memory``; the process's own cgroup path (``/proc/self/cgroup``)
is looked up below it, falling back to the folder itself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from hpcsuite.core.errors import InputError

#: Fraction of the available memory a job may plan to use; the rest is headroom for
#: Python, MPI buffers and the operating system.
USABLE = 0.9

#: Limits at or above this many bytes mean "no limit" (cgroup v1 writes
#: PAGE_COUNTER_MAX * page size, about 2**63, for an unlimited group).
UNLIMITED = 2**60

#: Test hook: a folder standing in for the cgroup file system (see the module docstring).
CGROUP_ROOT_VARIABLE = "HPCSUITE_CGROUP_ROOT"

FREE = "free memory"
CGROUP = "cgroup limit"
SLURM_MEM = "Slurm --mem"
SLURM_MEM_PER_CPU = "Slurm --mem-per-cpu"


class Limit(NamedTuple):
    """Bytes this job may use on the node (None: unknown) and which limit decided it."""

    bytes: int | None
    what: str


class Available(int):
    """Bytes available, as an ``int`` that also says which limit decided (``what``).

    :func:`available_bytes` returns one so that every caller that passes it on to
    :func:`check_fits` gets the limit named in the refusal without changing its code.
    """

    what: str

    def __new__(cls, value: int, what: str) -> Available:
        self = super().__new__(cls, value)
        self.what = what
        return self

    def __reduce__(self):
        return (Available, (int(self), self.what))


def free_bytes(meminfo: str | os.PathLike[str] = "/proc/meminfo") -> int | None:
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


# ---------------------------------------------------------------------------------------
# cgroups


def _read_int(path: Path) -> int | None:
    """An integer file of the cgroup file system; None when missing, unreadable or "max"."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text.isdigit():  # "max" (v2 unlimited) or garbage
        return None
    value = int(text)
    return None if value >= UNLIMITED else value


def _stat_value(path: Path, key: str) -> int:
    """One counter of a ``memory.stat`` file (0 when absent)."""
    try:
        with open(path, encoding="ascii") as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key and value.strip().isdigit():
                    return int(value)
    except (OSError, UnicodeDecodeError):
        pass
    return 0


def _own_cgroups(proc_cgroup: str | os.PathLike[str]) -> tuple[str | None, str | None]:
    """This process's cgroup path in the v2 hierarchy and in v1's memory hierarchy."""
    v2 = v1 = None
    try:
        text = Path(proc_cgroup).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, None
    for line in text.splitlines():
        parts = line.split(":", 2)  # "hierarchy-id:controllers:path"
        if len(parts) != 3:
            continue
        ident, controllers, path = parts
        if ident == "0" and controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


_Mount = tuple[str, str]  # (mount point, root of the hierarchy it shows)


def _mounts(mountinfo: str | os.PathLike[str]) -> tuple[_Mount | None, _Mount | None]:
    """``(mount point, root inside the hierarchy)`` of the cgroup2 and the v1 memory mounts."""
    v2 = v1 = None
    try:
        text = Path(mountinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None, None
    for line in text.splitlines():
        # id parent major:minor root mount-point options [optional...] - fstype source super-options
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3:
            continue
        root, point = _unescape(fields[3]), _unescape(fields[4])
        if tail[0] == "cgroup2" and v2 is None:
            v2 = (point, root)
        elif tail[0] == "cgroup" and "memory" in tail[2].split(",") and v1 is None:
            v1 = (point, root)
    return v2, v1


def _unescape(field: str) -> str:
    # mountinfo writes space, tab, newline and backslash as octal escapes.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _leaf(mount: tuple[str, str], path: str | None) -> tuple[Path, Path]:
    """The folder of this process's cgroup, and the mount point it lies under.

    In a container with its own cgroup namespace the recorded path may not exist under
    the mount; the mount point itself is then the process's cgroup (as the container
    sees it).
    """
    point, root = Path(mount[0]), mount[1]
    if path is not None and path.startswith("/"):
        # Lexically, not resolve(): a symlink on the way must not take the walk up out
        # of the mount (and the mount point need not be a resolved path).
        rel = os.path.relpath(os.path.normpath(path), os.path.normpath(root or "/"))
        if rel == ".":
            return point, point
        if not rel.startswith("..") and (point / rel).is_dir():
            return point / rel, point
    return point, point


def _headroom(leaf: Path, top: Path, limit_file: str, usage_file: str, inactive: str) -> int | None:
    """Least ``limit - usage`` over ``leaf`` and its ancestors up to ``top`` (None: no limit).

    Usage leaves out inactive file pages: page cache the kernel reclaims before it would
    kill (the "working set" Kubernetes and cAdvisor use), so a job that has just read a
    large file is not refused for its cache.
    """
    best = None
    folder = leaf
    while True:
        limit = _read_int(folder / limit_file)
        if limit is not None:
            usage = _read_int(folder / usage_file)
            used = max(0, (usage or 0) - _stat_value(folder / "memory.stat", inactive))
            room = max(0, limit - used)
            best = room if best is None else min(best, room)
        if folder == top or folder.parent == folder:
            return best
        folder = folder.parent


def cgroup_bytes(
    *,
    proc_cgroup: str | os.PathLike[str] = "/proc/self/cgroup",
    mountinfo: str | os.PathLike[str] = "/proc/self/mountinfo",
    root: str | os.PathLike[str] | None = None,
) -> int | None:
    """Bytes this process's cgroup (v2 or v1) still lets it allocate; None: no limit or unknown.

    Parameters
    ----------
    proc_cgroup : path
        This process's cgroup membership (``/proc/self/cgroup``).
    mountinfo : path
        Where the cgroup file systems are mounted (``/proc/self/mountinfo``); ignored
        when ``root`` is given.
    root : path, optional
        A folder standing in for the cgroup file system (v2 when it holds
        ``cgroup.controllers``, else v1 with the memory hierarchy in ``root/memory``).
    """
    path_v2, path_v1 = _own_cgroups(proc_cgroup)
    if root is not None:
        root = Path(root)
        if (root / "cgroup.controllers").exists():
            mount_v2, mount_v1 = (str(root), "/"), None
        else:
            mount_v2, mount_v1 = None, (str(root / "memory"), "/")
    else:
        mount_v2, mount_v1 = _mounts(mountinfo)
    found = []
    if mount_v2 is not None:
        leaf, top = _leaf(mount_v2, path_v2)
        found.append(_headroom(leaf, top, "memory.max", "memory.current", "inactive_file"))
    if mount_v1 is not None:
        leaf, top = _leaf(mount_v1, path_v1)
        found.append(
            _headroom(
                leaf, top, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"
            )
        )
    found = [b for b in found if b is not None]
    return min(found) if found else None


# ---------------------------------------------------------------------------------------
# Slurm

MIB = 2**20


def _cpus_on_node(environ: Mapping[str, str]) -> int | None:
    """CPUs the job holds on this node: ``SLURM_CPUS_ON_NODE``, else this node's entry of
    ``SLURM_JOB_CPUS_PER_NODE`` (``"4(x2),2"``; the smallest when the node is unknown)."""
    text = environ.get("SLURM_CPUS_ON_NODE", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    counts = []
    for item in environ.get("SLURM_JOB_CPUS_PER_NODE", "").split(","):
        m = re.fullmatch(r"\s*(\d+)(?:\(x(\d+)\))?\s*", item)
        if not m:
            return None
        counts += [int(m.group(1))] * int(m.group(2) or 1)
    if not counts:
        return None
    node = environ.get("SLURM_NODEID", "").strip()
    if node.isdigit() and int(node) < len(counts):
        return counts[int(node)]
    return min(counts)  # which node we are is unknown: the smallest never over-promises


def slurm_bytes(environ: Mapping[str, str] | None = None) -> Limit | None:
    """The job's memory on this node from Slurm's ``--mem`` or ``--mem-per-cpu``, or None.

    ``--mem=0`` (all of the node's memory) sets no limit of its own.
    """
    environ = os.environ if environ is None else environ
    per_node = environ.get("SLURM_MEM_PER_NODE", "").strip()
    if per_node.isdigit() and int(per_node) > 0:
        return Limit(int(per_node) * MIB, SLURM_MEM)
    per_cpu = environ.get("SLURM_MEM_PER_CPU", "").strip()
    cpus = _cpus_on_node(environ)
    if per_cpu.isdigit() and int(per_cpu) > 0 and cpus:
        return Limit(int(per_cpu) * MIB * cpus, f"{SLURM_MEM_PER_CPU} x {cpus} CPUs")
    return None


# ---------------------------------------------------------------------------------------
# together


def limit_bytes(
    *,
    meminfo: str | os.PathLike[str] = "/proc/meminfo",
    proc_cgroup: str | os.PathLike[str] = "/proc/self/cgroup",
    mountinfo: str | os.PathLike[str] = "/proc/self/mountinfo",
    cgroup_root: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Limit:
    """Memory this job may use on this node: the smallest of free memory, the cgroup
    limit and Slurm's ``--mem`` / ``--mem-per-cpu``; and which of them it is.

    Parameters
    ----------
    meminfo, proc_cgroup, mountinfo : path
        The files read (defaults: this process's).
    cgroup_root : path, optional
        A folder standing in for the cgroup file system; default ``environ``'s
        ``HPCSUITE_CGROUP_ROOT`` (a test hook), else the real mounts.
    environ : mapping, optional
        Slurm's variables (default ``os.environ``).

    Returns
    -------
    Limit
        ``(bytes, what)``; ``bytes`` is None only when no limit could be read at all.
        On a tie the more specific limit is named (Slurm, then cgroup, then free memory).
    """
    environ = os.environ if environ is None else environ
    if cgroup_root is None:
        cgroup_root = environ.get(CGROUP_ROOT_VARIABLE) or None
    found: list[Limit] = []
    slurm = slurm_bytes(environ)
    if slurm is not None:
        found.append(slurm)
    cgroup = cgroup_bytes(proc_cgroup=proc_cgroup, mountinfo=mountinfo, root=cgroup_root)
    if cgroup is not None:
        found.append(Limit(cgroup, CGROUP))
    free = free_bytes(meminfo)
    if free is not None:
        found.append(Limit(free, FREE))
    if not found:
        return Limit(None, "unknown")
    return min(found, key=lambda limit: limit.bytes)  # min keeps the first of equals


def node_limit() -> Limit:
    """:func:`limit_bytes` of this process, as the memory guard's node rank 0 asks it."""
    return limit_bytes()


def available_bytes(
    meminfo: str | os.PathLike[str] = "/proc/meminfo", **inputs
) -> Available | None:
    """Memory this job may use on this node (see :func:`limit_bytes`), or None if unknown.

    The result is an ``int`` carrying ``.what``, the limit that decided, which
    :func:`check_fits` names. Keyword arguments go to :func:`limit_bytes`.
    """
    limit = limit_bytes(meminfo=meminfo, **inputs)
    return None if limit.bytes is None else Available(limit.bytes, limit.what)


def check_fits(
    need: int, available: int | None, *, where: str, hint: str, what: str | None = None
) -> None:
    """Raise :class:`InputError` when ``need`` bytes exceed the usable part of ``available``.

    Parameters
    ----------
    need : int
        Bytes the job will allocate on this node (all its ranks together).
    available : int or None
        Bytes the job may use on the node; None (unknown) never refuses.
    where : str
        Names the node in the message.
    hint : str
        How to make the job fit (fewer ranks per node, a smaller shape...).
    what : str, optional
        The limit that ``available`` is (``"cgroup limit"``, ``"Slurm --mem"``...);
        default: ``available.what`` when it comes from :func:`available_bytes`.
    """
    if available is None or need <= USABLE * available:
        return
    what = what or getattr(available, "what", None)
    named = f" ({what})" if what and what not in where else ""
    raise InputError(
        f"this job needs {need / 1e9:.2f} GB on {where} but only {available / 1e9:.2f} GB "
        f"is available there{named}; {hint}"
    )
