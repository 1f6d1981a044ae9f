"""hpcsuite.predict on generated data with known answers, the Horovod-paper comparison,
and the command line. Pure (no MPI job); the real-run hold-out is test_predict_holdout.py."""

from __future__ import annotations

import json
import math
import os
from fractions import Fraction

import numpy as np
import pytest
from conftest import python

from hpcsuite.predict import comm, empirical, paper, sections, training

pytest.importorskip("scipy")


# ----------------------------------------------------------------------------- Hockney
def test_hockney_recovers_alpha_beta_and_the_protocol_switch():
    rng = np.random.default_rng(7)
    m = 2.0 ** np.arange(0, 23)
    # eager up to 64 KiB: 1 us, 5 GB/s; rendezvous above: 20 us, 10 GB/s; 3 % noise
    true = np.where(m <= 65536, 1e-6 + m / 5e9, 20e-6 + m / 10e9)
    t = true * (1 + 0.03 * rng.standard_normal(m.size))
    model = comm.fit_hockney(comm.Curve("latency", 2, 1, 2, m, t))
    assert len(model.regimes) == 2
    small, large = model.regimes
    assert small.hi == 65536 and large.lo == 131072
    for reg, alpha, bw in ((small, 1e-6, 5e9), (large, 20e-6, 10e9)):
        lo, hi = reg.interval("alpha")
        assert lo <= alpha <= hi and abs(reg.alpha / alpha - 1) < 0.15
        b, b_lo, b_hi = reg.bandwidth()
        assert b_lo <= bw <= b_hi and abs(b / bw - 1) < 0.1


def test_hockney_one_line_stays_one_regime():
    rng = np.random.default_rng(3)
    m = 2.0 ** np.arange(0, 21)
    t = (2e-6 + m / 8e9) * (1 + 0.02 * rng.standard_normal(m.size))
    model = comm.fit_hockney(comm.Curve("latency", 2, 2, 1, m, t))
    assert len(model.regimes) == 1
    assert model.curve.where == "inter-node"


def _collective_curves(coll: str, algo: str, ranks, alpha=3e-6, beta=2.5e-10, seed=0):
    rng = np.random.default_rng(seed)
    curves = []
    for n in ranks:
        ms = 2.0 ** np.arange(2, 21)
        a, b, _ = comm.ALGORITHMS[coll][algo](np.array(float(n)))
        t = (a * alpha + b * beta * ms) * (1 + 0.03 * rng.standard_normal(ms.size))
        curves.append(comm.Curve(coll, n, 1, n, ms, t))
    return curves


@pytest.mark.parametrize(
    "coll, algo",
    [
        ("allreduce", "ring"),
        ("allreduce", "recursive doubling"),
        ("allgather", "ring"),
        ("alltoall", "Bruck"),
        ("bcast", "binomial tree"),
    ],
)
def test_collective_algorithm_chosen_from_several_rank_counts(coll, algo):
    curves = _collective_curves(coll, algo, (2, 4, 8, 16))
    model = comm.fit_collective(coll, curves)
    assert not model.warnings
    assert len(model.regimes) == 1
    reg = model.regimes[0]
    assert reg.chosen.algorithm == algo
    a_lo, a_hi = reg.chosen.fit.coef_interval(0)
    b_lo, b_hi = reg.chosen.fit.coef_interval(1)
    assert a_lo <= 3e-6 <= a_hi and b_lo <= 2.5e-10 <= b_hi
    # Prediction at 64 ranks: the true time inside the interval.
    a, b, _ = comm.ALGORITHMS[coll][algo](np.array(64.0))
    v, lo, hi = model.predict(64, 1 << 20)
    assert lo <= a * 3e-6 + b * 2.5e-10 * (1 << 20) <= hi


def test_collective_one_rank_count_says_it_cannot_choose():
    curves = _collective_curves("allreduce", "ring", (4,))
    model = comm.fit_collective("allreduce", curves)
    assert any("cannot tell them apart" in w for w in model.warnings)
    with pytest.raises(ValueError, match="no algorithm models"):
        comm.fit_collective("scan", curves)


