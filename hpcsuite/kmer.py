"""``python -m hpcsuite.kmer``: k-mer counting over DNA reads, distributed by hash.

Reads come from a FASTA or FASTQ file (LF, CRLF or CR line endings), read in parallel
by :mod:`hpcsuite.core.seqio` - each rank reads its own byte range; a long FASTA record
(a chromosome) stays spread over the ranks that hold it, and a k-mer crossing a range
boundary is counted once - or are generated (reads sampled from a random genome, so
k-mers repeat). A FASTQ file cut off in its last record gets a warning (``--strict``:
exit 2). k-mers (k up to 31)
are packed 2 bits per base into 64-bit codes; those with a base other than A, C, G, T
are skipped. Each rank counts its own, then one ``Alltoallv`` sends every code to the
rank that owns its hash slice, which merges the counts. ``--top N`` prints the most
frequent k-mers. Check: the counts equal ``collections.Counter`` on one process, over a
separate plain reading of the file (never over what the parallel reader parsed).
Figure of merit: bases per second.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpcsuite.core import cli, driver, mpi, rng, seqio, stats
from hpcsuite.core.driver import Figure, Footprint, Kernel, Summary
from hpcsuite.core.errors import InputError, UsageError
from hpcsuite.core.mpi import datatype
from hpcsuite.core.partition import owned

PROG = "hpcsuite.kmer"
MAX_K = 31
_CODE = np.full(256, 4, dtype=np.uint8)  # 4 = not a base
for _i, _b in enumerate(b"ACGT"):
    _CODE[_b] = _i
    _CODE[ord(chr(_b).lower())] = _i
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def encode(seqs: Sequence[bytes], k: int) -> np.ndarray:
    """The 2-bit codes of every valid k-mer in ``seqs`` (records never joined). Pure."""
    if not seqs:
        return np.zeros(0, dtype=np.uint64)
    joined = np.frombuffer(b"N".join(seqs), dtype=np.uint8)  # N keeps k-mers inside records
    codes = _CODE[joined]
    n = len(codes) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    bad = np.concatenate(([0], np.cumsum(codes == 4)))
    valid = (bad[k : k + n] - bad[:n]) == 0
    val = np.zeros(n, dtype=np.uint64)
    for j in range(k):
        val = (val << np.uint64(2)) | (codes[j : j + n] & 3).astype(np.uint64)
    return val[valid]


def decode(code: int, k: int) -> str:
    """The k-mer of a 2-bit code. Pure."""
    return "".join(chr(_BASES[(int(code) >> (2 * (k - 1 - j))) & 3]) for j in range(k))


def count(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct codes and their counts. Pure."""
    uniq, counts = np.unique(codes, return_counts=True)
    return uniq, counts.astype(np.uint64)


