"""Single-process NumPy: generate the 10000 x 10000 array, take its mean.

usage: python benchmarks/numpy_mean.py [ROWS COLS]
"""

import sys

import numpy as np

rows, cols = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) > 2 else (10000, 10000)
print(f"mean = {np.random.default_rng(42).random((rows, cols)).mean()!r}")
