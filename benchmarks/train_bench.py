"""hpcsuite.train against PyTorch, side by side in one run: step times and ratios.

* n = 1: hpcsuite.train.synthetic vs the same step in plain PyTorch (target: at most
  5 % overhead; separate processes swing +-7 % here, so ``train_overhead.py`` measures
  it precisely, both variants interleaved in one process);
* n = 2: hpcsuite.train.synthetic under mpirun vs PyTorch DDP (gloo) under torchrun
  (target: at most 1.0x DDP's step time);
for the MLP and the ResNet-style model, each program run ``--runs`` times, alternating.
Threads: one per process (OMP_NUM_THREADS=1), so both use n cores.

usage: python benchmarks/train_bench.py [--runs 3] [--models mlp,resnet]
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MPIRUN = str(BIN / "mpirun") if (BIN / "mpirun").exists() else "mpirun"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def step_ms(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV, cwd=HERE.parent)
    match = re.search(r"step time\s+([\d.]+) ms", out.stdout)
    if out.returncode != 0 or not match:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{out.stdout}\n{out.stderr}")
    return float(match.group(1))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--models", default="mlp,resnet")
    args = p.parse_args()
    py = sys.executable
    rows = []
    for model in args.models.split(","):
        progs = {
            "plain PyTorch n=1": [py, str(HERE / "ddp_step.py"), "--plain", "--model", model],
            "hpcsuite.train n=1": [
                MPIRUN,
                "-n",
                "1",
                py,
                "-m",
                "hpcsuite.train.synthetic",
                "--model",
                model,
            ],
            "DDP gloo n=2": [
                py,
                "-m",
                "torch.distributed.run",
                "--nproc_per_node",
                "2",
                "--master_port",
                "29517",
                str(HERE / "ddp_step.py"),
                "--model",
                model,
            ],
            "hpcsuite.train n=2": [
                MPIRUN,
                "-n",
                "2",
                py,
                "-m",
                "hpcsuite.train.synthetic",
                "--model",
                model,
            ],
        }
        times = {k: [] for k in progs}
        for _ in range(args.runs):
            for k, cmd in progs.items():
                times[k].append(step_ms(cmd))
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append((model, med))
    print(f"\nstep time, median of {args.runs} runs (ms)")
    print(
        f"{'model':<8}{'plain n=1':>11}{'ours n=1':>10}{'overhead':>10}"
        f"{'DDP n=2':>10}{'ours n=2':>10}{'ours/DDP':>10}"
    )
    for model, m in rows:
        over = m["hpcsuite.train n=1"] / m["plain PyTorch n=1"] - 1
        ratio = m["hpcsuite.train n=2"] / m["DDP gloo n=2"]
        print(
            f"{model:<8}{m['plain PyTorch n=1']:>11.3f}{m['hpcsuite.train n=1']:>10.3f}"
            f"{100 * over:>9.1f}%"
            f"{m['DDP gloo n=2']:>10.3f}{m['hpcsuite.train n=2']:>10.3f}{ratio:>10.2f}"
        )
    print("targets: overhead at most 5 %; ours/DDP at most 1.00")


if __name__ == "__main__":
    main()
