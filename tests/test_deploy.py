"""Launch files beyond Slurm, validated against the Kubernetes schemas and the MPIJob CRD."""

from __future__ import annotations

import json

import jsonschema
import kubernetes_validate
import pytest
import yaml
from conftest import python

from hpcsuite import deploy

K8S = "1.31"  # successPolicy of Indexed Jobs is beta from 1.31 (GA in 1.33)

#: The MPIJob v2beta1 fields we emit, with the types and enums of the MPI Operator's
#: CRD (manifests/base/kubeflow.org_mpijobs.yaml); pod templates are checked against
#: the Kubernetes PodTemplateSpec schema separately.
MPIJOB_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "kubeflow.org/v2beta1"},
        "kind": {"const": "MPIJob"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "required": ["mpiReplicaSpecs"],
            "additionalProperties": False,
            "properties": {
                "slotsPerWorker": {"type": "integer", "minimum": 1},
                "mpiImplementation": {"enum": ["OpenMPI", "Intel", "MPICH"]},
                "launcherCreationPolicy": {"enum": ["AtStartup", "WaitForWorkersReady"]},
                "sshAuthMountPath": {"type": "string"},
                "runPolicy": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "cleanPodPolicy": {"enum": ["None", "Running", "All"]},
                        "backoffLimit": {"type": "integer", "minimum": 0},
                        "activeDeadlineSeconds": {"type": "integer"},
                        "ttlSecondsAfterFinished": {"type": "integer"},
                        "suspend": {"type": "boolean"},
                        "managedBy": {"type": "string"},
                    },
                },
                "mpiReplicaSpecs": {
                    "type": "object",
                    "required": ["Launcher", "Worker"],
                    "additionalProperties": False,
                    "properties": {
                        name: {
                            "type": "object",
                            "required": ["template"],
                            "additionalProperties": False,
                            "properties": {
                                "replicas": {
                                    "type": "integer",
                                    "minimum": 1,
                                    **({"maximum": 1} if name == "Launcher" else {}),
                                },
                                "restartPolicy": {
                                    "enum": ["Always", "OnFailure", "Never", "ExitCode"]
                                },
                                "template": {"type": "object"},
                            },
                        }
                        for name in ("Launcher", "Worker")
                    },
                },
            },
        },
    },
}

ARGS = dict(
    workers=3,
    slots=4,
    gpus=1,
    cpu="8",
    memory="16Gi",
    module="mean",
    args=["--check", "--device", "gpu"],
)


def _validate_pod_template(template):
    kubernetes_validate.validate(
        {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "t"},
            "template": template,
        },
        K8S,
        strict=True,
    )


@pytest.mark.parametrize("mpi", ["mpich", "openmpi", "intel"])
def test_mpijob_matches_the_crd_and_the_pod_schema(mpi):
    [doc] = deploy.mpijob("train-1", "registry/hpcsuite:1", mpi=mpi, **ARGS)
    jsonschema.validate(doc, MPIJOB_SCHEMA)
    specs = doc["spec"]["mpiReplicaSpecs"]
    for spec in specs.values():
        _validate_pod_template(spec["template"])
    assert specs["Worker"]["replicas"] == 3 and doc["spec"]["slotsPerWorker"] == 4
    launcher = specs["Launcher"]["template"]["spec"]["containers"][0]
    assert launcher["command"][:3] == ["mpirun", "-n", "12"] and launcher["command"][-1] == "gpu"
    worker = specs["Worker"]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_indexed_job_and_headless_service_match_the_kubernetes_schemas():
    service, job = deploy.indexed_job(
        "mean-run", "registry/hpcsuite:1", ssh_secret="keys", namespace="hpc", **ARGS
    )
    for doc in (service, job):
        kubernetes_validate.validate(doc, K8S, strict=True)
    assert service["spec"]["clusterIP"] == "None"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == 3
    assert spec["template"]["spec"]["restartPolicy"] == "Never"  # valid for Jobs; Always is not
    assert spec["template"]["spec"]["subdomain"] == service["metadata"]["name"]
    assert spec["successPolicy"] == {"rules": [{"succeededIndexes": "0"}]}
    script = spec["template"]["spec"]["containers"][0]["command"][2]
    assert "mean-run-0.mean-run,mean-run-1.mean-run,mean-run-2.mean-run" in script
    assert "-n 12 python -m hpcsuite.mean --check --device gpu" in script


