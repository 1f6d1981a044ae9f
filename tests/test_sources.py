from __future__ import annotations

import pickle

import numpy as np
import pytest

from hpcsuite.core import backend
from hpcsuite.core.errors import InputError, UsageError
from hpcsuite.core.partition import Layout
from hpcsuite.core.sources import INT_HIGH, RandomSource, load_rows, open_source

CPU = backend.load("numpy")


def _read(source, start, stop):
    out = np.empty((stop - start, *source.shape[1:]), dtype=source.dtype)
    source.read(start, stop, out)
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32", "int32", "int64"])
def test_random_data_does_not_depend_on_who_reads_which_blocks(dtype):
    src = open_source("random", shape=(1000, 700), dtype=dtype, seed=3)
    whole = _read(src, 0, 1000)
    rows = src.layout.block_rows
    pieces = [_read(src, a, min(a + 2 * rows, 1000)) for a in range(0, 1000, 2 * rows)]
    assert np.array_equal(whole, np.concatenate(pieces))
    assert whole.dtype == np.dtype(dtype)
    if whole.dtype.kind == "f":
        assert 0.0 <= whole.min() and whole.max() < 1.0
    else:
        assert 0 <= whole.min() and whole.max() < INT_HIGH
    # Uniform enough that a broken generator (constant, zeros) shows.
    assert (
        abs(whole.mean() - (0.5 if whole.dtype.kind == "f" else (INT_HIGH - 1) / 2))
        < 0.01 * whole.max()
    )


def test_random_data_depends_on_the_seed_and_blocks_differ():
    a = _read(open_source("random", shape=(2000, 600), dtype=None, seed=1), 0, 2000)
    b = _read(open_source("random", shape=(2000, 600), dtype=None, seed=2), 0, 2000)
    assert not np.array_equal(a, b)
    rows = Layout.for_shape((2000, 600)).block_rows
    assert not np.array_equal(a[:rows], a[rows : 2 * rows])


def test_random_source_refuses_ranges_off_block_boundaries():
    src = RandomSource((1000, 700), np.dtype("float64"), 0, Layout.for_shape((1000, 700)))
    with pytest.raises(ValueError, match="blocks"):
        _read(src, 1, 10)
    _read(src, 1000, 1000)  # the empty range of a rank without blocks is fine anywhere


def test_defaults_are_the_dask_tutorial_array():
    src = open_source("random", shape=None, dtype=None, seed=0)
    assert src.shape == (10000, 10000) and src.dtype == np.float64


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<f4", "<i4", ">i8", "|u1", "|b1"])
def test_npy_rows_equal_numpy_load(tmp_path, order, dtype):
    data = np.asarray(np.random.default_rng(0).integers(0, 2, (37, 5, 3)), dtype=dtype, order=order)
    path = tmp_path / "a.npy"
    np.save(path, data)
    src = open_source(str(path), shape=None, dtype=None, seed=0)
    assert src.shape == (37, 5, 3) and src.dtype.isnative
    assert np.array_equal(_read(src, 0, 37), data)
    assert np.array_equal(_read(src, 5, 19), data[5:19])


def test_hdf5_single_and_named_datasets(tmp_path):
    h5py = pytest.importorskip("h5py")
    data = np.arange(60, dtype=np.float32).reshape(20, 3)
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    with h5py.File(one, "w") as f:
        f["g/x"] = data
    with h5py.File(two, "w") as f:
        f["x"] = data
        f["y"] = data * 2
    assert np.array_equal(
        _read(open_source(str(one), shape=None, dtype=None, seed=0), 3, 9), data[3:9]
    )
    src = open_source(f"{two}:y", shape=(20, 3), dtype="float32", seed=0)
    assert np.array_equal(_read(src, 0, 20), data * 2)
    with pytest.raises(InputError, match="2 datasets"):
        open_source(str(two), shape=None, dtype=None, seed=0)
    with pytest.raises(InputError, match="no dataset 'z'"):
        open_source(f"{two}:z", shape=None, dtype=None, seed=0)


def _bad_files(tmp_path):
    good = np.ones((10, 4))
    np.save(tmp_path / "good.npy", good)
    raw = (tmp_path / "good.npy").read_bytes()
    (tmp_path / "truncated.npy").write_bytes(raw[:-8])
    (tmp_path / "text.npy").write_text("hello, not an array\n")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "pickle.npy").write_bytes(pickle.dumps([1, 2, 3]))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.save(tmp_path / "complex.npy", np.ones(3, dtype=complex))
    np.save(tmp_path / "scalar.npy", np.float64(1.0))
    np.save(tmp_path / "zero.npy", np.ones((0, 3)))
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "fake.h5").write_text("not hdf5")
    (tmp_path / "dir.npy").mkdir()


