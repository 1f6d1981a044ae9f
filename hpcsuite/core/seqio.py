"""FASTA and FASTQ reading in parallel byte ranges, and a simple one-process reader.

Each rank reads only its own byte range ``[start, stop)`` of the file (FASTQ ranks read
on a little past ``stop`` to finish their last short record). Line endings may be LF,
CRLF or CR alone (old Mac tools): every reader here treats all three alike.

FASTA records may be far longer than a rank's range (a chromosome is one record), so
they are never moved whole to one rank:

* A few bytes per rank (where its range ends: inside a header line or not, at a line
  start or not) are gathered, so every rank knows whether its first byte continues a
  header line, continues a sequence, or starts a line.
* Each rank keeps the sequence bytes of its range: the *lead* (a continuation of a
  record that started on an earlier rank) and the records that start in its range.
  Line breaks are removed with ``bytes.translate`` - linear, in C.
* A k-mer that crosses a range boundary is counted by the rank holding its first base:
  each rank's last sequence is extended by the first ``overlap`` (k - 1) bases that
  follow it on the next ranks, gathered as at most ``overlap`` bytes per rank.

So the work per rank is its share of the file, with no rank scanning the whole file
and no repeated concatenation: reading is linear and scales with the ranks.

:func:`simple_reads` is the deliberately plain reader for ``--check``: one process,
whole file, Python's universal newlines, no byte ranges - it shares no code with the
parallel reader, so a parsing bug cannot hide by agreeing with itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from hpcsuite.core.errors import InputError
from hpcsuite.core.partition import owned
from hpcsuite.core.sources import check_regular_file

#: Bytes removed from FASTA sequence lines: line breaks of every convention and blanks.
_BLANKS = b"\r\n \t\v\f"
#: A header start inside a buffer: a line break followed by '>'.
_HEADER = re.compile(rb"[\r\n]>")
#: The end of a line: CR, LF (CRLF is a CR followed by an LF: both are found).
_BREAK = re.compile(rb"[\r\n]")
#: One line break of any convention, for FASTQ's line-structured records.
_TERM = re.compile(rb"\r\n|\r|\n")
#: FASTQ ranks read past their range in steps that double, so finishing a record of any
#: length costs time linear in its length.
_FIRST_STEP = 1 << 16


def file_format(path: str) -> str:
    """``fasta`` or ``fastq`` from the first character; a clear error otherwise.

    Raises
    ------
    InputError
        For a compressed, missing, unreadable or non-regular file (a FIFO would block
        every rank in ``open()``), or one that is neither format.
    """
    if path.endswith((".gz", ".bz2", ".xz", ".zst")):
        raise InputError(
            f"{path!r} is compressed; parallel reading needs plain text: decompress it first"
        )
    check_regular_file(path, "FASTA or FASTQ file")
    try:
        with open(path, "rb") as f:
            first = f.read(1)
    except OSError as exc:
        raise InputError(f"cannot read {path!r} ({exc.strerror or exc})") from None
    if first == b">":
        return "fasta"
    if first == b"@":
        return "fastq"
    raise InputError(f"{path!r} is neither FASTA (starts with '>') nor FASTQ (starts with '@')")


@dataclass
class Chunk:
    """What one rank read from its byte range.

    Attributes
    ----------
    seqs : list of bytes
        Sequences in file order; for FASTA the first is the lead (bases continuing a
        record begun on an earlier rank, possibly empty).
    records : int
        Records that start in this range.
    lead_only : bool
        FASTA: no record starts in this range (all of it continues an earlier one).
    incomplete : int
        FASTQ: records that are not four whole lines (a truncated last record).
    """

    seqs: list[bytes] = field(default_factory=list)
    records: int = 0
    lead_only: bool = False
    incomplete: int = 0

    @property
    def bases(self) -> int:
        """Bases read in this range (not counting any overlap added for k-mers)."""
        return sum(len(s) for s in self.seqs)


def _read(path: str, start: int, stop: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(max(stop - start, 0))


# -- FASTA -----------------------------------------------------------------------------------


def fasta_edge(buf: bytes) -> tuple[int, int, bytes, bytes]:
    """What the next range needs to know about this one: (length, index of the last line
    break or -1, first byte after it, first byte). Pure."""
    last = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
    return len(buf), last, buf[last + 1 : last + 2] if last >= 0 else b"", buf[:1]


def fasta_state(edges: list[tuple[int, int, bytes, bytes]], rank: int) -> tuple[bool, bool]:
    """(at a line start, inside a header line) where range ``rank`` begins, from the
    :func:`fasta_edge` of every range before it. Pure; linear in the rank count."""
    at_start, in_header = True, False
    for length, last, after, first in edges[:rank]:
        if length == 0:
            continue
        if last < 0:  # no line break in that range: the line it began in goes on
            if at_start:
                in_header = first == b">"
            at_start = False
        elif after == b"":
            at_start, in_header = True, False
        else:
            at_start, in_header = False, after == b">"
    return at_start, in_header


def parse_fasta(buf: bytes, at_start: bool, in_header: bool) -> Chunk:
    """The sequences in one range of a FASTA file, given the state where it begins. Pure.

    Linear: header starts are found by a regular expression, sequence bytes are
    joined by one ``translate`` per record.
    """
    pos = 0
    if not at_start and in_header:  # the range begins inside a header line: skip its rest
        found = _BREAK.search(buf)
        if found is None:
            return Chunk(seqs=[b""], records=0, lead_only=True)
        pos = found.start()
    heads = [m.start() + 1 for m in _HEADER.finditer(buf, pos)]
    if at_start and buf[:1] == b">":
        heads.insert(0, 0)
    ends = heads[1:] + [len(buf)]
    lead = buf[pos : heads[0] if heads else len(buf)].translate(None, _BLANKS)
    seqs = [lead]
    for h, nxt in zip(heads, ends):
        found = _BREAK.search(buf, h, nxt)
        seqs.append(buf[found.start() : nxt].translate(None, _BLANKS) if found else b"")
    return Chunk(seqs=seqs, records=len(heads), lead_only=not heads)


def extend_for_overlap(
    chunk: Chunk, heads: list[tuple[bytes, bool]], rank: int, overlap: int
) -> list[bytes]:
    """``chunk.seqs`` with the last one extended by the next ``overlap`` bases of its
    record, taken from the leads of the following ranges (``heads[j]`` = (first
    ``overlap`` lead bases of range j, whether range j is all lead)). Pure."""
    if overlap <= 0 or not chunk.seqs:
        return list(chunk.seqs)
    more = b""
    for lead, lead_only in heads[rank + 1 :]:
        more += lead
        if len(more) >= overlap or not lead_only:  # enough, or a new record starts there
            break
    return chunk.seqs[:-1] + [chunk.seqs[-1] + more[:overlap]]


# -- FASTQ -----------------------------------------------------------------------------------


def _lines(buf: bytes) -> tuple[list[int], list[bytes]]:
    """Offsets and contents of the lines of ``buf`` (the last one may be partial)."""
    offsets, lines, pos = [], [], 0
    for m in _TERM.finditer(buf):
        offsets.append(pos)
        lines.append(buf[pos : m.start()])
        pos = m.end()
    offsets.append(pos)
    lines.append(buf[pos:])
    return offsets, lines


def _fastq_starts(lines: list[bytes]) -> list[int]:
    """Indexes of the lines that start a FASTQ record. A start is confirmed by its four
    lines ('@' header, sequence, '+', quality as long as the sequence), because a
    quality line may also begin with '@'."""
    return [
        i
        for i in range(len(lines) - 3)
        if lines[i][:1] == b"@"
        and lines[i + 2][:1] == b"+"
        and len(lines[i + 1]) == len(lines[i + 3])
    ]


def read_fastq_range(path: str, start: int, stop: int) -> Chunk:
    """The FASTQ records that start in bytes ``[start, stop)``.

    Reads from ``start - 1`` (to see whether ``start`` begins a line) and on past
    ``stop``, in doubling steps, until the next record start or the end of the file, so
    the last record is read whole and the next one is left to its own rank. A record
    span that is not exactly four lines counts as incomplete (a truncated last record
    shows up as extra lines after the record before it).
    """
    lo = max(start - 1, 0)
    size = os.path.getsize(path)
    end = min(max(stop, lo), size)
    step = _FIRST_STEP
    while True:
        buf = _read(path, lo, end)
        offsets, lines = _lines(buf)
        starts = [i for i in _fastq_starts(lines) if lo + offsets[i] >= start]
        if end >= size or any(lo + offsets[i] >= stop for i in starts):
            break
        end, step = min(end + step, size), step * 2  # total read: linear in the overshoot
    mine = [i for i in starts if lo + offsets[i] < stop]
    nxt = next((i for i in starts if lo + offsets[i] >= stop), len(lines))
    chunk = Chunk()
    if start == 0 and any(lines[: mine[0] if mine else len(lines)]):
        chunk.incomplete += 1  # the file's first record is already broken
    for i, j in zip(mine, mine[1:] + [nxt]):
        chunk.seqs.append(lines[i + 1].strip())
        if sum(1 for line in lines[i:j] if line) != 4:
            chunk.incomplete += 1
    chunk.records = len(mine)
    return chunk


def read_range(path: str, fmt: str, start: int, stop: int) -> list[bytes]:
    """The whole sequences of the records that start in bytes ``[start, stop)``, on one
    process, without MPI (tools and tests; :func:`read_distributed` is the parallel path).

    Reads from ``start - 1`` on past ``stop``, in doubling steps, until the next record
    start or the end of the file: linear in what it reads, however long the last record.
    """
    if fmt == "fastq":
        return read_fastq_range(path, start, stop).seqs
    lo = max(start - 1, 0)
    size = os.path.getsize(path)
    end, step = min(max(stop, lo), size), _FIRST_STEP
    while True:
        buf = _read(path, lo, end)
        nxt = _HEADER.search(buf, max(stop - lo - 1, 0))  # the first record start at or after stop
        if nxt is not None or end >= size:
            break
        end, step = min(end + step, size), step * 2
    if nxt is not None:
        buf = buf[: nxt.start() + 1]
    # From start - 1, a header is a '>' after a line break; what comes before the first
    # break (the rest of an earlier line) cannot start a record in this range.
    return parse_fasta(buf, start == 0, start > 0).seqs[1:]


# -- the parallel reader ---------------------------------------------------------------------


def read_distributed(comm: Any, path: str, fmt: str, overlap: int) -> tuple[Chunk, list[bytes]]:
    """This rank's share of the file (collective): (what it read, the sequences to count
    k-mers in, the last one extended by ``overlap`` bases of what follows on later ranks).
    """
    size = os.path.getsize(path)
    start, stop = owned(size, comm.size, comm.rank)
    if fmt == "fastq":  # records are short and read whole by the rank they start in
        chunk = read_fastq_range(path, start, stop)
        return chunk, list(chunk.seqs)
    buf = _read(path, start, stop)
    edges = comm.allgather(fasta_edge(buf))  # comm: a few bytes per rank, where each range ends
    chunk = parse_fasta(buf, *fasta_state(edges, comm.rank))
    del buf
    heads = comm.allgather(
        (chunk.seqs[0][:overlap], chunk.lead_only)
    )  # comm: <= k-1 bases per rank
    return chunk, extend_for_overlap(chunk, heads, comm.rank, overlap)


# -- the simple reader for --check -----------------------------------------------------------


def simple_reads(path: str) -> tuple[list[bytes], int]:
    """Every sequence of a FASTA or FASTQ file, read plainly on one process, and the
    number of incomplete FASTQ records skipped. Independent of the parallel reader.

    Text mode with universal newlines turns LF, CRLF and CR alone into one newline.
    FASTA: lines after a '>' line are the record's sequence. FASTQ: non-empty lines in
    groups of four; a group that is not '@', sequence, '+', quality of the same length
    (a truncated last record) is skipped and counted.
    """
    seqs: list[bytes] = []
    with open(path, encoding="latin-1", newline=None) as f:
        lines = [line.rstrip("\n") for line in f]
    if lines and lines[0].startswith(">"):
        current: list[str] | None = None
        for line in lines:
            if line.startswith(">"):
                if current is not None:
                    seqs.append("".join(current).encode("latin-1"))
                current = []
            elif current is not None:
                current.append("".join(line.split()))
        if current is not None:
            seqs.append("".join(current).encode("latin-1"))
        return seqs, 0
    lines = [line for line in lines if line.strip()]
    bad = 0
    for i in range(0, len(lines), 4):
        group = lines[i : i + 4]
        if (
            len(group) == 4
            and group[0].startswith("@")
            and group[2].startswith("+")
            and len(group[1].strip()) == len(group[3].strip())
        ):
            seqs.append(group[1].strip().encode("latin-1"))
        else:
            bad += 1
    return seqs, bad
