"""The runnable modules, in one place: ``python -m hpcsuite`` lists them, the Slurm
launcher and the sweep accept them. A new module adds one line here, a
``slurm/NAME.sbatch`` template, and its tests."""

from __future__ import annotations

#: name -> (summary, runs under MPI and writes --json records, takes --shape, runs on GPUs)
MODULES: dict[str, tuple[str, bool, bool, bool]] = {
    "mean": ("mean of a distributed array (Dask tutorial workload), bitwise reproducible", True, True, True),
    "stream": ("STREAM copy/scale/add/triad per rank, aggregated over ranks", True, False, True),
    "stencil": ("2-D heat diffusion, 5-point Jacobi with halo exchange on a Cartesian rank grid", True, True,
                True),
    "matmul": ("dense C = A B by SUMMA on a 2-D rank grid (any rank count), GFLOP/s", True, False, True),
    "fft": ("distributed 2-D/3-D complex FFT, slab decomposition with Alltoallv transposes", True, True, True),
    "kmer": ("k-mer counting of FASTA/FASTQ reads, parallel byte ranges, merged by hash (Alltoallv)",
             True, False, False),
    "montecarlo": ("European option by Monte Carlo vs Black-Scholes, rank-count independent", True, False,
                   True),
    "suite": ("every kernel at a size class (small, medium, large), one summary table", True, False, True),
    "train.mnist": ("Horovod-style data-parallel training of the bundled digits (or MNIST)", True, False,
                    True),
    "train.synthetic": ("Horovod's synthetic training benchmark: MLP, CNN or ResNet-style, samples/s",
                        True, False, True),
    "microbench": ("MPI latency, bandwidth and collective benchmarks (OSU-compatible output)", True, False,
                   True),
    "report": ("scaling tables, plots, Markdown/HTML/CSV from JSON records (one process)", False, False, False),
    "predict": ("performance models from records, extended to --predict-to ranks with intervals", False, False,
                False),
    "sweep": ("strong/weak scaling series, locally or one Slurm job per point, resumable", False, False, False),
    "slurm": ("the launcher inside slurm/*.sbatch (srun with the right PMI, or mpirun)", False, False, False),
    "deploy": ("Kubernetes manifests (MPIJob, Indexed Job + Service) and SageMaker configuration",
               False, False, False),
}

#: Modules that run as MPI jobs and write records: what templates and sweeps launch.
PARALLEL = tuple(name for name, (_, parallel, _, _) in MODULES.items() if parallel)
#: Parallel modules whose problem grows with --shape (weak scaling by shape).
SHAPED = tuple(name for name, (_, _, shaped, _) in MODULES.items() if shaped)
#: Parallel modules that compute on GPUs (each has a slurm/NAME-gpu.sbatch).
GPU = tuple(name for name, (_, _, _, gpu) in MODULES.items() if gpu)
