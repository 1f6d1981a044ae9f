"""Checkpoints: written by rank 0 atomically, read without unpickling arbitrary objects."""

from __future__ import annotations

import os
from typing import Any

import torch

from hpcsuite.core.errors import InputError


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
        raise InputError(f"checkpoint {path!r} is corrupt or not an hpcsuite checkpoint "
                         f"({type(exc).__name__}: {str(exc)[:200]}); delete it or use another "
                         "--checkpoint-dir") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "epoch", "step", "config"} <= state.keys():
        raise InputError(f"checkpoint {path!r} lacks the model, optimizer or position; it is not an "
                         "hpcsuite.train checkpoint")
    return state
