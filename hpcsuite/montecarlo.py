"""``python -m hpcsuite.montecarlo``: a European option priced by Monte Carlo over MPI.

Paths of geometric Brownian motion, ``S_T = S_0 exp((r - sigma^2/2) T + sigma sqrt(T) Z)``,
come in fixed-size blocks, each from its own RNG stream keyed by the block index, so a
seed gives the same paths - and the same price, bit for bit - at any rank count. Each
block contributes the sum and the sum of squares of its discounted payoffs; the root
combines them in block order with exactly rounded sums. The check: the price lies
within 4 standard errors of the Black-Scholes closed form.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from hpcsuite.core import cli
from hpcsuite.core.errors import UsageError
from hpcsuite.core.partition import owned
from hpcsuite.core.summation import exact_sum

PROG = "hpcsuite.montecarlo"
#: Paths per block: the unit of randomness and of work distribution.
BLOCK = 1 << 18


def black_scholes(kind: str, spot: float, strike: float, rate: float, vol: float, maturity: float) -> float:
    """The closed-form price of a European call or put."""
    d1 = (math.log(spot / strike) + (rate + vol * vol / 2) * maturity) / (vol * math.sqrt(maturity))
    d2 = d1 - vol * math.sqrt(maturity)
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    disc = math.exp(-rate * maturity)
    if kind == "call":
        return spot * cdf(d1) - strike * disc * cdf(d2)
    return strike * disc * cdf(-d2) - spot * cdf(-d1)


def local(z: Any, xp: Any, *, kind: str, spot: float, strike: float, rate: float, vol: float,
          maturity: float) -> tuple[Any, Any]:
    """Sum and sum of squares of the discounted payoffs of the paths driven by normals ``z``. Pure."""
    st = spot * xp.exp((rate - 0.5 * vol * vol) * maturity + vol * math.sqrt(maturity) * z)
    payoff = xp.maximum(st - strike, 0.0) if kind == "call" else xp.maximum(strike - st, 0.0)
    payoff *= math.exp(-rate * maturity)
    return xp.sum(payoff), xp.sum(payoff * payoff)


def combine(sums: Sequence[float], squares: Sequence[float], paths: int) -> tuple[float, float]:
    """Price and standard error from per-block sums, in block order. Pure."""
    total, total_sq = exact_sum(sums), exact_sum(squares)
    mean = total / paths
    var = max(total_sq / paths - mean * mean, 0.0) * paths / max(paths - 1, 1)
    return mean, math.sqrt(var / paths)


def normals(block: int, count: int, seed: int) -> np.ndarray:
    """The standard normals of block ``block`` (its own stream)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block,))))
    return rng.standard_normal(count)


def run(comm: Any, backend: Any, paths: int, seed: int, option: dict[str, Any]) -> tuple[float, float] | None:
    """Price on every rank of ``comm``; (price, standard error) on rank 0, None elsewhere."""
    nblocks = -(-paths // BLOCK)
    start, stop = owned(nblocks, comm.size, comm.rank)
    parts = np.zeros((stop - start, 2))
    for i, block in enumerate(range(start, stop)):
        count = min(BLOCK, paths - block * BLOCK)
        z = backend.from_host(normals(block, count, seed)) if backend.on_device else normals(block, count, seed)
        s, sq = local(z, backend.xp, **option)
        parts[i] = float(s), float(sq)
    gathered = comm.gather(parts, root=0)  # comm: per-block partial sums, in rank (= block) order
    if comm.rank != 0:
        return None
    stacked = np.concatenate(gathered)
    return combine(stacked[:, 0].tolist(), stacked[:, 1].tolist(), paths)


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0],
                           parents=[cli.common_parser()])
    p.set_defaults(check=True)
    g = p.add_argument_group("option and paths")
    g.add_argument("--paths", type=cli.positive_int, default=1 << 24, help="number of paths [%(default)s]")
    g.add_argument("--option", choices=("call", "put"), default="call", help="[%(default)s]")
    for name, default, what in (("spot", 100.0, "spot price"), ("strike", 105.0, "strike"),
                                ("rate", 0.05, "risk-free rate (continuous)"),
                                ("vol", 0.2, "volatility"), ("maturity", 1.0, "years to maturity")):
        g.add_argument(f"--{name}", type=float, default=default, help=f"{what} [%(default)s]")
    g.add_argument("--no-check", dest="check", action="store_false",
                   help="skip the comparison with Black-Scholes (on by default)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.montecarlo``; return the exit status."""
    args = parser().parse_args(argv)
    for name in ("spot", "strike", "vol", "maturity"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value > 0):
            raise UsageError(f"--{name} {value!r} must be a positive number")
    if not math.isfinite(args.rate):
        raise UsageError(f"--rate {args.rate!r} must be a finite number")
    option = {"kind": args.option, "spot": args.spot, "strike": args.strike, "rate": args.rate,
              "vol": args.vol, "maturity": args.maturity}
    from hpcsuite.core import app, mpi
    from hpcsuite.core.timing import measure

    ctx = app.begin(args)
    comm = ctx.comm
    times, result = measure(lambda: run(comm, ctx.backend, args.paths, args.seed, option),
                            warmup=args.warmup, repeat=args.repeat, barrier=comm.Barrier)
    times = [mpi.max_over_ranks(comm, t) for t in times]
    check = None
    price = se = math.nan
    if comm.rank == 0:
        price, se = result
        exact = black_scholes(**option)
        if args.check:
            ok = abs(price - exact) <= 4 * se
            check = {"passed": ok, "black_scholes": exact, "standard_error": se,
                     "detail": f"|price - Black-Scholes {exact:.6f}| = {abs(price - exact):.2e} "
                               f"{'<=' if ok else '>'} 4 SE = {4 * se:.2e}"}
    rate = args.paths / min(times)
    return app.finish(ctx, args, kernel="montecarlo",
                      headline=f"{args.option} price = {price!r} +- {se:.2e} (standard error)",
                      details=[f"option     European {args.option}, S0 {args.spot}, K {args.strike}, "
                               f"r {args.rate}, sigma {args.vol}, T {args.maturity}",
                               f"paths      {args.paths} in blocks of {BLOCK} (seed {args.seed})"],
                      params={**option, "paths": args.paths, "seed": args.seed, "size": args.paths,
                              "repeat": args.repeat},
                      samples=times, fom=("paths/s", rate, "paths/s"),
                      result={"price": price, "standard_error": se}, check=check)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
