"""Group records into series. Pure.

Records belong together when the module, its parameters (apart from those that set
the problem size or the repetitions) and the environment (machine, MPI library,
device) agree; different environments are never merged. Within such a group:

* a **strong** series holds one problem size at two or more rank counts;
* a **weak** series holds a constant problem size per rank at two or more rank counts
  (and two or more problem sizes);
* a **curve** is a microbenchmark over message sizes at one rank count and buffer kind;
* whatever fits no series is listed as a single run.

Repeated runs of one point pool their timed samples.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from hpcsuite.core.timing import summarize
from hpcsuite.report import scaling

#: Parameters that may differ inside a series.
SCALE_PARAMS = {"shape", "bytes", "warmup", "repeat", "size", "iterations", "proc_grid"}


def env_key(env: dict[str, Any]) -> str:
    """The part of the fingerprint that decides comparability (not host names or git)."""
    return " | ".join(str(env.get(k)) for k in ("machine", "mpi_library", "device", "device_name"))


def problem_size(rec: dict[str, Any]) -> float:
    """Bytes (or elements) of the problem: ``params.bytes``, else the shape's product."""
    params = rec.get("params", {})
    if isinstance(params.get("bytes"), (int, float)):
        return float(params["bytes"])
    if isinstance(params.get("shape"), list):
        return float(math.prod(params["shape"]))
    return float(params.get("size") or 0)


def _samples(rec: dict[str, Any]) -> list[float]:
    times = rec.get("times") or {}
    samples = times.get("samples")
    if isinstance(samples, list) and samples:
        return [float(s) for s in samples if isinstance(s, (int, float))]
    return [float(times["wall"])] if isinstance(times.get("wall"), (int, float)) else []


@dataclass
class Point:
    """One rank count (or message size) of a series, over its repeated runs."""

    x: int
    records: list[dict[str, Any]] = field(default_factory=list)

    @property
    def samples(self) -> list[float]:
        return [s for r in self.records for s in _samples(r)]

    @property
    def status(self) -> str:
        """ok, failed (a check failed or the run said so) or partial (no timings)."""
        if any((r.get("check") or {}).get("passed") is False or r.get("status") == "failed"
               for r in self.records):
            return "failed"
        return "ok" if self.samples or self.fom() else "partial"

    def time(self) -> dict[str, float]:
        """Median and 95 % CI of the pooled samples (NaN when there are none)."""
        if not self.samples:
            return {"median": math.nan, "ci95_low": math.nan, "ci95_high": math.nan, "n": 0}
        s = summarize(self.samples)
        return {"median": s.median, "ci95_low": s.ci95_low, "ci95_high": s.ci95_high, "n": s.n}

    def fom(self) -> tuple[float, str, str] | None:
        """Median figure of merit over the runs: (value, unit, name)."""
        foms = [r["fom"] for r in self.records if isinstance(r.get("fom"), dict)
                and isinstance(r["fom"].get("value"), (int, float))]
        if not foms:
            return None
        values = sorted(f["value"] for f in foms)
        return values[len(values) // 2], str(foms[0].get("unit", "")), str(foms[0].get("name", ""))


@dataclass
class Series:
    """A set of points that belong together."""

    kind: str  # strong | weak | curve | single
    kernel: str
    params: dict[str, Any]
    env: str
    scale: float  # problem size (strong), per-rank size (weak), ranks (curve)
    points: list[Point]

    @property
    def key(self) -> str:
        """Identity across reports, for --compare."""
        return json.dumps([self.kind, self.kernel, self.params, self.env, self.scale], sort_keys=True)

    @property
    def title(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items())
                          if k not in ("source", "test") and v is not None)
        what = {"strong": f"strong scaling, problem {self.scale:g}",
                "weak": f"weak scaling, {self.scale:g} per rank",
                "curve": f"{int(self.scale)} ranks", "single": "runs"}[self.kind]
        return f"{self.kernel} ({what}; {shown})"

    def table(self) -> list[dict[str, Any]]:
        """One row per point with time, scaling figures, figure of merit and status."""
        rows = []
        for p in self.points:
            t = p.time()
            fom = p.fom()
            rows.append({"x": p.x, "nodes": max((r.get("nodes") or 1) for r in p.records),
                         "runs": len(p.records), "time_s": t["median"], "ci95_low": t["ci95_low"],
                         "ci95_high": t["ci95_high"], "samples": t["n"],
                         "fom": fom[0] if fom else None, "fom_unit": fom[1] if fom else "",
                         "fom_name": fom[2] if fom else "", "status": p.status})
        good = [r for r in rows if r["status"] == "ok" and r["time_s"] > 0]
        if self.kind == "strong" and len(good) >= 2:
            math_rows = {m["ranks"]: m for m in scaling.strong([r["x"] for r in good],
                                                               [r["time_s"] for r in good])}
            for r in rows:
                r.update({k: v for k, v in math_rows.get(r["x"], {}).items() if k != "ranks"})
        if self.kind == "weak" and len(good) >= 2:
            work = [self.scale * r["x"] for r in good]
            math_rows = {m["ranks"]: m for m in scaling.weak([r["x"] for r in good],
                                                             [r["time_s"] for r in good], work)}
            for r in rows:
                r.update({k: v for k, v in math_rows.get(r["x"], {}).items() if k != "ranks"})
        return rows


