"""Data for the examples: bundled digits, MNIST IDX files, and an exact distributed sampler."""

from __future__ import annotations

import gzip
import importlib.util
import math
import os
from typing import Any

import numpy as np

from hpcsuite.core.errors import InputError

MNIST_FILES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "test-images": "t10k-images-idx3-ubyte",
    "test-labels": "t10k-labels-idx1-ubyte",
}


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images): features in [0, 1], labels.

    Read from the CSV file scikit-learn installs, as its ``load_digits`` reads it, but
    without importing scikit-learn: that import pulls in SciPy and parts of torch's
    compiler, 2.3 s on every rank's start.
    """
    spec = importlib.util.find_spec("sklearn")
    path = None
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            candidate = os.path.join(folder, "datasets", "data", "digits.csv.gz")
            if os.path.exists(candidate):
                path = candidate
    if path is None:
        raise InputError("the bundled digits come with scikit-learn: pip install 'hpcsuite[train]'")
    table = np.loadtxt(path, delimiter=",")
    return (table[:, :-1] / 16.0).astype(np.float32), table[:, -1].astype(np.int64)


def read_idx(path: str) -> np.ndarray:
    """One IDX file (MNIST's format), gzipped or not, checked against its header."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {path!r} ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 8:
        raise InputError(f"{path!r} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    start = 4 + 4 * ndim
    if len(raw) - start != math.prod(dims):
        raise InputError(
            f"{path!r} holds {len(raw) - start} bytes of data but its header says {dims}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


def mnist(folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Real MNIST from the four IDX files in ``folder`` (``.gz`` or not)."""
    found = {}
    for key, stem in MNIST_FILES.items():
        for name in (stem, stem + ".gz"):
            if os.path.exists(os.path.join(folder, name)):
                found[key] = os.path.join(folder, name)
                break
        else:
            raise InputError(f"{folder!r} lacks {stem}[.gz]; it needs the four MNIST IDX files")
    x_train, y_train = read_idx(found["train-images"]), read_idx(found["train-labels"])
    x_test, y_test = read_idx(found["test-images"]), read_idx(found["test-labels"])
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise InputError(f"MNIST files in {folder!r} disagree: images and labels differ in number")
    scale = lambda x: (x.reshape(len(x), -1) / 255.0).astype(np.float32)  # noqa: E731
    return scale(x_train), y_train.astype(np.int64), scale(x_test), y_test.astype(np.int64)


def split(
    x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int
) -> tuple[Any, Any, Any, Any]:
    """A fixed shuffled train/test split. Pure."""
    order = np.random.default_rng(seed).permutation(len(x))
    cut = int(round(len(x) * (1 - test_fraction)))
    return x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]]


class ExactSampler:
    """Every sample exactly once per epoch across ranks (no padding), reshuffled per epoch by seed.

    Rank ``r`` takes every ``size``-th index of the epoch's permutation, so counts differ
    by at most one; every rank runs :attr:`steps` steps, and a rank whose samples ran
    out takes an empty batch (zero gradient) for its last step. :meth:`step_total` lets
    a short last step weigh every sample as much as a full one.
    """

    def __init__(self, n: int, size: int, rank: int, batch: int, seed: int) -> None:
        self.n, self.size, self.rank, self.batch, self.seed = n, size, rank, batch, seed
        self.steps = math.ceil(math.ceil(n / size) / batch)

    def indices(self, epoch: int) -> np.ndarray:
        """This rank's indices for ``epoch``."""
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)[self.rank :: self.size]

    def batch_indices(self, epoch: int, step: int) -> np.ndarray:
        """Indices of batch ``step`` of ``epoch`` (possibly empty)."""
        return self.indices(epoch)[step * self.batch : (step + 1) * self.batch]

    def step_total(self, step: int) -> int:
        """Samples in batch ``step`` summed over all ranks (the same in every epoch). Pure.

        Scaling each rank's summed loss by ``size / step_total`` makes the gradient
        averaged over ranks the mean over the step's samples, also for a short last step.
        """
        return sum(
            max(0, min(self.batch, len(range(r, self.n, self.size)) - step * self.batch))
            for r in range(self.size)
        )
