"""Horovod's timeline: what the training collectives did and when, as a Chrome trace.

Open the file in ``chrome://tracing`` or https://ui.perfetto.dev. Started by
``HOROVOD_TIMELINE=PATH`` (or ``HPCSUITE_TRAIN_TIMELINE``) at :func:`hpcsuite.train.init`,
or by :func:`start_timeline` / :func:`stop_timeline`, as in Horovod. Rank 0 writes
``PATH``, as Horovod's coordinator does; a ``{rank}`` in ``PATH`` makes every rank write
its own file (stragglers show side by side when the files are opened together).

Rows (threads in the viewer) of a rank's process:

* ``negotiation``: the ranks agreeing on each collective (names, shapes, dtypes);
* ``collectives``: each blocking phase - an allreduce, a broadcast, and the gradient
  reduction still exposed after backward (``DistributedOptimizer.synchronize``);
* ``reduction k``: the lifetime of the k-th fused gradient bucket of a step, from its
  start during backward to its completion; with ``mark_cycles`` each optimizer step
  is an instant event.

Events go to the file as they happen (JSON array format: a file cut short by an abort
still loads in the viewers); :func:`stop_timeline` closes the array.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from typing import Any

from hpcsuite.core.errors import UsageError

#: Environment variables that start a timeline at ``init`` (Horovod's name first).
TIMELINE_ENVS = ("HOROVOD_TIMELINE", "HPCSUITE_TRAIN_TIMELINE")
#: Set to 1 to mark each optimizer step (Horovod's ``HOROVOD_TIMELINE_MARK_CYCLES``).
MARK_CYCLES_ENV = "HOROVOD_TIMELINE_MARK_CYCLES"


class Timeline:
    """An open trace file of one rank (thread-safe: the ``thread`` overlap mode writes too)."""

    def __init__(self, path: str, rank: int, mark_cycles: bool = False) -> None:
        self.path, self.rank, self.mark_cycles = path, rank, mark_cycles
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 - open until stop_timeline
        self._file.write("[")
        self._first = True
        self._rows: dict[str, int] = {}
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self._flushed = self._t0
        self._emit(
            {"name": "process_name", "ph": "M", "pid": rank, "args": {"name": f"rank {rank}"}}
        )

    def _emit(self, event: dict[str, Any]) -> None:
        self._file.write(
            ("\n" if self._first else ",\n") + json.dumps(event, separators=(",", ":"))
        )
        self._first = False
        now = time.perf_counter()
        if now - self._flushed > 0.5:  # a killed job keeps all but the last half second
            self._file.flush()
            self._flushed = now

    def _tid(self, row: str) -> int:
        tid = self._rows.get(row)
        if tid is None:
            tid = self._rows[row] = len(self._rows) + 1
            self._emit(
                {
                    "name": "thread_name",
                    "ph": "M",
                    "pid": self.rank,
                    "tid": tid,
                    "args": {"name": row},
                }
            )
        return tid

    def span(
        self, row: str, name: str, start: float, stop: float, args: dict[str, Any] | None = None
    ) -> None:
        """A complete event on ``row`` from ``start`` to ``stop`` (``time.perf_counter`` s)."""
        with self._lock:
            if self._file.closed:
                return
            event = {
                "name": name,
                "ph": "X",
                "pid": self.rank,
                "tid": self._tid(row),
                "ts": round((start - self._t0) * 1e6, 3),
                "dur": round(max(stop - start, 0.0) * 1e6, 3),
            }
            if args:
                event["args"] = args
            self._emit(event)

    def instant(self, row: str, name: str) -> None:
        """A point in time on ``row``."""
        with self._lock:
            if not self._file.closed:
                self._emit(
                    {
                        "name": name,
                        "ph": "i",
                        "s": "t",
                        "pid": self.rank,
                        "tid": self._tid(row),
                        "ts": round((time.perf_counter() - self._t0) * 1e6, 3),
                    }
                )

    def close(self) -> None:
        """End the JSON array and close the file."""
        with self._lock:
            if not self._file.closed:
                self._file.write("\n]\n")
                self._file.close()


_active: Timeline | None = None
_rank: int | None = None  # this process's rank, from hvd.init (from_environment)


def start_timeline(file_path: str, mark_cycles: bool = False, *, rank: int | None = None) -> None:
    """Start recording to ``file_path`` (Horovod's ``hvd.start_timeline``); call it on every rank.

    Rank 0 writes ``file_path``; with ``{rank}`` in it, every rank writes its own file.
    A timeline already running is stopped first.
    """
    global _active
    if rank is None:
        rank = _rank
    if rank is None:
        raise UsageError("start_timeline before hvd.init(): call hvd.init() first")
    stop_timeline()
    if "{rank}" in file_path:
        file_path = file_path.replace("{rank}", str(rank))
    elif rank != 0:
        return
    try:
        _active = Timeline(file_path, rank, mark_cycles)
    except OSError as exc:
        raise UsageError(
            f"cannot write the timeline {file_path!r}: {exc.strerror}; "
            "give a writable path (HOROVOD_TIMELINE or start_timeline)"
        ) from None


def stop_timeline() -> None:
    """Stop recording and close the file (Horovod's ``hvd.stop_timeline``)."""
    global _active
    if _active is not None:
        _active, active = None, _active
        active.close()


def from_environment(rank: int) -> None:
    """Note this process's rank (``hvd.init`` passes it in: no import of the engine here) and
    start the timeline that ``HOROVOD_TIMELINE`` / ``HPCSUITE_TRAIN_TIMELINE`` ask for, if any."""
    global _rank
    _rank = rank
    path = next((os.environ[k] for k in TIMELINE_ENVS if os.environ.get(k)), None)
    if path:
        start_timeline(
            path, os.environ.get(MARK_CYCLES_ENV, "0").strip() not in ("", "0"), rank=rank
        )


def running() -> bool:
    """Whether a timeline is recording on this rank."""
    return _active is not None


def span(row: str, name: str, start: float, args: dict[str, Any] | None = None) -> None:
    """Record ``name`` on ``row`` from ``start`` until now, when a timeline is running."""
    active = _active
    if active is not None:
        active.span(row, name, start, time.perf_counter(), args)


def step() -> None:
    """Mark an optimizer step, when a timeline with ``mark_cycles`` is running."""
    active = _active
    if active is not None and active.mark_cycles:
        active.instant("collectives", "step")


atexit.register(stop_timeline)
