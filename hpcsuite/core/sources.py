"""Where a kernel's global array comes from: generated, or read from a file, in row ranges.

No MPI here: a source reads any run of rows, so each rank can load only its own
block ("local", no root bottleneck) or the root can load everything and scatter.

Generated data is made of the :class:`~hpcsuite.core.partition.Layout`'s fixed-size
blocks, each from its own RNG stream keyed by block index (``SeedSequence(seed,
spawn_key=(block,))``), so the global array depends on the seed and the shape, never
on the rank count or on who generates it. Files are never unpickled.
"""

from __future__ import annotations

import math
import os
import re
import stat
from typing import Any, Protocol

import numpy as np

from hpcsuite.core import rng
from hpcsuite.core.backend import Backend
from hpcsuite.core.errors import InputError, UsageError
from hpcsuite.core.partition import Layout

#: dtypes that --dtype accepts for generated data.
DTYPES = ("float64", "float32", "int32", "int64")
#: Generated integers are uniform in [0, INT_HIGH).
INT_HIGH = 1000
#: Default global shape: the mean of Dask's tutorial array.
DEFAULT_SHAPE = (10000, 10000)
_HDF5 = re.compile(r"^(?P<path>.+\.(?:h5|hdf5|he5))(?::(?P<dataset>.+))?$", re.IGNORECASE)


def check_regular_file(path: str, what: str = "file") -> int:
    """Refuse, before any ``open()``, a path that is not a regular file; return its size.

    ``open()`` on a FIFO blocks until a writer comes, on every rank, forever; a device
    (``/dev/zero``) never ends; a socket cannot be opened. Only regular files (or links
    to them) are read, and ranks can seek in them.

    Raises
    ------
    InputError
        Naming what the path is instead.
    """
    try:
        info = os.stat(path)  # follows links: a link to a regular file is fine
    except FileNotFoundError:
        raise InputError(f"no such file: {path!r}") from None
    except PermissionError:
        raise InputError(f"cannot read {path!r}: permission denied") from None
    except OSError as exc:
        raise InputError(f"cannot read {path!r} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path!r} is a directory; give a {what}")
    if not stat.S_ISREG(info.st_mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(info.st_mode)
            else (
                "a socket"
                if stat.S_ISSOCK(info.st_mode)
                else (
                    "a device"
                    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)
                    else "special"
                )
            )
        )
        raise InputError(
            f"{path!r} is not a regular file but {kind}; parallel reading needs a regular "
            f"{what} every rank can seek in: save the data to a file first"
        )
    return info.st_size


class Source(Protocol):
    """A global array readable in runs of rows."""

    shape: tuple[int, ...]
    dtype: np.dtype
    description: str

    def read(self, start: int, stop: int, out: np.ndarray) -> None:
        """Fill host array ``out`` with global rows ``[start, stop)``."""


