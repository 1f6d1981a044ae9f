"""Message sizes and iteration counts, as OSU chooses them. Pure."""

from __future__ import annotations

import re

#: Above this many bytes a message is "large": fewer iterations (OSU's LARGE_MESSAGE_SIZE).
LARGE = 8192
#: OSU's default (iterations, warm-up) for small and large messages, per family.
ITERATIONS = {
    "latency": ((10000, 100), (1000, 10)),
    "bandwidth": ((100, 10), (20, 2)),
    "collective": ((1000, 100), (100, 10)),
}
_SIZE = re.compile(r"^\s*(\d+)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"4M"``, ``"4MiB"``, ``"512k"``, ``"8"`` -> bytes (K, M, G: powers of 1024, as OSU)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"bad size {text!r}: give bytes, optionally with K, M or G (e.g. 4M)")
    unit = (match.group(2) or "b")[0].lower()
    return int(match.group(1)) * {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]


def sizes(lo: int, hi: int, *, unit: int = 1) -> list[int]:
    """Powers of two from ``lo`` to ``hi`` inclusive, multiples of ``unit`` (element size).

    Raises
    ------
    ValueError
        When ``lo > hi`` or no power of two falls in the range.
    """
    if lo < 0 or hi < 0:
        raise ValueError(f"sizes must be >= 0, got --min {lo} --max {hi}")
    if lo > hi:
        raise ValueError(f"--min {lo} is larger than --max {hi}; swap them")
    out = [0] if lo == 0 else []
    p = 1
    while p <= hi:
        if p >= lo and p % unit == 0:
            out.append(p)
        p <<= 1
    if not out:
        raise ValueError(f"no power-of-two size of whole {unit}-byte elements lies in [{lo}, {hi}]")
    return out


def iterations(
    family: str, nbytes: int, *, iters: int | None = None, warmup: int | None = None
) -> tuple[int, int]:
    """(timed iterations, warm-up iterations) for one size; explicit values win."""
    small, large = ITERATIONS[family]
    default = large if nbytes > LARGE else small
    return (
        iters if iters is not None else default[0],
        warmup if warmup is not None else default[1],
    )


def bounded(iters: int, per_iteration: float, budget: float | None, *, floor: int = 5) -> int:
    """Cut ``iters`` so that ``iters * per_iteration`` stays within ``budget`` seconds
    (``--time-per-size``)."""
    if budget is None or per_iteration <= 0:
        return iters
    return max(min(iters, int(budget / per_iteration)), min(floor, iters))
