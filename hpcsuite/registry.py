"""The runnable modules, in one place, and what each one is.

``python -m hpcsuite`` lists them; the Slurm launcher, the sweep and the deploy files
accept the parallel ones; ``hpcsuite.suite`` runs the kernels that give suite sizes. A
new kernel is its module, its tests, one :class:`Module` line here, and the batch
templates that line names (a test checks that they exist and launch it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

#: The suite's size classes (``python -m hpcsuite.suite --size``), smallest first.
SIZE_CLASSES = ("small", "medium", "large")


class Module(NamedTuple):
    """What a runnable module is.

    Attributes
    ----------
    summary : str
        One line for ``python -m hpcsuite``.
    parallel : bool
        Runs as an MPI job and writes ``--json`` records: templates and sweeps launch it.
    shaped : bool
        Its problem grows with ``--shape`` (weak scaling by shape).
    gpu : bool
        Computes on GPUs (``--device gpu``).
    template : str or None
        Its Slurm batch template ``slurm/TEMPLATE.sbatch`` (with ``gpu``, also
        ``slurm/TEMPLATE-gpu.sbatch``); None for a module not submitted as a job.
    suite_sizes : mapping of str to tuple of str, or None
        Its options at each size class of the suite (which adds ``--check``); None for
        a module the suite does not run.
    """

    summary: str
    parallel: bool = False
    shaped: bool = False
    gpu: bool = False
    template: str | None = None
    suite_sizes: Mapping[str, tuple[str, ...]] | None = None

    @property
    def templates(self) -> tuple[str, ...]:
        """Its batch templates' paths in the source tree (``slurm/`` is not installed)."""
        if self.template is None:
            return ()
        stems = (self.template, f"{self.template}-gpu") if self.gpu else (self.template,)
        return tuple(f"slurm/{stem}.sbatch" for stem in stems)


def _sizes(small: str, medium: str, large: str) -> dict[str, tuple[str, ...]]:
    """A kernel's options per size class, each written as one command line."""
    return dict(zip(SIZE_CLASSES, (tuple(s.split()) for s in (small, medium, large))))


# fmt: off
MODULES: dict[str, Module] = {
    "mean": Module("mean of a distributed array (Dask tutorial workload), bitwise reproducible",
                   parallel=True, shaped=True, gpu=True, template="mean",
                   suite_sizes=_sizes("--shape 4000x1000", "--shape 10000x10000 --repeat 3",
                                      "--shape 40000x20000 --repeat 3")),
    "stream": Module("STREAM copy/scale/add/triad per rank, aggregated over ranks",
                     parallel=True, gpu=True, template="stream",
                     suite_sizes=_sizes("--size 2000000 --repeat 5", "--size 20000000 --repeat 10",
                                        "--repeat 10")),
    "stencil": Module("2-D heat diffusion, 5-point Jacobi with halo exchange on a Cartesian "
                      "rank grid",
                      parallel=True, shaped=True, gpu=True, template="stencil",
                      suite_sizes=_sizes("--shape 512x512 --steps 20",
                                         "--shape 2048x2048 --steps 100 --overlap",
                                         "--shape 8192x8192 --steps 200 --overlap")),
    "matmul": Module("dense C = A B by SUMMA on a 2-D rank grid (any rank count), GFLOP/s",
                     parallel=True, gpu=True, template="matmul",
                     suite_sizes=_sizes("--n 512", "--n 2048", "--n 8192")),
    "fft": Module("distributed 2-D/3-D complex FFT, slab decomposition with Alltoallv transposes",
                  parallel=True, shaped=True, gpu=True, template="fft",
                  suite_sizes=_sizes("--shape 64x64x64", "--shape 256x256x256",
                                     "--shape 512x512x512")),
    "kmer": Module("k-mer counting of FASTA/FASTQ reads, parallel byte ranges, merged by hash "
                   "(Alltoallv)", parallel=True, template="kmer",
                   suite_sizes=_sizes("--reads 20000 -k 21", "--reads 200000 -k 31",
                                      "--reads 2000000 -k 31")),
    "montecarlo": Module("European option by Monte Carlo vs Black-Scholes, rank-count independent",
                         parallel=True, gpu=True, template="montecarlo",
                         suite_sizes=_sizes("--paths 2000000", "--paths 50000000",
                                            "--paths 500000000")),
    "suite": Module("every kernel at a size class (small, medium, large), one summary table",
                    parallel=True, gpu=True, template="suite"),
    "train.mnist": Module("Horovod-style data-parallel training of the bundled digits (or MNIST)",
                          parallel=True, gpu=True, template="train.mnist"),
    "train.synthetic": Module("Horovod's synthetic training benchmark: MLP, CNN or ResNet-style, "
                              "samples/s", parallel=True, gpu=True, template="train.synthetic"),
    "microbench": Module("MPI latency, bandwidth and collective benchmarks (OSU-compatible output)",
                         parallel=True, gpu=True, template="microbench"),
    "report": Module("scaling tables, plots, Markdown/HTML/CSV from JSON records (one process)"),
    "predict": Module("performance models from records, extended to --predict-to ranks with "
                      "intervals"),
    "sweep": Module("strong/weak scaling series, locally or one Slurm job per point, resumable"),
    "slurm": Module("the launcher inside slurm/*.sbatch (srun with the right PMI, or mpirun)"),
    "deploy": Module("Kubernetes manifests (MPIJob, Indexed Job + Service) and SageMaker "
                     "configuration"),
}
# fmt: on

#: Modules that run as MPI jobs and write records: what templates and sweeps launch.
PARALLEL = tuple(name for name, m in MODULES.items() if m.parallel)
#: Parallel modules whose problem grows with --shape (weak scaling by shape).
SHAPED = tuple(name for name, m in MODULES.items() if m.shaped)
#: Parallel modules that compute on GPUs (each has a slurm/NAME-gpu.sbatch).
GPU = tuple(name for name, m in MODULES.items() if m.gpu)
#: The kernels ``hpcsuite.suite`` runs, in this order.
SUITE = tuple(name for name, m in MODULES.items() if m.suite_sizes)
