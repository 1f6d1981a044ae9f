"""How gradient reductions should overlap backward, measured: hpcsuite.train.synthetic
at n ranks for every overlap mode (sync, poll, thread) and fusion buffer size, all in
one run, each configuration ``--runs`` times in a fresh shuffled order per round.

Prints the median step time per configuration, each model's fastest configuration,
and each configuration's geometric-mean slowdown against the per-model best: the
row with 1.00 (or closest) is the default to keep (``OVERLAP``/``FUSION_BYTES`` in
``hpcsuite/train/optimizer.py``).

usage: python benchmarks/overlap_bench.py [--runs 3] [--ranks 2]
           [--models mlp,cnn,resnet] [--modes sync,poll,thread] [--fusion 256K,1M,4M,64M]
"""

import argparse
import itertools
import math
import random
import statistics
import sys

from train_bench import MPIRUN, step_ms  # this directory (sys.path[0] when run as a script)

UNITS = {"K": 1 << 10, "M": 1 << 20}


def nbytes(text):
    text = text.strip().upper()
    return int(text[:-1]) * UNITS[text[-1]] if text[-1] in UNITS else int(text)


def synthetic_ms(ranks, model, mode, fusion):
    return step_ms(
        [
            MPIRUN,
            "-n",
            str(ranks),
            sys.executable,
            "-m",
            "hpcsuite.train.synthetic",
            "--model",
            model,
            "--overlap",
            mode,
            "--fusion-bytes",
            str(fusion),
        ]
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--models", default="mlp,cnn,resnet")
    p.add_argument("--modes", default="sync,poll,thread")
    p.add_argument("--fusion", default="256K,1M,4M,64M", help="fusion buffer sizes (K/M suffixes)")
    args = p.parse_args()
    models, modes = args.models.split(","), args.modes.split(",")
    fusions = [nbytes(f) for f in args.fusion.split(",")]
    configs = list(itertools.product(models, modes, fusions))
    times = {c: [] for c in configs}
    for r in range(args.runs):
        order = configs[:]
        random.Random(r).shuffle(order)  # no configuration always runs after the same one
        for i, c in enumerate(order, 1):
            times[c].append(synthetic_ms(args.ranks, *c))
            print(
                f"\rround {r + 1}/{args.runs}: {i}/{len(order)}",
                end="",
                file=sys.stderr,
                flush=True,
            )
    print(file=sys.stderr)
    med = {c: statistics.median(v) for c, v in times.items()}
    best = {m: min(med[c] for c in configs if c[0] == m) for m in models}
    print(f"\nstep time at n={args.ranks}, median of {args.runs} runs (ms); fusion in bytes")
    print(f"{'mode':<8}{'fusion':>10}" + "".join(f"{m:>10}" for m in models) + f"{'geo/best':>10}")
    for mode, fusion in itertools.product(modes, fusions):
        row = [med[(m, mode, fusion)] for m in models]
        geo = math.exp(statistics.fmean(math.log(v / best[m]) for v, m in zip(row, models)))
        print(f"{mode:<8}{fusion:>10}" + "".join(f"{v:>10.2f}" for v in row) + f"{geo:>10.3f}")
    for m in models:
        c = min((c for c in configs if c[0] == m), key=med.get)
        print(f"fastest for {m}: overlap={c[1]} fusion={c[2]} ({med[c]:.2f} ms)")


if __name__ == "__main__":
    main()
