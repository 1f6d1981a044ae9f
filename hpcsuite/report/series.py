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

from hpcsuite.core import stats
from hpcsuite.report import scaling
from hpcsuite.report.runs import (
    ENV_KEYS,
    SIZE_UNIT,
    Run,
    describe,
    env_text,
    human_bytes,
    human_count,
    join_values,
    number,
)


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
            out.update(value=number(value), low=number(low), high=number(high), basis="median")
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
            lo, hi = number(row.get(f"min_{unit}")), number(row.get(f"p99_{unit}"))
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
                "jobs": join_values([r.job for r in p.runs]),
                "git": join_values([r.git for r in p.runs], 2),
                "problem": first.size_label,
                "status": p.status,
            }
            if self.kind == "curve":
                row["band_low"], row["band_high"] = p.band()
            rows.append(row)
        good = [r for r in rows if r["status"] == "ok" and number(r["time_s"]) and r["time_s"] > 0]
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
    unit = "elements" if '"shape"' in r.problem else SIZE_UNIT.get(r.kernel, "elements")
    return f"{human_count(share)} {unit}"