def test_the_schema_check_catches_a_bad_manifest():
    [doc] = deploy.mpijob("x", "img", mpi="mpich", **ARGS)
    doc["spec"]["mpiReplicaSpecs"]["Launcher"]["replicas"] = 2
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, MPIJOB_SCHEMA)
    _, job = deploy.indexed_job("x", "img", ssh_secret="k", **ARGS)
    job["spec"]["completions"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S, strict=True)
    job["spec"]["completions"] = 3
    job["spec"]["template"]["spec"]["bogusField"] = True  # strict schemas refuse unknown fields
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, K8S, strict=True)


def test_cli_renders_yaml_and_never_a_deployment(tmp_path):
    for kind in ("mpijob", "indexed-job"):
        proc = python(
            "-m",
            "hpcsuite.deploy",
            "k8s",
            "--kind",
            kind,
            "--image",
            "img:1",
            "--workers",
            "2",
            "--",
            "--shape",
            "1000x1000",
            timeout=30,
        )
        assert proc.returncode == 0, proc.stderr
        docs = list(yaml.safe_load_all(proc.stdout))
        assert docs and all(d["kind"] != "Deployment" for d in docs)
        assert "--shape" in proc.stdout
    bad = python("-m", "hpcsuite.deploy", "k8s", "--image", "i", "--name", "Bad_Name", timeout=30)
    assert bad.returncode == 2 and "must be a DNS label" in bad.stderr


