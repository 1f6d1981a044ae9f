"""Hold-out validation of hpcsuite.predict on real local runs: fit on the smaller rank
counts, predict the largest, and compare with its measurement.

The allowed error is stated here, before the run: the measured median at n=3 must lie
inside the 95 % prediction interval made from n=1 and n=2 alone, and the point
prediction must be within HOLDOUT_ERROR of it. The rank counts are interleaved
(1, 2, 3, 1, 2, 3) so that a change of load on a shared machine reaches every rank
count.

On a 2-core machine n=3 is oversubscribed: the model time-shares it from the records'
``provenance.cores`` (no flag), and from their ``cpu_share`` it also sees other work
that shared the cores while n=1 and n=2 ran and carries it to n=3. Marked ``timing``
(it asserts on measured times) but run by tests/run.sh: errors seen on the project's
2-core VM under load 4-8 were +2.9 %, +5.3 %, -0.2 %, -30.2 %, -9.7 % (README,
Predicting scaling). Before either, a quiet 2-core CI runner measured 0.073 s against
an interval of 0.025-0.058 s (ranks modelled as if each had its own core), and the
loaded VM +57 % and +56 % with time-sharing from the cores alone.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import launch

from hpcsuite.predict import comm, sections

pytest.importorskip("scipy")

#: Largest relative error of the point prediction at the held-out rank count.
HOLDOUT_ERROR = 0.5
QUIET = {"MPIR_CVAR_ENABLE_HEAVY_YIELD": "1", "OMP_NUM_THREADS": "1"}


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _run(n, out, module, *args):
    """Run ``module`` on ``n`` ranks, appending its records to ``out``."""
    proc = launch(n, "-m", module, *args, "--json", str(out), "--quiet", timeout=180, env=QUIET)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.timing
def test_holdout_montecarlo_predicts_n3_from_n1_and_n2(tmp_path):
    out = tmp_path / "mc.jsonl"
    for n in (1, 2, 3, 1, 2, 3):
        _run(n, out, "hpcsuite.montecarlo", "--paths", "2000000", "--repeat", "3")
    recs = _records(out)
    assert all(isinstance(r["provenance"]["cores"], int) for r in recs)
    shares = {n: [r["provenance"]["cpu_share"] for r in recs if r["ranks"] == n] for n in (1, 2, 3)}
    secs = [
        s
        for s in sections.build(
            [r for r in recs if r["ranks"] <= 2], sections.Options(predict_to=3)
        )
        if s.kind == "scaling"
    ]
    assert len(secs) == 1, [s.title for s in secs]
    value, low, high = secs[0].data["prediction"]
    measured = float(np.median([t for r in recs if r["ranks"] == 3 for t in r["times"]["samples"]]))
    error = value / measured - 1
    print(
        f"hold-out montecarlo n=3: predicted {value:.4g} s [{low:.4g}, {high:.4g}], "
        f"measured {measured:.4g} s, "
        f"error {100 * error:+.1f} %; cores {recs[0]['provenance']['cores']}, cpu_share {shares}"
    )
    assert low <= measured <= high
    assert abs(error) <= HOLDOUT_ERROR


def test_real_microbench_records_give_hockney_and_collective_models(tmp_path):
    out = tmp_path / "mb.jsonl"
    for n, tests in ((2, ("latency", "allreduce")), (3, ("allreduce",))):
        _run(n, out, "hpcsuite.microbench", *tests, "--max", "64K", "-i", "20", "-x", "3")
    recs = _records(out)
    secs = sections.build(recs, sections.Options(predict_to=512))
    kinds = [s.kind for s in secs]
    assert kinds.count("p2p") >= 1 and "collective" in kinds
    p2p = next(s for s in secs if s.kind == "p2p")
    assert all(r["alpha_s"] >= 0 and r["bandwidth_Bps"] > 0 for r in p2p.rows)
    coll = next(s for s in secs if s.kind == "collective")
    assert coll.data["ranks"] == [2, 3]
    assert coll.data["regimes"][0]["algorithm"] in comm.ALGORITHMS["allreduce"]
    # Measured on one node, predicted at 512 ranks: the regime change is named.
    assert any("crosses nodes" in w for w in coll.warnings)
    assert all(r["low"] <= r["time_s"] <= r["high"] for r in coll.rows)
