"""hpcsuite.train's overhead at one rank, measured in one process: plain PyTorch and
DistributedOptimizer steps on identical model copies, interleaved block by block.

Separate processes (``train_bench.py``'s n=1 columns) differ by +-7 % from run to run on
a small VM (memory layout, clock); here both variants share the process, the data and
the clock, and each round runs a block of ``--per-block`` steps of each in a fresh
shuffled order. A second plain copy runs too: its ratio to the first is the noise floor
of the measurement. Prints each variant's median step time and the median of the
per-round ratios to plain PyTorch; ours/plain is the overhead figure (target: at most
1.05).

usage: python benchmarks/train_overhead.py [--models mlp,resnet] [--rounds 15]
"""

import argparse
import copy
import random
import statistics
import time

import torch

import hpcsuite.train as hvd
from hpcsuite.train.synthetic import build


def timed_block(step, count):
    t = time.perf_counter()
    for _ in range(count):
        step()
    return (time.perf_counter() - t) / count


def measure(model_name, rounds, per_block, batch, overlap):
    torch.manual_seed(0)
    plain_model, sample = build(model_name)
    ours_model, control_model = copy.deepcopy(plain_model), copy.deepcopy(plain_model)
    plain_opt = torch.optim.SGD(plain_model.parameters(), lr=0.01)
    control_opt = torch.optim.SGD(control_model.parameters(), lr=0.01)
    ours_opt = hvd.DistributedOptimizer(
        torch.optim.SGD(ours_model.parameters(), lr=0.01),
        named_parameters=ours_model.named_parameters(),
        overlap=overlap,
    )
    data, target = torch.randn(batch, *sample), torch.randint(0, 10, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def stepper(model, opt):
        def step():
            opt.zero_grad()
            loss_fn(model(data), target).backward()
            opt.step()

        return step

    steps = {
        "plain": stepper(plain_model, plain_opt),
        "ours": stepper(ours_model, ours_opt),
        "control": stepper(control_model, control_opt),
    }
    for step in steps.values():  # warm-up: allocator, caches, first-call paths
        timed_block(step, per_block)
    times = {k: [] for k in steps}
    order = list(steps)
    for r in range(rounds):
        random.Random(r).shuffle(order)  # no variant always runs after the same one
        for k in order:
            times[k].append(timed_block(steps[k], per_block))

    def ratio(k):
        return statistics.median(t / p for t, p in zip(times[k], times["plain"]))

    # Same starting point, same data, same learning rate: the copies must still agree.
    for model in (ours_model, control_model):
        for a, b in zip(plain_model.parameters(), model.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    return (
        statistics.median(times["plain"]),
        statistics.median(times["ours"]),
        ratio("ours"),
        ratio("control"),
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default="mlp,resnet")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--per-block", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--overlap", default=None, help="sync|poll|thread [the package default]")
    args = p.parse_args()
    torch.set_num_threads(1)
    hvd.init()
    if hvd.size() != 1:
        raise SystemExit("run this at one rank: it measures the one-rank overhead")
    print(
        f"one rank, batch {args.batch_size}, {args.rounds} rounds of {args.per_block} steps each,"
        " interleaved"
    )
    print(f"{'model':<8}{'plain ms':>10}{'ours ms':>10}{'ours/plain':>12}{'noise':>8}")
    for name in args.models.split(","):
        plain, ours, ratio, noise = measure(
            name, args.rounds, args.per_block, args.batch_size, args.overlap
        )
        print(f"{name:<8}{1e3 * plain:>10.3f}{1e3 * ours:>10.3f}{ratio:>12.3f}{noise:>8.3f}")
    print("noise: a second plain PyTorch copy / the first, the measurement's own spread")


if __name__ == "__main__":
    main()
