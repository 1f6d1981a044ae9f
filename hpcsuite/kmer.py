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
from typing import Any

import numpy as np

from hpcsuite.core import cli, seqio
from hpcsuite.core.errors import InputError, UsageError
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
    valid = (bad[k:k + n] - bad[:n]) == 0
    val = np.zeros(n, dtype=np.uint64)
    for j in range(k):
        val = (val << np.uint64(2)) | (codes[j:j + n] & 3).astype(np.uint64)
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
    from hpcsuite.core import mpi

    total = comm.allreduce(incomplete)  # comm: metadata
    if not total:
        return
    text = (f"{path!r} holds {total} incomplete FASTQ record{'s' if total > 1 else ''} (not four whole lines: "
            "was the file cut off?)")
    with mpi.agree(comm):
        if strict:
            raise InputError(f"{text}; fix the file, or drop --strict to skip them")
    if comm.rank == 0:
        sys.stderr.write(f"{PROG}: warning: {text}; skipped (--strict makes this an error)\n")
        sys.stderr.flush()


def generate(first: int, last: int, seed: int, length: int, genome: int) -> list[bytes]:
    """Reads ``[first, last)`` sampled from a random genome; each read from its own stream. Pure."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,))))
    dna = _BASES[rng.integers(0, 4, genome)].tobytes()
    reads = []
    for r in range(first, last):
        g = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1, r))))
        pos = int(g.integers(0, max(genome - length, 0) + 1))
        reads.append(dna[pos:pos + length])
    return reads


# -- the driver ------------------------------------------------------------------------------

def run(comm: Any, seqs: list[bytes], k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Count this rank's reads and merge by hash owner: (my codes, their counts, bases in ``seqs``)."""
    from hpcsuite.core.mpi import datatype

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
    comm.Alltoallv([codes, scounts, sdispl, u64], [got_codes, rcounts, rdispl, u64])  # comm: codes to owners
    comm.Alltoallv([counts, scounts, sdispl, u64], [got_counts, rcounts, rdispl, u64])  # comm: their counts
    mine, mine_counts = merge(got_codes, got_counts)
    return mine, mine_counts, sum(len(s) for s in seqs)


def top(comm: Any, codes: np.ndarray, counts: np.ndarray, n: int) -> list[tuple[int, int]] | None:
    """The ``n`` most frequent (code, count) over all ranks, on rank 0 (ties: smaller code first)."""
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
            kmer = text[i:i + k]
            if all(ch in "ACGT" for ch in kmer):
                c[kmer] += 1
    return c


def parser() -> cli.ArgumentParser:
    """The command-line interface."""
    p = cli.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.split("\n\n")[0],
                           parents=[cli.common_parser()])
    g = p.add_argument_group("k-mer options")
    g.add_argument("-k", type=cli.positive_int, default=21, help=f"k-mer length, 1..{MAX_K} [%(default)s]")
    g.add_argument("--source", default="random", metavar="random|FILE",
                   help="'random' (reads from a random genome), or a FASTA/FASTQ file [%(default)s]")
    g.add_argument("--reads", type=cli.positive_int, default=200_000, help="random reads [%(default)s]")
    g.add_argument("--read-length", type=cli.positive_int, default=150, help="random read length [%(default)s]")
    g.add_argument("--genome", type=cli.positive_int, default=1_000_000,
                   help="random genome length the reads come from [%(default)s]")
    g.add_argument("--top", type=cli.nonnegative_int, default=10, help="print the N most frequent k-mers [%(default)s]")
    g.add_argument("--strict", action="store_true",
                   help="exit 2 when a FASTQ file holds incomplete records (e.g. cut off in its last "
                        "one) instead of warning and skipping them")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m hpcsuite.kmer``; return the exit status."""
    args = parser().parse_args(argv)
    if not 1 <= args.k <= MAX_K:
        raise UsageError(f"-k {args.k} is out of range: 2-bit codes in 64 bits hold k from 1 to {MAX_K}")
    if args.device != "cpu":
        raise UsageError("kmer runs on the CPU (string parsing and hashing); drop --device")
    from hpcsuite.core import app, mpi
    from hpcsuite.core.timing import measure

    ctx = app.begin(args)
    comm = ctx.comm
    incomplete = 0
    with mpi.agree(comm):
        if args.source == "random":
            first, last = owned(args.reads, comm.size, comm.rank)
            seqs = generate(first, last, args.seed, args.read_length, args.genome)
            bases, records = sum(len(s) for s in seqs), len(seqs)
            what = f"{args.reads} random reads of {args.read_length} bases from a {args.genome}-base genome"
        else:
            seqs, bases, records, incomplete, what = read_file(comm, args.source, args.k)
    if args.source != "random":
        check_complete(comm, args.source, incomplete, args.strict)
    state: dict[str, Any] = {}

    def once() -> None:
        state["out"] = run(comm, seqs, args.k)

    times, _ = measure(once, warmup=args.warmup, repeat=args.repeat, barrier=comm.Barrier)
    times = [mpi.max_over_ranks(comm, t) for t in times]
    codes, counts, _ = state["out"]
    bases = comm.allreduce(bases)  # comm: metadata
    reads = comm.allreduce(records)  # comm: metadata
    distinct = comm.allreduce(len(codes))  # comm: metadata
    best = top(comm, codes, counts, args.top)
    check = None
    if args.check:
        gathered = comm.gather((codes, counts), root=0)  # comm: every count, for the check
        if comm.rank == 0:
            # The reference reads the input again, plainly, on one process: a parsing bug
            # of the parallel reader cannot agree with itself here.
            if args.source == "random":
                ref_seqs = generate(0, args.reads, args.seed, args.read_length, args.genome)
            else:
                ref_seqs, _ = seqio.simple_reads(args.source)
            ref = reference_counts(ref_seqs, args.k)
            ours = {decode(c, args.k): int(n) for part in gathered for c, n in zip(*part)}
            same = ours == dict(ref)
            check = {"passed": same, "distinct": len(ours), "reference_distinct": len(ref),
                     "detail": f"{'equal to' if same else 'DIFFERENT from'} collections.Counter "
                               f"({len(ref)} distinct k-mers)"}
    details = [f"input      {what}", f"k-mers     k {args.k}: {distinct} distinct from {reads} reads, "
                                    f"{bases} bases, merged by hash over {comm.size} ranks"]
    if best:
        details += [f"top        {decode(c, args.k)} x {n}" for c, n in best]
    rate = bases / min(times)
    return app.finish(ctx, args, kernel="kmer", headline=f"{distinct} distinct {args.k}-mers, {rate / 1e6:.2f} M bases/s",
                      details=details,
                      params={"k": args.k, "source": args.source, "reads": reads, "size": bases,
                              "repeat": args.repeat},
                      samples=times, fom=("bases/s", rate, "bases/s"),
                      result={"distinct": distinct, "top": [[decode(c, args.k), n] for c, n in (best or [])]},
                      check=check)


if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
