"""Array backends: a registry of name -> loader, loaded lazily.

The only module that imports CuPy. Kernels receive ``backend.xp`` (NumPy or CuPy)
and never import either device library themselves. Loading ``cupy`` checks that a
device is really usable: ``import cupy`` succeeds on a machine without a GPU and
only the first allocation fails, far from the cause.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from hpcsuite.core.errors import BackendError, UsageError

DEVICES = ("cpu", "gpu", "auto")


class Backend(NamedTuple):
    """An array module plus what the MPI layer needs to move its arrays (immutable).

    Attributes
    ----------
    name : str
        Registry name (``"numpy"``, ``"cupy"``, ...).
    xp : module
        The array module kernels compute with.
    device : str
        ``"cpu"`` or ``"gpu"``, for records and output.
    on_device : bool
        True when arrays live in device memory, so MPI needs a synchronized stream
        and, without CUDA-aware MPI, host staging.
    device_id : int or None
        The GPU this process is bound to.
    description : str
        Human-readable device name (e.g. ``"NVIDIA H100 80GB HBM3"``).
    cache_bytes : int or None
        The device's last-level cache (a GPU's L2), for STREAM's array-size rule; None
        for the host's (read from sysfs by :mod:`hpcsuite.stream`).
    synchronize, to_host, from_host : callable
        Wait for queued device work; copy an array to a host ``numpy.ndarray``;
        copy a host array to this backend.
    free_bytes : callable
        Bytes free on the bound device now (None on the host, or when unknown).
    """

    name: str
    xp: ModuleType
    device: str
    on_device: bool = False
    device_id: int | None = None
    description: str = "cpu"
    cache_bytes: int | None = None
    synchronize: Callable[[], None] = lambda: None
    to_host: Callable[[Any], np.ndarray] = np.asarray
    from_host: Callable[[np.ndarray], Any] = lambda a: a
    free_bytes: Callable[[], int | None] = lambda: None


_LOADERS: dict[str, Callable[[int], Backend]] = {}


def register(name: str, loader: Callable[[int], Backend]) -> None:
    """Register ``loader(local_rank) -> Backend`` under ``name`` (tests add staging backends)."""
    _LOADERS[name] = loader


def names() -> list[str]:
    """Registered backend names."""
    return sorted(_LOADERS)


def load(name: str, local_rank: int = 0) -> Backend:
    """Load backend ``name``, binding a device by node-local rank where it has devices.

    Raises
    ------
    UsageError
        For an unknown name.
    BackendError
        When the backend's library or device is not usable here.
    """
    try:
        loader = _LOADERS[name]
    except KeyError:
        raise UsageError(f"no such backend: {name!r}; choose one of {', '.join(names())}") from None
    return loader(local_rank)


def select(device: str, local_rank: int = 0) -> Backend:
    """Map ``--device cpu|gpu|auto`` to a backend; ``auto`` takes a GPU when one is usable."""
    if device == "cpu":
        return load("numpy")
    if device == "gpu":
        return load("cupy", local_rank)
    if device == "auto":
        try:
            return load("cupy", local_rank)
        except BackendError:
            return load("numpy")
    raise UsageError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")


def _load_numpy(local_rank: int) -> Backend:
    return Backend(name="numpy", xp=np, device="cpu", description=_cpu_model())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass

    import platform  # only here: every rank imports this module, few reach this line

    return platform.processor() or platform.machine() or "cpu"


def gpu_count() -> int:
    """Number of usable CUDA devices through CuPy; 0 without CuPy or without a GPU."""
    if importlib.util.find_spec("cupy") is None:
        return 0
    try:
        import cupy  # optional (the gpu extra), slow to import: only when a GPU is asked for

        return cupy.cuda.runtime.getDeviceCount() if cupy.cuda.is_available() else 0
    except Exception:  # a broken driver or toolkit is "no usable GPU", not a crash
        return 0


class GpuInfo(NamedTuple):
    """What ``python -m hpcsuite info`` shows of CuPy and the GPUs."""

    cupy: str
    runtime: str
    names: list[str]


def gpu_info() -> GpuInfo | None:
    """CuPy's version, the CUDA runtime version and each usable GPU's name; None without CuPy."""
    if importlib.util.find_spec("cupy") is None:
        return None
    count = gpu_count()
    import cupy  # optional (the gpu extra) and slow to import: only when asked

    if count == 0:
        return GpuInfo(str(cupy.__version__), "", [])
    runtime = cupy.cuda.runtime.runtimeGetVersion()
    names = []
    for i in range(count):
        name = cupy.cuda.runtime.getDeviceProperties(i)["name"]
        names.append(name.decode() if isinstance(name, bytes) else str(name))
    return GpuInfo(str(cupy.__version__), f"{runtime // 1000}.{runtime % 1000 // 10}", names)


def _load_cupy(local_rank: int) -> Backend:
    if importlib.util.find_spec("cupy") is None:
        raise BackendError(
            "--device gpu needs CuPy, which is not installed; "
            "install it with: pip install 'hpcsuite[gpu]' (CUDA 12), or use --device cpu"
        )
    import cupy  # optional (the gpu extra), slow to import: only for --device gpu|auto

    count = gpu_count()
    if count == 0:
        raise BackendError(
            "--device gpu: no CUDA device visible to this process "
            "(check nvidia-smi, CUDA_VISIBLE_DEVICES and the job's GPU request), "
            "or use --device cpu"
        )
    # Bind by node-local rank: global rank 9 on a 4-GPU node is local rank 1.
    device_id = local_rank % count
    try:
        cupy.cuda.Device(device_id).use()
        props = cupy.cuda.runtime.getDeviceProperties(device_id)
    except (
        Exception
    ) as exc:  # e.g. exclusive-process mode with the GPU taken: --device auto falls back
        raise BackendError(
            f"--device gpu: GPU {device_id} is not usable by this process ({exc}); "
            "check nvidia-smi (compute mode, other jobs), or use --device cpu"
        ) from None
    name = props["name"]
    description = name.decode() if isinstance(name, bytes) else str(name)

    def synchronize() -> None:
        cupy.cuda.get_current_stream().synchronize()

    return Backend(
        name="cupy",
        xp=cupy,
        device="gpu",
        on_device=True,
        device_id=device_id,
        description=description,
        cache_bytes=int(props.get("l2CacheSize", 0)) or None,
        synchronize=synchronize,
        to_host=cupy.asnumpy,
        from_host=cupy.asarray,
        # The driver's free memory plus what CuPy's pool holds unused (it hands that out first).
        free_bytes=lambda: (
            int(cupy.cuda.runtime.memGetInfo()[0])
            + int(cupy.get_default_memory_pool().free_bytes())
        ),
    )


register("numpy", _load_numpy)
register("cupy", _load_cupy)
