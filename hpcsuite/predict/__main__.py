"""``python -m hpcsuite.predict RESULTS...``: how will it scale where I have not run it?

Examples
--------
python -m hpcsuite.predict results/ --predict-to 512
python -m hpcsuite.predict results/ --bandwidth 3.125 --latency 10 --gpus-per-node 4 --out pred
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError

PROG = "hpcsuite.predict"


#: The prediction knobs, shared with ``python -m hpcsuite.report --model``: flag, type,
#: default, metavar, help.
MODEL_OPTIONS = (
    ("--predict-to", cli.positive_int, 512, "N", "extend every model to N ranks [%(default)s]"),
    (
        "--cores-per-node",
        cli.positive_int,
        None,
        "C",
        (
            "what-if nodes of C cores: ranks beyond C per node time-share them (time x ranks "
            "per node / C) [the cores each record says its node had]"
        ),
    ),
    (
        "--ranks-per-node",
        cli.positive_int,
        None,
        "R",
        (
            "what-if layout of the predicted points: R ranks on each node, p / R nodes "
            "[the series' own: its node count, or its ranks per node, kept]"
        ),
    ),
    (
        "--bandwidth",
        float,
        None,
        "GB/s",
        "what-if inter-node bandwidth for the training prediction (1e9 bytes/s)",
    ),
    (
        "--latency",
        float,
        None,
        "US",
        "what-if inter-node latency for the training prediction (microseconds)",
    ),
    (
        "--fusion-bytes",
        cli.positive_int,
        None,
        "BYTES",
        "what-if fusion buffer [the record's, else 4 MiB]",
    ),
    (
        "--gpus-per-node",
        cli.positive_int,
        None,
        "G",
        "what-if ranks per node [the records' largest]",
    ),
    (
        "--overlap",
        float,
        None,
        "FRACTION",
        "what-if fraction of the allreduce hidden behind backward [measured]",
    ),
)


def records_parser(prog: str, description: str) -> cli.ArgumentParser:
    """A parser that reads ``RESULTS...`` record files or folders (this module's and the
    report's)."""
    p = cli.ArgumentParser(prog=f"python -m {prog}", description=description)
    p.add_argument("results", nargs="+", metavar="RESULTS", help="record files (.jsonl) or folders")
    return p


def add_model_options(p: cli.ArgumentParser) -> None:
    """Add :data:`MODEL_OPTIONS` to ``p``; :func:`options` reads them back."""
    for flag, kind, default, metavar, text in MODEL_OPTIONS:
        p.add_argument(flag, type=kind, default=default, metavar=metavar, help=text)


def options(args: object):
    """:class:`~hpcsuite.predict.sections.Options` from parsed arguments."""
    # The model modules load only when a model is asked for: ``report`` imports this
    # module for its option table alone.
    from hpcsuite.predict.sections import Options

    for name in ("bandwidth", "latency", "overlap"):
        v = getattr(args, name)
        if v is not None and not (v == v and v >= 0 and v != float("inf")):
            raise UsageError(f"--{name} must be a finite number >= 0, not {v!r}")
    if args.bandwidth == 0:  # type: ignore[attr-defined]
        raise UsageError("--bandwidth must be > 0")
    if args.overlap is not None and args.overlap > 1:  # type: ignore[attr-defined]
        raise UsageError("--overlap is a fraction between 0 and 1")
    return Options(
        predict_to=args.predict_to,
        cores_per_node=args.cores_per_node,  # type: ignore[attr-defined]
        ranks_per_node=args.ranks_per_node,  # type: ignore[attr-defined]
        bandwidth=args.bandwidth,
        latency=args.latency,
        fusion_bytes=args.fusion_bytes,  # type: ignore[attr-defined]
        gpus_per_node=args.gpus_per_node,
        overlap=args.overlap,
    )  # type: ignore[attr-defined]


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = records_parser(
        PROG,
        "Performance models fitted from hpcsuite records, extended to --predict-to ranks with "
        "95 % prediction intervals: Hockney alpha-beta per message-size regime (intra- and "
        "inter-node), collective algorithm models, Extra-P normal-form scaling models of "
        "kernel sweeps, and the data-parallel training step time with what-if knobs.",
    )
    add_model_options(p)
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="also write prediction.md, prediction.json and one figure per section there",
    )
    p.add_argument(
        "--format", choices=("text", "markdown", "json"), default="text", help="terminal output"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run; return the exit status."""
    args = parser().parse_args(argv)
    opts = options(args)
    from hpcsuite.predict import render, sections
    from hpcsuite.report import load

    recs, problems = load.load(args.results)
    for line in problems:
        print(f"{PROG}: {line}", file=sys.stderr)
    secs = sections.build(recs, opts)
    if not secs:
        print(
            f"{PROG}: nothing to model: needs a sweep over two or more rank counts, "
            "microbenchmark curves "
            "or train.synthetic records",
            file=sys.stderr,
        )
    if args.format == "json":
        print(json.dumps([s.as_dict() for s in secs], indent=1))
    elif args.format == "markdown":
        print(render.markdown(secs))
    else:
        print(render.text(secs), end="")
    if args.out:
        write(Path(args.out), secs)
    return 0


def write(folder: Path, secs: list) -> dict[int, Path]:
    """prediction.md, prediction.json and figures under ``folder``; the figures by section."""
    from hpcsuite.predict import render

    try:
        (folder / "plots").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out: cannot create {str(folder)!r} ({exc.strerror or exc})") from None
    figures = render.figures(secs, folder / "plots")
    try:
        (folder / "prediction.md").write_text(
            "# Predictions\n\n" + render.markdown(secs, figures, folder)
        )
        (folder / "prediction.json").write_text(json.dumps([s.as_dict() for s in secs], indent=1))
    except OSError as exc:
        raise UsageError(
            f"--out: cannot write in {str(folder)!r} ({exc.strerror or exc})"
        ) from None
    return figures


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