@pytest.mark.parametrize(
    "name,message",
    [
        ("missing.npy", "no such file"),
        ("truncated.npy", "truncated"),
        ("text.npy", "not a readable .npy"),
        ("empty.npy", "not a readable .npy"),
        ("pickle.npy", "not a readable .npy"),
        ("objects.npy", "never unpickles"),
        ("complex.npy", "complex128 data"),
        ("scalar.npy", "scalar"),
        ("zero.npy", "zero-size"),
        ("fake.h5", "not a readable HDF5"),
        ("dir.npy", "directory"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, name, message):
    if name.endswith(".h5"):
        pytest.importorskip("h5py")
    _bad_files(tmp_path)
    with pytest.raises(InputError, match=message) as info:
        open_source(str(tmp_path / name), shape=None, dtype=None, seed=0)
    assert str(tmp_path / name) in str(info.value)


def test_unknown_source_kind_and_dtype(tmp_path):
    _bad_files(tmp_path)
    with pytest.raises(UsageError, match="unknown source"):
        open_source(str(tmp_path / "notes.txt"), shape=None, dtype=None, seed=0)
    with pytest.raises(UsageError, match="unknown dtype 'complex64'"):
        open_source("random", shape=(3, 3), dtype="complex64", seed=0)


def test_file_must_agree_with_shape_and_dtype(tmp_path):
    _bad_files(tmp_path)
    path = str(tmp_path / "good.npy")
    with pytest.raises(InputError, match="holds shape 10x4 but --shape says 4x10"):
        open_source(path, shape=(4, 10), dtype=None, seed=0)
    with pytest.raises(InputError, match="holds float64 but --dtype says float32"):
        open_source(path, shape=(10, 4), dtype="float32", seed=0)
    assert open_source(path, shape=(10, 4), dtype="float64", seed=0).shape == (10, 4)


def test_load_rows_through_a_device_backend_reads_block_by_block():
    src = open_source("random", shape=(3000, 500), dtype="float32", seed=5)
    copies = []
    staged = backend.Backend(
        name="fake-device",
        xp=np,
        device="gpu",
        on_device=True,
        from_host=lambda a: copies.append(len(a)) or np.array(a),
    )
    got = load_rows(src, staged, src.layout, 0, 3000)
    assert np.array_equal(got, load_rows(src, CPU, src.layout, 0, 3000))
    assert copies and max(copies) <= src.layout.block_rows and sum(copies) == 3000


# -- issue 14: sources that are not regular files, and headers that lie ------------------------

import os  # noqa: E402
import socket  # noqa: E402


@pytest.mark.parametrize("suffix", [".npy", ".h5"])
def test_a_fifo_is_refused_before_open_blocks(tmp_path, suffix):
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)  # open() for reading would wait for a writer forever
    with pytest.raises(InputError, match="not a regular file"):
        open_source(str(fifo), shape=None, dtype=None, seed=0)


def test_directories_devices_and_sockets_are_refused(tmp_path):
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        open_source(str(tmp_path / "d.npy"), shape=None, dtype=None, seed=0)
    os.symlink("/dev/zero", tmp_path / "zero.npy")
    with pytest.raises(InputError, match="not a regular file"):
        open_source(str(tmp_path / "zero.npy"), shape=None, dtype=None, seed=0)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "s.npy"))
        with pytest.raises(InputError, match="not a regular file"):
            open_source(str(tmp_path / "s.npy"), shape=None, dtype=None, seed=0)
    finally:
        sock.close()


def _npy_with_shape(path, shape_text):
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}"
    header = header + " " * (63 - (10 + len(header)) % 64) + "\n"
    path.write_bytes(
        b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode() + b"\0" * 800
    )


@pytest.mark.parametrize("shape_text", ["(-1, 4)", "(10, -4)", "(-3,)"])
def test_a_header_with_a_negative_dimension_is_one_clear_error(tmp_path, shape_text):
    _npy_with_shape(tmp_path / "neg.npy", shape_text)
    with pytest.raises(InputError, match="negative"):
        open_source(str(tmp_path / "neg.npy"), shape=None, dtype=None, seed=0)


# -- issue 14: FASTA/FASTQ reading (hpcsuite.core.seqio) ---------------------------------------

from collections import Counter  # noqa: E402

from hpcsuite.core import seqio  # noqa: E402
from hpcsuite.core.partition import owned  # noqa: E402


def _kmers(seqs, k):
    c = Counter()
    for s in seqs:
        s = s.upper()
        for i in range(len(s) - k + 1):
            if all(ch in b"ACGT" for ch in s[i : i + k]):
                c[s[i : i + k]] += 1
    return c


