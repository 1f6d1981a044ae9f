"""``python -m hpcsuite.montecarlo``: a European option priced by Monte Carlo over MPI.

Paths of geometric Brownian motion, ``S_T = S_0 exp((r - sigma^2/2) T + sigma sqrt(T) Z)``,
come in fixed-size blocks, each from its own RNG stream keyed by the block index, so a
seed gives the same paths - and the same price, bit for bit - at any rank count. Each
block contributes the sum and the sum of squares of its discounted payoffs; the root
combines them in block order with exactly rounded sums. The check: the price lies
within 4 standard errors of the Black-Scholes closed form.

On a GPU the random numbers are made on the device (CuPy's generator, seeded per block
from the same key), so the timed step measures the GPU, not host NumPy and uploads; a
GPU price therefore differs from the CPU's in its digits, but not between rank counts.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcsuite.core import cli, driver, rng
from hpcsuite.core.driver import Figure, Footprint, Kernel, Summary
from hpcsuite.core.errors import UsageError
from hpcsuite.core.partition import owned
from hpcsuite.core.reduction import exact_columns, reduce_blocks

PROG = "hpcsuite.montecarlo"
#: Paths per block: the unit of randomness and of work distribution.
BLOCK = 1 << 18


def black_scholes(
    kind: str, spot: float, strike: float, rate: float, vol: float, maturity: float
) -> float:
    """The closed-form price of a European call or put."""
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * maturity) / (vol * math.sqrt(maturity))
    d2 = d1 - vol * math.sqrt(maturity)
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    disc = math.exp(-rate * maturity)
    if kind == "call":
        return spot * cdf(d1) - strike * disc * cdf(d2)
    return strike * disc * cdf(-d2) - spot * cdf(-d1)


def local(
    z: Any,
    xp: Any,
    *,
    kind: str,
    spot: float,
    strike: float,
    rate: float,
    vol: float,
    maturity: float,
) -> tuple[Any, Any]:
    """Sum and sum of squares of the discounted payoffs of the paths of normals ``z``. Pure."""
    st = spot * xp.exp((rate - 0.5 * vol * vol) * maturity + vol * math.sqrt(maturity) * z)
    payoff = xp.maximum(st - strike, 0.0) if kind == "call" else xp.maximum(strike - st, 0.0)
    payoff *= math.exp(-rate * maturity)
    return xp.sum(payoff), xp.sum(payoff * payoff)


def combine(rows: np.ndarray, paths: int) -> tuple[float, float]:
    """Price and standard error from the per-block (sum, sum of squares) rows, in block
    order, with exactly rounded sums. Pure."""
    total, total_sq = exact_columns(rows.reshape(-1, 2)) if len(rows) else (0.0, 0.0)
    mean = float(total) / paths
    var = max(float(total_sq) / paths - mean * mean, 0.0) * paths / max(paths - 1, 1)
    return mean, math.sqrt(var / paths)


def normals(xp: Any, block: int, count: int, seed: int) -> Any:
    """The standard normals of block ``block`` (its own stream), made where ``xp`` computes."""
    return rng.device_stream(xp, seed, block).standard_normal(count)


def chunk(backend: Any, blocks: range, paths: int, seed: int, option: dict[str, Any]) -> Any:
    """(sum, sum of squares) of the discounted payoffs of each block, one row per block."""
    xp = backend.xp
    rows = [
        xp.stack(local(normals(xp, b, min(BLOCK, paths - b * BLOCK), seed), xp, **option))
        for b in blocks
    ]
    return xp.stack(rows) if rows else xp.zeros((0, 2))


def run(
    comm: Any, backend: Any, paths: int, seed: int, option: dict[str, Any]
) -> tuple[float, float] | None:
    """Price on every rank of ``comm``; (price, standard error) on rank 0, None elsewhere."""
    nblocks = -(-paths // BLOCK)
    start, stop = owned(nblocks, comm.size, comm.rank)
    counts = [b - a for a, b in (owned(nblocks, comm.size, r) for r in range(comm.size))]
    parts = chunk(backend, range(start, stop), paths, seed, option)
    return reduce_blocks(comm, backend, parts, counts, lambda rows: combine(rows, paths))


@dataclass
class State:
    comm: Any
    backend: Any
    paths: int
    seed: int
    option: dict[str, Any]
    result: tuple[float, float] | None = None


#: Fewest paths whose standard error the 4-sigma check can trust.
CHECK_MIN_PATHS = 100


class MonteCarlo(Kernel):
    """Pricing as a kernel: each repetition makes the paths (on the device on a GPU),
    evaluates the payoffs and reduces them."""

    name = "montecarlo"
    description = __doc__.split("\n\n")[0]
    step_label = "pricing"
    defaults = {"check": True}

    def add_arguments(self, g: Any) -> None:
        g.add_argument(
            "--paths", type=cli.positive_int, default=1 << 24, help="number of paths [%(default)s]"
        )
        g.add_argument("--option", choices=("call", "put"), default="call", help="[%(default)s]")
        for name, default, what in (
            ("spot", 100.0, "spot price"),
            ("strike", 105.0, "strike"),
            ("rate", 0.05, "risk-free rate (continuous)"),
            ("vol", 0.2, "volatility"),
            ("maturity", 1.0, "years to maturity"),
        ):
            g.add_argument(f"--{name}", type=float, default=default, help=f"{what} [%(default)s]")
        g.add_argument(
            "--no-check",
            dest="check",
            action="store_false",
            help="skip the comparison with Black-Scholes (on by default)",
        )

    def validate(self, args: Any) -> None:
        for name in ("spot", "strike", "vol", "maturity"):
            value = getattr(args, name)
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"--{name} {value!r} must be a positive number")
        if not math.isfinite(args.rate):
            raise UsageError(f"--rate {args.rate!r} must be a finite number")
        if args.paths < 2:
            raise UsageError(
                f"--paths {args.paths} is too few: a standard error needs at least 2 paths"
            )
        if args.check and args.paths < CHECK_MIN_PATHS:
            raise UsageError(
                f"--paths {args.paths} is too few for the 4-standard-error check (at least "
                f"{CHECK_MIN_PATHS}); give more paths or --no-check"
            )

    def footprint(self, comm: Any, backend: Any, args: Any) -> Footprint:
        # A block's normals and the payoff temporaries (about four block-sized arrays),
        # and two partials (16 B) per block: the rank's own, and on the root every block's.
        nblocks = -(-args.paths // BLOCK)
        start, stop = owned(nblocks, comm.size, comm.rank)
        work = 4 * 8 * min(BLOCK, args.paths)
        parts = 16 * (stop - start) + (2 * 16 * nblocks if comm.rank == 0 else 0)
        return Footprint(
            host=(0 if backend.on_device else work) + parts,
            device=work + 16 * (stop - start),
            hint="give fewer --paths, or run fewer ranks per node (or per GPU)",
        )

    def setup(self, comm: Any, backend: Any, args: Any) -> State:
        option = {
            "kind": args.option,
            "spot": args.spot,
            "strike": args.strike,
            "rate": args.rate,
            "vol": args.vol,
            "maturity": args.maturity,
        }
        return State(comm, backend, args.paths, args.seed, option)

    def step(self, state: State, phase: str) -> None:
        state.result = run(state.comm, state.backend, state.paths, state.seed, state.option)

    def check(self, state: State) -> dict[str, Any] | None:
        if state.comm.rank != 0:
            return None
        price, se = state.result
        exact = black_scholes(**state.option)
        ok = abs(price - exact) <= 4 * se
        return {
            "passed": ok,
            "black_scholes": exact,
            "standard_error": se,
            "detail": (
                f"|price - Black-Scholes {exact:.6f}| = {abs(price - exact):.2e} "
                f"{'<=' if ok else '>'} 4 SE = {4 * se:.2e}"
            ),
        }

    def figure(self, state: State) -> Figure:
        return Figure("paths/s", state.paths, "paths/s")

    def summary(self, state: State, times: dict[str, list[float]]) -> Summary:
        o = state.option
        price, se = state.result if state.result else (math.nan, math.nan)
        where = "the GPU" if state.backend.on_device else "the host"
        return Summary(
            headline=f"{o['kind']} price = {price!r} +- {se:.2e} (standard error)",
            details=[
                (
                    f"option     European {o['kind']}, S0 {o['spot']}, K {o['strike']}, "
                    f"r {o['rate']}, sigma {o['vol']}, T {o['maturity']}"
                ),
                (
                    f"paths      {state.paths} in blocks of {BLOCK} (seed {state.seed}), "
                    f"random numbers made on {where}"
                ),
            ],
            params={**o, "paths": state.paths, "seed": state.seed, "size": state.paths},
            result={"price": price, "standard_error": se},
        )


KERNEL = MonteCarlo()


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    return driver.parser(KERNEL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.montecarlo``; return the exit status."""
    return driver.main(KERNEL, argv)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
