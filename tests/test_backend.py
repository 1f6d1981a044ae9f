from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from hpcsuite.core import backend
from hpcsuite.core.errors import BackendError, UsageError

NO_GPU = backend.gpu_count() == 0


def test_cpu_backend_is_numpy_on_the_host():
    cpu = backend.select("cpu")
    assert cpu.xp is np and not cpu.on_device and cpu.device == "cpu" and cpu.description
    a = np.ones(3)
    assert cpu.to_host(a) is a or np.array_equal(cpu.to_host(a), a)


def test_unknown_backend_and_device_name_the_choices():
    with pytest.raises(UsageError, match="no such backend: 'rocm'; choose one of cupy, numpy"):
        backend.load("rocm")
    with pytest.raises(UsageError, match="unknown device 'tpu'"):
        backend.select("tpu")


@pytest.mark.skipif(not NO_GPU, reason="this machine has a usable GPU")
def test_gpu_without_a_usable_gpu_names_the_fix():
    with pytest.raises(BackendError) as info:
        backend.select("gpu")
    if importlib.util.find_spec("cupy") is None:
        assert "pip install 'hpcsuite[gpu]'" in str(info.value)
    else:
        assert "no CUDA device visible" in str(info.value)
    assert "--device cpu" in str(info.value)


@pytest.mark.skipif(not NO_GPU, reason="this machine has a usable GPU")
def test_auto_falls_back_to_the_cpu():
    assert backend.select("auto").device == "cpu"


def test_registered_backends_are_loaded_by_name():
    made = []
    backend.register(
        "test-host",
        lambda local_rank: (
            made.append(local_rank) or backend.Backend(name="test-host", xp=np, device="cpu")
        ),
    )
    try:
        assert backend.load("test-host", 3).name == "test-host" and made == [3]
        assert "test-host" in backend.names()
    finally:
        backend._LOADERS.pop("test-host")  # noqa: SLF001 - keep the registry as found
