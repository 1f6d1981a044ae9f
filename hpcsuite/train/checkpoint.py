"""Checkpoints: written by rank 0 atomically, read without unpickling arbitrary objects."""

from __future__ import annotations

import os
from typing import Any

import torch

from hpcsuite.core.errors import InputError, UsageError

#: What a checkpoint holds, and the type of each field.
FIELDS = {"model": dict, "optimizer": dict, "epoch": int, "step": int, "config": dict}


def check_folder(folder: str, option: str) -> None:
    """Fail early, before training, when checkpoints cannot be written in ``folder``.

    The folder is created if missing, then a temporary file is made and removed in
    it: that is the only test that sees read-only file systems and quotas too.

    Raises
    ------
    UsageError
        Naming the folder and why.
    """
    import tempfile

    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"{option} {folder!r} is not a folder; give a folder for the checkpoints")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"{option} {folder!r} cannot be created ({exc.strerror or exc}); choose another folder"
        ) from None
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise UsageError(
            f"{option} {folder!r} is not writable ({exc.strerror or exc}); choose another folder"
        ) from None


def save(path: str, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path``: temporary file, fsync, rename - a crash leaves the old one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        torch.save(state, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dirfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dirfd)  # the rename itself survives a crash too
    finally:
        os.close(dirfd)


def load(path: str) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (tensors and plain containers only)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"no checkpoint at {path!r}") from None
    except Exception as exc:  # torch raises several types for a damaged or foreign file
        raise InputError(
            f"checkpoint {path!r} is corrupt or not an hpcsuite checkpoint "
            f"({type(exc).__name__}: {str(exc)[:200]}); delete it or use another "
            "--checkpoint-dir"
        ) from None
    if not isinstance(state, dict) or not set(FIELDS) <= state.keys():
        raise InputError(
            f"checkpoint {path!r} lacks the model, optimizer or position; it is not an "
            "hpcsuite.train checkpoint"
        )
    wrong = sorted(
        name
        for name, kind in FIELDS.items()
        if not isinstance(state[name], kind) or (kind is int and isinstance(state[name], bool))
    )
    if not wrong and (state["epoch"] < 0 or state["step"] < 0):
        wrong = ["epoch" if state["epoch"] < 0 else "step"]
    if not wrong and not all(isinstance(v, torch.Tensor) for v in state["model"].values()):
        wrong = ["model"]
    if wrong:
        raise InputError(
            f"checkpoint {path!r} has fields of the wrong type ({', '.join(wrong)}); it is damaged "
            "or not an hpcsuite.train checkpoint: delete it or use another --checkpoint-dir"
        )
    return state
