"""Hold-out check of hpcsuite.predict, and the Horovod-paper comparison table.

Runs a kernel locally at each rank count (interleaved rounds, so that a change of load
reaches every count), fits the Extra-P normal form on all but the largest count and
prints the prediction for the largest next to its measurement; then prints the
training model against the Horovod paper (benchmarks/horovod_paper.json).

    python benchmarks/predict_holdout.py                      # montecarlo at 1,2,3
    python benchmarks/predict_holdout.py --ranks 1,2,4,8 --kernel stencil -- --shape 2048x2048
    python benchmarks/predict_holdout.py --horovod-only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hpcsuite.predict import paper, sections  # noqa: E402

DEFAULT_ARGS = {
    "montecarlo": ["--paths", "4000000", "--repeat", "3"],
    "stencil": ["--shape", "1024x1024", "--steps", "50", "--repeat", "3"],
}


def holdout(kernel: str, ranks: list[int], rounds: int, extra: list[str]) -> dict:
    """Run, fit on ``ranks[:-1]``, predict ``ranks[-1]``."""
    mpiexec = str(Path(sys.executable).parent / "mpiexec")
    env = {**os.environ, "MPIR_CVAR_ENABLE_HEAVY_YIELD": "1", "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "records.jsonl"
        for _ in range(rounds):
            for n in ranks:
                cmd = [
                    mpiexec,
                    "-n",
                    str(n),
                    sys.executable,
                    "-m",
                    f"hpcsuite.{kernel}",
                    *(extra or DEFAULT_ARGS.get(kernel, [])),
                    "--json",
                    str(out),
                    "--quiet",
                ]
                subprocess.run(
                    cmd, check=True, env=env, cwd=ROOT, timeout=900, stdout=subprocess.DEVNULL
                )
        recs = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    top = ranks[-1]
    secs = [
        s
        for s in sections.build(
            [r for r in recs if r["ranks"] < top], sections.Options(predict_to=top)
        )
        if s.kind == "scaling"
    ]
    if not secs:
        raise SystemExit("no scaling series in the records")
    value, low, high = secs[0].data["prediction"]
    measured = float(
        np.median([t for r in recs if r["ranks"] == top for t in r["times"]["samples"]])
    )
    return {
        "kernel": kernel,
        "fit_on": ranks[:-1],
        "predict": top,
        "predicted_s": value,
        "low_s": low,
        "high_s": high,
        "measured_s": measured,
        "error": value / measured - 1,
        "inside": bool(low <= measured <= high),
        "formula": secs[0].data["formula"],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kernel", default="montecarlo")
    p.add_argument(
        "--ranks", default="1,2,3", help="rank counts; the last is held out [%(default)s]"
    )
    p.add_argument(
        "--rounds", type=int, default=2, help="interleaved runs of every rank count [%(default)s]"
    )
    p.add_argument("--horovod-only", action="store_true")
    p.add_argument("extra", nargs="*", help="options for the kernel (after --)")
    args = p.parse_args()
    if not args.horovod_only:
        r = holdout(args.kernel, [int(v) for v in args.ranks.split(",")], args.rounds, args.extra)
        print(
            f"hold-out {r['kernel']}: fit on ranks {r['fit_on']} ({r['formula']}), "
            f"predicted n={r['predict']}: {r['predicted_s']:.4g} s "
            f"[{r['low_s']:.4g}, {r['high_s']:.4g}], measured {r['measured_s']:.4g} s, "
            f"error {100 * r['error']:+.1f} %, inside the interval: {r['inside']}"
        )
    print()
    print(paper.table(paper.compare()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
