"""``python -m hpcsuite.report RESULTS...``: scaling tables, plots, Markdown, HTML and CSV.

Examples
--------
python -m hpcsuite.report results/
python -m hpcsuite.report results/ --compare old-results/ --out report-new
python -m hpcsuite.report results/ --reference reference.json   # exit 1 if a bound is broken
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hpcsuite.core import cli
from hpcsuite.core.errors import CheckError, UsageError
from hpcsuite.predict import render as predict_render
from hpcsuite.predict import sections as predict_sections
from hpcsuite.predict.__main__ import add_model_options, options, records_parser
from hpcsuite.report import checks, load, plots, render, series

PROG = "hpcsuite.report"


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = records_parser(
        PROG,
        "Scaling report from hpcsuite JSON records (sweeps, sbatch runs, --json "
        "runs): strong and weak scaling tables by node layout (median time with "
        "the 95 % interval of the median, speedup and efficiency with intervals, "
        "Karp-Flatt, figure of merit from the same median, Slurm job ids), "
        "latency/bandwidth curves with min..p99 bands, plots, Markdown, "
        "self-contained HTML and CSV.",
    )
    p.add_argument(
        "--out",
        default="hpcsuite-report",
        metavar="DIR",
        help="folder for report.md, report.html, report.csv and plots/ [%(default)s]",
    )
    p.add_argument("--compare", nargs="+", metavar="OLD", help="older records to compare with")
    p.add_argument(
        "--threshold",
        type=float,
        default=0.05,
        help=(
            "smallest relative change of a median that --compare reports, when the "
            "change is also significant (Mann-Whitney U, p < 0.05) [%(default)s]"
        ),
    )
    p.add_argument(
        "--fail-on-regression", action="store_true", help="exit 3 when --compare finds a regression"
    )
    p.add_argument(
        "--reference",
        metavar="FILE",
        help="JSON bounds {kernel: {fom: [value, lower, upper, unit]}}; exit 3 if one is broken",
    )
    p.add_argument("--no-plots", action="store_true", help="tables only (no matplotlib needed)")
    p.add_argument("--quiet", action="store_true", help="no terminal tables")
    p.add_argument(
        "--model",
        action="store_true",
        help=(
            "add prediction sections: models fitted to the records, extended to "
            "--predict-to ranks with 95 %% intervals (hpcsuite.predict; needs SciPy)"
        ),
    )
    add_model_options(p)
    return p


def _write(path: Path, text: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(text.encode() if isinstance(text, str) else text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"--out: cannot write {str(path)!r} ({exc.strerror or exc})") from None


def prepare_out(name: str) -> Path:
    """The output folder, created and proven writable before any work is done.

    Raises
    ------
    UsageError
        When it is a file, or cannot be created or written (one line, exit 2).
    """
    out = Path(name)
    for path in (out, out / "plots"):
        if path.exists() and not path.is_dir():
            raise UsageError(
                f"--out {name!r}: {str(path)!r} is a file, not a folder; choose another --out"
            )
    try:
        out.mkdir(parents=True, exist_ok=True)
        # os.access trusts mode bits that root ignores and read-only mounts override: try.
        with tempfile.NamedTemporaryFile(dir=out, prefix=".hpcsuite-report-probe"):
            pass
    except OSError as exc:
        raise UsageError(
            f"--out {name!r} is not writable ({exc.strerror or exc}); choose another folder"
        ) from None
    return out


def _compare_lines(changes: list[dict], old: list[str], threshold: float) -> tuple[list[str], int]:
    lines, regressions = [], 0
    for c in changes:
        if c["verdict"] == "no significant change":
            continue
        regressions += c["verdict"] == "regression"
        p = f"p = {c['p_value']:.2g}, " if c["p_value"] == c["p_value"] else ""
        lines.append(
            f"{c['verdict']} ({c['direction']}): {c['series']} at {c['x']}: {c['metric']} "
            f"{c['old']:.4g} -> {c['new']:.4g} ({100 * c['change']:+.1f} %; {p}{c['method']})"
        )
    same = sum(c["verdict"] == "no significant change" for c in changes)
    if not changes:
        lines.append(
            f"nothing to compare: no point of these results matches one of {' '.join(old)}"
        )
    else:
        lines.append(
            f"{len(changes)} points compared with {' '.join(old)}: {len(changes) - same}"
            f" significant change(s), {same} with no significant change (two-sided Mann-Whitney U,"
            f" p < 0.05, and at least {100 * threshold:g} % change of the median)"
        )
    return lines, regressions


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.report``; return the exit status."""
    args = parser().parse_args(argv)
    if not 0 < args.threshold < 10:
        raise UsageError(f"--threshold {args.threshold!r} must be a fraction such as 0.05")
    # matplotlib and SciPy load only where a plot is drawn or a model fitted: ask up front.
    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("plots need matplotlib: pip install 'hpcsuite[report]', or use --no-plots")
    if args.model and importlib.util.find_spec("scipy") is None:
        raise UsageError("--model needs SciPy: pip install 'hpcsuite[report]'")
    if args.model:
        model_options = options(args)  # a bad knob is a one-line error before any work
    records, problems = load.load(args.results)
    all_series = series.build(records)
    lines: list[str] = []
    regressions = violations = 0
    if args.compare:
        old_records, old_problems = load.load(args.compare)
        problems += old_problems
        changes = checks.compare(all_series, series.build(old_records), args.threshold)
        compared, regressions = _compare_lines(changes, args.compare, args.threshold)
        lines += compared
    if args.reference:
        for r in checks.against_reference(all_series, checks.load_reference(args.reference)):
            violations += not r["passed"]
            verdict = "pass" if r["passed"] else "FAIL"
            lines.append(
                f"reference {verdict}: {r['series']} at {r['x']}: {r['metric']} "
                f"{r['value']:.4g} {r['unit']} in [{r['low']:.4g}, {r['high']:.4g}] {r['why']}"
            )

    out = prepare_out(args.out)
    for p in problems:  # warnings, even with --quiet: a skipped record changes the numbers
        print(f"skipped: {p}", file=sys.stderr)
    figures: dict[str, list[Path]] = {}
    if not args.no_plots:
        for i, s in enumerate(all_series):
            try:
                figures[s.key] = plots.draw(s, out / "plots", i)
            except OSError as exc:
                raise UsageError(
                    f"--out: cannot write plots into {str(out / 'plots')!r} ({exc.strerror or exc})"
                ) from None
    predicted: list = []
    md_extra = html_extra = ""
    if args.model:
        predicted = predict_sections.build(records, model_options)
        pfigs = {} if args.no_plots else predict_render.figures(predicted, out / "plots")
        md_extra = "## Predictions\n\n" + predict_render.markdown(predicted, pfigs, out)
        html_extra = predict_render.html_fragment(predicted, pfigs)
    _write(out / "report.md", render.markdown(all_series, figures, out, problems, lines, md_extra))
    _write(out / "report.html", render.html_page(all_series, figures, problems, lines, html_extra))
    _write(out / "report.csv", render.to_csv(all_series))

    if not args.quiet:
        print(render.terminal(all_series))
        if predicted:
            print(predict_render.text(predicted))
        for line in lines:
            print(line)
        print(
            f"{len(records)} records, {len(all_series)} series -> {out}/report.md, report.html, "
            "report.csv" + (", plots/" if figures and any(figures.values()) else "")
        )
    if violations:
        raise CheckError(f"{violations} reference bound(s) broken (see above)")
    if regressions and args.fail_on_regression:
        raise CheckError(f"{regressions} regression(s) against {' '.join(args.compare)}")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
