"""``python -m hpcsuite.train.synthetic``: Horovod's synthetic benchmark.

A model (``mlp``, a small ``cnn``, or ``resnet``, a ResNet-style network built here;
no torchvision) trains on random data: warm-up batches, then ``--num-iters`` timings
of ``--num-batches-per-iter`` steps each. Reports samples/s per rank as mean +- 1.96
sigma (Horovod's own line), the total over ranks, and the scaling efficiency when given
the one-rank figure (``--baseline``). The record is the suite's: samples are each timed
iteration's step time of the slowest rank, the figure of merit is all ranks' samples
over the median step time, with the interval of that median (hpcsuite.core.stats).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any

from hpcsuite.core import cli, mpi, records, stats
from hpcsuite.core.errors import UsageError

PROG = "hpcsuite.train.synthetic"
MODELS = ("mlp", "cnn", "resnet")


def build(name: str) -> tuple[Any, tuple[int, ...]]:
    """The model and the shape of one input sample. Pure (seeded by the caller)."""
    from torch import nn

    if name == "mlp":
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(1024, 2048),
            nn.ReLU(),
            nn.Linear(2048, 2048),
            nn.ReLU(),
            nn.Linear(2048, 10),
        ), (1024,)
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * 8 * 8, 256),
            nn.ReLU(),
            nn.Linear(256, 10),
        ), (3, 32, 32)
    if name == "resnet":
        return _resnet(), (3, 32, 32)
    raise UsageError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def _resnet() -> Any:
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(),
                nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                nn.BatchNorm2d(cout),
            )
            self.skip = (
                nn.Sequential()
                if stride == 1 and cin == cout
                else nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )
            )
            self.act = nn.ReLU()

        def forward(self, x: Any) -> Any:
            return self.act(self.body(x) + self.skip(x))

    # ResNet-20-like for 32x32 images: 3 stages of 3 blocks, 16/32/64 channels.
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=MODELS, default="mlp", help="[%(default)s]")
    p.add_argument("--batch-size", type=cli.positive_int, default=32, help="per rank [%(default)s]")
    p.add_argument(
        "--num-warmup-batches", type=cli.nonnegative_int, default=5, help="[%(default)s]"
    )
    p.add_argument(
        "--num-batches-per-iter", type=cli.positive_int, default=10, help="[%(default)s]"
    )
    p.add_argument("--num-iters", type=cli.positive_int, default=5, help="[%(default)s]")
    p.add_argument("--fp16-allreduce", action="store_true")
    p.add_argument(
        "--fusion-bytes",
        type=cli.positive_int,
        default=None,
        help="fusion buffer [$HPCSUITE_TRAIN_FUSION_BYTES, $HOROVOD_FUSION_THRESHOLD, else 4 MiB]",
    )
    p.add_argument(
        "--overlap",
        choices=("sync", "poll", "thread"),
        default=None,
        help=(
            "how gradient reductions overlap backward [$HPCSUITE_TRAIN_OVERLAP, else the "
            "fastest measured]"
        ),
    )
    p.add_argument(
        "--baseline",
        type=float,
        default=None,
        metavar="SAMPLES_PER_SEC",
        help="one-rank samples/s, for the scaling efficiency",
    )
    p.add_argument(
        "--device",
        choices=("cpu", "gpu", "auto", "cuda"),
        default="cpu",
        help=(
            "cpu; gpu: the GPU of this rank's node-local rank (cuda: the same, "
            "Horovod's word); auto: a GPU when one is visible, else cpu [%(default)s]"
        ),
    )
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; return the exit status."""
    args = parser().parse_args(argv)
    import torch

    import hpcsuite.train as hvd

    hvd.init()

    with mpi.agree(
        mpi.world()
    ):  # before any training: a record that cannot be written loses nothing
        if hvd.rank() == 0:
            cli.check_writable(args.json, "--json")
    device = hvd.ops.bind_device(args.device)
    args.device = "gpu" if device.type == "cuda" else "cpu"  # what ran, in the kernels' words
    torch.manual_seed(0)
    model, sample = build(args.model)
    model = model.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.01 * hvd.size())
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    opt = hvd.DistributedOptimizer(
        opt,
        named_parameters=model.named_parameters(),
        compression=hvd.Compression.fp16 if args.fp16_allreduce else hvd.Compression.none,
        fusion_bytes=args.fusion_bytes,
        overlap=args.overlap,
    )
    data = torch.randn(args.batch_size, *sample, device=device)
    target = torch.randint(0, 10, (args.batch_size,), device=device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(data), target).backward()
        opt.step()

    for _ in range(args.num_warmup_batches):
        step()
    rates = []
    calls0, exposed0 = hvd.ops.reduction_calls(), opt.exposed_seconds
    for _ in range(args.num_iters):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(args.num_batches_per_iter):
            step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        rates.append(args.batch_size * args.num_batches_per_iter / (time.perf_counter() - t))
    steps = args.num_iters * args.num_batches_per_iter
    calls = (hvd.ops.reduction_calls() - calls0) / steps
    exposed = (opt.exposed_seconds - exposed0) / steps
    mean = sum(rates) / len(rates)
    sd = math.sqrt(sum((r - mean) ** 2 for r in rates) / max(len(rates) - 1, 1))
    everyone = hvd.allgather_object(mean, name="rates")
    # Each timed iteration's step time is the slowest rank's (a data-parallel step is as
    # slow as its slowest rank): the samples the record's statistics come from.
    step_times = [args.batch_size / r for r in rates]
    slowest = [max(ts) for ts in zip(*hvd.allgather_object(step_times, name="step_times"))]
    hosts = hvd.allgather_object(
        hvd.ops.mpi.processor_name(), name="hosts"
    )  # every node, for the record
    total = sum(everyone)
    grad_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    if hvd.rank() == 0:
        lines = [
            f"{PROG}: model {args.model}, batch {args.batch_size} per rank, {hvd.size()} ranks",
            f"  samples/s per rank  {mean:.1f} +- {1.96 * sd:.1f}",
            f"  total samples/s     {total:.1f}",
            f"  step time           {1e3 * args.batch_size / mean:.3f} ms",
            f"  reductions/step     {calls:.2f} for {grad_bytes / 1e6:.2f} MB of gradients",
            (
                f"  exposed reduction   {1e3 * exposed:.3f} ms/step after backward (overlap"
                f" {opt._overlap}, fusion {opt._fusion_bytes} B)"
            ),
        ]
        if args.baseline:
            lines.append(
                f"  scaling efficiency  {100 * total / (args.baseline * hvd.size()):.1f} %"
            )
        print(lines[0] if args.quiet else "\n".join(lines), flush=True)
        if args.json:
            st = stats.summarize(slowest)
            value, low, high = stats.rate_interval(args.batch_size * hvd.size(), st)
            env = records.fingerprint(
                hosts=hosts,
                mpi_library=mpi.library_version(),
                device=args.device,
                device_name=args.device,
                thread_level=mpi.thread_level(),
            )
            records.append(
                args.json,
                records.make(
                    "train.synthetic",
                    params={
                        "model": args.model,
                        "batch_size": args.batch_size,
                        "fp16_allreduce": args.fp16_allreduce,
                        "fusion_bytes": opt._fusion_bytes,
                    },  # as used
                    ranks=hvd.size(),
                    env=env,
                    times={"unit": "s", "samples": slowest, "stats": st.as_dict()},
                    fom={
                        "name": "throughput",
                        "value": value,
                        "unit": "samples/s",
                        "higher_is_better": True,
                        "low": low,
                        "high": high,
                        "basis": "median",
                    },
                    result={
                        "per_rank": mean,
                        "per_rank_ci95": 1.96 * sd,
                        "reductions_per_step": calls,
                        "exposed_reduction_s_per_step": exposed,
                        "overlap": opt._overlap,
                        "gradient_bytes": grad_bytes,
                    },
                ),
            )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