# ----------------------------------------------------------------------------- Extra-P form
def test_normal_form_recovers_exponents_with_noise():
    rng = np.random.default_rng(11)
    p = np.array([1, 2, 4, 8, 16, 32, 64])
    true = lambda q: 0.5 + 3.0 * q**0.5 * np.log2(q)  # noqa: E731
    model = empirical.fit(
        p, [true(q) * (1 + 0.02 * rng.standard_normal(5)) for q in p], negative=False
    )
    (term,) = model.best.terms
    assert (term.i, term.j) == (Fraction(1, 2), 1)
    c0, c1 = model.best.fit.coef
    assert abs(c0 / 0.5 - 1) < 0.2 and abs(c1 / 3.0 - 1) < 0.05
    v, lo, hi = model.predict([512])
    assert lo[0] <= true(512) <= hi[0]
    assert "cross-validated" in model.selection


def test_normal_form_strong_scaling_is_amdahl():
    rng = np.random.default_rng(5)
    p = np.array([1, 2, 3, 4, 6, 8])
    true = lambda q: 0.2 + 4.0 / q  # noqa: E731
    model = empirical.fit(p, [true(q) * (1 + 0.02 * rng.standard_normal(4)) for q in p])
    (term,) = model.best.terms
    assert (term.i, term.j) == (Fraction(-1), 0)
    v, lo, hi = model.predict([512])
    assert lo[0] <= true(512) <= hi[0]
    assert "c" not in model.best.formula() or "p^(-1)" in model.best.formula()


def test_two_points_give_a_wide_honest_interval():
    rng = np.random.default_rng(2)
    true = lambda q: 0.1 + 2.0 / q  # noqa: E731
    model = empirical.fit([1, 2], [true(q) * (1 + 0.02 * rng.standard_normal(5)) for q in (1, 2)])
    assert any("only 2 process counts" in w for w in model.warnings)
    assert len(model.plausible) > 1
    v, lo, hi = model.predict([3])
    assert lo[0] <= true(3) <= hi[0]
    warn = empirical.extrapolation_warnings(model, 512)
    assert any("beyond the largest" in w for w in warn)


def test_oversubscription_factor_multiplies_the_prediction():
    model = empirical.fit(
        [1, 2], [[1.0, 1.01, 0.99], [0.5, 0.505, 0.495]], factor=lambda q: np.maximum(1.0, q / 2)
    )
    v1, _, _ = model.predict([3])
    plain = empirical.fit([1, 2], [[1.0, 1.01, 0.99], [0.5, 0.505, 0.495]])
    v0, _, _ = plain.predict([3])
    assert v1[0] == pytest.approx(1.5 * v0[0])


def test_fit_refuses_one_point():
    with pytest.raises(ValueError, match="at least 2"):
        empirical.fit([4], [[1.0]])


# ----------------------------------------------------------------------------- training
def test_fusion_buffers_and_ring_time():
    assert training.fusion_buffers(10, 4) == [4.0, 4.0, 2.0]
    assert training.fusion_buffers(8, 4) == [4.0, 4.0]
    assert training.fusion_buffers(3, 0) == [3.0]
    net = training.Network(1e-6, 1e-9, 1e-5, 1e-8)
    # 4 ranks on one node of 4: intra; ring: 2(p-1) alpha + 2(p-1)/p m beta per buffer
    assert training.comm_time(4, 8, 4, net, 4) == pytest.approx(2 * (6e-6 + 1.5 * 4 * 1e-9))
    assert training.comm_time(8, 8, 4, net, 4) == pytest.approx(2 * (14e-5 + 1.75 * 4 * 1e-8))
    assert training.comm_time(1, 8, 4, net, 4) == 0.0


def _train_rec(ranks, steps, exposed=0.0, grad=4e8, rpn=None):
    return {
        "schema": "hpcsuite.record/1",
        "kernel": "train.synthetic",
        "ranks": ranks,
        "ranks_per_node": rpn or ranks,
        "params": {"model": "resnet", "batch_size": 32, "fp16_allreduce": False},
        "times": {"unit": "s", "samples": steps},
        "result": {
            "gradient_bytes": grad,
            "exposed_reduction_s_per_step": exposed,
            "overlap": "thread",
        },
        "env": {"machine": "x86_64", "device_name": "gpu", "hosts": ["a"] * ranks},
    }


