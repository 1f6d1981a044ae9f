"""hpcsuite.train.mnist and failing training jobs, as whole MPI jobs."""

from __future__ import annotations

import os
import re
import subprocess
import time

import pytest
from conftest import launch

if os.environ.get("CI") != "true":
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")

MNIST = ("-m", "hpcsuite.train.mnist", "--quiet")


def _digest(out: str) -> str:
    match = re.search(r"parameters sha256 ([0-9a-f]+)", out)
    assert match, out
    return match.group(1)


@pytest.mark.parametrize(
    "ranks,extra",
    [(1, ()), (2, ()), (4, ()), (2, ("--fp16-allreduce",)), (3, ("--compression", "bf16"))],
)
def test_mnist_reaches_95_percent_with_the_same_hyper_parameters(tmp_path, ranks, extra):
    import json

    record = tmp_path / "r.jsonl"
    proc = launch(
        ranks,
        *MNIST,
        *extra,
        "--checkpoint-dir",
        str(tmp_path),
        "--target-accuracy",
        "0.95",
        "--json",
        str(record),
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    accuracy = float(re.search(r"test accuracy ([\d.]+) %", proc.stdout).group(1))
    assert accuracy >= 95.0
    params = json.loads(record.read_text())["params"]
    assert params["compression"] == (
        "none" if not extra else extra[-1].replace("--fp16-allreduce", "fp16")
    )


def test_a_run_stopped_mid_epoch_and_resumed_ends_bitwise_equal(tmp_path):
    common = (*MNIST, "--epochs", "3")
    straight = launch(2, *common, "--checkpoint-dir", str(tmp_path / "a"), timeout=120)
    first = launch(
        2, *common, "--checkpoint-dir", str(tmp_path / "b"), "--max-steps", "10", timeout=120
    )
    assert "stopped after 10 steps" in first.stdout, first.stdout + first.stderr
    resumed = launch(2, *common, "--checkpoint-dir", str(tmp_path / "b"), "--resume", timeout=120)
    assert straight.returncode == resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stdout and "at epoch 1, step 10" in resumed.stdout, (
        resumed.stdout
    )
    assert "resumed" not in straight.stdout
    assert _digest(straight.stdout) == _digest(resumed.stdout)


def test_bad_checkpoints_give_a_clear_error(tmp_path):
    (tmp_path / "mnist.pt").write_bytes(b"certainly not a checkpoint")
    proc = launch(2, *MNIST, "--checkpoint-dir", str(tmp_path), "--resume", timeout=60)
    assert proc.returncode == 2 and "is corrupt or not an hpcsuite checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr
    ok = launch(1, *MNIST, "--checkpoint-dir", str(tmp_path / "c"), "--epochs", "1", timeout=60)
    assert ok.returncode == 0
    other = launch(
        1, *MNIST, "--checkpoint-dir", str(tmp_path / "c"), "--hidden", "64", "--resume", timeout=60
    )
    assert other.returncode == 2 and "written with other settings (hidden)" in other.stderr


def _faulty_job(tmp_path, mode: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run the faulty job; return it and the seconds from rank 1's failure (the time it
    writes to a file) to the end of the job - not counting the start-up (three ranks
    importing torch take 5-9 s on a small VM)."""
    stamp = tmp_path / "failed-at"
    proc = launch(
        3, "tests/helpers/train_faults.py", mode, env={"FAULT_STAMP": str(stamp), **env}, timeout=60
    )
    ended = time.time()
    assert stamp.exists(), f"rank 1 never reached its failure: {proc.stdout}{proc.stderr}"
    return proc, ended - float(stamp.read_text())


def test_a_rank_that_stops_reducing_aborts_the_job_with_a_message(tmp_path):
    proc, seconds = _faulty_job(tmp_path, "stall", HPCSUITE_TRAIN_TIMEOUT="3")
    assert seconds < 3 + 7  # the stall timeout, then the abort
    assert proc.returncode != 0
    assert "no progress for 3 s in gradient" in proc.stderr, proc.stderr


def test_a_rank_that_raises_ends_the_training_job_at_once(tmp_path):
    proc, seconds = _faulty_job(tmp_path, "raise")
    assert seconds < 5 and proc.returncode == 1
    assert "[rank 1] RuntimeError: injected failure" in proc.stderr


@pytest.mark.parametrize("model", ["mlp", "cnn", "resnet"])
def test_synthetic_benchmark_reports_rates_and_fused_reductions(tmp_path, model):
    import json
    import math

    path = tmp_path / "s.jsonl"
    fusion = 1 << 20
    proc = launch(
        2,
        "-m",
        "hpcsuite.train.synthetic",
        "--model",
        model,
        "--batch-size",
        "4",
        "--num-warmup-batches",
        "1",
        "--num-batches-per-iter",
        "2",
        "--num-iters",
        "2",
        "--fusion-bytes",
        str(fusion),
        "--baseline",
        "100",
        "--json",
        str(path),
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "samples/s per rank" in proc.stdout and "scaling efficiency" in proc.stdout
    rec = json.loads(path.read_text())
    result = rec["result"]
    assert rec["ranks"] == 2 and rec["fom"]["unit"] == "samples/s" and rec["fom"]["value"] > 0
    # Fusion: exactly ceil(gradient bytes / buffer) reductions per step (one dtype).
    assert result["reductions_per_step"] == math.ceil(result["gradient_bytes"] / fusion)
    assert result["overlap"] == "poll" and 0 < result["exposed_reduction_s_per_step"] < 10
    assert "exposed reduction" in proc.stdout


@pytest.mark.parametrize(
    "device,ran", [("cpu", "cpu"), ("auto", "cpu"), ("gpu", None), ("cuda", None)]
)
def test_synthetic_takes_the_kernels_device_words_and_cuda(tmp_path, device, ran):
    # No GPU visible (hidden where there is one): auto trains on the CPU and says so in the
    # record; gpu and its alias cuda refuse in one line that names the fix.
    import json

    path = tmp_path / "s.jsonl"
    proc = launch(
        1,
        "-m",
        "hpcsuite.train.synthetic",
        "--model",
        "mlp",
        "--batch-size",
        "2",
        "--num-warmup-batches",
        "0",
        "--num-batches-per-iter",
        "1",
        "--num-iters",
        "1",
        "--device",
        device,
        "--json",
        str(path),
        "--quiet",
        timeout=120,
        env={"CUDA_VISIBLE_DEVICES": ""},
    )
    if ran is None:
        assert proc.returncode != 0 and f"--device {device}: no CUDA device visible" in proc.stderr
        assert "use --device cpu or auto" in proc.stderr and not path.exists()
    else:
        assert proc.returncode == 0, proc.stderr
        rec = json.loads(path.read_text())
        assert rec["env"]["device"] == ran


@pytest.mark.parametrize("extra", [(), ("--fp16-allreduce", "--gradient-predivide-factor", "2")])
def test_a_horovod_style_script_runs_with_one_import_changed(extra):
    proc = launch(2, "tests/helpers/horovod_style.py", *extra, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = re.findall(r"Accuracy: ([\d.]+)%", proc.stdout)
    assert len(lines) == 1, proc.stdout  # rank 0 prints
    assert float(lines[0]) >= 85.0  # one process: 89.9 %


def test_a_horovod_style_script_asking_for_adasum_gets_a_clear_error():
    proc = launch(2, "tests/helpers/horovod_style.py", "--use-adasum", timeout=120)
    assert (
        proc.returncode != 0 and "op=hvd.Adasum is not supported by hpcsuite.train" in proc.stderr
    )


# -- issue 14: outputs checked before training, bad values, memory, damaged checkpoints ----------


def _bad_checkpoint(path):
    import torch

    path.mkdir()
    torch.save(
        {
            "model": {"0.weight": "not a tensor"},
            "optimizer": 3,
            "epoch": "one",
            "step": None,
            "config": ["x"],
        },
        path / "mnist.pt",
    )


@pytest.mark.parametrize(
    "n,args,message",
    [
        (2, ("--checkpoint-dir", "{tmp}/file"), "--checkpoint-dir '{tmp}/file' is not a folder"),
        (1, ("--checkpoint-dir", "{tmp}/file/sub"), "cannot be created"),
        (2, ("--json", "{tmp}/nowhere/r.jsonl"), "does not exist"),
        (1, ("--momentum", "-1"), "--momentum -1.0 must be a finite number >= 0"),
        (2, ("--lr", "inf"), "--lr inf must be positive and finite"),
        (2, ("--hidden", "1000000000"), "GB is available there"),
        (2, ("--checkpoint-dir", "{tmp}/bad", "--resume"), "has fields of the wrong type"),
    ],
)
def test_mnist_refuses_before_training_with_one_line(tmp_path, n, args, message):
    (tmp_path / "file").write_text("x")
    _bad_checkpoint(tmp_path / "bad")
    args = tuple(a.format(tmp=tmp_path) for a in args)
    if "--checkpoint-dir" not in args:  # never the default ./checkpoints of the checkout
        args += ("--checkpoint-dir", str(tmp_path / "ck"))
    proc = launch(n, "-m", "hpcsuite.train.mnist", "--epochs", "2", *args, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message.format(tmp=tmp_path) in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "[rank 1]" not in proc.stderr
    assert "test accuracy" not in proc.stdout + proc.stderr  # refused before any training


def test_torch_running_out_of_host_memory_is_recognised_as_out_of_memory():
    import torch

    from hpcsuite.core import cli

    try:
        torch.empty(1 << 60, dtype=torch.uint8)  # 1 EiB: refused at once, nothing touched
    except RuntimeError as exc:
        assert cli._out_of_memory(exc), str(exc)
    else:
        pytest.skip("this system let torch reserve 1 EiB")
    assert not cli._out_of_memory(RuntimeError("size mismatch for 0.weight"))
