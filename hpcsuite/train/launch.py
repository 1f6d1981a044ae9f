"""``hvd.run``: Horovod's in-script launch (``horovod.run(main, args=..., num_proc=N)``),
as a thin wrapper that re-executes the running script under ``mpiexec``.

The parent runs ``mpiexec -n N python <the same script and arguments>``; in each of those
processes the script reaches the same ``hvd.run`` call, which now calls the function,
saves what it returned for the parent and ends the process (the rest of the script is
the parent's, as with Horovod). The parent returns the results in rank order. The
function must therefore be reached by running the script again (Horovod's examples call
``hvd.run`` under ``if __name__ == "__main__"`` with their parsed arguments).
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpcsuite.train.exceptions import ArgumentError, HorovodInternalError, NotSupported

#: Set in the re-executed processes: the directory their results go to.
CHILD_ENV = "HPCSUITE_TRAIN_RUN_DIR"
#: The launcher to use (default: ``mpiexec`` next to this Python, else on ``PATH``).
MPIEXEC_ENV = "HPCSUITE_MPIEXEC"
#: Variables of an enclosing MPI job that must not reach the new one's processes.
_LAUNCHER_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "HYDRA_", "MPIR_CVAR_CH3", "I_MPI_HYDRA")


def _mpiexec() -> str:
    given = os.environ.get(MPIEXEC_ENV)
    if given:
        return given
    beside = Path(sys.executable).with_name("mpiexec")
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise ArgumentError(
            f"hvd.run needs mpiexec: none next to {sys.executable} or on PATH; set {MPIEXEC_ENV}"
        )
    return found


def run(
    func: Callable[..., Any],
    args: tuple = (),
    kwargs: dict | None = None,
    num_proc: int | None = None,
    np: int | None = None,
    hosts: str | None = None,
    use_gloo: bool | None = None,
    use_mpi: bool | None = None,
    **unsupported: Any,
) -> list[Any]:
    """Run ``func(*args, **kwargs)`` on ``num_proc`` ranks (an MPI job of this script); returns
    every rank's result in rank order (Horovod's ``horovod.run``).

    ``hosts`` (Horovod's ``"host:slots,..."``) is passed to ``mpiexec -hosts`` without the
    slots; ``use_gloo=True`` is refused (MPI carries everything here); other Horovod
    launcher options (elastic, ssh, network interfaces) are out of scope and refused.
    """
    kwargs = kwargs or {}
    child_dir = os.environ.get(CHILD_ENV)
    if child_dir:  # a process of the job this call started: do the work, hand back, end
        from hpcsuite.train import ops  # the package imports this module: import at call time

        ops.init()
        result = func(*args, **kwargs)
        with open(Path(child_dir) / f"{ops.rank()}.pkl", "wb") as out:
            pickle.dump(result, out)
        raise SystemExit(0)
    if unsupported:
        raise NotSupported(
            f"hvd.run: {', '.join(sorted(unsupported))} not supported by hpcsuite.train's launcher "
            "(it re-executes the script under mpiexec)"
        )
    if use_gloo:
        raise NotSupported(
            "hvd.run(use_gloo=True): hpcsuite.train has no Gloo; MPI carries everything"
        )
    del use_mpi
    count = num_proc if num_proc is not None else np
    if count is None or int(count) < 1:
        raise ArgumentError(f"hvd.run needs num_proc >= 1, got {count!r}")
    main = sys.modules.get("__main__")
    script = getattr(main, "__file__", None)
    if script is None:
        raise ArgumentError(
            "hvd.run re-executes the running script under mpiexec: call it from a script "
            "(python train.py), not an interactive session"
        )
    spec = getattr(main, "__spec__", None)
    target = (
        ["-m", spec.name] if spec is not None and spec.name not in (None, "__main__") else [script]
    )
    command = [_mpiexec(), "-n", str(int(count))]
    if hosts:
        command += ["-hosts", ",".join(h.split(":")[0] for h in hosts.split(","))]
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LAUNCHER_PREFIXES)}
    with tempfile.TemporaryDirectory(prefix="hpcsuite-run-") as tmp:
        env[CHILD_ENV] = tmp
        done = subprocess.run(
            [*command, sys.executable, *target, *sys.argv[1:]], env=env, check=False
        )
        if done.returncode != 0:
            raise HorovodInternalError(
                f"hvd.run: the {count}-rank job exited with status {done.returncode} "
                "(its processes' output is above)"
            )
        results = []
        for r in range(int(count)):
            path = Path(tmp) / f"{r}.pkl"
            if not path.exists():
                raise HorovodInternalError(
                    f"hvd.run: rank {r} ended without returning from the function"
                )
            with open(path, "rb") as f:
                results.append(pickle.load(f))
    return results
