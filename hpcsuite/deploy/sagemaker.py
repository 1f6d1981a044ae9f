"""SageMaker: the ``ModelTrainer`` configuration, its source folder and entry script.

For the SageMaker Python SDK v3 (``sagemaker-train``); nothing is run here.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
from collections.abc import Sequence
from typing import Any

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError

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
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # hpcsuite/
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