def merge(codes: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum the counts of equal codes. Pure."""
    if not len(codes):
        return codes, counts
    order = np.argsort(codes, kind="stable")
    codes, counts = codes[order], counts[order]
    starts = np.flatnonzero(np.concatenate(([True], codes[1:] != codes[:-1])))
    return codes[starts], np.add.reduceat(counts, starts)


def owner(codes: np.ndarray, size: int) -> np.ndarray:
    """The rank that owns each code: a 64-bit mix (splitmix64's finalizer) modulo ``size``. Pure."""
    z = codes.copy()
    with np.errstate(over="ignore"):
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z % np.uint64(size)).astype(np.int64)


# -- reading ---------------------------------------------------------------------------------
# FASTA/FASTQ parsing lives in hpcsuite.core.seqio (parallel byte ranges, linear for
# records of any length); these names stay here for callers of the kernel's module.
file_format = seqio.file_format
read_range = seqio.read_range


def read_file(comm: Any, path: str, k: int) -> tuple[list[bytes], int, int, int, str]:
    """This rank's share of a FASTA/FASTQ file (collective).

    Returns
    -------
    (seqs, bases, records, incomplete, what)
        Sequences to count k-mers in (the last one extended by k - 1 bases that follow
        it on later ranks, so k-mers across range boundaries are counted once), bases
        and records read in this rank's range, incomplete FASTQ records seen there,
        and a description of the input.
    """
    fmt = seqio.file_format(path)
    size = os.path.getsize(path)
    chunk, seqs = seqio.read_distributed(comm, path, fmt, k - 1)
    what = f"{path} ({fmt}, {size} bytes, read in {comm.size} byte ranges)"
    return seqs, chunk.bases, chunk.records, chunk.incomplete, what


def check_complete(comm: Any, path: str, incomplete: int, strict: bool) -> None:
    """Warn once (rank 0), or fail on every rank under ``--strict``, when FASTQ records
    were incomplete (a file cut off in its last record) and so not counted (collective)."""
    total = comm.allreduce(incomplete)  # comm: metadata
    if not total:
        return
    text = (
        f"{path!r} holds {total} incomplete FASTQ record{'s' if total > 1 else ''} (not four whole"
        " lines: was the file cut off?)"
    )
    with mpi.agree(comm):
        if strict:
            raise InputError(f"{text}; fix the file, or drop --strict to skip them")
    if comm.rank == 0:
        sys.stderr.write(f"{PROG}: warning: {text}; skipped (--strict makes this an error)\n")
        sys.stderr.flush()


def generate(first: int, last: int, seed: int, length: int, genome: int) -> list[bytes]:
    """Reads ``[first, last)`` sampled from a random genome; each read from its own stream. Pure."""
    dna = _BASES[rng.stream(seed, 0).integers(0, 4, genome)].tobytes()
    reads = []
    for r in range(first, last):
        g = rng.stream(seed, 1, r)
        pos = int(g.integers(0, max(genome - length, 0) + 1))
        reads.append(dna[pos : pos + length])
    return reads


# -- the driver ------------------------------------------------------------------------------


def run(comm: Any, seqs: list[bytes], k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Count this rank's reads, merged by hash owner: (my codes, counts, bases in ``seqs``)."""
    codes, counts = count(encode(seqs, k))
    dest = owner(codes, comm.size)
    order = np.argsort(dest, kind="stable")
    codes, counts, dest = codes[order], counts[order], dest[order]
    scounts = np.bincount(dest, minlength=comm.size).tolist()
    rcounts = comm.alltoall(scounts)  # comm: how many codes each rank will send me
    sdispl = np.concatenate(([0], np.cumsum(scounts)[:-1])).astype(int).tolist()
    rdispl = np.concatenate(([0], np.cumsum(rcounts)[:-1])).astype(int).tolist()
    u64 = datatype(np.uint64)
    got_codes = np.empty(sum(rcounts), dtype=np.uint64)
    got_counts = np.empty(sum(rcounts), dtype=np.uint64)
    comm.Alltoallv(
        [codes, scounts, sdispl, u64], [got_codes, rcounts, rdispl, u64]
    )  # comm: codes to owners
    comm.Alltoallv(
        [counts, scounts, sdispl, u64], [got_counts, rcounts, rdispl, u64]
    )  # comm: their counts
    mine, mine_counts = merge(got_codes, got_counts)
    return mine, mine_counts, sum(len(s) for s in seqs)


def top(comm: Any, codes: np.ndarray, counts: np.ndarray, n: int) -> list[tuple[int, int]] | None:
    """The ``n`` most frequent (code, count) of all ranks, on rank 0 (ties: smaller code first)."""
    order = np.lexsort((codes, -counts.astype(np.int64)))[:n]
    local = list(zip(codes[order].tolist(), counts[order].tolist()))
    gathered = comm.gather(local, root=0)  # comm: each rank's candidates (owners are disjoint)
    if comm.rank != 0:
        return None
    merged = [pair for part in gathered for pair in part]
    return sorted(merged, key=lambda p: (-p[1], p[0]))[:n]


def reference_counts(seqs: Sequence[bytes], k: int) -> Counter:
    """collections.Counter of the k-mer strings, one process: the independent check.

    For a file, ``seqs`` come from :func:`hpcsuite.core.seqio.simple_reads`, a separate
    plain reader, never from what the parallel reader parsed.
    """
    c: Counter = Counter()
    for s in seqs:
        text = s.decode("ascii", "replace").upper()
        for i in range(len(text) - k + 1):
            kmer = text[i : i + k]
            if all(ch in "ACGT" for ch in kmer):
                c[kmer] += 1
    return c


@dataclass
class State:
    """This rank's reads and the counts it owns after the last repetition."""

    comm: Any
    k: int
    seqs: list[bytes]
    bases: int
    records: int
    what: str
    args: Any
    codes: np.ndarray | None = None
    counts: np.ndarray | None = None
    totals: tuple[int, int, int] = (0, 0, 0)
    best: list[tuple[int, int]] | None = None


#: Bytes per base of the counting's temporaries (the base codes, validity sums and the
#: 64-bit k-mer codes with their sort): an estimate for the memory guard.
BYTES_PER_BASE = 40
#: Bytes per base of the one-process Counter reference on the root (a dict of k-mer
#: strings): an estimate for the memory guard.
CHECK_BYTES_PER_BASE = 150


class Kmer(Kernel):
    """k-mer counting as a kernel: reading or generating the reads is the setup; each
    repetition encodes, exchanges to the owners and merges."""

    name = "kmer"
    description = __doc__.split("\n\n")[0]
    step_label = "counting"
    devices = ("cpu",)  # string parsing and hashing

    def add_arguments(self, g: Any) -> None:
        g.add_argument(
            "-k", type=cli.positive_int, default=21, help=f"k-mer length, 1..{MAX_K} [%(default)s]"
        )
        g.add_argument(
            "--source",
            default="random",
            metavar="random|FILE",
            help="'random' (reads from a random genome), or a FASTA/FASTQ file [%(default)s]",
        )
        g.add_argument(
            "--reads", type=cli.positive_int, default=200_000, help="random reads [%(default)s]"
        )
        g.add_argument(
            "--read-length",
            type=cli.positive_int,
            default=150,
            help="random read length [%(default)s]",
        )
        g.add_argument(
            "--genome",
            type=cli.positive_int,
            default=1_000_000,
            help="random genome length the reads come from [%(default)s]",
        )
        g.add_argument(
            "--top",
            type=cli.nonnegative_int,
            default=10,
            help="print the N most frequent k-mers [%(default)s]",
        )
        g.add_argument(
            "--strict",
            action="store_true",
            help=(
                "exit 2 when a FASTQ file holds incomplete records (e.g. cut off in its last "
                "one) instead of warning and skipping them"
            ),
        )

    def validate(self, args: Any) -> None:
        if not 1 <= args.k <= MAX_K:
            raise UsageError(
                f"-k {args.k} is out of range: 2-bit codes in 64 bits hold k from 1 to {MAX_K}"
            )

    def plan(self, comm: Any, backend: Any, args: Any) -> None:
        with mpi.agree(comm):
            if args.source == "random":
                args.input_bytes_ = args.reads * args.read_length + args.genome
            else:
                seqio.file_format(args.source)  # refuses FIFOs, directories, unknown formats
                args.input_bytes_ = os.path.getsize(args.source)

    def footprint(self, comm: Any, backend: Any, args: Any) -> Footprint:
        mine = args.input_bytes_ // comm.size + 1
        check = CHECK_BYTES_PER_BASE * args.input_bytes_ if args.check and comm.rank == 0 else 0
        return Footprint(
            host=BYTES_PER_BASE * mine + check,
            hint="use more nodes or a smaller input" + (", or drop --check" if args.check else ""),
        )

    def setup(self, comm: Any, backend: Any, args: Any) -> State:
        if args.source == "random":
            first, last = owned(args.reads, comm.size, comm.rank)
            seqs = generate(first, last, args.seed, args.read_length, args.genome)
            what = (
                f"{args.reads} random reads of {args.read_length} bases from a {args.genome}-base"
                " genome"
            )
            return State(comm, args.k, seqs, sum(len(s) for s in seqs), len(seqs), what, args)
        seqs, bases, records, incomplete, what = read_file(comm, args.source, args.k)
        check_complete(comm, args.source, incomplete, args.strict)
        return State(comm, args.k, seqs, bases, records, what, args)

    def step(self, state: State, phase: str) -> None:
        state.codes, state.counts, _ = run(state.comm, state.seqs, state.k)

    def check(self, state: State) -> dict[str, Any] | None:
        comm, args, k = state.comm, state.args, state.k
        gathered = comm.gather(
            (state.codes, state.counts), root=0
        )  # comm: every count, for the check
        if comm.rank != 0:
            return None
        # The reference reads the input again, plainly, on one process: a parsing bug of
        # the parallel reader cannot agree with itself here.
        if args.source == "random":
            ref_seqs = generate(0, args.reads, args.seed, args.read_length, args.genome)
        else:
            ref_seqs, _ = seqio.simple_reads(args.source)
        ref = reference_counts(ref_seqs, k)
        ours = {decode(c, k): int(n) for part in gathered for c, n in zip(*part)}
        same = ours == dict(ref)
        return {
            "passed": same,
            "distinct": len(ours),
            "reference_distinct": len(ref),
            "detail": (
                f"{'equal to' if same else 'DIFFERENT from'} collections.Counter "
                f"({len(ref)} distinct k-mers)"
            ),
        }

    def conclude(self, state: State) -> None:
        comm = state.comm
        totals = comm.allreduce(
            np.array([state.bases, state.records, len(state.codes)], dtype=np.int64)
        )  # comm: metadata
        state.totals = tuple(int(t) for t in totals)
        state.best = top(comm, state.codes, state.counts, state.args.top)

    def figure(self, state: State) -> Figure:
        return Figure("bases/s", float(state.totals[0]), "bases/s")

    def summary(self, state: State, times: dict[str, list[float]]) -> Summary:
        k, (bases, reads, distinct) = state.k, state.totals
        rate = bases / stats.median(times["step"])
        details = [
            f"input      {state.what}",
            (
                f"k-mers     k {k}: {distinct} distinct from {reads} reads, "
                f"{bases} bases, merged by hash over {state.comm.size} ranks"
            ),
        ]
        details += [f"top        {decode(c, k)} x {n}" for c, n in state.best or []]
        return Summary(
            headline=f"{distinct} distinct {k}-mers, {rate / 1e6:.2f} M bases/s",
            details=details,
            params={"k": k, "source": state.args.source, "reads": reads, "size": bases},
            result={"distinct": distinct, "top": [[decode(c, k), n] for c, n in state.best or []]},
        )


KERNEL = Kmer()


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    return driver.parser(KERNEL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.kmer``; return the exit status."""
    return driver.main(KERNEL, argv)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