def _distributed(path, parts, k):
    """read_distributed's steps for `parts` ranks, run one after another (no MPI)."""
    size = os.path.getsize(path)
    fmt = seqio.file_format(str(path))
    if fmt == "fastq":
        chunks = [seqio.read_fastq_range(str(path), *owned(size, parts, r)) for r in range(parts)]
        return chunks, [list(c.seqs) for c in chunks]
    bufs = [path.read_bytes()[slice(*owned(size, parts, r))] for r in range(parts)]
    edges = [seqio.fasta_edge(b) for b in bufs]
    chunks = [seqio.parse_fasta(b, *seqio.fasta_state(edges, r)) for r, b in enumerate(bufs)]
    heads = [(c.seqs[0][: k - 1], c.lead_only) for c in chunks]
    return chunks, [seqio.extend_for_overlap(c, heads, r, k - 1) for r, c in enumerate(chunks)]


def _genome(tmp_path, newline, n_records=4, fastq=False):
    rng = np.random.default_rng(5)
    seqs, lines = [], []
    for i in range(n_records):
        seq = "".join(rng.choice(list("ACGTacgN"), size=int(rng.integers(1, 400))))
        seqs.append(seq.encode())
        if fastq:
            lines += [f"@r{i} x", seq, "+", "I" * len(seq)]
        else:
            lines += [f">chr{i} a long description line " + "d" * int(rng.integers(0, 90))]
            lines += [seq[j : j + 37] for j in range(0, len(seq), 37)]
    path = tmp_path / f"g{'.fq' if fastq else '.fa'}"
    path.write_bytes(newline.join(lines).encode() + newline.encode())
    return path, seqs


@pytest.mark.parametrize("fastq", [False, True])
@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_lf_crlf_and_cr_files_read_the_same_at_any_range_count(tmp_path, newline, fastq):
    path, seqs = _genome(tmp_path, newline, fastq=fastq)
    assert seqio.simple_reads(str(path)) == (seqs, 0)
    size = path.stat().st_size
    for parts in (1, 2, 3, 7, 50, 400):
        got = []
        for r in range(parts):
            got += seqio.read_range(str(path), seqio.file_format(str(path)), *owned(size, parts, r))
        assert got == seqs, parts
        chunks, counted = _distributed(path, parts, 5)
        assert sum(c.records for c in chunks) == len(seqs) and sum(c.bases for c in chunks) == sum(
            map(len, seqs)
        )
        assert _kmers([s for part in counted for s in part], 5) == _kmers(seqs, 5), parts


@pytest.mark.parametrize("k", [1, 2, 13, 31])
def test_one_long_record_split_over_many_ranges_counts_every_kmer_once(tmp_path, k):
    rng = np.random.default_rng(7)
    seq = bytes(rng.choice(list(b"ACGT"), size=5000))
    path = tmp_path / "chr.fa"
    path.write_bytes(
        b">chr1\r\n" + b"\r\n".join(seq[i : i + 61] for i in range(0, len(seq), 61)) + b"\r\n"
    )
    for parts in (1, 2, 4, 9, 300):  # 300: ranges shorter than a line, shorter than k
        chunks, counted = _distributed(path, parts, k)
        assert sum(c.records for c in chunks) == 1 and sum(c.bases for c in chunks) == len(seq)
        assert _kmers([s for part in counted for s in part], k) == _kmers([seq], k), parts
        assert (
            sum(len(s) for s in chunks[0].seqs) <= path.stat().st_size // parts + 1
        )  # rank 0 kept its share


def test_a_header_line_longer_than_a_range_is_skipped_whole(tmp_path):
    path = tmp_path / "h.fa"
    path.write_bytes(b">" + b"ACGT" * 50 + b"\nAAAA\nCC\n>x\nGGG\n")
    for parts in (1, 3, 20, 100):
        chunks, _ = _distributed(path, parts, 2)
        assert b"".join(s for c in chunks for s in c.seqs) == b"AAAACCGGG", parts  # no header byte
        assert sum(c.records for c in chunks) == 2


def test_a_truncated_fastq_record_is_counted_as_incomplete(tmp_path):
    whole = "".join(f"@r{i}\nACGTACGT\n+\nIIIIIIII\n" for i in range(20))
    for cut in ("@r20\nACGTAC\n+\nIII", "@r20\nACGT", "@r20\n"):
        path = tmp_path / "t.fq"
        path.write_text(whole + cut)
        assert seqio.simple_reads(str(path)) == ([b"ACGTACGT"] * 20, 1)
        for parts in (1, 2, 5):
            chunks, _ = _distributed(path, parts, 3)
            assert (
                sum(c.records for c in chunks) == 20 and sum(c.incomplete for c in chunks) == 1
            ), (cut, parts)
    path.write_text(whole)
    assert sum(c.incomplete for c in _distributed(path, 3, 3)[0]) == 0


def test_kmer_refuses_a_fifo_before_open_blocks(tmp_path):
    os.mkfifo(tmp_path / "reads.fa")
    with pytest.raises(InputError, match="not a regular file"):
        seqio.file_format(str(tmp_path / "reads.fa"))
