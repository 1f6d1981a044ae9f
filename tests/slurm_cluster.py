"""A throwaway Slurm cluster on this host, for tests: real slurmctld + several slurmd.

No systemd, no munge (``auth/none``: fine for a test cluster, never for a real one),
no cgroups; every file lives in one temporary folder. Several slurmd daemons on this
host play several nodes. Facts behind the settings: shared/notes/slurm-local.md.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

#: Folder-name prefix of every test cluster (how leftovers are recognized).
PREFIX = "hpcsuite-slurm-"
DAEMONS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "sinfo", "scancel")


def missing() -> list[str]:
    """Slurm programs this host lacks (empty when a cluster can start)."""
    return [d for d in DAEMONS if shutil.which(d) is None]


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


#: The runner's variables a test cluster keeps (see ``SlurmCluster.env``).
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "CI", "VIRTUAL_ENV", "PYTHONPATH")
KEPT_PREFIXES = ("HPCSUITE_", "OMPI_", "I_MPI_", "MPIR_CVAR_")


class SlurmCluster:
    """Start with :meth:`start`, stop with :meth:`stop` (idempotent, leaves nothing running).

    Parameters
    ----------
    root : Path
        Folder for configuration, state, spool, logs.
    nodes : int
        Number of slurmd daemons (nodes ``node1`` .. ``nodeN``).
    cpus : int
        CPUs each node declares (more than real cores is fine: ``config_overrides``).
    gpus : int
        GPUs each node declares as GRES (``gpu``), backed by empty files standing in for
        ``/dev/nvidiaN``: Slurm schedules and binds them (``CUDA_VISIBLE_DEVICES``),
        nothing can compute on them.
    """

    def __init__(self, root: Path, nodes: int = 2, cpus: int = 4, gpus: int = 0) -> None:
        self.root = Path(root)
        self.names = [f"node{i + 1}" for i in range(nodes)]
        self.cpus = cpus
        self.gpus = gpus
        self.conf = self.root / "etc" / "slurm.conf"
        # What the daemons and jobs see: a small, fixed environment, not the runner's.
        # With the CI runner's whole environment, 2-node MPICH jobs failed MPI_Init
        # under srun's PMI-2 ("mpi/pmi2: value not properly terminated in client
        # request" on a segmented allgather put) in most runs from one checkout path
        # and in none from another; with this one they start every time (session 6).
        self.env = {
            k: v for k, v in os.environ.items() if k in KEPT_ENV or k.startswith(KEPT_PREFIXES)
        }
        self.env["SLURM_CONF"] = str(self.conf)

    def _write_config(self) -> None:
        r = self.root
        for d in ("etc", "state", "run", "log", "tmp", "spool"):
            (r / d).mkdir(parents=True, exist_ok=True)
        for n in self.names:
            (r / "spool" / n).mkdir(exist_ok=True)
            (r / "tmp" / n).mkdir(exist_ok=True)
        ctl_port, *node_ports = _free_ports(1 + len(self.names))
        host = socket.gethostname()
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        nodes = "\n".join(
            f"NodeName={n} NodeHostname={host} NodeAddr=127.0.0.1 Port={p} CPUs={self.cpus}"
            f" Sockets=1 CoresPerSocket={self.cpus} ThreadsPerCore=1 RealMemory=1000{gres}"
            " State=UNKNOWN"
            for n, p in zip(self.names, node_ports)
        )
        if self.gpus:
            (r / "dev").mkdir(exist_ok=True)
            for i in range(self.gpus):
                (r / "dev" / f"gpu{i}").touch()
            (r / "etc" / "gres.conf").write_text(
                f"AutoDetect=off\nName=gpu File={r}/dev/gpu[0-{self.gpus - 1}]\n"
            )
        # Job ids from a random start: MPICH names its shared-memory segments after the
        # job and step, and a segment left in /dev/shm by a killed rank of an earlier
        # cluster's job with the same id breaks MPI_Init ("Message truncated").
        # At most 5 digits: a 2-node MPICH job whose id had 8 digits once broke Slurm's
        # PMI-2 parsing at MPI_Init ("mpi/pmi2: value not properly terminated in client
        # request" on a segmented allgather put) and hung; the kvsname (job id) is part
        # of every such request, so shorter ids keep it further from the limit.
        first_job = random.randrange(1000, 100_000)
        self.conf.write_text(f"""\
