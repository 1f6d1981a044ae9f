"""Kubernetes manifests for a distributed hpcsuite run: MPIJob or Indexed Job. Pure.

What each shape does and why is in :mod:`hpcsuite.deploy`'s description.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Sequence
from typing import Any

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError
from hpcsuite.registry import PARALLEL

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


def dump(docs: list[dict[str, Any]]) -> str:
    """YAML (PyYAML when installed; JSON otherwise, which is YAML too)."""
    try:
        import yaml  # optional (the deploy extra): JSON is YAML too
    except ImportError:
        return "\n---\n".join(json.dumps(d, indent=2) for d in docs) + "\n"
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)