def test_sagemaker_configuration(tmp_path):
    out = tmp_path / "est.json"
    proc = python(
        "-m",
        "hpcsuite.deploy",
        "sagemaker",
        "--instance-count",
        "2",
        "--processes-per-host",
        "8",
        "--output",
        str(out),
        "--",
        "--epochs",
        "3",
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    config = json.loads(out.read_text())
    assert config["distributed"] == {"mpi": {"process_count_per_node": 8}}
    assert (
        config["compute"]["instance_count"] == 2
        and config["hyperparameters"]["module"] == "hpcsuite.train.mnist"
    )
    assert config["hyperparameters"]["args"] == "--epochs 3"
    # a minimal source folder: the package, requirements, the entry script - no venv, no tree
    src = tmp_path / config["source_code"]["source_dir"]
    assert sorted(p.name for p in src.iterdir()) == [
        "hpcsuite",
        "launch_mnist.py",
        "requirements.txt",
    ]
    assert (src / "hpcsuite" / "train" / "mnist.py").exists() and not list(src.rglob("__pycache__"))
    assert "mpi4py" in (src / "requirements.txt").read_text()
    compile((src / "launch_mnist.py").read_text(), "launch_mnist.py", "exec")


# -- issue 14: hostile values, names Kubernetes refuses, outputs that cannot be written ----------

from hpcsuite.core import cli  # noqa: E402
from hpcsuite.core.errors import UsageError  # noqa: E402

HOSTILE = ["a\nb: pwned", "a\r\nb", "a\rb", "a\x00b", "a\x1bb", "a\x7fb", "a\tb"]
K8S_OPTIONS = [
    "--name",
    "--namespace",
    "--image",
    "--cpu",
    "--memory",
    "--ssh-secret",
    "--module",
    "--output",
    "--",
]
SAGEMAKER_OPTIONS = [
    "--instance-type",
    "--role",
    "--framework-version",
    "--py-version",
    "--output",
    "--",
]


def _deploy(argv, capsys):
    code = cli.run(deploy.main, argv, prog="hpcsuite.deploy")
    out, err = capsys.readouterr()
    return code, out, err


def _one_error(code, err, message):
    assert code == 2, err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("kind", ["mpijob", "indexed-job"])
@pytest.mark.parametrize("option", K8S_OPTIONS)
def test_k8s_refuses_control_characters_in_every_value(option, kind, value, capsys, tmp_path):
    argv = ["k8s", "--kind", kind, "--image", "img:1", "--output", str(tmp_path / "m.yaml")]
    argv += ["--", "--source", value] if option == "--" else [f"{option}={value}"]
    code, out, err = _deploy(argv, capsys)
    _one_error(code, err, "control character")
    assert out == "" and not (tmp_path / "m.yaml").exists()


@pytest.mark.parametrize("value", HOSTILE)
@pytest.mark.parametrize("option", SAGEMAKER_OPTIONS)
def test_sagemaker_refuses_control_characters_in_every_value(option, value, capsys, tmp_path):
    argv = ["sagemaker", "--output", str(tmp_path / "e.json")]
    if option == "--":
        argv += ["--", "--epochs", value]
    elif option == "--output":
        argv = ["sagemaker", "--output", str(tmp_path / ("e" + value + ".json"))]
    else:
        argv.insert(1, f"{option}={value}")
    code, _, err = _deploy(argv, capsys)
    _one_error(code, err, "control character")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", HOSTILE)
def test_the_renderers_refuse_control_characters_themselves(value):
    with pytest.raises(UsageError, match="control character"):
        deploy.mpijob("x", "img", mpi="mpich", **{**ARGS, "args": ["--source", value]})
    with pytest.raises(UsageError, match="control character"):
        deploy.indexed_job("x", "img" + value, ssh_secret="k", **ARGS)
    with pytest.raises(UsageError, match="control character"):
        deploy.sagemaker(
            instance_type="ml.p3.2xlarge",
            instance_count=1,
            processes_per_host=1,
            role=value,
            framework_version="2.3",
            py_version="py311",
            args=[],
        )


@pytest.mark.parametrize("kind", ["mpijob", "indexed-job"])
@pytest.mark.parametrize(
    "name,workers,message",
    [
        ("1run", 2, "must start with a letter"),
        ("Run", 2, "lower-case"),
        ("run-", 2, "lower-case"),
        ("a" * 62, 2, "too long"),
        ("a" * 61, 1000, "too long"),
        ("ok", 10_000_000, "at most"),
    ],
)
def test_k8s_refuses_names_and_sizes_kubernetes_or_the_operator_would_not_take(
    kind, name, workers, message, capsys
):
    code, out, err = _deploy(
        ["k8s", "--kind", kind, "--image", "i", "--name", name, "--workers", str(workers)], capsys
    )  # refused before rendering (10 million host names took minutes)
    _one_error(code, err, message)
    assert out == ""


def test_the_longest_accepted_name_gives_valid_pod_names(capsys):
    from hpcsuite.deploy import MAX_WORKERS

    name = "a" * (63 - len(f"-worker-{MAX_WORKERS - 1}"))
    code, out, err = _deploy(
        ["k8s", "--image", "i", "--name", name, "--workers", str(MAX_WORKERS)], capsys
    )
    assert code == 0, err
    [doc] = list(yaml.safe_load_all(out))
    assert len(f"{doc['metadata']['name']}-worker-{MAX_WORKERS - 1}") == 63


@pytest.mark.parametrize(
    "option,value,message",
    [
        ("--namespace", "Bad_NS", "--namespace 'Bad_NS' must be a DNS label"),
        ("--cpu", "lots", "--cpu 'lots' is not a Kubernetes quantity"),
        ("--memory", "4 GB", "--memory '4 GB' is not a Kubernetes quantity"),
        ("--module", "nosuch", "unknown module 'nosuch'"),
        ("--ssh-secret", "Bad/Secret", "--ssh-secret 'Bad/Secret' must be a DNS subdomain"),
    ],
)
def test_k8s_refuses_values_kubernetes_would_reject(option, value, message, capsys):
    code, _, err = _deploy(["k8s", "--image", "i", option, value], capsys)
    _one_error(code, err, message)


@pytest.mark.parametrize("target", ["k8s", "sagemaker"])
def test_output_into_a_missing_folder_or_a_full_disk_is_one_line(target, tmp_path, capsys):
    base = ["k8s", "--image", "i"] if target == "k8s" else ["sagemaker"]
    code, _, err = _deploy([*base, "--output", str(tmp_path / "missing" / "f")], capsys)
    _one_error(code, err, "does not exist")
    code, _, err = _deploy([*base, "--output", str(tmp_path)], capsys)
    _one_error(code, err, "is a directory")
    import os

    if os.path.exists("/dev/full") and os.access("/dev/full", os.W_OK) and target == "k8s":
        code, _, err = _deploy([*base, "--output", "/dev/full"], capsys)
        _one_error(code, err, "No space left on device")


def test_sagemaker_leaves_no_half_written_file_on_a_full_disk(tmp_path, capsys, monkeypatch):
    import errno
    import os

    out = tmp_path / "est.json"
    out.write_text("old")

    def full(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    code, _, err = _deploy(["sagemaker", "--output", str(out)], capsys)
    monkeypatch.undo()
    _one_error(code, err, "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["est.json"] and out.read_text() == "old"


# -- issue 15: pods that start as shipped ---------------------------------------------------------


@pytest.mark.parametrize("mpi", ["mpich", "openmpi", "intel"])
def test_the_mpijob_launcher_waits_for_ready_workers_and_open_mpi_may_run_as_root(mpi):
    [doc] = deploy.mpijob("train-1", "registry/hpcsuite:1", mpi=mpi, **ARGS)
    jsonschema.validate(doc, MPIJOB_SCHEMA)
    assert doc["spec"]["launcherCreationPolicy"] == "WaitForWorkersReady"
    assert doc["spec"]["runPolicy"]["backoffLimit"] > 0
    specs = doc["spec"]["mpiReplicaSpecs"]
    worker = specs["Worker"]["template"]["spec"]["containers"][0]
    assert worker["readinessProbe"]["tcpSocket"] == {"port": 22}
    for spec in specs.values():
        _validate_pod_template(spec["template"])
        env = {
            e["name"]: e["value"] for e in spec["template"]["spec"]["containers"][0].get("env", [])
        }
        root_ok = (
            env.get("OMPI_ALLOW_RUN_AS_ROOT") == env.get("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM") == "1"
        )
        assert root_ok == (mpi == "openmpi")


@pytest.mark.parametrize(
    "mpi,launcher",
    [
        ("mpich", "mpiexec -launcher ssh -hosts"),
        ("intel", "mpiexec -launcher ssh"),
        ("openmpi", "mpirun -n 12 --host j-0.j:4,j-1.j:4,j-2.j:4"),
    ],
)
def test_the_indexed_job_honours_mpi_retries_and_probes_sshd(mpi, launcher):
    service, job = deploy.indexed_job("j", "img:1", ssh_secret="keys", mpi=mpi, **ARGS)
    for doc in (service, job):
        kubernetes_validate.validate(doc, K8S, strict=True)
    assert job["spec"]["backoffLimit"] > 0
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["tcpSocket"] == {"port": 22}
    script = container["command"][2]
    assert launcher in script and "python -m hpcsuite.mean --check --device gpu" in script
    env = {e["name"]: e["value"] for e in container.get("env", [])}
    assert (env.get("OMPI_ALLOW_RUN_AS_ROOT") == "1") == (mpi == "openmpi")


def _pod0(tmp_path, ssh_failures, wait_s):
    """Run pod 0's script with stand-ins for sshd, ssh (failing N times per peer) and mpiexec."""
    import os
    import subprocess

    _, job = deploy.indexed_job("j", "img", ssh_secret="k", **{**ARGS, "workers": 2})
    script = job["spec"]["template"]["spec"]["containers"][0]["command"][2]
    script = script.replace("/usr/sbin/sshd", "true").replace(
        f"+ {deploy.PEER_WAIT_S} ", f"+ {wait_s} "
    )
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "ssh").write_text(
        f'#!/bin/sh\nfor a; do p=$h; h=$a; done; h=$p  # ssh ... HOST true\nn=$(cat "{tmp_path}/$h"'
        f' 2>/dev/null || echo 0)\necho $((n + 1)) > "{tmp_path}/$h"\n[ "$n" -ge {ssh_failures} ]\n'
    )
    (bin_ / "mpiexec").write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/ran"\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "JOB_COMPLETION_INDEX": "0"}
    return subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60
    )


def test_pod_0_retries_each_peers_sshd_until_it_answers(tmp_path):
    proc = _pod0(tmp_path, ssh_failures=2, wait_s=60)
    assert proc.returncode == 0, proc.stderr
    assert [(tmp_path / h).read_text().strip() for h in ("j-0.j", "j-1.j")] == [
        "3",
        "3",
    ]  # 2 refusals, then in
    assert "-n 8 python -m hpcsuite.mean" in (tmp_path / "ran").read_text()


def test_pod_0_gives_up_after_its_deadline_so_the_job_retries_it(tmp_path):
    proc = _pod0(tmp_path, ssh_failures=1000, wait_s=1)
    assert proc.returncode == 1 and "no ssh to j-0.j" in proc.stderr
    assert not (tmp_path / "ran").exists()


def test_the_dockerfile_installs_an_mpi_extra_that_exists_and_serves_ssh():
    import configparser

    from conftest import ROOT

    text = (ROOT / "Dockerfile").read_text()
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extras = cfg["options.extras_require"]
    # every --mpi of the manifests has its build argument, and that names an extra
    for mpi, build_arg in (("mpich", "mpich"), ("openmpi", "openmpi"), ("intel", "intelmpi")):
        assert mpi in deploy.MPI_IMPLEMENTATIONS and build_arg in extras
        assert build_arg == "mpich" or f"MPI={build_arg}" in text
    assert "ARG MPI=mpich" in text and "openssh-server" in text and "ssh-keygen -A" in text
    assert 'CMD ["/usr/sbin/sshd", "-De"]' in text  # the workers' command, as the manifests give it
    assert "gpu-cuda13" in extras and "gpu-cuda13" in text
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".venv-*" in ignored and ".git" in ignored


def test_the_image_takes_keys_from_a_mounted_secret():
    """What benchmarks/docker_check.sh found by running the image: a Secret's folder is
    world-writable (sshd's StrictModes refuses its keys), the MPI Operator's Secret has no
    client config (host keys would be checked), and a base with python3 but no
    python3-venv cannot make the venv."""
    from conftest import ROOT

    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    text = "\n".join(lines)
    assert "StrictModes no" in text and "/etc/ssh/sshd_config.d/" in text
    assert "StrictHostKeyChecking no" in text and "/etc/ssh/ssh_config.d/" in text
    assert "import ensurepip" in text and "python3-venv" in text
    assert 'echo "PATH=$PATH" >> /etc/environment' in text  # ssh'd ranks: the image's own PATH


def _sagemaker_folder(tmp_path):
    out = tmp_path / "est.json"
    proc = python(
        "-m",
        "hpcsuite.deploy",
        "sagemaker",
        "--output",
        str(out),
        "--",
        "--epochs",
        "3",
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return out, tmp_path / deploy.SAGEMAKER_SOURCE


def test_the_sagemaker_entry_takes_one_option_adds_the_gpu_and_reads_sm_hosts(tmp_path):
    import os
    import subprocess
    import sys

    _, src = _sagemaker_folder(tmp_path)
    (src / "echoargs.py").write_text("import json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "OMPI_"))}
    env = {
        **base,
        "SM_HPS": json.dumps({"module": "echoargs", "args": "--epochs"}),
        "SM_NUM_GPUS": "1",
        "SM_HOSTS": '["algo-1", "algo-2"]',
        "SM_CURRENT_HOST": "algo-2",
    }
    # SageMaker's own command line is "--args --epochs --module echoargs": the JSON decides
    proc = subprocess.run(
        [
            sys.executable,
            str(src / "launch_mnist.py"),
            "--args",
            "--epochs",
            "--module",
            "echoargs",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert json.loads(lines[-1]) == ["--epochs", "--device", "cuda"]
    assert "hosts ['algo-1', 'algo-2'], this host algo-2" in lines[0]
    # outside SageMaker (no SM_HPS), on CPU, a lone option on the command line still works
    proc = subprocess.run(
        [
            sys.executable,
            str(src / "launch_mnist.py"),
            "--module",
            "echoargs",
            "--args",
            "--epochs",
        ],
        env=base,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1]) == ["--epochs"]


def test_the_sdk_builds_the_training_job_request_offline(tmp_path, monkeypatch):
    import os

    if os.environ.get("CI") != "true":
        pytest.importorskip(
            "sagemaker.train", reason="the SageMaker SDK v3 (pip install 'hpcsuite[sagemaker]')"
        )
    import boto3
    import sagemaker.train.defaults as defaults
    import sagemaker.train.model_trainer as mt
    from sagemaker.core.helper.session_helper import Session

    out, src = _sagemaker_folder(tmp_path)
    config = json.loads(out.read_text())
    config["role"] = "arn:aws:iam::123456789012:role/SageMakerRole"
    out.write_text(json.dumps(config))
    session = Session(
        boto_session=boto3.Session(
            region_name="us-west-2", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret"
        ),
        default_bucket="bucket",
    )
    request, uploaded = {}, {}

    class Sent(Exception):
        pass

    def create(**kwargs):  # what would go to CreateTrainingJob: keep it, send nothing
        request.update(kwargs)
        raise Sent

    def upload(self, path, bucket=None, key_prefix=None, **kwargs):
        uploaded[os.path.basename(path.rstrip("/"))] = (
            sorted(os.listdir(path)) if os.path.isdir(path) else path
        )
        return f"s3://{bucket}/{key_prefix}"

    # no AWS here: the role check (IAM), the bucket (S3), the uploads and the request are stubbed
    monkeypatch.setattr(
        defaults, "resolve_and_validate_role", lambda provided_role, **kw: provided_role
    )
    monkeypatch.setattr(mt.TrainingJob, "create", create)
    monkeypatch.setattr(Session, "upload_data", upload)
    monkeypatch.setattr(Session, "default_bucket", lambda self: "bucket")
    trainer = deploy.model_trainer(str(out), sagemaker_session=session)
    with pytest.raises(Sent):
        trainer.train(wait=False)
    assert request["role_arn"] == config["role"]
    assert request["resource_config"].instance_type == "ml.p3.2xlarge"
    assert request["resource_config"].instance_count == 2
    assert request["hyper_parameters"] == {"module": "hpcsuite.train.mnist", "args": "--epochs 3"}
    image = request["algorithm_specification"].training_image
    assert image.startswith(
        "763104351884.dkr.ecr.us-west-2.amazonaws.com/pytorch-training:2.3-gpu-py311"
    )
    channels = {c.channel_name for c in request["input_data_config"]}
    assert {"code", "sm_drivers"} <= channels
    # the code uploaded is the minimal folder, not the working tree
    assert uploaded[deploy.SAGEMAKER_SOURCE] == ["hpcsuite", "launch_mnist.py", "requirements.txt"]
