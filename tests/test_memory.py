from __future__ import annotations

import pickle

import pytest
from conftest import launch

from hpcsuite.core import memory
from hpcsuite.core.errors import InputError
from hpcsuite.core.memory import USABLE, available_bytes, check_fits

GB = 10**9
MIB = 2**20


def _meminfo(tmp_path, kib: int):
    path = tmp_path / "meminfo"
    path.write_text(
        f"MemTotal:       99999999 kB\nMemFree:         10 kB\nMemAvailable:    {kib} kB\n"
    )
    return path


def _proc_cgroup(tmp_path, *, v2: str | None = None, v1: str | None = None):
    lines = ["9:name=systemd:/", "3:cpu,cpuacct:/"]
    if v1 is not None:
        lines.append(f"4:memory:{v1}")
    if v2 is not None:
        lines.append(f"0::{v2}")
    path = tmp_path / "cgroup"
    path.write_text("\n".join(lines) + "\n")
    return path


def _mountinfo(tmp_path, *, v2=None, v1=None):
    lines = ["22 1 0:21 / /proc rw,nosuid - proc proc rw"]
    if v2 is not None:
        lines.append(f"31 23 0:28 / {v2} rw,nosuid,nodev - cgroup2 cgroup2 rw,nsdelegate")
    if v1 is not None:
        lines.append(f"35 31 0:32 / {v1} rw,relatime shared:9 - cgroup cgroup rw,memory")
    path = tmp_path / "mountinfo"
    path.write_text("\n".join(lines) + "\n")
    return path


def _v2_group(folder, *, max_: str | None, current: int | None, inactive: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    if max_ is not None:
        (folder / "memory.max").write_text(max_ + "\n")
    if current is not None:
        (folder / "memory.current").write_text(f"{current}\n")
    (folder / "memory.stat").write_text(
        f"anon 100\nfile 200\ninactive_file {inactive}\nactive_file 5\n"
    )


def _v1_group(folder, *, limit: int, usage: int, inactive: int = 0):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "memory.limit_in_bytes").write_text(f"{limit}\n")
    (folder / "memory.usage_in_bytes").write_text(f"{usage}\n")
    (folder / "memory.stat").write_text(
        f"cache 0\ninactive_file 1\ntotal_inactive_file {inactive}\n"
    )


def _limit(tmp_path, *, free_kib=100 * 10**6, environ=None, **files):
    """limit_bytes with everything faked: 100 GB free, no Slurm, the given cgroup files."""
    files.setdefault("proc_cgroup", tmp_path / "missing-cgroup")
    files.setdefault("mountinfo", tmp_path / "missing-mountinfo")
    return memory.limit_bytes(meminfo=_meminfo(tmp_path, free_kib), environ=environ or {}, **files)


def test_available_bytes_reads_memavailable(tmp_path):
    got = available_bytes(
        _meminfo(tmp_path, 500),
        environ={},
        proc_cgroup=tmp_path / "none",
        mountinfo=tmp_path / "none",
    )
    assert got == 500 * 1024 and got.what == "free memory"


def test_available_bytes_reads_this_machines_files_by_default():
    # Without arguments: /proc/meminfo and this process's cgroup; the result is at most
    # MemAvailable (the cgroup and Slurm can only lower it), give or take what other
    # processes did in between.
    try:
        text = open("/proc/meminfo", encoding="ascii").read()
    except OSError:
        pytest.skip("no /proc/meminfo (not Linux)")
    kib = int(
        next(line.split()[1] for line in text.splitlines() if line.startswith("MemAvailable:"))
    )
    free = available_bytes()
    assert free is not None and free <= kib * 1024 * 1.2
    assert memory.node_limit().bytes == pytest.approx(free, rel=0.2)  # the same limits, read again


def test_check_fits_refuses_with_the_numbers_and_the_fix():
    check_fits(int(USABLE * 1000), 1000, where="node a", hint="x")
    check_fits(10**15, None, where="node a", hint="x")  # unknown memory never refuses
    with pytest.raises(
        InputError, match=r"needs 2\.00 GB on node a but only 1\.00 GB .*; use fewer"
    ):
        check_fits(2 * 10**9, 10**9, where="node a", hint="use fewer")