class RandomSource:
    """Uniform random data: floats in [0, 1), integers in [0, ``INT_HIGH``)."""

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, seed: int, layout: Layout) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.seed = seed
        self.layout = layout
        self.description = f"random {'x'.join(map(str, shape))} {self.dtype.name} (seed {seed})"

    def _generator(self, block: int) -> np.random.Generator:
        return rng.stream(self.seed, block)

    def read(self, start: int, stop: int, out: np.ndarray) -> None:
        """Generate rows ``[start, stop)``, which must fall on block boundaries."""
        rows = self.layout.block_rows
        if start == stop:  # a rank that owns no blocks
            return
        if start % rows or (stop % rows and stop != self.shape[0]):
            raise ValueError(f"rows [{start}, {stop}) do not fall on blocks of {rows} rows")
        for block in range(start // rows, -(-stop // rows)):
            a, b = self.layout.block_range(block)
            view = out[a - start : b - start]
            rng = self._generator(block)
            if self.dtype.kind == "f":
                rng.random(dtype=self.dtype, out=view)
            else:
                view[...] = rng.integers(0, INT_HIGH, size=view.shape, dtype=self.dtype)


class NpySource:
    """A ``.npy`` file, read by byte ranges: no unpickling, no whole-file load."""

    def __init__(self, path: str) -> None:
        self.path = path
        check_regular_file(path, ".npy file")
        try:
            with open(path, "rb") as f:
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                self.offset = f.tell()
        except FileNotFoundError:
            raise InputError(f"no such file: {path!r}") from None
        except IsADirectoryError:
            raise InputError(f"{path!r} is a directory; give a .npy file") from None
        except PermissionError:
            raise InputError(f"cannot read {path!r}: permission denied") from None
        except (ValueError, SyntaxError, EOFError, OSError) as exc:
            raise InputError(f"{path!r} is not a readable .npy array file ({exc})") from None
        self.fortran = fortran
        self.file_dtype = np.dtype(dtype)
        _check_dtype(self.file_dtype, path)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = self.file_dtype.newbyteorder("=")
        _check_shape(self.shape, path)
        need = self.offset + math.prod(self.shape) * self.dtype.itemsize
        have = os.path.getsize(path)
        if have < need:
            raise InputError(
                f"{path!r} is truncated: its header promises shape {self.shape} "
                f"{self.dtype.name} ({need} bytes) but the file has {have} bytes"
            )
        self.description = f"{path} {'x'.join(map(str, self.shape))} {self.dtype.name}"

    def read(self, start: int, stop: int, out: np.ndarray) -> None:
        """Read rows ``[start, stop)`` into ``out``."""
        if self.fortran or self.file_dtype != self.dtype:
            # Strided or byte-swapped on disk: let NumPy's memmap do the gathering.
            mm = np.load(self.path, mmap_mode="r", allow_pickle=False)
            out[...] = mm[start:stop]
            return
        row_bytes = math.prod(self.shape[1:]) * self.dtype.itemsize
        view = memoryview(out.reshape(-1).view(np.uint8))
        with open(self.path, "rb", buffering=0) as f:
            f.seek(self.offset + start * row_bytes)
            done = 0
            while done < len(view):
                n = f.readinto(view[done:])
                if not n:
                    raise InputError(
                        f"{self.path!r} ended early while reading rows {start}..{stop}"
                    )
                done += n


class Hdf5Source:
    """One dataset of an HDF5 file (``FILE.h5`` if it holds one dataset, else ``FILE.h5:NAME``)."""

    def __init__(self, path: str, dataset: str | None) -> None:
        check_regular_file(path, "HDF5 file")
        try:
            import h5py  # optional (the hdf5 extra): only for .h5 inputs
        except ImportError:
            raise InputError(f"reading {path!r} needs h5py: pip install 'hpcsuite[hdf5]'") from None
        self.path = path
        try:
            with h5py.File(path, "r") as f:
                if dataset is None:
                    names: list[str] = []
                    f.visititems(
                        lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None
                    )
                    if len(names) != 1:
                        listed = ", ".join(names[:10]) or "none"
                        raise InputError(
                            f"{path!r} holds {len(names)} datasets ({listed}); "
                            f"name one as {path}:NAME"
                        )
                    dataset = names[0]
                if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
                    raise InputError(f"{path!r} has no dataset {dataset!r}")
                ds = f[dataset]
                self.shape = tuple(int(s) for s in ds.shape)
                self.dtype = np.dtype(ds.dtype).newbyteorder("=")
        except FileNotFoundError:
            raise InputError(f"no such file: {path!r}") from None
        except OSError as exc:
            raise InputError(f"{path!r} is not a readable HDF5 file ({exc})") from None
        self.dataset = dataset
        _check_dtype(self.dtype, path)
        _check_shape(self.shape, path)
        self.description = f"{path}:{dataset} {'x'.join(map(str, self.shape))} {self.dtype.name}"

    def read(self, start: int, stop: int, out: np.ndarray) -> None:
        """Read rows ``[start, stop)`` into ``out``."""
        import h5py  # optional (the hdf5 extra); __init__ checked it is there

        with h5py.File(self.path, "r") as f:
            f[self.dataset].read_direct(out, np.s_[start:stop])


def _check_dtype(dtype: np.dtype, path: str) -> None:
    if dtype.hasobject:
        raise InputError(f"{path!r} holds Python objects; hpcsuite never unpickles data files")
    if dtype.kind not in "biuf":
        raise InputError(f"{path!r} holds {dtype} data; need booleans, integers or floats")


def _check_shape(shape: tuple[int, ...], path: str) -> None:
    if not shape:
        raise InputError(f"{path!r} holds a scalar, not an array")
    if any(s < 0 for s in shape):
        raise InputError(
            f"{path!r} has a negative dimension in its header (shape {shape}); the file is "
            "damaged or not written by NumPy"
        )
    if 0 in shape:
        raise InputError(f"{path!r} holds a zero-size array of shape {shape}; nothing to compute")


def open_source(
    spec: str, *, shape: tuple[int, ...] | None, dtype: str | None, seed: int
) -> Source:
    """Open ``--source`` (``random`` or a file), checking ``--shape``/``--dtype`` against it.

    Raises
    ------
    InputError, UsageError
        With a message that names the bad value and the fix.
    """
    if spec == "random":
        shape = shape or DEFAULT_SHAPE
        dtype = dtype or "float64"
        if dtype not in DTYPES:
            raise UsageError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
        return RandomSource(shape, np.dtype(dtype), seed, Layout.for_shape(shape))
    match = _HDF5.match(spec)
    if match:
        source: Source = Hdf5Source(match["path"], match["dataset"])
    elif spec.lower().endswith(".npy"):
        source = NpySource(spec)
    else:
        raise UsageError(
            f"unknown source {spec!r}: give 'random', a .npy file, or an HDF5 file (.h5)"
        )
    if shape is not None and tuple(shape) != source.shape:
        raise InputError(
            f"{spec!r} holds shape {'x'.join(map(str, source.shape))} but --shape says "
            f"{'x'.join(map(str, shape))}; drop --shape or make it match"
        )
    if dtype is not None and np.dtype(dtype) != source.dtype:
        raise InputError(
            f"{spec!r} holds {source.dtype.name} but --dtype says {dtype}; drop --dtype or make it"
            " match"
        )
    return source


def load_rows(source: Source, backend: Backend, layout: Layout, start: int, stop: int) -> Any:
    """Load global rows ``[start, stop)`` into a new array on ``backend``.

    Host data is read in place; device data goes through one block-sized host buffer
    at a time, so host memory stays small.
    """
    shape = (stop - start, *source.shape[1:])
    if not backend.on_device:
        out = np.empty(shape, dtype=source.dtype)
        source.read(start, stop, out)
        return out
    out = backend.xp.empty(shape, dtype=source.dtype)
    step = layout.block_rows
    for a in range(start, stop, step):
        b = min(a + step, stop)
        host = np.empty((b - a, *source.shape[1:]), dtype=source.dtype)
        source.read(a, b, host)
        out[a - start : b - start] = backend.from_host(host)
    return out
