"""One record read as a run: what it measured, on what, at which layout. Pure.

:func:`describe` turns a record (any hpcsuite module's, any version's) into a
:class:`Run`: module, parameters, problem size with its unit, node layout, the
environment fields that decide comparability, timed samples and figure of merit.
:mod:`hpcsuite.report.series` groups runs into series.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcsuite.core import stats

#: Run control: may differ inside a series (how long or how often, not what).
RUN_CONTROL = {"warmup", "repeat", "iterations", "seed", "proc_grid", "block_rows"}
#: What sets the problem size: equal inside a strong series, scaled in a weak one.
SIZE_PARAMS = {"shape", "bytes", "size", "n", "paths", "reads"}
#: Environment fields that decide comparability (not host names, versions or git).
ENV_KEYS = ("machine", "mpi_library", "device", "device_name", "thread_level")

#: What ``params.size`` counts, where a kernel records no bytes.
SIZE_UNIT = {"kmer": "bases", "montecarlo": "paths"}

_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def number(v: Any) -> float | None:
    """A finite number, or None (bools, strings such as "nan", NaN and inf are not)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _count(v: Any) -> int | None:
    """A positive integer count, or None."""
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        return None
    return v


def human_bytes(n: float) -> str:
    """``19.2 MB`` (decimal units, as STREAM and OSU print)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:g} B"


def human_count(n: float) -> str:
    """``1.05 M`` for element counts."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:g}"


@dataclass(frozen=True)
class Fom:
    """A record's figure of merit, as recorded."""

    name: str
    unit: str
    higher_is_better: bool
    value: float | None
    low: float | None
    high: float | None
    basis: str | None


@dataclass
class Run:
    """One validated record, with what the grouping needs."""

    rec: dict[str, Any]
    kernel: str
    params: dict[str, Any]  # identity parameters (no run control, no problem size)
    problem: str  # canonical JSON of the size parameters
    size: float  # bytes when known, else elements (0 when the module has none)
    size_label: str
    ranks: int
    nodes: int
    ranks_per_node: int
    env: dict[str, str | None]
    samples: list[float]
    fom: Fom | None
    failed: bool
    job: str | None
    git: str | None
    message_size: int | None  # microbenchmarks: the curve's x

    @property
    def work(self) -> float | None:
        """``value * median`` for a rate (``value / median`` for a time-like figure):
        what the figure of merit divides by (or scales) the median time."""
        f = self.fom
        if f is None or f.value is None or not self.samples:
            return None
        med = stats.median(self.samples)
        if f.basis == "median":
            return f.value * med if f.higher_is_better else (f.value / med if med > 0 else None)
        return _old_work(self)


def _old_work(run: Run) -> float | None:
    """Work of a record written before ``fom.basis`` existed, from the kernel's
    published formula (in the figure's own units); None when unknown, or when the
    formula does not reproduce the recorded value from the record's own min, median or
    mean time (a formula that disagrees with the record is not trusted)."""
    w = _formula_work(run)
    f, samples = run.fom, run.samples
    if w is None or f is None or f.value is None or not samples:
        return None
    for t in (float(np.min(samples)), stats.median(samples), float(np.mean(samples))):
        if t > 0 and math.isclose(w / t, f.value, rel_tol=1e-6):
            return w
    return None


