"""``python -m hpcsuite [info|list]``: what this stack is, and what can run on it.

``info`` answers the first question of anyone debugging a cluster: which Python,
NumPy, mpi4py and MPI library, is MPI CUDA-aware, which GPUs and CUDA, is torch
there; under ``mpirun`` also how many ranks sit on which node.
"""

from __future__ import annotations

import importlib.util
import platform
import sys
from collections import Counter
from collections.abc import Sequence

import hpcsuite
from hpcsuite.core import backend, cli
from hpcsuite.registry import MODULES  # name -> Module(summary, parallel, ...)

PROG = "hpcsuite"


def _version(module: str) -> str:
    if importlib.util.find_spec(module) is None:
        return "not installed"
    try:
        mod = __import__(module)
        return str(getattr(mod, "__version__", "installed"))
    except Exception as exc:  # a broken install is information, not a crash
        return f"installed but fails to import ({type(exc).__name__}: {exc})"


def _gpu_lines() -> list[str]:
    gpus = backend.gpu_info()
    if gpus is None:
        return ["cupy           not installed (pip install 'hpcsuite[gpu]')"]
    lines = [f"cupy           {gpus.cupy}"]
    if not gpus.names:
        return lines + ["gpus           none usable (no CUDA device visible)"]
    lines.append(f"cuda runtime   {gpus.runtime}")
    lines += [f"gpu {i:<10d} {name}" for i, name in enumerate(gpus.names)]
    return lines


def info() -> int:
    """Print the stack, once per job (rank 0), with the rank-to-node map."""
    lines = [
        f"hpcsuite       {hpcsuite.__version__}",
        f"python         {platform.python_version()} ({sys.executable})",
        f"numpy          {_version('numpy')}",
        f"mpi4py         {_version('mpi4py')}",
    ]
    rank, size, hosts = 0, 1, [platform.node()]
    try:
        # Lazy: info must still report a libmpi that fails to load (ImportError below).
        from hpcsuite.core import mpi

        comm = mpi.world()
        rank, size, hosts = comm.rank, comm.size, mpi.hosts(comm)
        lines.append(f"mpi library    {mpi.library_version()}")
        lines.append(
            f"cuda-aware mpi {'yes' if mpi.gpu_aware() else 'no'} "
            f"(override with {mpi.GPU_AWARE_ENV}=1|0)"
        )
        if mpi.gpu_aware():
            lines.append(
                f"  non-blocking {'yes' if mpi.gpu_aware_nonblocking() else 'no, staged'}"
                " (Iallreduce... on device memory; override with"
                f" {mpi.GPU_AWARE_NONBLOCKING_ENV}=1|0)"
            )
        lines.append(
            f"mpi threads    {mpi.thread_level()} (hpcsuite.train overlap='thread' needs multiple)"
        )
    except ImportError as exc:
        lines.append(
            f"mpi library    unusable: {exc} (pip install 'hpcsuite[mpich]', or build "
            "mpi4py against your MPI)"
        )
    lines += _gpu_lines()
    lines.append(f"torch          {_version('torch')}")
    lines.append(
        f"numba          {_version('numba')} (the stencil's compiled CPU loop; pip install"
        " 'hpcsuite[fast]')"
    )
    per_node = Counter(hosts)
    lines.append(f"ranks          {size} on {len(per_node)} node{'s' if len(per_node) > 1 else ''}")
    for host, n in sorted(per_node.items()):
        lines.append(f"  {host}: {n} rank{'s' if n > 1 else ''}")
    if rank == 0:
        print("\n".join(lines), flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hpcsuite [info|list]``."""
    p = cli.ArgumentParser(
        prog=f"python -m {PROG}",
        description=(
            "hpcsuite: MPI + GPU kernels, benchmarks and scaling reports. "
            "Run a module with: mpirun -n N python -m hpcsuite.MODULE --help"
        ),
    )
    p.add_argument(
        "command",
        nargs="?",
        choices=("info", "list"),
        default="list",
        help=(
            "info: versions, MPI library, CUDA-awareness, GPUs, ranks per node; "
            "list: the runnable modules [%(default)s]"
        ),
    )
    p.add_argument("--version", action="version", version=f"hpcsuite {hpcsuite.__version__}")
    args = p.parse_args(argv)
    if args.command == "info":
        return info()
    if cli.env_rank() == 0:
        print("runnable modules (mpirun -n N python -m hpcsuite.NAME --help):")
        for name, module in MODULES.items():
            print(f"  {name:<12} {module.summary}")
        print("see also: python -m hpcsuite info")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
