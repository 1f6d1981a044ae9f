"""Group records into series. Pure.

A series is one module with the same parameters (apart from run control such as
``repeat``/``warmup``/``seed``), the same environment (machine, MPI library, device,
device name, MPI thread level) and a fixed node layout; unlike runs are never pooled:

* a **strong** series holds one problem size at two or more rank counts on a fixed
  number of nodes (``axis="ranks"``), or at two or more node counts with a fixed
  number of ranks per node (``axis="nodes"``, fully packed nodes only);
* a **weak** series holds one problem size per rank, the same way;
* a **curve** is a microbenchmark over message sizes at one node layout (so intra-
  and inter-node curves of 2 ranks are two curves);
* whatever fits no series is listed, per problem size, as single runs.

Repeated runs of one point (same layout, same problem) pool their timed samples. The
time shown is their median, with the distribution-free interval of the median from
:mod:`hpcsuite.core.stats`; the figure of merit is the work over that same median.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hpcsuite.core import stats
from hpcsuite.report import scaling

#: Run control: may differ inside a series (how long or how often, not what).
RUN_CONTROL = {"warmup", "repeat", "iterations", "seed", "proc_grid", "block_rows"}
#: What sets the problem size: equal inside a strong series, scaled in a weak one.
SIZE_PARAMS = {"shape", "bytes", "size", "n", "paths", "reads"}
#: Environment fields that decide comparability (not host names, versions or git).
ENV_KEYS = ("machine", "mpi_library", "device", "device_name", "thread_level")

#: What ``params.size`` counts, where a kernel records no bytes.
_SIZE_UNIT = {"kmer": "bases", "montecarlo": "paths"}

_TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}


def _num(v: Any) -> float | None:
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
        if run.kernel == "mean" and f.unit == "GB/s" and _num(p.get("bytes")):
            return float(p["bytes"]) / 1e9
        if run.kernel == "stream" and f.unit == "MB/s" and _num(p.get("bytes")):
            return float(p["bytes"]) / 1e6  # triad moves all three arrays once
        if run.kernel == "matmul" and f.unit == "GFLOP/s" and _num(p.get("n")):
            return 2 * float(p["n"]) ** 3 / 1e9
        if run.kernel == "fft" and f.unit == "GFLOP/s" and shape:
            n = float(math.prod(shape))
            return 2 * 5 * n * math.log2(n) / 1e9 if n > 1 else None
        if run.kernel == "stencil" and shape and len(shape) == 2 and _num(p.get("steps")):
            return float(shape[0]) * float(shape[1]) * float(p["steps"])
        if run.kernel == "montecarlo" and _num(p.get("paths")):
            return float(p["paths"])
        if run.kernel == "kmer" and _num(p.get("size")):
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
        [v * unit for v in (_num(s) for s in raw) if v is not None and v >= 0]
        if isinstance(raw, list)
        else []
    )
    if not out:
        wall = _num(times.get("wall"))
        out = [wall * unit] if wall is not None and wall >= 0 else []
    return out


def _fom(raw: Any) -> Fom | None:
    if not isinstance(raw, dict):
        return None
    return Fom(
        name=str(raw.get("name", "")),
        unit=str(raw.get("unit", "")),
        higher_is_better=raw.get("higher_is_better", True) is not False,
        value=_num(raw.get("value")),
        low=_num(raw.get("low")),
        high=_num(raw.get("high")),
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
            or any(_num(d) is None or d < 0 or d != int(d) for d in shape)
        ):
            raise ValueError(f"params.shape {shape!r} is not a list of non-negative integers")
    for k, v in sized.items():
        if k != "shape" and (_num(v) is None or v < 0):
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
            named[_SIZE_UNIT.get(kernel, "elements")] = float(sized["size"])
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
        if _num(ms) is None or ms < 0:
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


def _join(values: list[str | None], limit: int = 4) -> str:
    seen = list(dict.fromkeys(v for v in values if v))
    if len(seen) <= limit:
        return " ".join(seen)
    return " ".join(seen[:limit]) + f" (+{len(seen) - limit})"


@dataclass
class Point:
    """One node layout (or message size) of a series, over its repeated runs."""

    x: int
    runs: list[Run] = field(default_factory=list)

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r.rec for r in self.runs]

    @property
    def samples(self) -> list[float]:
        return [s for r in self.runs for s in r.samples]

    @property
    def status(self) -> str:
        """ok, failed (a check failed or the run said so) or partial (no timings)."""
        if any(r.failed for r in self.runs):
            return "failed"
        return "ok" if self.samples or self.fom()["value"] is not None else "partial"

    def stats(self) -> stats.Stats | None:
        """Summary of the pooled samples (None without any)."""
        s = self.samples
        return stats.summarize(s) if s else None

    def fom(self) -> dict[str, Any]:
        """The figure of merit of the point: value, interval, unit, name, basis.

        From the same median as the time (``work / median`` of the pooled samples, the
        interval ``work / high .. work / low``) whenever the work is known (the record's
        ``fom.basis`` is "median", or an older record of a kernel whose formula is
        known); otherwise the median of the recorded values, with the interval of that
        median over runs.
        """
        none = {
            "value": None,
            "low": None,
            "high": None,
            "unit": "",
            "name": "",
            "basis": "",
            "higher_is_better": True,
        }
        runs = [r for r in self.runs if r.fom is not None]
        if not runs:
            return none
        # The most common (name, unit): a point never mixes figures.
        kinds: dict[tuple[str, str, bool], list[Run]] = {}
        for r in runs:
            kinds.setdefault((r.fom.name, r.fom.unit, r.fom.higher_is_better), []).append(r)
        (name, unit, hib), runs = max(kinds.items(), key=lambda kv: len(kv[1]))
        out = {**none, "unit": unit, "name": name, "higher_is_better": hib}
        works = [r.work for r in runs]
        if all(w is not None for w in works) and all(r.samples for r in runs):
            pooled = [s for r in runs for s in r.samples]
            st = stats.summarize(pooled)
            work = stats.median(works)
            if (
                len(runs) == 1
                and runs[0].fom.basis == "median"
                and runs[0].fom.low is not None
                and runs[0].fom.high is not None
            ):
                value, low, high = runs[0].fom.value, runs[0].fom.low, runs[0].fom.high
            elif hib:
                value, low, high = stats.rate_interval(work, st)
            else:
                value, low, high = stats.scale_interval(work, st)
            out.update(value=_num(value), low=_num(low), high=_num(high), basis="median")
            if out["value"] is None:
                out.update(low=None, high=None)
            return out
        values = [r.fom.value for r in runs if r.fom.value is not None]
        if not values:
            return out
        if len(values) == 1:
            r = next(r for r in runs if r.fom.value is not None)
            low, high = r.fom.low, r.fom.high
            if low is not None and high is not None and not low <= values[0] <= high:
                low = high = None
        else:
            low, high = stats.median_interval(values)
        out.update(
            value=stats.median(values),
            low=low,
            high=high,
            basis="recorded" if len(values) == 1 else f"median of {len(values)} runs",
        )
        return out

    def band(self) -> tuple[float | None, float | None]:
        """Microbenchmarks: min .. p99 over the timed iterations of every run."""
        lows, highs = [], []
        for r in self.runs:
            row = r.rec.get("result") if isinstance(r.rec.get("result"), dict) else {}
            unit = "us" if r.fom is None or r.fom.unit == "us" else "mbps"
            lo, hi = _num(row.get(f"min_{unit}")), _num(row.get(f"p99_{unit}"))
            if lo is not None and hi is not None:
                lows.append(min(lo, hi))
                highs.append(max(lo, hi))
        return (min(lows), max(highs)) if lows else (None, None)


@dataclass
class Series:
    """A set of points that belong together."""

    kind: str  # strong | weak | curve | single
    kernel: str
    params: dict[str, Any]
    env_values: dict[str, str | None]
    scale: float  # problem size (strong, single), per-rank size (weak), ranks (curve)
    points: list[Point]
    axis: str = "ranks"  # ranks | nodes | size
    nodes: int | None = None  # fixed node count (axis ranks, curves)
    ranks_per_node: int | None = None  # fixed ranks per node (axis nodes, curves)
    problem: str = ""  # label of the problem size
    _rows: list[dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    @property
    def env(self) -> str:
        return env_text(self.env_values)

    def _key_parts(self) -> list[Any]:
        return [
            self.kind,
            self.axis,
            self.kernel,
            self.params,
            self.scale,
            self.nodes,
            self.ranks_per_node,
            self.problem if self.kind == "single" else "",
        ]

    @property
    def key(self) -> str:
        """Identity across reports, for --compare."""
        return json.dumps(self._key_parts() + [self.env_values], sort_keys=True)

    def matches(self, other: Series) -> bool:
        """Same series, where an environment field missing on one side (an older
        record without the MPI thread level, say) does not count as a difference."""
        if json.dumps(self._key_parts(), sort_keys=True) != json.dumps(
            other._key_parts(), sort_keys=True
        ):
            return False
        return all(
            a is None or b is None or a == b
            for a, b in ((self.env_values.get(k), other.env_values.get(k)) for k in ENV_KEYS)
        )

    @property
    def layout(self) -> str:
        if self.kind == "curve":
            where = "on 1 node" if self.nodes == 1 else f"on {self.nodes} nodes"
            return f"{int(self.scale)} ranks {where}"
        if self.axis == "nodes":
            return f"{self.ranks_per_node} rank{'s' if self.ranks_per_node != 1 else ''} per node"
        if self.nodes is not None:
            return "on 1 node" if self.nodes == 1 else f"on {self.nodes} nodes"
        return ""

    @property
    def title(self) -> str:
        shown = ", ".join(
            f"{k}={v}"
            for k, v in sorted(self.params.items())
            if k not in ("source", "test") and v is not None
        )
        what = {
            "strong": f"strong scaling {self.layout}, problem {self.problem}",
            "weak": f"weak scaling {self.layout}, {self.problem} per rank",
            "curve": self.layout,
            "single": f"runs, problem {self.problem}" if self.problem else "runs",
        }[self.kind]
        return f"{self.kernel} ({what}" + (f"; {shown})" if shown else ")")

    def table(self) -> list[dict[str, Any]]:
        """One row per point: layout, time and its interval, scaling figures with
        intervals, figure of merit with its interval, job ids, git, status.

        Computed once (every output asks for it); each call returns fresh row dicts.
        """
        if self._rows is None:
            self._rows = self._table()
        return [dict(r) for r in self._rows]

    def _table(self) -> list[dict[str, Any]]:
        rows = []
        for p in self.points:
            st = p.stats()
            fom = p.fom()
            first = p.runs[0]
            row = {
                "x": p.x,
                "ranks": first.ranks,
                "nodes": first.nodes,
                "ranks_per_node": first.ranks_per_node,
                "runs": len(p.runs),
                "samples": st.n if st else 0,
                "time_s": st.median if st else math.nan,
                "time_low": st.low if st else math.nan,
                "time_high": st.high if st else math.nan,
                "time_min": st.min if st else math.nan,
                "time_p99": st.p99 if st else math.nan,
                "confidence": st.confidence if st else math.nan,
                "fom": fom["value"],
                "fom_low": fom["low"],
                "fom_high": fom["high"],
                "fom_unit": fom["unit"],
                "fom_name": fom["name"],
                "fom_basis": fom["basis"],
                "jobs": _join([r.job for r in p.runs]),
                "git": _join([r.git for r in p.runs], 2),
                "problem": first.size_label,
                "status": p.status,
            }
            if self.kind == "curve":
                row["band_low"], row["band_high"] = p.band()
            rows.append(row)
        good = [r for r in rows if r["status"] == "ok" and _num(r["time_s"]) and r["time_s"] > 0]
        if self.kind in ("strong", "weak") and len(good) >= 2:
            base = min(good, key=lambda r: (r["ranks"], r["nodes"]))
            for r in good:
                q = r["ranks"] / base["ranks"]
                ratio = scaling.speedup(base["time_s"], r["time_s"])  # T(p0) / T(p)
                if r is base:
                    lo = hi = 1.0  # 1 by definition
                elif min(base["samples"], r["samples"]) < 2:
                    lo = hi = math.nan  # one sample has no interval, nor has a ratio with it
                else:
                    lo, hi = scaling.ratio_interval(
                        (base["time_low"], base["time_high"]), (r["time_low"], r["time_high"])
                    )
                if self.kind == "strong":
                    r.update(
                        speedup=ratio,
                        speedup_low=lo,
                        speedup_high=hi,
                        ideal=q,
                        efficiency=scaling.efficiency(ratio, q),
                        efficiency_low=lo / q,
                        efficiency_high=hi / q,
                        karp_flatt=scaling.karp_flatt(ratio, q),
                    )
                else:  # the same problem per rank: the work grows with the ranks
                    r.update(
                        efficiency=ratio,
                        efficiency_low=lo,
                        efficiency_high=hi,
                        ideal=q,
                        relative_performance=ratio * q,
                        relative_performance_low=lo * q,
                        relative_performance_high=hi * q,
                    )
        return rows


def _points(runs: list[Run], x: str) -> list[Point]:
    """Points keyed by the whole layout, so two layouts never share a point."""
    by_key: dict[tuple[int, ...], Point] = {}
    for r in runs:
        if x == "size":
            key, value = (r.message_size or 0,), r.message_size or 0
        else:
            key, value = (
                (r.ranks, r.nodes, r.ranks_per_node),
                (r.nodes if x == "nodes" else r.ranks),
            )
        by_key.setdefault(key, Point(value)).runs.append(r)
    return [by_key[k] for k in sorted(by_key)]


def build_runs(recs: list[dict[str, Any]]) -> tuple[list[Run], list[str]]:
    """Validated runs, and the reason for each record that could not be used."""
    runs, problems = [], []
    for rec in recs:
        try:
            runs.append(describe(rec))
        except (ValueError, TypeError, ArithmeticError) as exc:
            where = rec.get("_source", "a record") if isinstance(rec, dict) else "a record"
            problems.append(f"{where}: {exc}; skipped")
    return runs, problems


def build(recs: list[dict[str, Any]]) -> list[Series]:
    """Group records into series (strong, weak, single runs, curves); records that
    cannot be placed are left out (:func:`hpcsuite.report.load.load` reports them)."""
    runs, _ = build_runs(recs)
    groups: dict[str, list[Run]] = {}
    for r in runs:
        groups.setdefault(json.dumps([r.kernel, r.params, r.env], sort_keys=True), []).append(r)
    out: list[Series] = []
    for members in groups.values():
        kernel, params, env = members[0].kernel, members[0].params, members[0].env
        if kernel.startswith("microbench."):
            layouts: dict[tuple[int, int, int], list[Run]] = {}
            for r in members:
                layouts.setdefault((r.ranks, r.nodes, r.ranks_per_node), []).append(r)
            for (ranks, nodes, rpn), rs in sorted(layouts.items()):
                out.append(
                    Series(
                        "curve",
                        kernel,
                        params,
                        env,
                        ranks,
                        _points(rs, "size"),
                        axis="size",
                        nodes=nodes,
                        ranks_per_node=rpn,
                    )
                )
            continue
        used: set[int] = set()

        def sweep(kind: str, by: dict[tuple[Any, ...], list[Run]], axis: str) -> None:
            for key, rs in sorted(by.items(), key=lambda kv: json.dumps(kv[0])):
                distinct_x = {r.ranks if axis == "ranks" else r.nodes for r in rs}
                if len(distinct_x) < 2 or (kind == "weak" and len({r.problem for r in rs}) < 2):
                    continue
                scale = rs[0].size if kind == "strong" else rs[0].size / rs[0].ranks
                label = rs[0].size_label if kind == "strong" else _per_rank_label(rs[0])
                fixed = {"nodes": key[1]} if axis == "ranks" else {"ranks_per_node": key[1]}
                out.append(
                    Series(
                        kind,
                        kernel,
                        params,
                        env,
                        scale,
                        _points(rs, axis),
                        axis=axis,
                        problem=label,
                        **fixed,
                    )
                )
                used.update(id(r) for r in rs)

        packed = [r for r in members if r.ranks == r.nodes * r.ranks_per_node]
        by: dict[tuple[Any, ...], list[Run]] = {}
        for r in members:
            by.setdefault((r.problem, r.nodes), []).append(r)
        sweep("strong", by, "ranks")
        by = {}
        for r in packed:
            by.setdefault((r.problem, r.ranks_per_node), []).append(r)
        sweep("strong", by, "nodes")
        by = {}
        for r in members:
            by.setdefault((_share(r), r.nodes), []).append(r)
        sweep("weak", by, "ranks")
        by = {}
        for r in packed:
            by.setdefault((_share(r), r.ranks_per_node), []).append(r)
        sweep("weak", by, "nodes")
        rest: dict[str, list[Run]] = {}
        for r in members:
            if id(r) not in used:
                rest.setdefault(r.problem, []).append(r)
        for rs in rest.values():
            out.append(
                Series(
                    "single",
                    kernel,
                    params,
                    env,
                    rs[0].size,
                    _points(rs, "ranks"),
                    problem=rs[0].size_label,
                )
            )
    order = {"strong": 0, "weak": 1, "single": 2, "curve": 3}
    return sorted(
        out,
        key=lambda s: (
            order[s.kind],
            s.kernel,
            s.axis,
            s.scale,
            s.nodes or 0,
            s.ranks_per_node or 0,
            s.env,
            json.dumps(s.params, sort_keys=True),
        ),
    )


def _share(r: Run) -> str:
    """The problem per rank, rounded so that 1000/3 and 2000/6 agree."""
    return f"{r.size / r.ranks:.9g}"


def _per_rank_label(r: Run) -> str:
    share = r.size / r.ranks
    if '"bytes"' in r.problem:
        return human_bytes(share)
    unit = "elements" if '"shape"' in r.problem else _SIZE_UNIT.get(r.kernel, "elements")
    return f"{human_count(share)} {unit}"
