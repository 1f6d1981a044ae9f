"""``python -m hpcsuite.deploy k8s|sagemaker ...``: launch files beyond Slurm.

``k8s`` renders a manifest for a distributed run, in one of two shapes:

* ``--kind mpijob`` (default): a Kubeflow ``MPIJob`` (``kubeflow.org/v2beta1``), for
  clusters with the MPI Operator. It creates the launcher and worker pods, the
  hostfile and the SSH keys; workers run ``sshd`` behind a readiness probe on port 22,
  and the launcher is created only once every worker is ready
  (``launcherCreationPolicy: WaitForWorkersReady``) and runs ``mpirun``.
* ``--kind indexed-job``: plain Kubernetes, no operator: an Indexed ``Job`` (one pod
  per worker, stable host names ``NAME-i.NAME``) plus the headless ``Service`` that
  gives those names. Pod 0 waits until it can log in to every peer's sshd (retrying
  for up to :data:`PEER_WAIT_S` seconds), then runs the ``--mpi`` library's launcher
  over SSH (Hydra's ``mpiexec`` for MPICH and Intel MPI, ``mpirun`` for Open MPI); the
  others run ``sshd``. A failed pod 0 is retried (``backoffLimit``). The job succeeds
  when pod 0 does (``successPolicy``, Kubernetes 1.31+). The image needs sshd (the
  ``Dockerfile`` builds one), and a Secret with an SSH key pair (``--ssh-secret``) is
  mounted at ``/root/.ssh`` (README, Beyond Slurm).

Both run as root, so Open MPI gets ``OMPI_ALLOW_RUN_AS_ROOT=1`` and
``OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1`` (it refuses root otherwise).

Never a ``Deployment``: its pods must restart ``Always``, so a finished run would be
started again forever (the article this project began from made that mistake).

``sagemaker`` writes, for the current SageMaker Python SDK (v3: ``ModelTrainer`` from
``sagemaker-train``; v2's ``sagemaker.pytorch.PyTorch`` is gone), a minimal source folder
- this hpcsuite package, a ``requirements.txt`` and the entry script - and the trainer's
configuration (JSON) with SageMaker's MPI distribution; :func:`model_trainer` turns that
into a ``ModelTrainer`` whose ``.train()`` starts the job. Nothing is run here.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError
from hpcsuite.registry import PARALLEL

PROG = "hpcsuite.deploy"
MPI_IMPLEMENTATIONS = {"openmpi": "OpenMPI", "mpich": "MPICH", "intel": "Intel"}
#: How long pod 0 of an Indexed Job waits for its peers' sshd before failing (and being retried).
PEER_WAIT_S = 600
#: Retries of a failed pod (the Indexed Job's pod 0 may start before its peers are ready).
BACKOFF_LIMIT = 3
#: Open MPI refuses to run as root without these; the pods run as root.
OMPI_ROOT = [
    {"name": "OMPI_ALLOW_RUN_AS_ROOT", "value": "1"},
    {"name": "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "value": "1"},
]
#: Ready when sshd accepts connections: what the launcher needs of a worker.
SSHD_READY = {
    "tcpSocket": {"port": 22},
    "initialDelaySeconds": 1,
    "periodSeconds": 2,
    "failureThreshold": 3,
}
#: Most worker pods a manifest may ask for: Kubernetes supports clusters of at most 5000
#: nodes ("Considerations for large clusters"), and every worker is a pod with its own
#: host name; more is a typo, and rendering millions of host names would run for minutes.
MAX_WORKERS = 5000
#: A DNS label (RFC 1123): what namespaces and pod host names must be.
_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
#: A DNS subdomain (RFC 1123), e.g. a Secret's name; at most 253 characters.
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
#: A Kubernetes resource quantity: a number with an optional SI, binary or exponent suffix.
_QUANTITY = re.compile(r"(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?")


def check_name(name: str, *, kind: str, workers: int) -> None:
    """Refuse a job name Kubernetes or the MPI Operator would reject. Pure.

    The name must be an RFC 1035 label (Services and the MPI Operator require it:
    lower-case letters, digits and '-', starting with a letter), and stay one when the
    longest pod host name is made from it: ``NAME-worker-N`` (MPIJob) or ``NAME-N``
    (Indexed Job), at most 63 characters.
    """
    suffix = f"-worker-{workers - 1}" if kind == "mpijob" else f"-{workers - 1}"
    if not _LABEL.fullmatch(name):
        raise UsageError(
            f"--name {name!r} must be a DNS label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    if not name[0].isalpha():
        raise UsageError(
            f"--name {name!r} must start with a letter (an RFC 1035 label, as Kubernetes "
            "Services and the MPI Operator require)"
        )
    if len(name) + len(suffix) > 63:
        raise UsageError(
            f"--name {name!r} is too long: the pod host name {name + suffix!r} would have "
            f"{len(name) + len(suffix)} characters, and a DNS label holds at most 63; "
            f"use at most {63 - len(suffix)}"
        )


def check_k8s(args: Any) -> None:
    """Refuse, at once and in one line, values the manifest cannot carry. Pure."""
    if args.workers > MAX_WORKERS:
        raise UsageError(
            f"--workers {args.workers}: give at most {MAX_WORKERS} (Kubernetes supports "
            f"clusters of at most {MAX_WORKERS} nodes; every worker is a pod)"
        )
    check_name(args.name, kind=args.kind, workers=args.workers)
    if args.namespace is not None and (
        not _LABEL.fullmatch(args.namespace) or len(args.namespace) > 63
    ):
        raise UsageError(
            f"--namespace {args.namespace!r} must be a DNS label: at most 63 lower-case "
            "letters, digits and '-'"
        )
    if not _SUBDOMAIN.fullmatch(args.ssh_secret) or len(args.ssh_secret) > 253:
        raise UsageError(
            f"--ssh-secret {args.ssh_secret!r} must be a DNS subdomain (a Secret's name): "
            "lower-case letters, digits, '-' and '.'"
        )
    for option, value in (("--cpu", args.cpu), ("--memory", args.memory)):
        if not _QUANTITY.fullmatch(value):
            raise UsageError(
                f"{option} {value!r} is not a Kubernetes quantity; e.g. 2, 500m, 4Gi, 16G"
            )
    if args.module not in PARALLEL:
        raise UsageError(f"unknown module {args.module!r}; choose one of {', '.join(PARALLEL)}")


def _resources(cpu: str, memory: str, gpus: int) -> dict[str, Any]:
    res: dict[str, Any] = {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu, "memory": memory},
    }
    if gpus:
        res["limits"]["nvidia.com/gpu"] = gpus  # GPUs are limits only; requests follow them
    return res


def _container(
    name: str, image: str, command: list[str], resources: dict[str, Any], mpi: str = "mpich"
) -> dict[str, Any]:
    container = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "resources": resources,
    }
    if mpi == "openmpi":
        container["env"] = [dict(e) for e in OMPI_ROOT]
    return container


def _run_command(module: str, args: Sequence[str], total: int) -> list[str]:
    return ["mpirun", "-n", str(total), "python", "-m", f"hpcsuite.{module}", *args]


def mpijob(
    name: str,
    image: str,
    *,
    workers: int,
    slots: int,
    gpus: int,
    cpu: str,
    memory: str,
    module: str,
    args: Sequence[str],
    mpi: str,
    namespace: str | None = None,
) -> list[dict[str, Any]]:
    """A Kubeflow MPIJob (v2beta1). Pure.

    Raises
    ------
    UsageError
        When a value holds a control character (it would end a line of the command).
    """
    cli.refuse_control_in(
        [name, image, cpu, memory, module, mpi, namespace or ""], "manifest value"
    )
    cli.refuse_control_in(list(args), "option after --")
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": "hpcsuite"}}
    if namespace:
        meta["namespace"] = namespace
    launcher = _container(
        "launcher",
        image,
        _run_command(module, args, workers * slots),
        _resources("1", "2Gi", 0),
        mpi,
    )
    worker = _container(
        "worker", image, ["/usr/sbin/sshd", "-De"], _resources(cpu, memory, gpus), mpi
    )
    worker["readinessProbe"] = dict(SSHD_READY)
    return [
        {
            "apiVersion": "kubeflow.org/v2beta1",
            "kind": "MPIJob",
            "metadata": meta,
            "spec": {
                "slotsPerWorker": slots,
                "mpiImplementation": MPI_IMPLEMENTATIONS[mpi],
                # the launcher's mpirun needs every worker's sshd: create it once all are ready
                "launcherCreationPolicy": "WaitForWorkersReady",
                "runPolicy": {"cleanPodPolicy": "Running", "backoffLimit": BACKOFF_LIMIT},
                "mpiReplicaSpecs": {
                    # The launcher may be retried if it fails to reach the workers at start.
                    "Launcher": {
                        "replicas": 1,
                        "restartPolicy": "OnFailure",
                        "template": {"spec": {"containers": [launcher]}},
                    },
                    "Worker": {
                        "replicas": workers,
                        "restartPolicy": "Never",
                        "template": {"spec": {"containers": [worker]}},
                    },
                },
            },
        }
    ]


def indexed_job(
    name: str,
    image: str,
    *,
    workers: int,
    slots: int,
    gpus: int,
    cpu: str,
    memory: str,
    module: str,
    args: Sequence[str],
    ssh_secret: str,
    mpi: str = "mpich",
    namespace: str | None = None,
) -> list[dict[str, Any]]:
    """A headless Service plus an Indexed Job, no operator needed. Pure.

    Raises
    ------
    UsageError
        When a value holds a control character: the pod runs a bash script made of them.
    """
    cli.refuse_control_in(
        [name, image, cpu, memory, module, ssh_secret, mpi, namespace or ""], "manifest value"
    )
    if mpi not in MPI_IMPLEMENTATIONS:
        raise UsageError(f"--mpi {mpi!r}: choose one of {', '.join(MPI_IMPLEMENTATIONS)}")
    cli.refuse_control_in(list(args), "option after --")
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": "hpcsuite"}}
    if namespace:
        meta["namespace"] = namespace
    names = [f"{name}-{i}.{name}" for i in range(workers)]
    hosts = ",".join(names)
    program = ["python", "-m", f"hpcsuite.{module}", *args]
    if mpi == "openmpi":  # Open MPI's mpirun: host:slots list, ssh as its remote agent
        launch = [
            "mpirun",
            "-n",
            str(workers * slots),
            "--host",
            ",".join(f"{h}:{slots}" for h in names),
            "--mca",
            "plm_rsh_agent",
            "ssh",
            *program,
        ]
    else:  # Hydra (MPICH, Intel MPI)
        launch = [
            "mpiexec",
            "-launcher",
            "ssh",
            "-hosts",
            hosts,
            "-ppn",
            str(slots),
            "-n",
            str(workers * slots),
            *program,
        ]
    run = " ".join(shlex.quote(c) for c in launch)
    script = "\n".join(
        [
            "set -eu",
            "/usr/sbin/sshd",  # every pod serves ssh; pod 0 also launches
            '[ "$JOB_COMPLETION_INDEX" = 0 ] || exec sleep infinity',
            # A peer that resolves may not serve ssh yet: log in to each (key, host, sshd all
            # ready) with retries; give up after the deadline, and the Job retries this pod.
            f"deadline=$(( $(date +%s) + {PEER_WAIT_S} ))",
            f"for h in $(echo {shlex.quote(hosts)} | tr , ' '); do",
            (
                '  until ssh -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=no "$h"'
                " true; do"
            ),
            '    if [ "$(date +%s)" -ge "$deadline" ]; then',
            f'      echo "hpcsuite: no ssh to $h after {PEER_WAIT_S} s" >&2; exit 1',
            "    fi",
            "    sleep 2",
            "  done",
            "done",
            f"exec {run}",
        ]
    )
    container = _container(
        "hpcsuite", image, ["/bin/bash", "-c", script], _resources(cpu, memory, gpus), mpi
    )
    container["readinessProbe"] = dict(SSHD_READY)
    container["volumeMounts"] = [{"name": "ssh", "mountPath": "/root/.ssh", "readOnly": True}]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "clusterIP": "None",
            "selector": {"job-name": name},
            "publishNotReadyAddresses": True,
        },
    }
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "completionMode": "Indexed",
            "completions": workers,
            "parallelism": workers,
            # pod 0 can fail at start (a peer never came up); retry it a few times
            "backoffLimit": BACKOFF_LIMIT,
            # Pod 0 is the run; the others only serve it: the job is done when pod 0 is.
            "successPolicy": {"rules": [{"succeededIndexes": "0"}]},
            "template": {
                "metadata": {"labels": {"job-name": name}},
                "spec": {
                    "subdomain": name,
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [
                        {"name": "ssh", "secret": {"secretName": ssh_secret, "defaultMode": 0o600}}
                    ],
                },
            },
        },
    }
    return [service, job]


#: What the entry script needs beyond the SageMaker PyTorch image (torch and Open MPI are in it).
SAGEMAKER_REQUIREMENTS = ["numpy>=1.24", "mpi4py>=3.1", "threadpoolctl>=3.1", "scikit-learn"]
#: The source folder written next to the configuration, and the script SageMaker runs.
SAGEMAKER_SOURCE = "hpcsuite-sagemaker"
SAGEMAKER_ENTRY_NAME = "launch_mnist.py"


def sagemaker(
    *,
    instance_type: str,
    instance_count: int,
    processes_per_host: int,
    role: str,
    framework_version: str,
    py_version: str,
    args: Sequence[str],
    source_dir: str = SAGEMAKER_SOURCE,
    image_uri: str | None = None,
) -> dict[str, Any]:
    """The configuration of a SageMaker ``ModelTrainer`` with the MPI distribution. Pure.

    JSON-serializable; :func:`model_trainer` builds the SDK's objects from it.

    Raises
    ------
    UsageError
        When a value holds a control character.
    """
    cli.refuse_control_in(
        [instance_type, role, framework_version, py_version, source_dir, image_uri or ""],
        "estimator value",
    )
    cli.refuse_control_in(list(args), "option after --")
    return {
        "sdk": "sagemaker>=3 (sagemaker-train: sagemaker.train.ModelTrainer)",
        "base_job_name": "hpcsuite-mnist",
        "role": role,
        # None: the PyTorch training image of this version, resolved for the session's region
        "training_image": image_uri,
        "framework": {"name": "pytorch", "version": framework_version, "py_version": py_version},
        "compute": {"instance_type": instance_type, "instance_count": instance_count},
        "distributed": {"mpi": {"process_count_per_node": processes_per_host}},
        "source_code": {
            "source_dir": source_dir,
            "entry_script": SAGEMAKER_ENTRY_NAME,
            "requirements": "requirements.txt",
        },
        "hyperparameters": {
            "module": "hpcsuite.train.mnist",
            "args": " ".join(shlex.quote(a) for a in args),
        },
    }


def write_source_dir(folder: str) -> None:
    """The minimal source folder SageMaker uploads: this hpcsuite package (its modules
    only, no caches), ``requirements.txt`` and the entry script - never the working
    tree, which may hold gigabytes of venvs, or nothing of hpcsuite at all."""
    package = os.path.dirname(os.path.abspath(__file__))
    target = os.path.join(folder, "hpcsuite")
    try:
        if os.path.isdir(target):
            shutil.rmtree(target)
        shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    except OSError as exc:
        raise UsageError(
            f"cannot write the source folder {folder!r}: {exc.strerror or exc}"
        ) from None
    cli.write_file(
        os.path.join(folder, "requirements.txt"),
        "\n".join(SAGEMAKER_REQUIREMENTS) + "\n",
        "--output's folder",
    )
    cli.write_file(os.path.join(folder, SAGEMAKER_ENTRY_NAME), SAGEMAKER_ENTRY, "--output's folder")


def model_trainer(config: dict[str, Any] | str, *, sagemaker_session: Any = None) -> Any:
    """A ``sagemaker.train.ModelTrainer`` from :func:`sagemaker`'s configuration or its JSON file.

    Needs ``pip install 'hpcsuite[sagemaker]'``; ``.train(input_data_config=...)`` on the
    result starts the job. A relative ``source_dir`` is taken from the JSON file's folder.
    """
    if isinstance(config, str):
        base = os.path.dirname(os.path.abspath(config))
        with open(config, encoding="utf-8") as f:
            config = json.load(f)
        config = {
            **config,
            "source_code": {
                **config["source_code"],
                "source_dir": os.path.join(base, config["source_code"]["source_dir"]),
            },
        }
    try:  # optional (the sagemaker extra, ~90 packages): only for --sagemaker
        from sagemaker.core.training.configs import Compute, SourceCode
        from sagemaker.train import ModelTrainer
        from sagemaker.train.distributed import MPI
    except ImportError:
        raise UsageError(
            "the SageMaker SDK v3 is not installed: pip install 'hpcsuite[sagemaker]'"
        ) from None
    image = config["training_image"]
    if not image:
        from sagemaker.core import image_uris  # optional, as above

        fw = config["framework"]
        region = getattr(getattr(sagemaker_session, "boto_session", None), "region_name", None)
        image = image_uris.retrieve(
            fw["name"],
            region=region,
            version=fw["version"],
            py_version=fw["py_version"],
            instance_type=config["compute"]["instance_type"],
            image_scope="training",
        )
    return ModelTrainer(
        sagemaker_session=sagemaker_session,
        role=config["role"],
        base_job_name=config["base_job_name"],
        training_image=image,
        source_code=SourceCode(**config["source_code"]),
        compute=Compute(**config["compute"]),
        distributed=MPI(**config["distributed"]["mpi"]),
        hyperparameters=config["hyperparameters"],
    )


#: The entry script SageMaker runs on every process. It reads the hyperparameters from
#: SM_HPS (SageMaker's JSON of them: on a command line "--args --epochs" reads as an
#: option without its value), logs SM_HOSTS and SM_CURRENT_HOST, and adds --device cuda
#: on GPU instances (SM_NUM_GPUS); hpcsuite.train.mnist reads SM_CHANNEL_TRAINING and
#: SM_MODEL_DIR itself.
SAGEMAKER_ENTRY = '''"""SageMaker entry point written by python -m hpcsuite.deploy sagemaker."""
import json
import os
import runpy
import shlex
import sys

# the hpcsuite copied next to this file
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
hps = json.loads(os.environ.get("SM_HPS") or "{}")
if not hps:  # not under SageMaker: --module NAME --args "OPTIONS" given on the command line
    argv = sys.argv[1:]
    hps = {key[2:]: argv[i + 1] for i, key in enumerate(argv[:-1]) if key in ("--module", "--args")}
module = hps.get("module", "hpcsuite.train.mnist")
args = shlex.split(str(hps.get("args", "")))
gpus = int(os.environ.get("SM_NUM_GPUS") or 0)
if gpus > 0 and not any(a.split("=")[0] == "--device" for a in args):
    args += ["--device", "cuda"]
hosts = json.loads(os.environ.get("SM_HOSTS") or "[]")
if os.environ.get("OMPI_COMM_WORLD_RANK", "0") == "0":
    print(f"hpcsuite on SageMaker: {module} {' '.join(args)}; hosts {hosts}, "
          f"this host {os.environ.get('SM_CURRENT_HOST', '?')}", flush=True)
sys.argv = [module, *args]
runpy.run_module(module, run_name="__main__", alter_sys=True)
'''


def dump(docs: list[dict[str, Any]]) -> str:
    """YAML (PyYAML when installed; JSON otherwise, which is YAML too)."""
    try:
        import yaml  # optional (the deploy extra): JSON is YAML too
    except ImportError:
        return "\n---\n".join(json.dumps(d, indent=2) for d in docs) + "\n"
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0])
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


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