def test_check_fits_names_the_limit_that_decided():
    with pytest.raises(
        InputError, match=r"only 1\.00 GB is available there \(cgroup limit\); fewer"
    ):
        check_fits(2 * GB, memory.Available(GB, "cgroup limit"), where="node a", hint="fewer")
    with pytest.raises(InputError, match=r"there \(Slurm --mem\); fewer"):
        check_fits(2 * GB, GB, where="node a", hint="fewer", what="Slurm --mem")
    # The driver names it in `where` already: not twice.
    with pytest.raises(InputError) as err:
        check_fits(
            2 * GB, memory.Available(GB, "cgroup limit"), where="node a (cgroup limit)", hint="x"
        )
    assert str(err.value).count("cgroup limit") == 1


def test_available_survives_pickling_between_ranks():
    value = pickle.loads(pickle.dumps(memory.Available(123, "Slurm --mem")))
    assert value == 123 and value.what == "Slurm --mem"


def test_cgroup_v2_limit_of_the_process_group(tmp_path):
    root = tmp_path / "fs"
    (root).mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    _v2_group(root / "user.slice" / "job", max_=str(4 * GB), current=GB, inactive=GB // 2)
    got = _limit(
        tmp_path,
        proc_cgroup=_proc_cgroup(tmp_path, v2="/user.slice/job"),
        mountinfo=_mountinfo(tmp_path, v2=root),
    )
    # Inactive page cache is reclaimable: headroom 4 - (1 - 0.5) GB.
    assert got == (4 * GB - GB // 2, "cgroup limit")


def test_cgroup_v2_takes_the_tightest_ancestor(tmp_path):
    """Slurm limits job_N; the rank lives in job_N/step_0/user/task_0, whose memory.max is "max"."""
    root = tmp_path / "fs"
    job = root / "system.slice" / "slurmstepd.scope" / "job_7"
    _v2_group(job, max_=str(2 * GB), current=GB // 4)
    _v2_group(job / "step_0" / "user" / "task_0", max_="max", current=10)
    _v2_group(root / "system.slice", max_=str(8 * GB), current=GB)  # looser higher up
    task = "/system.slice/slurmstepd.scope/job_7/step_0/user/task_0"
    got = _limit(
        tmp_path,
        proc_cgroup=_proc_cgroup(tmp_path, v2=task),
        mountinfo=_mountinfo(tmp_path, v2=root),
    )
    assert got == (2 * GB - GB // 4, "cgroup limit")


def test_cgroup_v2_unlimited_means_free_memory_decides(tmp_path):
    root = tmp_path / "fs"
    _v2_group(root / "a", max_="max", current=GB)
    got = _limit(
        tmp_path,
        free_kib=3 * 10**6,
        proc_cgroup=_proc_cgroup(tmp_path, v2="/a"),
        mountinfo=_mountinfo(tmp_path, v2=root),
    )
    assert got == (3 * 10**6 * 1024, "free memory")


def test_cgroup_v1_memory_hierarchy(tmp_path):
    mem = tmp_path / "fs" / "memory"
    _v1_group(mem, limit=9223372036854771712, usage=50 * GB)  # the root: unlimited
    _v1_group(mem / "slurm" / "uid_0" / "job_9", limit=3 * GB, usage=GB, inactive=0)
    _v1_group(mem / "slurm" / "uid_0" / "job_9" / "step_0", limit=9223372036854771712, usage=GB)
    got = _limit(
        tmp_path,
        proc_cgroup=_proc_cgroup(tmp_path, v2="/", v1="/slurm/uid_0/job_9/step_0"),
        mountinfo=_mountinfo(tmp_path, v2=tmp_path / "fs" / "unified", v1=mem),
    )
    assert got == (2 * GB, "cgroup limit")


def test_cgroup_in_a_namespace_falls_back_to_the_mount_point(tmp_path):
    """In a container, /proc/self/cgroup may name a path the container's mount does not show."""
    root = tmp_path / "fs"
    _v2_group(root, max_=str(GB), current=0)
    got = _limit(
        tmp_path,
        proc_cgroup=_proc_cgroup(tmp_path, v2="/kubepods/pod1/abc"),
        mountinfo=_mountinfo(tmp_path, v2=root),
    )
    assert got == (GB, "cgroup limit")


def test_cgroup_mount_of_a_subtree(tmp_path):
    """A mount whose root is a subtree (mountinfo's 4th field): the path is taken relative to it."""
    root = tmp_path / "fs"
    _v2_group(root / "abc", max_=str(GB), current=GB // 2)
    info = tmp_path / "mountinfo"
    info.write_text(f"31 23 0:28 /kubepods/pod1 {root} rw - cgroup2 cgroup2 rw\n")
    got = _limit(
        tmp_path, proc_cgroup=_proc_cgroup(tmp_path, v2="/kubepods/pod1/abc"), mountinfo=info
    )
    assert got == (GB // 2, "cgroup limit")
    # A path outside the mounted subtree, or a "../" escape: the mount point decides.
    _v2_group(root, max_=str(3 * GB), current=0)
    for path in ("/elsewhere", "/kubepods/pod1/../../etc"):
        got = _limit(tmp_path, proc_cgroup=_proc_cgroup(tmp_path, v2=path), mountinfo=info)
        assert got == (3 * GB, "cgroup limit"), path


def test_unreadable_or_garbled_cgroup_files_fall_back(tmp_path):
    root = tmp_path / "fs"
    _v2_group(root / "a", max_="lots", current=GB)  # garbage: not a limit
    _v2_group(root / "b", max_=None, current=None)  # no files at all
    for group in ("a", "b", "missing"):
        got = _limit(
            tmp_path,
            free_kib=10**6,
            proc_cgroup=_proc_cgroup(tmp_path, v2=f"/{group}"),
            mountinfo=_mountinfo(tmp_path, v2=root),
        )
        assert got == (10**6 * 1024, "free memory"), group
    # A limit without a usage file still counts (usage taken as 0).
    _v2_group(root / "c", max_=str(GB), current=None)
    got = _limit(
        tmp_path,
        proc_cgroup=_proc_cgroup(tmp_path, v2="/c"),
        mountinfo=_mountinfo(tmp_path, v2=root),
    )
    assert got == (GB, "cgroup limit")
    # Garbled /proc/self/cgroup and mountinfo lines are skipped.
    (tmp_path / "bad-cgroup").write_text("nonsense\n\n0::\n")
    (tmp_path / "bad-mountinfo").write_text("1 2 3\n- - -\n")
    assert (
        _limit(
            tmp_path,
            free_kib=10**6,
            proc_cgroup=tmp_path / "bad-cgroup",
            mountinfo=tmp_path / "bad-mountinfo",
        ).what
        == "free memory"
    )


def test_usage_above_the_limit_leaves_nothing(tmp_path):
    root = tmp_path / "fs"
    _v2_group(root, max_=str(GB), current=2 * GB)
    got = _limit(
        tmp_path,
        proc_cgroup=_proc_cgroup(tmp_path, v2="/"),
        mountinfo=_mountinfo(tmp_path, v2=root),
    )
    assert got == (0, "cgroup limit")


def test_cgroup_root_hook_v2_and_v1(tmp_path):
    v2 = tmp_path / "v2"
    _v2_group(v2, max_=str(GB), current=GB // 2)
    (v2 / "cgroup.controllers").write_text("memory\n")
    got = _limit(
        tmp_path,
        environ={"HPCSUITE_CGROUP_ROOT": str(v2)},
        proc_cgroup=_proc_cgroup(tmp_path, v2="/somewhere/else"),
    )
    assert got == (GB // 2, "cgroup limit")
    v1 = tmp_path / "v1"
    _v1_group(v1 / "memory", limit=GB, usage=GB // 4)
    got = _limit(
        tmp_path,
        environ={"HPCSUITE_CGROUP_ROOT": str(v1)},
        proc_cgroup=_proc_cgroup(tmp_path, v1="/not/here"),
    )
    assert got == (GB - GB // 4, "cgroup limit")


def test_slurm_mem_per_node(tmp_path):
    assert _limit(tmp_path, environ={"SLURM_MEM_PER_NODE": "2048"}) == (2048 * MIB, "Slurm --mem")
    # --mem=0: the whole node, no limit of its own.
    assert _limit(tmp_path, environ={"SLURM_MEM_PER_NODE": "0"}).what == "free memory"
    assert (
        _limit(tmp_path, environ={"SLURM_MEM_PER_NODE": "12G"}).what == "free memory"
    )  # unparsable


@pytest.mark.parametrize(
    ("environ", "cpus"),
    [
        ({"SLURM_CPUS_ON_NODE": "6"}, 6),
        ({"SLURM_JOB_CPUS_PER_NODE": "4(x2),2", "SLURM_NODEID": "1"}, 4),
        ({"SLURM_JOB_CPUS_PER_NODE": "4(x2),2", "SLURM_NODEID": "2"}, 2),
        ({"SLURM_JOB_CPUS_PER_NODE": "8,3"}, 3),  # node unknown: the smallest never over-promises
        ({"SLURM_CPUS_ON_NODE": "", "SLURM_JOB_CPUS_PER_NODE": "5"}, 5),
    ],
)
def test_slurm_mem_per_cpu_times_the_cpus_on_this_node(tmp_path, environ, cpus):
    got = _limit(tmp_path, environ={"SLURM_MEM_PER_CPU": "1000", **environ})
    assert got == (1000 * MIB * cpus, f"Slurm --mem-per-cpu x {cpus} CPUs")


def test_slurm_mem_per_cpu_without_a_cpu_count_is_no_limit(tmp_path):
    for cpus in ({}, {"SLURM_JOB_CPUS_PER_NODE": "garbage"}):
        assert _limit(tmp_path, environ={"SLURM_MEM_PER_CPU": "1000", **cpus}).what == "free memory"


def test_the_smallest_limit_wins(tmp_path):
    root = tmp_path / "fs"
    _v2_group(root / "job", max_=str(3 * GB), current=0)
    files = dict(
        proc_cgroup=_proc_cgroup(tmp_path, v2="/job"), mountinfo=_mountinfo(tmp_path, v2=root)
    )
    slurm = {"SLURM_MEM_PER_CPU": "1024", "SLURM_CPUS_ON_NODE": "2"}  # 2 GiB
    assert _limit(tmp_path, free_kib=10**6, environ=slurm, **files).what == "free memory"  # 1 GB
    assert (
        _limit(tmp_path, free_kib=10**7, environ=slurm, **files).what
        == "Slurm --mem-per-cpu x 2 CPUs"
    )
    assert _limit(tmp_path, free_kib=10**7, environ={}, **files) == (3 * GB, "cgroup limit")
    assert _limit(
        tmp_path, free_kib=10**7, environ={"SLURM_MEM_PER_NODE": "1000", **slurm}, **files
    ) == (1000 * MIB, "Slurm --mem")
    # A tie names the more specific limit.
    (root / "job" / "memory.max").write_text(f"{3 * 2**30}\n")
    assert _limit(tmp_path, free_kib=3 * 2**20, environ={}, **files) == (3 * 2**30, "cgroup limit")


def test_nothing_readable_is_unknown_and_never_refuses(tmp_path, monkeypatch):
    monkeypatch.setattr(memory.os, "sysconf", lambda name: (_ for _ in ()).throw(ValueError(name)))
    got = memory.limit_bytes(
        meminfo=tmp_path / "none",
        proc_cgroup=tmp_path / "none",
        mountinfo=tmp_path / "none",
        environ={},
    )
    assert got == (None, "unknown")
    assert (
        memory.available_bytes(
            tmp_path / "none",
            proc_cgroup=tmp_path / "none",
            mountinfo=tmp_path / "none",
            environ={},
        )
        is None
    )


def test_a_run_over_a_fake_limit_is_refused_once_with_exit_2(tmp_path):
    """The whole path in real MPI jobs: a 48 MB mean against a 20 MB cgroup (then Slurm) limit."""
    root = tmp_path / "cgroup"
    _v2_group(root, max_=str(20 * 10**6), current=0)
    (root / "cgroup.controllers").write_text("memory\n")
    args = ("-m", "hpcsuite.mean", "--shape", "3000x2000", "--quiet")
    for env, what in (
        ({"HPCSUITE_CGROUP_ROOT": str(root)}, "cgroup limit"),
        ({"SLURM_MEM_PER_NODE": "19"}, "Slurm --mem"),
    ):
        for n in (1, 2):
            proc = launch(n, *args, env=env, timeout=60)
            assert proc.returncode == 2, (n, proc.stdout, proc.stderr)
            lines = proc.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
            assert "needs 0.05 GB" in lines[0] and f"({what})" in lines[0], lines[0]
            assert proc.stdout == ""
    ok = launch(2, *args, "--shape", "300x200", env={"HPCSUITE_CGROUP_ROOT": str(root)}, timeout=60)
    assert ok.returncode == 0, ok.stderr  # the same limit lets a small run through