def _formula_work(run: Run) -> float | None:
    p, f = run.rec.get("params") or {}, run.fom
    if f is None or not f.higher_is_better:
        return None
    shape = p.get("shape") if isinstance(p.get("shape"), list) else None
    try:
        if run.kernel == "mean" and f.unit == "GB/s" and number(p.get("bytes")):
            return float(p["bytes"]) / 1e9
        if run.kernel == "stream" and f.unit == "MB/s" and number(p.get("bytes")):
            return float(p["bytes"]) / 1e6  # triad moves all three arrays once
        if run.kernel == "matmul" and f.unit == "GFLOP/s" and number(p.get("n")):
            return 2 * float(p["n"]) ** 3 / 1e9
        if run.kernel == "fft" and f.unit == "GFLOP/s" and shape:
            n = float(math.prod(shape))
            return 2 * 5 * n * math.log2(n) / 1e9 if n > 1 else None
        if run.kernel == "stencil" and shape and len(shape) == 2 and number(p.get("steps")):
            return float(shape[0]) * float(shape[1]) * float(p["steps"])
        if run.kernel == "montecarlo" and number(p.get("paths")):
            return float(p["paths"])
        if run.kernel == "kmer" and number(p.get("size")):
            return float(p["size"])
    except (TypeError, ValueError, OverflowError):
        return None
    return None


def _samples(times: dict[str, Any]) -> list[float]:
    """Seconds of each timed repetition (finite, non-negative); the wall time when
    there are none (a training run)."""
    unit = _TIME_UNITS.get(str(times.get("unit", "s")), 1.0)
    raw = times.get("samples")
    out = (
        [v * unit for v in (number(s) for s in raw) if v is not None and v >= 0]
        if isinstance(raw, list)
        else []
    )
    if not out:
        wall = number(times.get("wall"))
        out = [wall * unit] if wall is not None and wall >= 0 else []
    return out


def _fom(raw: Any) -> Fom | None:
    if not isinstance(raw, dict):
        return None
    return Fom(
        name=str(raw.get("name", "")),
        unit=str(raw.get("unit", "")),
        higher_is_better=raw.get("higher_is_better", True) is not False,
        value=number(raw.get("value")),
        low=number(raw.get("low")),
        high=number(raw.get("high")),
        basis=raw.get("basis") if isinstance(raw.get("basis"), str) else None,
    )


def _problem(kernel: str, params: dict[str, Any]) -> tuple[str, float, str]:
    """Canonical key, size and label of the problem; ValueError when malformed."""
    sized = {k: params[k] for k in SIZE_PARAMS if k in params and params[k] is not None}
    if kernel.startswith("microbench."):
        sized.pop("size", None)  # the message size is the curve's x, not a problem size
    shape = sized.get("shape")
    if shape is not None:
        if (
            not isinstance(shape, list)
            or not shape
            or any(number(d) is None or d < 0 or d != int(d) for d in shape)
        ):
            raise ValueError(f"params.shape {shape!r} is not a list of non-negative integers")
    for k, v in sized.items():
        if k != "shape" and (number(v) is None or v < 0):
            raise ValueError(f"params.{k} {v!r} is not a non-negative number")
    shape_label = "x".join(str(int(d)) for d in shape) if shape else ""
    if "bytes" in sized:
        size = float(sized["bytes"])
        detail = shape_label or (f"n {int(sized['n'])}" if "n" in sized else "")
        label = human_bytes(size) + (f" ({detail})" if detail else "")
    elif shape:
        size = float(math.prod(int(d) for d in shape))
        label = f"{shape_label} elements"
    elif sized:
        # Counts without bytes (paths, bases...): name the unit; "size" repeats another
        # count in some kernels (montecarlo's paths), then it is said once.
        size = float(sized["size"] if "size" in sized else sized[sorted(sized)[0]])
        named = {k: float(v) for k, v in sized.items() if k != "size"}
        if "size" in sized and float(sized["size"]) not in named.values():
            named[SIZE_UNIT.get(kernel, "elements")] = float(sized["size"])
        label = ", ".join(f"{human_count(v)} {k}" for k, v in sorted(named.items()))
    else:
        size, label = 0.0, ""
    return json.dumps(sized, sort_keys=True), size, label


def _job(rec: dict[str, Any]) -> str | None:
    """The id ``sacct -j`` takes: ``ARRAYJOB_TASK`` for an array task, else the job id."""
    slurm = (
        (rec.get("provenance") or {}).get("slurm")
        if isinstance(rec.get("provenance"), dict)
        else None
    )
    if not isinstance(slurm, dict):
        return None
    array, task = slurm.get("array_job_id"), slurm.get("array_task_id")
    if array not in (None, "") and task not in (None, ""):
        return f"{array}_{task}"
    job = slurm.get("job_id")
    return None if job in (None, "") else str(job)


