"""Pure parts of the scientific kernels: closed forms and local computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpcsuite import montecarlo, stream


def test_stream_kernels_follow_the_recurrence():
    a, b, c = np.full(10, 2.0), np.full(10, 2.0), np.zeros(10)
    ops = stream.kernels(a, b, c, np)
    for _ in range(3):
        for name in stream.KERNELS:
            ops[name]()
    want = stream.expected(3)
    assert stream.errors((a, b, c), want, np) == [0.0, 0.0, 0.0]
    assert want[0] != 2.0  # the recurrence moved


def test_stream_errors_see_a_wrong_value():
    a = np.full(10, 2.0)
    a[3] = 3.0
    assert stream.errors((a,), (2.0,), np)[0] == pytest.approx(0.05)


def test_stream_default_size_respects_the_cache_rule_and_memory():
    n, note = stream.default_size(1, None)
    assert n >= max(1 << 23, 4 * stream.last_level_cache_bytes() // 8) and note == ""
    n, _ = stream.default_size(8, None, device_cache=50 << 20)  # an H100's L2: per GPU, not shared
    assert n == 4 * (50 << 20) // 8
    n, note = stream.default_size(4, 10**9)
    assert 3 * 8 * n * 4 <= 10**9 // 2 + 3 * 8 * 4 and "below STREAM" in note


@pytest.mark.parametrize(
    "kind,expected", [("call", 10.450583572185565), ("put", 5.573526022256971)]
)
def test_black_scholes_textbook_values(kind, expected):
    # S=100, K=100, r=5 %, sigma=20 %, T=1 (Hull's example values)
    assert montecarlo.black_scholes(kind, 100, 100, 0.05, 0.2, 1.0) == pytest.approx(
        expected, rel=1e-12
    )


def test_put_call_parity_holds():
    call = montecarlo.black_scholes("call", 90, 100, 0.03, 0.3, 2.0)
    put = montecarlo.black_scholes("put", 90, 100, 0.03, 0.3, 2.0)
    assert call - put == pytest.approx(90 - 100 * math.exp(-0.06), rel=1e-12)


def test_monte_carlo_combine_gives_mean_and_standard_error():
    payoffs = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    rows = np.array(
        [
            [payoffs[:4].sum(), (payoffs[:4] ** 2).sum()],  # one row per block
            [payoffs[4:].sum(), (payoffs[4:] ** 2).sum()],
        ]
    )
    mean, se = montecarlo.combine(rows, 6)
    assert mean == pytest.approx(3.5) and se == pytest.approx(payoffs.std(ddof=1) / math.sqrt(6))
    assert isinstance(mean, float) and isinstance(
        se, float
    )  # printed with repr: no np.float64(...)


def test_monte_carlo_local_payoffs():
    z = np.zeros(4)  # S_T = S0 exp((r - s^2/2) T)
    s, sq = montecarlo.local(
        z, np, kind="call", spot=100, strike=90, rate=0.0, vol=0.2, maturity=1.0
    )
    st = 100 * math.exp(-0.02)
    assert float(s) == pytest.approx(4 * (st - 90)) and float(sq) == pytest.approx(
        4 * (st - 90) ** 2
    )


def test_stencil_update_gives_the_same_bits_for_any_split():
    from hpcsuite import stencil

    shape = (9, 7)
    u = stencil.initial((0, 9), (0, 7), shape, np)
    u[1:-1, 1:-1] += np.random.default_rng(0).random((9, 7))
    whole, parts = np.zeros_like(u), np.zeros_like(u)
    stencil.update(u, whole, 0.2, 1, 10, 1, 8)
    for r0, r1, c0, c1 in ((1, 4, 1, 8), (4, 10, 1, 3), (4, 10, 3, 8)):
        stencil.update(u, parts, 0.2, r0, r1, c0, c1)
    assert whole.tobytes() == parts.tobytes()


def test_stencil_sine_mode_decays_by_the_scheme_factor():
    from hpcsuite import stencil

    shape, steps = (15, 11), 25
    got = stencil.reference(shape, steps, 0.25)
    mode = stencil.initial((0, 15), (0, 11), shape, np)[1:-1, 1:-1]
    g = stencil.decay(shape, 0.25)
    assert 0 < g < 1
    np.testing.assert_allclose(got, g**steps * mode, rtol=1e-12, atol=1e-15)


def test_stencil_initial_blocks_tile_the_global_mode():
    from hpcsuite import stencil

    whole = stencil.initial((0, 8), (0, 6), (8, 6), np)
    block = stencil.initial((3, 8), (2, 6), (8, 6), np)
    assert (
        np.array_equal(block[1:-1, 1:-1], whole[4:9, 3:7])
        and not block[0].any()
        and not block[:, 0].any()
    )


@pytest.mark.parametrize(
    "n,p,q,width", [(10, 1, 1, 4), (10, 3, 2, 100), (7, 7, 1, 1), (100, 2, 3, 16)]
)
def test_summa_panels_cover_k_once_with_the_right_owners(n, p, q, width):
    from hpcsuite import matmul
    from hpcsuite.core.partition import owned

    got = matmul.panels(n, p, q, width)
    assert got[0][0] == 0 and got[-1][1] == n
    for (k0, k1, jq, ip), nxt in zip(got, got[1:] + [(n, n, 0, 0)]):
        assert k1 == nxt[0] and 0 < k1 - k0 <= width
        a0, a1 = owned(n, q, jq)  # A's columns [k0, k1) sit in column block jq
        b0, b1 = owned(n, p, ip)  # B's rows [k0, k1) sit in row block ip
        assert a0 <= k0 and k1 <= a1 and b0 <= k0 and k1 <= b1


def test_matrix_blocks_tile_the_global_matrix():
    from hpcsuite import matmul

    whole = matmul.rows_of(0, 5, (0, 6), (0, 9), 9, "float64")
    assert np.array_equal(matmul.rows_of(0, 5, (2, 5), (3, 9), 9, "float64"), whole[2:5, 3:9])
    assert not np.array_equal(whole, matmul.rows_of(1, 5, (0, 6), (0, 9), 9, "float64"))


def test_fft_flops_and_input_slabs():
    from hpcsuite import fft

    assert fft.flops((4, 4)) == 5 * 16 * 4 and fft.flops((1,)) == 0
    whole = fft.slab((6, 3), 0, 6, 1)
    assert np.array_equal(fft.slab((6, 3), 2, 5, 1), whole[2:5]) and whole.dtype == np.complex128


def _fastq(tmp_path, n=40):
    rng = np.random.default_rng(2)
    lines = []
    for i in range(n):
        seq = "".join(rng.choice(list("ACGTN"), size=int(rng.integers(5, 40))))
        qual = "@" + "I" * (len(seq) - 1)  # a quality line that starts with '@', as FASTQ allows
        lines += [f"@read{i} x", seq, "+", qual]
    path = tmp_path / "r.fq"
    path.write_text("\n".join(lines) + "\n")
    return path, [ln for ln in lines[1::4]]


def _fasta(tmp_path, n=30):
    rng = np.random.default_rng(3)
    out, seqs = [], []
    for i in range(n):
        seq = "".join(rng.choice(list("ACGTacgtN"), size=int(rng.integers(1, 90))))
        seqs.append(seq)
        out.append(f">chr{i} description")
        out += [seq[j : j + 25] for j in range(0, len(seq), 25)]  # wrapped at 25 columns
    path = tmp_path / "g.fa"
    path.write_text("\n".join(out) + "\n")
    return path, seqs


@pytest.mark.parametrize("maker", [_fastq, _fasta])
def test_byte_ranges_read_every_record_exactly_once(tmp_path, maker):
    from hpcsuite import kmer
    from hpcsuite.core.partition import owned

    path, seqs = maker(tmp_path)
    fmt = kmer.file_format(str(path))
    size = path.stat().st_size
    for parts in (1, 2, 3, 7, 50):
        got = []
        for r in range(parts):
            got += kmer.read_range(str(path), fmt, *owned(size, parts, r))
        assert [s.decode() for s in got] == seqs, parts


def test_kmer_codes_count_like_counter():
    from hpcsuite import kmer

    seqs = [b"ACGTACGTNNACG", b"acgtac", b"GG", b"TTTTTTT"]
    for k in (1, 3, 5):
        codes, counts = kmer.count(kmer.encode(seqs, k))
        got = {kmer.decode(c, k): int(n) for c, n in zip(codes, counts)}
        assert got == dict(kmer.reference_counts(seqs, k))
    big = kmer.encode([b"T" * 40], 31)
    assert len(big) == 10 and kmer.decode(int(big[0]), 31) == "T" * 31


def test_kmer_merge_and_owner():
    from hpcsuite import kmer

    codes, counts = kmer.merge(np.array([5, 3, 5, 9], np.uint64), np.array([1, 2, 3, 4], np.uint64))
    assert codes.tolist() == [3, 5, 9] and counts.tolist() == [2, 4, 4]
    owners = kmer.owner(np.arange(10000, dtype=np.uint64), 7)
    assert set(owners.tolist()) == set(range(7)) and max(np.bincount(owners)) < 1.2 * 10000 / 7


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("a.txt", "hello\n", "neither FASTA"),
        ("a.fa.gz", "x", "compressed"),
        ("missing.fa", None, "no such file"),
    ],
)
def test_kmer_refuses_unreadable_inputs(tmp_path, name, content, message):
    from hpcsuite import kmer
    from hpcsuite.core.errors import InputError

    if content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(InputError, match=message):
        kmer.file_format(str(tmp_path / name))


def test_stencil_cache_strips_give_the_bits_of_the_whole_array_expression():
    from hpcsuite import stencil

    u = np.random.default_rng(1).random((300, 200))
    strips, whole = np.zeros_like(u), np.zeros_like(u)
    stencil.update(u, strips, 0.2, 1, 299, 1, 199)
    # the expression device arrays use
    whole[1:299, 1:199] = (1 - 4 * 0.2) * u[1:299, 1:199] + 0.2 * (
        ((u[0:298, 1:199] + u[2:300, 1:199]) + u[1:299, 0:198]) + u[1:299, 2:200]
    )
    assert strips.tobytes() == whole.tobytes()


def test_stencil_numba_loop_gives_the_bits_of_the_numpy_strips():
    from hpcsuite import stencil

    assert stencil.engine("auto", on_device=False) == "numba"  # numba is in the test extra
    u = np.random.default_rng(2).random((300, 200))
    strips, loop = np.zeros_like(u), np.zeros_like(u)
    for r0, r1, c0, c1 in ((1, 299, 1, 199), (5, 6, 3, 150), (100, 299, 198, 199)):
        stencil.update(u, strips, 0.2, r0, r1, c0, c1, "numpy")
        stencil.update(u, loop, 0.2, r0, r1, c0, c1, "numba")
        assert strips.tobytes() == loop.tobytes()


def test_stencil_engine_choices_name_the_fix():
    from hpcsuite import stencil
    from hpcsuite.core.errors import UsageError

    assert stencil.engine("numpy", on_device=False) == "numpy"
    assert stencil.engine("auto", on_device=True) == "device"
    with pytest.raises(UsageError, match="runs on the CPU"):
        stencil.engine("numba", on_device=True)
