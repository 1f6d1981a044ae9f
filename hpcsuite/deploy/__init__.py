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

from hpcsuite.deploy.command import PROG, main, parser
from hpcsuite.deploy.k8s import (
    BACKOFF_LIMIT,
    MAX_WORKERS,
    MPI_IMPLEMENTATIONS,
    PEER_WAIT_S,
    check_k8s,
    check_name,
    dump,
    indexed_job,
    mpijob,
)
from hpcsuite.deploy.sagemaker import (
    SAGEMAKER_ENTRY,
    SAGEMAKER_SOURCE,
    model_trainer,
    sagemaker,
    write_source_dir,
)

__all__ = [
    "BACKOFF_LIMIT",
    "MAX_WORKERS",
    "MPI_IMPLEMENTATIONS",
    "PEER_WAIT_S",
    "PROG",
    "SAGEMAKER_ENTRY",
    "SAGEMAKER_SOURCE",
    "check_k8s",
    "check_name",
    "dump",
    "indexed_job",
    "main",
    "model_trainer",
    "mpijob",
    "parser",
    "sagemaker",
    "write_source_dir",
]
