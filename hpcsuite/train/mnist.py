"""``python -m hpcsuite.train.mnist``: Horovod's MNIST example, made real.

Data never downloads: by default scikit-learn's bundled 8x8 digits (1797 images, 20 %
held out for testing); with ``--data-dir``, real MNIST from its four IDX files. Each
epoch every sample is seen exactly once across ranks, reshuffled by seed; the learning
rate is scaled by the number of ranks; test metrics are averaged over ranks.

Checkpoints (rank 0, atomic) every ``--checkpoint-every`` steps and at the end;
``--resume`` continues from the last one, bit for bit as if never stopped. On SIGUSR1
(Slurm's ``--signal=B:USR1@60`` before the time limit) the job checkpoints, asks Slurm
to requeue it, and exits; the requeued job resumes. Also a SageMaker entry point: it
reads SM_MODEL_DIR and SM_CHANNEL_TRAINING when present.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hpcsuite.core import cli, memory, mpi, records
from hpcsuite.core.errors import CheckError, InputError, UsageError
from hpcsuite.slurm import REQUEUE_EXIT

PROG = "hpcsuite.train.mnist"
_signalled = {"usr1": False}


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=cli.positive_int, default=20, help="[%(default)s]")
    p.add_argument("--batch-size", type=cli.positive_int, default=32, help="per rank [%(default)s]")
    p.add_argument(
        "--lr",
        type=float,
        default=0.02,
        help="learning rate of one rank; times the rank count [%(default)s]",
    )
    p.add_argument("--momentum", type=float, default=0.9, help="[%(default)s]")
    p.add_argument(
        "--hidden", type=cli.positive_int, default=128, help="hidden units [%(default)s]"
    )
    p.add_argument("--seed", type=cli.nonnegative_int, default=0, help="[%(default)s]")
    p.add_argument(
        "--fp16-allreduce",
        action="store_true",
        help="send gradients as float16 (Horovod's flag; same as --compression fp16)",
    )
    p.add_argument(
        "--compression",
        choices=("none", "fp16", "bf16"),
        default=None,
        help="gradients on the wire [none]",
    )
    p.add_argument(
        "--data-dir",
        default=os.environ.get("SM_CHANNEL_TRAINING"),
        help="folder with MNIST's four IDX files [bundled digits]",
    )
    p.add_argument(
        "--checkpoint-dir",
        default=os.environ.get("SM_MODEL_DIR", "checkpoints"),
        help="[%(default)s]",
    )
    p.add_argument(
        "--checkpoint-every",
        type=cli.nonnegative_int,
        default=0,
        help="also checkpoint every N steps (0: at the end only) [%(default)s]",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue from the checkpoint if there is one"
    )
    p.add_argument(
        "--max-steps",
        type=cli.positive_int,
        default=None,
        help="checkpoint and stop after N steps of this run (time-sliced runs; --resume goes on)",
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
    p.add_argument(
        "--target-accuracy",
        type=float,
        default=None,
        help="exit 3 when the final test accuracy is below this fraction",
    )
    p.add_argument("--json", metavar="PATH", help="append a record of the run")
    p.add_argument("--quiet", action="store_true")
    return p


def _check_args(args: Any) -> None:
    """Refuse option values training cannot use. Pure."""
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise UsageError(f"--lr {args.lr!r} must be positive and finite")
    if not (args.momentum >= 0 and math.isfinite(args.momentum)):
        raise UsageError(
            f"--momentum {args.momentum!r} must be a finite number >= 0 (SGD's momentum factor)"
        )
    if args.fp16_allreduce and args.compression not in (None, "fp16"):
        raise UsageError(
            f"--fp16-allreduce contradicts --compression {args.compression}; give one of them"
        )


def _on_usr1(signum: int, frame: Any) -> None:
    _signalled["usr1"] = True


def main(argv: Sequence[str] | None = None) -> int:
    """Train; return the exit status."""
    args = parser().parse_args(argv)
    try:
        _check_args(args)
    except UsageError as err:
        err.collective = (
            True  # the command line decides it, alike on every rank (MPI may run already)
        )
        raise
    args.compression = "fp16" if args.fp16_allreduce else (args.compression or "none")
    # SIGUSR1 is Slurm's warning before the time limit (--signal=B:USR1@60, sent once, at a
    # fixed time): it may come at any moment of the run, not only mid-training. Listened to
    # from the start - importing torch and starting MPI take seconds, during which its
    # default action would kill this rank - and the first step stops on it. Ignored once
    # the run no longer checks it: a run that trained every epoch is complete, and a USR1
    # during its exit killed the rank (Python restores the default action when it shuts
    # down, before MPI_Finalize waits for the other ranks), failing a finished job.
    _signalled["usr1"] = False
    previous = signal.signal(signal.SIGUSR1, _on_usr1)
    try:
        return _train(args)
    finally:
        signal.signal(
            signal.SIGUSR1, signal.SIG_IGN if previous in (signal.SIG_DFL, None) else previous
        )


def _train(args: Any) -> int:
    """The run itself, with SIGUSR1 handled (see :func:`main`)."""
    if args.device != "cpu":
        # Deterministic cuBLAS (below) needs a fixed workspace, set before CUDA starts;
        # without it torch refuses the first matmul on the GPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    import torch

    import hpcsuite.train as hvd
    from hpcsuite.train import checkpoint, data

    hvd.init()
    rank, size = hvd.rank(), hvd.size()

    comm = mpi.world()
    path = os.path.join(args.checkpoint_dir, "mnist.pt")
    with mpi.agree(comm):  # every output location, before any training (rank 0 writes them)
        if rank == 0:
            checkpoint.check_folder(args.checkpoint_dir, "--checkpoint-dir")
            cli.check_writable(args.json, "--json")
    device = hvd.ops.bind_device(args.device)
    args.device = "gpu" if device.type == "cuda" else "cpu"  # what ran, in the kernels' words
    if device.type == "cuda":
        # CUDA has nondeterministic kernels (atomics in reductions and scatters); the CPU
        # kernels this model uses are deterministic already, and the call costs a CPU run
        # 2.4 s a rank: it imports torch's compiler (Inductor) to set its flag too.
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)

    if args.data_dir:
        x_train, y_train, x_test, y_test = data.mnist(args.data_dir)
        source = f"MNIST from {args.data_dir}"
    else:
        x, y = data.digits()
        x_train, y_train, x_test, y_test = data.split(x, y, 0.2, seed=12345)
        source = "scikit-learn digits (bundled)"
    features = x_train.shape[1]
    if device.type == "cpu":
        _check_memory(comm, features, args.hidden, args.batch_size, -(-len(x_test) // size))
    model = torch.nn.Sequential(
        torch.nn.Linear(features, args.hidden), torch.nn.ReLU(), torch.nn.Linear(args.hidden, 10)
    ).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr * size, momentum=args.momentum)
    config = {
        "features": features,
        "hidden": args.hidden,
        "batch_size": args.batch_size,
        "ranks": size,
        "lr": args.lr,
        "seed": args.seed,
        "source": source,
    }
    start_epoch = start_step = 0
    if args.resume and os.path.exists(path):
        state = None
        with mpi.agree(comm):  # a damaged file: one message, every rank exits
            if rank == 0:
                state = checkpoint.load(path)
        state = hvd.broadcast_object(state, 0, name="checkpoint")
        with mpi.agree(comm):  # every rank has the same state: they agree anyway
            if state["config"] != config:
                changed = sorted(k for k in config if state["config"].get(k) != config[k])
                raise InputError(
                    f"checkpoint {path!r} was written with other settings ({', '.join(changed)}); "
                    "use the same options, or another --checkpoint-dir"
                )
            try:
                model.load_state_dict(state["model"])
                opt.load_state_dict(state["optimizer"])
            except (
                RuntimeError,
                KeyError,
                ValueError,
                TypeError,
                IndexError,
                AttributeError,
            ) as exc:
                raise InputError(
                    f"checkpoint {path!r} does not fit this model ({str(exc)[:200]})"
                ) from None
        start_epoch, start_step = state["epoch"], state["step"]
        if rank == 0:  # in the job's log even with --quiet: which run went on from where
            print(
                f"{PROG}: resumed from {path} at epoch {start_epoch + 1}, step {start_step}",
                flush=True,
            )
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(opt, root_rank=0)
    opt = hvd.DistributedOptimizer(
        opt,
        named_parameters=model.named_parameters(),
        compression=getattr(hvd.Compression, args.compression),
    )
    sampler = data.ExactSampler(len(x_train), size, rank, args.batch_size, args.seed)
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)
    loss_fn = torch.nn.CrossEntropyLoss()
    summed = torch.nn.CrossEntropyLoss(reduction="sum")

    def save(epoch: int, step: int) -> None:
        if rank == 0:
            checkpoint.save(
                path,
                {
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "epoch": epoch,
                    "step": step,
                    "config": config,
                },
            )

    def evaluate() -> tuple[float, float]:
        model.eval()
        mine = np.arange(len(x_test))[rank::size]
        with torch.no_grad():
            out = model(torch.from_numpy(x_test[mine]).to(device))
            target = torch.from_numpy(y_test[mine]).to(device)
            sums = torch.tensor(
                [
                    float((out.argmax(1) == target).sum()),
                    float(loss_fn(out, target) * len(mine)) if len(mine) else 0.0,
                    float(len(mine)),
                ]
            )
        total = hvd.allreduce(sums, op=hvd.Sum, name="test metrics")
        model.train()
        return float(total[0] / total[2]), float(total[1] / total[2])

    tty = rank == 0 and not args.quiet and sys.stderr.isatty()
    started, samples, done_steps = time.perf_counter(), 0, 0
    accuracy = loss_value = float("nan")
    for epoch in range(start_epoch, args.epochs):
        for step in range(start_step if epoch == start_epoch else 0, sampler.steps):
            idx = sampler.batch_indices(epoch, step)
            opt.zero_grad()
            if len(idx):
                # Each rank's sum over the mean rank share: averaged over ranks, the mean
                # over all the step's samples, also when the last batches are short.
                batch_sum = summed(model(xt[idx].to(device)), yt[idx].to(device))
                loss = batch_sum / (sampler.step_total(step) / size)
                loss_value = batch_sum.item() / len(idx)
            else:  # this rank's samples ran out: contribute a zero gradient
                loss = sum(p.sum() * 0.0 for p in model.parameters())
            loss.backward()
            opt.step()
            samples += len(idx)
            done_steps += 1
            stop = hvd.allreduce(
                torch.tensor([float(_signalled["usr1"])]), op=hvd.Sum, name="stop?"
            )
            if (
                args.checkpoint_every
                and (epoch * sampler.steps + step + 1) % args.checkpoint_every == 0
            ):
                save(epoch, step + 1)
            if stop.item() > 0:
                save(epoch, step + 1)
                if os.environ.get("HPCSUITE_REQUEUE") == "0":  # --no-requeue: nothing resumes it
                    _partial_record(
                        args, evaluate, samples, started, epoch, step + 1, rank, size, path
                    )
                return _requeue(rank, epoch, step + 1)
            if args.max_steps is not None and done_steps >= args.max_steps:
                save(epoch, step + 1)
                if rank == 0:
                    print(
                        f"{PROG}: stopped after {done_steps} steps (--max-steps) at epoch {epoch} "
                        f"step {step + 1}; checkpoint {path}",
                        flush=True,
                    )
                return 0
            if tty:
                sys.stderr.write(
                    f"\r{PROG}: epoch {epoch + 1}/{args.epochs} step {step + 1}/{sampler.steps} "
                    f"loss {loss_value:.4f}"
                )
        accuracy, test_loss = evaluate()
        if rank == 0 and not args.quiet:
            sys.stderr.write(
                ("\r" if tty else "") + f"{PROG}: epoch {epoch + 1}/{args.epochs} test accuracy "
                f"{100 * accuracy:.2f} % loss {test_loss:.4f}\n"
            )
    if start_epoch >= args.epochs:
        accuracy, _ = evaluate()
    save(args.epochs, 0)
    elapsed = time.perf_counter() - started
    digest = hashlib.sha256(
        b"".join(p.detach().cpu().numpy().tobytes() for p in model.parameters())
    ).hexdigest()
    rate = hvd.allreduce(torch.tensor([float(samples)]), op=hvd.Sum, name="samples").item() / max(
        elapsed, 1e-9
    )
    hosts = hvd.allgather_object(
        hvd.ops.mpi.processor_name(), name="hosts"
    )  # every node, for the record
    if rank == 0:
        print(
            f"{PROG}: test accuracy {100 * accuracy:.2f} % after {args.epochs} epochs on {size}"
            f" ranks ({source}); {rate:.0f} samples/s; parameters sha256 {digest[:16]}",
            flush=True,
        )
        if args.json:
            _record(args, size, hosts, accuracy, rate, elapsed, digest)
    if args.target_accuracy is not None and accuracy < args.target_accuracy:
        err = CheckError(
            f"test accuracy {accuracy:.4f} is below --target-accuracy {args.target_accuracy}"
        )
        err.collective = True  # every rank computed the same averaged accuracy
        raise err
    return 0


#: Copies of the parameters a CPU rank holds: weights, gradients, momentum, the fused
#: allreduce buffer and the checkpoint's copy.
_PARAMETER_COPIES = 5


def _check_memory(comm: Any, features: int, hidden: int, batch: int, test_rows: int) -> None:
    """Refuse on every rank together a model that would not fit this node's memory
    (collective): torch would fail in its allocator, or the kernel's OOM killer would
    end a rank mid-collective. Ranks that share a node add up."""

    params = (features + 1) * hidden + (hidden + 1) * 10
    activations = hidden * (3 * batch + 2 * test_rows)  # forward, ReLU, gradient; evaluation
    need = 4 * (_PARAMETER_COPIES * params + activations)  # float32
    node = mpi.node_comm(comm)
    total = node.allreduce(need)  # comm: metadata
    with mpi.agree(comm):
        memory.check_fits(
            total,
            memory.available_bytes(),
            where=f"node {mpi.processor_name()}"
            + (f" ({node.size} ranks)" if node.size > 1 else ""),
            hint="use a smaller --hidden or --batch-size, or fewer ranks per node",
        )


def _requeue(rank: int, epoch: int, step: int) -> int:
    """After SIGUSR1: the checkpoint is written; every rank exits with REQUEUE_EXIT, and the
    launcher (python -m hpcsuite.slurm) requeues the job once all ranks are gone."""

    if rank == 0:
        print(
            f"{PROG}: SIGUSR1: checkpoint at epoch {epoch} step {step}; exiting for a requeue "
            f"(status {REQUEUE_EXIT})",
            flush=True,
        )
    return REQUEUE_EXIT


def _partial_record(
    args: Any,
    evaluate: Any,
    samples: int,
    started: float,
    epoch: int,
    step: int,
    rank: int,
    size: int,
    path: str,
) -> None:
    """The record of a run stopped by SIGUSR1 in a job Slurm will not requeue (collective).

    Without it the job ends with nothing to show for the epochs it trained; the record
    says it is partial and where it stopped, and the checkpoint resumes it by hand.
    """
    import torch

    import hpcsuite.train as hvd

    accuracy, _ = evaluate()
    elapsed = time.perf_counter() - started
    rate = hvd.allreduce(torch.tensor([float(samples)]), op=hvd.Sum, name="samples").item() / max(
        elapsed, 1e-9
    )
    hosts = hvd.allgather_object(hvd.ops.mpi.processor_name(), name="hosts")
    if rank == 0:
        print(
            f"{PROG}: this job cannot be requeued: stopped unfinished at epoch"
            f" {epoch + 1}/{args.epochs} step {step}, test accuracy {100 * accuracy:.2f} %; resume"
            f" from {path} with --resume",
            flush=True,
        )
        if args.json:
            _record(
                args,
                size,
                hosts,
                accuracy,
                rate,
                elapsed,
                None,
                partial={"epoch": epoch, "step": step, "checkpoint": path},
            )


def _record(
    args: Any,
    size: int,
    hosts: list[str],
    accuracy: float,
    rate: float,
    elapsed: float,
    digest: str | None,
    partial: dict[str, Any] | None = None,
) -> None:

    env = records.fingerprint(
        hosts=hosts, mpi_library=mpi.library_version(), device=args.device, device_name=args.device
    )
    records.append(
        args.json,
        records.make(
            "train.mnist",
            params={
                "epochs": args.epochs,
                "batch_size": args.batch_size,
                "lr": args.lr,
                "compression": args.compression,
                "seed": args.seed,
            },
            ranks=size,
            env=env,
            times={"unit": "s", "wall": elapsed},
            fom={
                "name": "throughput",
                "value": rate,
                "unit": "samples/s",
                "higher_is_better": True,
            },
            result={
                "test_accuracy": accuracy,
                "params_sha256": digest,
                **({"partial": True, "stopped_at": partial} if partial else {}),
            },
        ),
    )


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