def _git(rec: dict[str, Any]) -> str | None:
    prov = rec.get("provenance") if isinstance(rec.get("provenance"), dict) else {}
    git = prov.get("git")
    if isinstance(git, dict):
        commit = git.get("commit")
        if isinstance(commit, str) and commit:
            return commit[:12] + ("-dirty" if git.get("dirty") else "")
        if isinstance(git.get("describe"), str):
            return git["describe"]
    env_git = (rec.get("env") or {}).get("git")
    return env_git if isinstance(env_git, str) and env_git else None


def describe(rec: dict[str, Any]) -> Run:
    """Validate one record and extract what the report needs.

    Raises
    ------
    ValueError
        With the reason, when the record cannot be placed in a series.
    """
    kernel = rec.get("kernel")
    if not isinstance(kernel, str) or not kernel:
        raise ValueError("record without a kernel name")
    ranks = rec.get("ranks")
    if _count(ranks) is None:
        raise ValueError(f"record with bad ranks {ranks!r}")
    for name in ("params", "env", "times"):
        if not isinstance(rec.get(name), dict):
            raise ValueError(f"record without {name}")
    params, env = rec["params"], rec["env"]
    hosts = env.get("hosts")
    nodes = (
        _count(rec.get("nodes"))
        or _count(env.get("nodes"))
        or (len(set(map(str, hosts))) if isinstance(hosts, list) and hosts else None)
        or 1
    )
    if nodes > ranks:
        raise ValueError(f"record with {nodes} nodes for {ranks} ranks")
    packed = -(-ranks // nodes)
    rpn = _count(rec.get("ranks_per_node"))
    if rpn is None or not packed <= rpn <= ranks:
        rpn = packed  # older records: the fewest per node that holds them all
    problem, size, label = _problem(kernel, params)
    message_size = None
    if kernel.startswith("microbench."):
        ms = params.get("size")
        if number(ms) is None or ms < 0:
            raise ValueError(f"microbenchmark record with bad message size {ms!r}")
        message_size = int(ms)
    prov_mpi = (
        ((rec.get("provenance") or {}).get("mpi") or {})
        if isinstance(rec.get("provenance"), dict)
        else {}
    )
    env_values: dict[str, str | None] = {}
    for k in ENV_KEYS:
        v = env.get(k)
        if v is None and k == "thread_level" and isinstance(prov_mpi, dict):
            v = prov_mpi.get("thread_level")
        env_values[k] = None if v is None else str(v)
    ident = {k: v for k, v in params.items() if k not in RUN_CONTROL and k not in SIZE_PARAMS}
    check = rec.get("check")
    failed = (isinstance(check, dict) and check.get("passed") is False) or rec.get(
        "status"
    ) == "failed"
    return Run(
        rec=rec,
        kernel=kernel,
        params=ident,
        problem=problem,
        size=size,
        size_label=label,
        ranks=ranks,
        nodes=nodes,
        ranks_per_node=rpn,
        env=env_values,
        samples=_samples(rec["times"]),
        fom=_fom(rec.get("fom")),
        failed=bool(failed),
        job=_job(rec),
        git=_git(rec),
        message_size=message_size,
    )


def env_text(env: dict[str, str | None]) -> str:
    """The environment as shown: machine | MPI | device | device name | thread level."""
    return " | ".join(str(env.get(k)) for k in ENV_KEYS)


def join_values(values: list[str | None], limit: int = 4) -> str:
    seen = list(dict.fromkeys(v for v in values if v))
    if len(seen) <= limit:
        return " ".join(seen)
    return " ".join(seen[:limit]) + f" (+{len(seen) - limit})"