def test_training_measured_overlap_and_prediction():
    net = training.Network.from_knobs(10.0, 10.0)  # 10 us, 10 GB/s everywhere
    # The modelled allreduce at 4 ranks; the record exposes 40 % of it: 60 % hidden.
    modelled = training.comm_time(4, 4e8, 64 << 20, net, 4)
    recs = [
        _train_rec(1, [0.5, 0.51, 0.49, 0.5, 0.5]),
        _train_rec(4, [0.5 + 0.4 * modelled] * 5, exposed=0.4 * modelled),
    ]
    model = training.from_records(recs, net, fusion=64 << 20)
    assert model.hidden_fraction == pytest.approx(0.6)
    assert not model.contention
    (row,) = model.predict([64])
    expect = 0.5 + 0.4 * training.comm_time(64, 4e8, 64 << 20, net, 4)
    assert row["step_s"] == pytest.approx(expect)
    assert row["efficiency"] == pytest.approx(0.5 / expect)
    assert row["throughput"] == pytest.approx(64 * 32 / expect)
    # Without a multi-rank record nothing is hidden, and it says so.
    alone = training.from_records(recs[:1], net, fusion=64 << 20)
    assert alone.hidden_fraction == 0 and alone.warnings
    with pytest.raises(ValueError, match="one-rank"):
        training.from_records(recs[1:], net)


def test_training_uses_the_fusion_buffer_the_record_says():
    # train.synthetic records params.fusion_bytes (the buffer it used): 1 MiB here.
    net = training.Network.from_knobs(10.0, 10.0)
    recs = [_train_rec(1, [0.5] * 5), _train_rec(4, [0.6] * 5, exposed=0.1)]
    for r in recs:
        r["params"]["fusion_bytes"] = 1 << 20
    assert training.from_records(recs, net).fusion == 1 << 20
    assert training.from_records(recs, net, fusion=64 << 20).fusion == 64 << 20  # what-if
    for r in recs:
        del r["params"]["fusion_bytes"]
    assert training.from_records(recs, net).fusion == 4 << 20  # older records: Horovod's


def test_training_section_with_knobs_and_contention():
    recs = [_train_rec(1, [0.2] * 5), _train_rec(2, [0.4] * 5, exposed=0.01)]
    secs = sections.build(
        recs, sections.Options(predict_to=64, bandwidth=12.5, latency=5.0, gpus_per_node=2)
    )
    (sec,) = secs
    assert sec.kind == "training"
    assert any("1.95x" in w for w in sec.warnings)  # 0.39 s of compute at 2 per node vs 0.2 s
    assert sec.rows[-1]["ranks"] == 64 and 0 < sec.rows[-1]["efficiency"] < 0.55
    none = sections.build(recs, sections.Options(predict_to=64))
    assert any("no network parameters" in w for w in none[0].warnings)


# ----------------------------------------------------------------------------- Horovod paper
def test_horovod_paper_efficiency_within_the_stated_margin():
    data = paper.load()
    rows = paper.compare(data)
    assert len(rows) == 6
    for r in rows:
        assert abs(r["model_eff"] - r["paper"]) <= data["margin_points"] / 100, r
        assert abs(r["loo_eff"] - r["paper"]) <= data["margin_points_leave_one_model_out"] / 100, r
        # The paper's value lies between no overlap and full overlap: the model brackets it
        # without any calibrated overlap.
        assert r["no_overlap"] - 1e-9 <= r["paper"] <= r["full_overlap"] + 1e-9, r
    # efficiency() agrees with the vectorised calibration it was fitted with
    r = rows[-1]
    assert paper.efficiency(
        data, r["model"], r["gpus"], r["alpha_us"] * 1e-6, r["hidden"]
    ) == pytest.approx(r["model_eff"])
    for m in data["models"].values():
        assert m["parameters_source"] and m["images_per_s_1gpu_source"]


# ----------------------------------------------------------------------------- records and CLI
def _env():
    return {
        "machine": "x86_64",
        "mpi_library": "MPICH",
        "device": "cpu",
        "device_name": "cpu",
        "thread_level": "single",
        "hosts": ["elsewhere"],
    }


