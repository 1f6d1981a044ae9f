"""The command line of ``python -m hpcsuite.deploy``: parse, render, write."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Sequence

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError
from hpcsuite.deploy.k8s import MPI_IMPLEMENTATIONS, check_k8s, dump, indexed_job, mpijob
from hpcsuite.deploy.sagemaker import SAGEMAKER_SOURCE, sagemaker, write_source_dir

PROG = "hpcsuite.deploy"
DESCRIPTION = "``python -m hpcsuite.deploy k8s|sagemaker ...``: launch files beyond Slurm."


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(prog=f"python -m {PROG}", description=DESCRIPTION)
    sub = p.add_subparsers(dest="target", required=True)
    k = sub.add_parser(
        "k8s", help="a Kubernetes manifest (MPIJob or Indexed Job + headless Service)"
    )
    k.add_argument(
        "--kind", choices=("mpijob", "indexed-job"), default="mpijob", help="[%(default)s]"
    )
    k.add_argument("--name", default="hpcsuite", help="job name (a DNS label) [%(default)s]")
    k.add_argument("--namespace")
    k.add_argument("--image", required=True, help="container image with hpcsuite, MPI and sshd")
    k.add_argument("--workers", type=cli.positive_int, default=2, help="worker pods [%(default)s]")
    k.add_argument(
        "--slots-per-worker", type=cli.positive_int, default=1, help="ranks per pod [%(default)s]"
    )
    k.add_argument("--gpus-per-worker", type=cli.nonnegative_int, default=0, help="[%(default)s]")
    k.add_argument("--cpu", default="2", help="CPU request and limit per worker [%(default)s]")
    k.add_argument(
        "--memory", default="4Gi", help="memory request and limit per worker [%(default)s]"
    )
    k.add_argument(
        "--mpi",
        choices=tuple(MPI_IMPLEMENTATIONS),
        default="mpich",
        help="MPI in the image: its launcher and, for Open MPI, root allowed [%(default)s]",
    )
    k.add_argument(
        "--ssh-secret",
        default="hpcsuite-ssh",
        help="indexed-job: Secret with the SSH keys [%(default)s]",
    )
    k.add_argument("--module", default="mean", help="hpcsuite module to run [%(default)s]")
    k.add_argument("--output", help="write the manifest here instead of printing it")
    s = sub.add_parser("sagemaker", help="SageMaker estimator configuration (MPI distribution)")
    s.add_argument("--instance-type", default="ml.p3.2xlarge")
    s.add_argument("--instance-count", type=cli.positive_int, default=2)
    s.add_argument("--processes-per-host", type=cli.positive_int, default=1)
    s.add_argument("--role", default="arn:aws:iam::ACCOUNT_ID:role/SageMakerExecutionRole")
    s.add_argument("--framework-version", default="2.3")
    s.add_argument("--py-version", default="py311")
    s.add_argument(
        "--image-uri",
        help="training image (default: SageMaker's PyTorch image of --framework-version)",
    )
    s.add_argument("--output", default="sagemaker_estimator.json", help="[%(default)s]")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.deploy``; return the exit status."""
    ours, module_args = cli.split_passthrough(argv)
    args = parser().parse_args(ours)
    cli.refuse_control_args(args, module_args)  # every value goes into a script or manifest
    if args.target == "sagemaker":
        config = sagemaker(
            instance_type=args.instance_type,
            instance_count=args.instance_count,
            processes_per_host=args.processes_per_host,
            role=args.role,
            framework_version=args.framework_version,
            py_version=args.py_version,
            args=module_args,
            image_uri=args.image_uri,
        )
        folder = os.path.join(os.path.dirname(os.path.abspath(args.output)), SAGEMAKER_SOURCE)
        config["source_code"]["source_dir"] = SAGEMAKER_SOURCE  # next to the JSON file
        cli.check_writable(args.output, "--output")  # the configuration and the folder, or neither
        staging = f"{folder}.tmp{os.getpid()}"
        try:
            os.makedirs(staging)
            write_source_dir(staging)
            cli.write_file(args.output, json.dumps(config, indent=2) + "\n", "--output")
            if os.path.isdir(folder):
                shutil.rmtree(folder)
            os.rename(staging, folder)
        except OSError as exc:
            raise UsageError(
                f"cannot write the source folder {folder!r}: {exc.strerror or exc}"
            ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        print(
            f"wrote {args.output} and the source folder {folder}; start with (pip install "
            "'hpcsuite[sagemaker]'): from hpcsuite.deploy import model_trainer; "
            f"model_trainer({args.output!r}).train(input_data_config=[...])"
        )
        return 0
    check_k8s(args)
    if args.output:
        cli.check_writable(args.output, "--output")  # before rendering: fail at once
    common = dict(
        workers=args.workers,
        slots=args.slots_per_worker,
        gpus=args.gpus_per_worker,
        cpu=args.cpu,
        memory=args.memory,
        module=args.module,
        args=module_args,
        namespace=args.namespace,
    )
    docs = (
        mpijob(args.name, args.image, mpi=args.mpi, **common)
        if args.kind == "mpijob"
        else indexed_job(args.name, args.image, ssh_secret=args.ssh_secret, mpi=args.mpi, **common)
    )
    text = dump(docs)
    if args.output:
        cli.write_file(args.output, text, "--output")
    else:
        sys.stdout.write(text)
    return 0