ClusterName=hpcsuite-test
FirstJobId={first_job}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctl_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/none
CredType=cred/none
# Credentials live 5 s (default 120): a requeued job may start again that soon, and the
# main scheduling loop runs every second (sched_interval=1; default 60), so it does,
# instead of waiting for the 30 s backfill pass. (Session 6 tried it and saw jobs hang;
# those were the PMI-2 start-up failures and late-USR1 kills since fixed. This file runs
# in 97-100 s with it, 130 s without.)
AuthInfo=cred_expire=5
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=pmi2
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool/%n
SlurmctldPidFile={r}/run/slurmctld.pid
SlurmdPidFile={r}/run/slurmd-%n.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd-%n.log
TmpFS={r}/tmp/%n
SchedulerParameters=batch_sched_delay=0,sched_interval=1
MinJobAge=600
KillWait=2
MessageTimeout=5
ReturnToService=2
SlurmdParameters=config_overrides
{"GresTypes=gpu" if self.gpus else ""}
{nodes}
PartitionName=debug Nodes={",".join(self.names)} Default=YES MaxTime=INFINITE State=UP
""")
        (r / "etc" / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\n")

    def run(
        self, *cmd: str, timeout: float = 30, check: bool = True
    ) -> subprocess.CompletedProcess:
        """Run a Slurm client command against this cluster."""
        proc = subprocess.run(
            list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc

    def _wait(self, what: str, ok, timeout: float = 30) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if ok():
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"slurm test cluster: {what} not ready in {timeout} s; logs in {self.root / 'log'}"
        )

    def start(self) -> SlurmCluster:
        """Write the configuration, start the daemons, wait until every node is idle.

        Leftovers of an earlier test cluster (a test run killed before its clean-up)
        are ended first: their job ids restart at 1 too, and MPI's shared-memory names
        would collide with this cluster's jobs.
        """
        for pid in _processes_with(
            b"SLURM_CONF=", lambda conf: PREFIX in conf and str(self.root) not in conf
        ):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._write_config()
        subprocess.run(["slurmctld", "-i"], env=self.env, check=True, timeout=30)  # daemonizes
        self._wait("slurmctld", lambda: self.run("scontrol", "ping", check=False).returncode == 0)
        for n in self.names:
            subprocess.run(["slurmd", "-N", n], env=self.env, check=True, timeout=30)
        self._wait(
            "nodes",
            lambda: (
                self.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.split()
                == ["idle"] * len(self.names)
            ),
        )
        return self

    def stop(self) -> None:
        """Cancel every job, then stop the daemons (TERM, then KILL)."""
        if self.conf.exists():
            self.run("scancel", "--full", "--user", "root", check=False, timeout=10)
        pids = []
        for pidfile in (self.root / "run").glob("*.pid"):
            try:
                pids.append(int(pidfile.read_text().split()[0]))
            except (OSError, ValueError, IndexError):
                continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            end = time.monotonic() + 3
            while time.monotonic() < end and any(_alive(p) for p in pids):
                time.sleep(0.05)
        # slurmstepd and job processes may outlive their slurmd: end every process that
        # carries this cluster's SLURM_CONF (they would confuse the next cluster's jobs).
        for pid in _processes_with(b"SLURM_CONF=", lambda conf: conf == str(self.conf)):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def submit(
        self,
        script: str | Path,
        *args: str,
        sbatch_args: tuple[str, ...] = (),
        cwd: Path | None = None,
    ) -> str:
        """``sbatch --parsable``; returns the job id."""
        proc = subprocess.run(
            ["sbatch", "--parsable", *sbatch_args, str(script), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=cwd,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"sbatch failed: {proc.stderr.strip()}")
        return proc.stdout.strip().split(";")[0]

    def field(self, job: str, name: str) -> str | None:
        """One field of ``scontrol show job`` (None when the job or field is unknown)."""
        out = self.run("scontrol", "show", "job", job, "-o", check=False).stdout
        return next((f.split("=", 1)[1] for f in out.split() if f.startswith(name + "=")), None)

    def state(self, job: str) -> str:
        """JobState of ``job`` (PENDING, RUNNING, COMPLETED, FAILED...)."""
        out = self.run("scontrol", "show", "job", job, "-o", check=False).stdout
        for field in out.split():
            if field.startswith("JobState="):
                return field.split("=", 1)[1]
        return "UNKNOWN"

    def wait(self, job: str, timeout: float = 120, completing: float = 20) -> str:
        """Poll until ``job`` ends; returns its final state.

        A job COMPLETING for ``completing`` seconds with none of its processes left is
        done: its batch script's exit code is final, and what is late is slurmd's report
        to the controller (on a loaded 2-core CI machine this throwaway cluster once sat
        in COMPLETING for over 120 s). Processes left behind fail the test, named.
        """
        end = time.monotonic() + timeout
        since = None
        while time.monotonic() < end:
            state = self.state(job)
            if state not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "UNKNOWN"):
                return state
            since = (since or time.monotonic()) if state == "COMPLETING" else None
            if since is not None and time.monotonic() - since > completing:
                left = _processes_with(b"SLURM_JOB_ID=", lambda value: value == job)
                if left:
                    raise AssertionError(
                        f"job {job} ended but left processes: "
                        + "; ".join(_command(pid) for pid in left)
                    )
                code = self.field(job, "ExitCode")
                return "COMPLETED" if code == "0:0" else "FAILED"
            time.sleep(0.1)
        self.run("scancel", job, check=False)
        raise TimeoutError(f"job {job} still {self.state(job)} after {timeout} s")


def _processes_with(prefix: bytes, accept) -> list[int]:
    """PIDs (not this one) with an environment entry ``prefix + value`` where ``accept(value)``."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                entries = f.read().split(b"\0")
        except OSError:
            continue
        if any(
            e.startswith(prefix) and accept(e[len(prefix) :].decode(errors="replace"))
            for e in entries
        ):
            found.append(int(name))
    return found


def _command(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f"{pid} " + f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return f"{pid} (gone)"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
