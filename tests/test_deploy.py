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
            "type": "object", "required": ["mpiReplicaSpecs"], "additionalProperties": False,
            "properties": {
                "slotsPerWorker": {"type": "integer", "minimum": 1},
                "mpiImplementation": {"enum": ["OpenMPI", "Intel", "MPICH"]},
                "launcherCreationPolicy": {"enum": ["AtStartup", "WaitForWorkersReady"]},
                "sshAuthMountPath": {"type": "string"},
                "runPolicy": {"type": "object", "additionalProperties": False, "properties": {
                    "cleanPodPolicy": {"enum": ["None", "Running", "All"]},
                    "backoffLimit": {"type": "integer", "minimum": 0},
                    "activeDeadlineSeconds": {"type": "integer"},
                    "ttlSecondsAfterFinished": {"type": "integer"},
                    "suspend": {"type": "boolean"},
                    "managedBy": {"type": "string"},
                }},
                "mpiReplicaSpecs": {
                    "type": "object", "required": ["Launcher", "Worker"], "additionalProperties": False,
                    "properties": {
                        name: {"type": "object", "required": ["template"], "additionalProperties": False,
                               "properties": {
                                   "replicas": {"type": "integer", "minimum": 1,
                                                **({"maximum": 1} if name == "Launcher" else {})},
                                   "restartPolicy": {"enum": ["Always", "OnFailure", "Never", "ExitCode"]},
                                   "template": {"type": "object"}}}
                        for name in ("Launcher", "Worker")},
                },
            },
        },
    },
}

ARGS = dict(workers=3, slots=4, gpus=1, cpu="8", memory="16Gi", module="mean", args=["--check", "--device", "gpu"])


def _validate_pod_template(template):
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"},
                                  "template": template}, K8S, strict=True)


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
    service, job = deploy.indexed_job("mean-run", "registry/hpcsuite:1", ssh_secret="keys",
                                      namespace="hpc", **ARGS)
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
        proc = python("-m", "hpcsuite.deploy", "k8s", "--kind", kind, "--image", "img:1", "--workers", "2",
                      "--", "--shape", "1000x1000", timeout=30)
        assert proc.returncode == 0, proc.stderr
        docs = list(yaml.safe_load_all(proc.stdout))
        assert docs and all(d["kind"] != "Deployment" for d in docs)
        assert "--shape" in proc.stdout
    bad = python("-m", "hpcsuite.deploy", "k8s", "--image", "i", "--name", "Bad_Name", timeout=30)
    assert bad.returncode == 2 and "must be a DNS label" in bad.stderr


def test_sagemaker_configuration(tmp_path):
    out = tmp_path / "est.json"
    proc = python("-m", "hpcsuite.deploy", "sagemaker", "--instance-count", "2", "--processes-per-host", "8",
                  "--output", str(out), "--", "--epochs", "3", timeout=30)
    assert proc.returncode == 0, proc.stderr
    config = json.loads(out.read_text())
    assert config["distribution"] == {"mpi": {"enabled": True, "processes_per_host": 8}}
    assert config["instance_count"] == 2 and config["hyperparameters"]["module"] == "hpcsuite.train.mnist"
    assert config["hyperparameters"]["args"] == "--epochs 3"
    compile((tmp_path / "launch_mnist.py").read_text(), "launch_mnist.py", "exec")