def _mb_records(test, ranks, nodes, fn, sizes):
    out = []
    for m in sizes:
        t = fn(m)
        out.append(
            {
                "schema": "hpcsuite.record/1",
                "kernel": f"microbench.{test}",
                "ranks": ranks,
                "nodes": nodes,
                "ranks_per_node": -(-ranks // nodes),
                "device": "cpu",
                "params": {"size": int(m), "test": test, "buffer": "numpy"},
                "env": _env(),
                "times": {"unit": "us", "median": 1e6 * t},
                "fom": {
                    "name": "latency",
                    "unit": "us",
                    "value": 1e6 * t,
                    "higher_is_better": False,
                },
                "result": {
                    "size": int(m),
                    "median_us": 1e6 * t,
                    "min_us": 1e6 * t,
                    "p99_us": 1e6 * t,
                },
            }
        )
    return out


def _sweep_records(fn, ranks, repeat=5, seed=1):
    rng = np.random.default_rng(seed)
    return [
        {
            "schema": "hpcsuite.record/1",
            "kernel": "stencil",
            "ranks": n,
            "nodes": 1,
            "ranks_per_node": n,
            "device": "cpu",
            "params": {"shape": [512, 512], "steps": 50, "repeat": repeat},
            "env": _env(),
            "times": {
                "unit": "s",
                "samples": list(fn(n) * (1 + 0.02 * rng.standard_normal(repeat))),
            },
            "fom": {
                "name": "site updates/s",
                "unit": "1/s",
                "value": 1.0,
                "higher_is_better": True,
            },
        }
        for n in ranks
    ]


def _shared_law(p, cores=2, c0=0.02, c1=1.0):
    """Amdahl's c0 + c1/p on dedicated cores, time-shared beyond ``cores`` ranks."""
    return (c0 + c1 / p) * max(1.0, p / cores)


def _with_cores(recs, cores):
    for r in recs:
        r["provenance"] = {"cores": cores}
    return recs


def _scaling(recs, **kw):
    secs = [s for s in sections.build(recs, sections.Options(**kw)) if s.kind == "scaling"]
    assert len(secs) == 1, [s.title for s in secs]
    return secs[0]


def test_recorded_cores_time_share_oversubscribed_points_without_a_flag():
    # Fitted on 1..4 ranks of one 2-core node (3 and 4 oversubscribed), predicted at 6.
    recs = _with_cores(_sweep_records(_shared_law, [1, 2, 3, 4], repeat=8), 2)
    sec = _scaling(recs, predict_to=6)
    assert sec.data["formula"].count("p^(-1)") == 1, sec.data["formula"]
    c0, c1 = sec.data["coef"]
    assert c0 == pytest.approx(0.02, abs=0.01) and c1 == pytest.approx(1.0, rel=0.05)
    value, low, high = sec.data["prediction"]
    truth = _shared_law(6)
    assert value == pytest.approx(truth, rel=0.05) and low <= truth <= high
    assert any("modelled as time-shared" in w for w in sec.warnings)
    # The same records without the core count: the normal form alone misses 6 ranks.
    plain = _scaling(_sweep_records(_shared_law, [1, 2, 3, 4], repeat=8), predict_to=6)
    assert not plain.data["prediction"][1] <= truth <= plain.data["prediction"][2]
    assert any("provenance.cores" in w for w in plain.warnings)


def test_recorded_cores_predict_the_first_oversubscribed_point():
    # The local hold-out's situation: 1 and 2 ranks on 2 cores, 3 ranks predicted.
    recs = _with_cores(_sweep_records(_shared_law, [1, 2], repeat=8), 2)
    sec = _scaling(recs, predict_to=3)
    value, low, high = sec.data["prediction"]
    truth = _shared_law(3)
    assert low <= truth <= high and value == pytest.approx(truth, rel=0.1)
    assert any("1.5x time-shared" in w for w in sec.warnings)


def test_cores_per_node_overrides_the_recorded_cores():
    # Recorded on 2 cores; --cores-per-node 8 asks what 3..6 ranks do on 8 cores.
    recs = _with_cores(_sweep_records(_shared_law, [1, 2], repeat=8), 2)
    sec = _scaling(recs, predict_to=6, cores_per_node=8)
    assert sec.data["prediction"][0] == pytest.approx(_shared_law(6, cores=8), rel=0.1)
    assert not any("time-shared" in w for w in sec.warnings)
    # and a point measured oversubscribed is divided by the factor the override gives
    recs = _with_cores(_sweep_records(_shared_law, [1, 2, 4], repeat=8), 2)
    sec = _scaling(recs, predict_to=4, cores_per_node=1)
    assert sec.data["prediction"][0] == pytest.approx(_shared_law(4), rel=0.05)


def test_ranks_per_node_spreads_the_predicted_points_over_nodes():
    # A one-node series on 2 cores: by default 64 predicted ranks share that node (32x);
    # --ranks-per-node 2 puts them two to a node (32 nodes), so no time-sharing.
    recs = _with_cores(_sweep_records(_shared_law, [1, 2, 3, 4], repeat=8), 2)
    crowded = _scaling(recs, predict_to=64)
    assert any("32x time-shared" in w and "--ranks-per-node R" in w for w in crowded.warnings)
    spread = _scaling(recs, predict_to=64, ranks_per_node=2)
    assert not any("time-shared (give" in w for w in spread.warnings)
    assert crowded.data["prediction"][0] == pytest.approx(32 * spread.data["prediction"][0])
    value, low, high = spread.data["prediction"]
    assert low <= 0.02 + 1.0 / 64 <= high
    # the measured (oversubscribed) points are still fitted as they ran
    assert spread.data["coef"] == pytest.approx(crowded.data["coef"])


def test_cores_are_per_point_and_old_records_still_load():
    # Points recorded on different nodes: the 4-rank point had 4 cores (not shared).
    recs = _sweep_records(lambda p: 0.02 + 1.0 / p, [1, 2, 4], repeat=8)
    for r, c in zip(recs, (2, 2, 4)):
        r["provenance"] = {"cores": c, "utc": "2026-01-01T00:00:00Z"}
    sec = _scaling(recs, predict_to=4)
    assert sec.data["prediction"][0] == pytest.approx(0.27, rel=0.05)
    for bad in ({"cores": None}, {"cores": "two"}, {"cores": True}, None, {}):
        recs = _sweep_records(_shared_law, [1, 2], repeat=4)
        for r in recs:
            r["provenance"] = bad
        assert "provenance.cores" in " ".join(_scaling(recs, predict_to=3).warnings)


def test_load_seen_in_the_cpu_share_is_carried_to_the_prediction():
    # Two busy threads of other work on the 2-core node all along: each rank gets
    # 2 / (ranks + 2) of a core, which rank 0's cpu_share records.
    def law(p):
        return (0.02 + 1.0 / p) * max(1.0, (p + 2) / 2)

    recs = _with_cores(_sweep_records(law, [1, 2], repeat=8), 2)
    for r in recs:
        r["provenance"]["cpu_share"] = min(1.0, 2 / (r["ranks"] + 2))
    sec = _scaling(recs, predict_to=3)
    value, low, high = sec.data["prediction"]
    assert low <= law(3) <= high and value == pytest.approx(law(3), rel=0.05)
    assert any("about 2 busy threads" in w for w in sec.warnings)
    # Without the share, the load is invisible: the quiet-node time-sharing overshoots.
    for r in recs:
        del r["provenance"]["cpu_share"]
    assert _scaling(recs, predict_to=3).data["prediction"][0] > 1.15 * law(3)
    # A quiet oversubscribed point's share (cores / ranks) is time-sharing, not load.
    recs = _with_cores(_sweep_records(_shared_law, [1, 2, 3, 4], repeat=8), 2)
    for r in recs:
        r["provenance"]["cpu_share"] = min(1.0, 2 / r["ranks"])
    sec = _scaling(recs, predict_to=6)
    assert sec.data["prediction"][0] == pytest.approx(_shared_law(6), rel=0.05)
    assert not any("busy threads" in w for w in sec.warnings)
    # A slow start of the lone rank (0.8) is not load when 2 ranks had a core each.
    recs = _with_cores(_sweep_records(_shared_law, [1, 2], repeat=8), 2)
    for r, share in zip(recs, (0.8, 0.97)):
        r["provenance"]["cpu_share"] = share
    sec = _scaling(recs, predict_to=3)
    assert sec.data["prediction"][0] == pytest.approx(_shared_law(3), rel=0.1)


def test_each_point_is_divided_by_the_load_it_had():
    # Other work rose from 2 to 4 busy threads between the 1- and 2-rank points: each
    # point's own share says so; the prediction carries their median (3) to 3 ranks.
    def dedicated(p):
        return 0.02 + 1.0 / p

    recs = _with_cores(_sweep_records(dedicated, [1, 2], repeat=8), 2)
    for r in recs:
        n, load = r["ranks"], 2 if r["ranks"] == 1 else 4
        r["times"]["samples"] = [t * (n + load) / 2 for t in r["times"]["samples"]]
        r["provenance"]["cpu_share"] = 2 / (n + load)
    truth = dedicated(3) * (3 + 3) / 2
    value, low, high = _scaling(recs, predict_to=3).data["prediction"]
    assert low <= truth <= high and value == pytest.approx(truth, rel=0.05)


def test_provenance_records_the_cores_of_the_node():
    from hpcsuite.core import records

    prov = records.provenance()
    assert isinstance(prov["cores"], int) and 1 <= prov["cores"] <= (os.cpu_count() or 1)
    share = prov["cpu_share"]  # this test process has been busy (or waiting) a while
    assert share is None or 0 < share <= 2 * prov["cores"]


def test_cli_writes_sections_and_figures(tmp_path):
    pytest.importorskip("matplotlib")
    sizes = 2.0 ** np.arange(0, 21)
    recs = (
        _mb_records("latency", 2, 1, lambda m: 1e-6 + m / 5e9, sizes)
        + _mb_records("latency", 2, 2, lambda m: 5e-6 + m / 2e9, sizes)
        + [
            r
            for n in (2, 4)
            for r in _mb_records(
                "allreduce",
                n,
                1,
                lambda m, n=n: 2 * (n - 1) * 2e-6 + 2 * (n - 1) / n * m / 4e9,
                sizes[2:],
            )
        ]
        + _sweep_records(lambda q: 0.05 + 1.0 / q, (1, 2, 4, 8))
        + [_train_rec(1, [0.2] * 5, grad=1e8), _train_rec(2, [0.21] * 5, exposed=0.005, grad=1e8)]
    )
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "pred"
    proc = python(
        "-m", "hpcsuite.predict", str(src), "--predict-to", "512", "--out", str(out), timeout=240
    )
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Hockney" in text and "intra-node" in text and "inter-node" in text
    assert "allreduce" in text and "ring" in text
    assert "t(p) = " in text and "p^(-1)" in text
    assert "train.synthetic" in text and "at N=512" in text
    data = json.loads((out / "prediction.json").read_text())
    kinds = sorted(s["kind"] for s in data)
    assert kinds == ["collective", "p2p", "p2p", "scaling", "training"]
    md = (out / "prediction.md").read_text()
    assert md.count("![") == len(data)
    assert all(p.stat().st_size > 1000 for p in (out / "plots").glob("*.png"))
    # The training section used the fitted links: inter-node 2 GB/s beyond 2 per node.
    train = next(s for s in data if s["kind"] == "training")
    last = train["rows"][-1]
    assert last["efficiency_low"] <= last["efficiency"] <= last["efficiency_high"]
    assert any("inter-node 5 us, 2 GB/s" in line for line in train["lines"])


def test_cli_user_errors_are_one_line(tmp_path):
    proc = python("-m", "hpcsuite.predict", str(tmp_path / "missing.jsonl"), timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    src = tmp_path / "r.jsonl"
    src.write_text(json.dumps(_sweep_records(lambda q: 1.0 / q, (1, 2))[0]) + "\n")
    proc = python("-m", "hpcsuite.predict", str(src), "--overlap", "2", timeout=120)
    assert proc.returncode == 2 and "--overlap" in proc.stderr


def test_sections_never_crash_on_odd_records():
    recs = _sweep_records(lambda q: 1.0 / q, (1, 2))
    recs[1]["times"]["samples"] = []  # a point without timings
    recs.append(
        {
            "kernel": "microbench.latency",
            "ranks": 2,
            "params": {"size": 1},
            "env": _env(),
            "times": {},
            "result": {},
        }
    )
    secs = sections.build(recs)
    assert all(isinstance(s.as_dict(), dict) for s in secs)
    assert math.isfinite(float(len(secs)))


def test_regime_change_between_intra_and_inter_node_is_named():
    # Two ranks per node over 1..8 nodes: inside one node the halo exchange is cheap,
    # across nodes it costs 50 ms more and grows with log2 of the ranks.
    rng = np.random.default_rng(4)

    def rec(nodes, jump=True):
        ranks = 2 * nodes
        t = 1.0 / ranks + (0.0 if nodes == 1 and jump else 0.05 + 0.02 * np.log2(ranks))
        r = _sweep_records(lambda q: t, (ranks,), seed=int(rng.integers(1000)))[0]
        r.update(nodes=nodes, ranks_per_node=2)
        return r

    recs = [rec(n) for n in (1, 2, 4, 8)]
    secs = [
        s for s in sections.build(recs, sections.Options(predict_to=512)) if s.kind == "scaling"
    ]
    by_nodes = [s for s in secs if "per node" in s.title]
    assert by_nodes, [s.title for s in secs]
    assert any("regime change between intra- and inter-node" in w for w in by_nodes[0].warnings)
    # The same trend inside and across nodes: no regime change is claimed.
    recs = [rec(n, jump=False) for n in (1, 2, 4, 8)]
    secs = [
        s for s in sections.build(recs, sections.Options(predict_to=512)) if "per node" in s.title
    ]
    assert not any("regime change" in w for w in secs[0].warnings), secs[0].warnings


hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_times = st.lists(st.one_of(st.floats(0, 10), st.just(float("nan")), st.just(0.0)), max_size=4)


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    points=st.lists(st.tuples(st.integers(1, 64), st.integers(1, 4), _times), max_size=6),
    sizes=st.lists(st.tuples(st.integers(1, 1 << 22), st.floats(1e-7, 1.0)), max_size=8),
    ranks=st.integers(2, 8),
    nodes=st.integers(1, 2),
)
def test_sections_finish_on_any_records(points, sizes, ranks, nodes):
    recs = []
    for n, nd, samples in points:
        nd = min(nd, n)
        recs.append(
            {
                "schema": "hpcsuite.record/1",
                "kernel": "stencil",
                "ranks": n,
                "nodes": nd,
                "ranks_per_node": -(-n // nd),
                "params": {"shape": [64, 64]},
                "env": _env(),
                "times": {"unit": "s", "samples": samples},
            }
        )
    for m, t in sizes:
        recs += _mb_records("allreduce", ranks, min(nodes, ranks), lambda _m, t=t: t, [m])
        recs += _mb_records("latency", 2, nodes, lambda _m, t=t: t, [m])
    for sec in sections.build(recs, sections.Options(predict_to=512)):
        d = sec.as_dict()
        json.dumps(d, allow_nan=False)


def test_tiny_timings_are_not_a_crash():
    recs = _sweep_records(lambda q: 5e-324, (1, 2, 4))
    recs += _mb_records("latency", 2, 1, lambda m: 1e-310, 2.0 ** np.arange(0, 8))
    recs += _mb_records("allreduce", 2, 1, lambda m: 1e-310, 2.0 ** np.arange(0, 8))
    for sec in sections.build(recs):
        json.dumps(sec.as_dict(), allow_nan=False)


def test_report_model_adds_prediction_sections(tmp_path):
    pytest.importorskip("matplotlib")
    sizes = 2.0 ** np.arange(0, 16)
    recs = _sweep_records(lambda q: 0.05 + 1.0 / q, (1, 2, 4, 8)) + _mb_records(
        "latency", 2, 1, lambda m: 1e-6 + m / 5e9, sizes
    )
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "rep"
    proc = python(
        "-m",
        "hpcsuite.report",
        "--model",
        "--predict-to",
        "256",
        str(src),
        "--out",
        str(out),
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr
    assert "t(p) = " in proc.stdout and "at p=256" in proc.stdout
    md = (out / "report.md").read_text()
    assert "## Predictions" in md and "Hockney" in md and "prediction-" in md
    page = (out / "report.html").read_text()
    assert "<h2>Predictions</h2>" in page and page.count("data:image/png") >= 4
    plain = tmp_path / "plain"
    proc = python("-m", "hpcsuite.report", str(src), "--out", str(plain), "--no-plots", timeout=240)
    assert proc.returncode == 0 and "Predictions" not in (plain / "report.md").read_text()
    proc = python(
        "-m",
        "hpcsuite.report",
        "--model",
        "--overlap",
        "3",
        str(src),
        "--out",
        str(plain),
        timeout=240,
    )
    assert proc.returncode == 2 and "--overlap" in proc.stderr
