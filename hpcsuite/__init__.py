"""hpcsuite: does my MPI + GPU stack work, is it right, and how does it scale?

Importing the package imports nothing heavy (no mpi4py, CuPy or torch), so that
``python -m hpcsuite.<module> --help`` stays fast on every rank.
"""

__version__ = "0.1.0"