def _base_key(rec: dict[str, Any]) -> str:
    params = {k: v for k, v in (rec.get("params") or {}).items() if k not in SCALE_PARAMS}
    return json.dumps([rec.get("kernel"), params, env_key(rec.get("env") or {})], sort_keys=True)


def _points(recs: list[dict[str, Any]], x: str) -> list[Point]:
    by_x: dict[int, Point] = {}
    for r in recs:
        value = int(r.get("ranks", 0) if x == "ranks" else (r.get("params") or {}).get("size", 0))
        by_x.setdefault(value, Point(value)).records.append(r)
    return [by_x[k] for k in sorted(by_x)]


def build(recs: list[dict[str, Any]]) -> list[Series]:
    """Group records into series (strong, weak, curves, then leftover single runs)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        groups.setdefault(_base_key(r), []).append(r)
    out: list[Series] = []
    for key, members in groups.items():
        kernel, params, env = json.loads(key)
        if str(kernel).startswith("microbench."):
            by_ranks: dict[int, list[dict[str, Any]]] = {}
            for r in members:
                by_ranks.setdefault(int(r.get("ranks", 0)), []).append(r)
            for ranks, rs in sorted(by_ranks.items()):
                out.append(Series("curve", kernel, params, env, ranks, _points(rs, "size")))
            continue
        used: set[int] = set()
        by_size: dict[float, list[dict[str, Any]]] = {}
        by_share: dict[float, list[dict[str, Any]]] = {}
        for r in members:
            by_size.setdefault(problem_size(r), []).append(r)
            by_share.setdefault(problem_size(r) / max(int(r.get("ranks", 1)), 1), []).append(r)
        for size, rs in sorted(by_size.items()):
            if len({r.get("ranks") for r in rs}) >= 2:
                out.append(Series("strong", kernel, params, env, size, _points(rs, "ranks")))
                used |= {id(r) for r in rs}
        for share, rs in sorted(by_share.items()):
            if len({r.get("ranks") for r in rs}) >= 2 and len({problem_size(r) for r in rs}) >= 2:
                out.append(Series("weak", kernel, params, env, share, _points(rs, "ranks")))
                used |= {id(r) for r in rs}
        rest = [r for r in members if id(r) not in used]
        if rest:
            out.append(Series("single", kernel, params, env, 0.0, _points(rest, "ranks")))
    order = {"strong": 0, "weak": 1, "single": 2, "curve": 3}
    return sorted(out, key=lambda s: (order[s.kind], s.kernel, s.scale))
