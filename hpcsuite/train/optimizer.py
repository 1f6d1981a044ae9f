"""``DistributedOptimizer``: average gradients over ranks before each optimizer step.

As Horovod's, it subclasses the wrapped optimizer's own class, so learning-rate
schedulers and ``isinstance`` checks keep working. On one rank nothing is exchanged.

Tensor fusion: the gradients of a dtype live in one flat buffer (the parameters'
``.grad`` are views into it, so backward writes straight into it when
``zero_grad(set_to_none=False)``), laid out in reverse registration order - the order
backward produces them. The buffer is reduced in place in buckets of at most
``fusion_bytes`` on the wire: ``ceil(gradient bytes / fusion_bytes)`` MPI calls per dtype
and step, whatever the number of tensors.

Overlap: a bucket's reduction starts from the gradient hooks as soon as every gradient
in it (and in every bucket before it, so that all ranks start the same reductions in
the same order) is final, while backward goes on with earlier layers. How it is driven
is ``overlap`` (see :data:`hpcsuite.train.ops.OVERLAP_MODES`): ``thread`` (a background
thread runs blocking reductions), ``poll`` (``Iallreduce``, advanced by ``Test`` from
later hooks) or ``sync`` (all buckets reduced with blocking calls in ``step()``, after
backward). One negotiation per step, before the first bucket, checks that all ranks
reduce the same gradients (see :mod:`hpcsuite.train.ops`).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Any

import torch

from hpcsuite.core.errors import HpcsuiteError
from hpcsuite.train import mpi_ops, ops, timeline
from hpcsuite.train.compression import Compression
from hpcsuite.train.exceptions import ArgumentError, NotSupported

#: Default fusion buffer: the largest chunk one MPI reduction carries. Chosen with
#: benchmarks/overlap_bench.py (every mode and buffer size side by side; it prints each
#: one's slowdown against the best): 4 MiB tied with 64 MiB and beat 256 KiB-1 MiB, and
#: gives large models several buckets to overlap.
FUSION_BYTES = 4 << 20
#: Environment variable choosing the overlap mode when the caller does not.
OVERLAP_ENV = "HPCSUITE_TRAIN_OVERLAP"
#: Default overlap mode, chosen with the same benchmark: on one node ``poll`` tied with
#: ``sync`` (little to hide behind shared-memory reductions) and ``thread`` was slower (its
#: thread competes with backward for the rank's core). ``poll`` does overlap - the
#: reduction time left after backward shrinks (``hpcsuite.train.synthetic`` prints it as
#: "exposed reduction") - but with every core computing, the hidden copies cost the same
#: CPU time; where a network carries the reduction, the hidden time is saved.
OVERLAP = "poll"


#: Environment variables giving the fusion buffer when the caller does not (the second is
#: Horovod's, so job scripts written for it keep their setting).
FUSION_ENVS = ("HPCSUITE_TRAIN_FUSION_BYTES", "HOROVOD_FUSION_THRESHOLD")


def fusion_size(value: int | None = None) -> int:
    """The fusion buffer in bytes: ``value``, else the first of :data:`FUSION_ENVS` set, else
    :data:`FUSION_BYTES`."""
    if value is not None:
        return value
    for name in FUSION_ENVS:
        text = os.environ.get(name, "").strip()
        if text:
            try:
                return int(text)
            except ValueError:
                raise HpcsuiteError(
                    f"{name}={text!r} is not a byte count; give an integer such as {FUSION_BYTES}"
                ) from None
    return FUSION_BYTES


def overlap_mode(value: str | None = None) -> str:
    """The overlap mode: ``value``, else ``$HPCSUITE_TRAIN_OVERLAP``, else :data:`OVERLAP`."""
    mode = value or os.environ.get(OVERLAP_ENV, "").strip() or OVERLAP
    if mode not in ops.OVERLAP_MODES:
        source = "overlap" if value else OVERLAP_ENV
        raise HpcsuiteError(
            f"{source}={mode!r} is not an overlap mode; use one of {', '.join(ops.OVERLAP_MODES)}"
        )
    return mode


class _Bucket:
    """One slice of a flat gradient buffer, reduced by one MPI call."""

    def __init__(self, flat: torch.Tensor, lo: int, hi: int, params: list[torch.Tensor]) -> None:
        self.flat, self.lo, self.hi, self.params = flat, lo, hi, params
        self.waiting = len(params)  # gradients in it not yet final this step
        self.pending: Any = None  # the started reduction
        self.ctx: Any = None  # compression context
        self.wire: torch.Tensor | None = None


class _DistributedOptimizer(torch.optim.Optimizer):
    def __init__(
        self,
        params: Any,
        named_parameters: Iterable[tuple[str, torch.Tensor]] | None,
        compression: Any,
        backward_passes_per_step: int,
        op: str,
        fusion_bytes: int,
        overlap: str | None,
        predivide: float = 1.0,
        sparse_as_dense: bool = False,
    ) -> None:
        super(self.__class__, self).__init__(params)
        if backward_passes_per_step < 1:
            raise ArgumentError(
                f"backward_passes_per_step={backward_passes_per_step!r} must be at least 1"
            )
        if fusion_bytes < 64:
            raise ArgumentError(
                f"fusion buffer of {fusion_bytes!r} bytes is too small (fusion_bytes or "
                f"{' / '.join(FUSION_ENVS)}); use at least 64"
            )
        if op == ops.Adasum:
            raise NotSupported("op=hvd.Adasum is not supported by hpcsuite.train; use hvd.Average")
        if op not in (ops.Average, ops.Sum):
            raise ArgumentError(f"unknown reduction op {op!r}; use hvd.Average or hvd.Sum")
        if predivide != 1.0 and op != ops.Average:
            raise ArgumentError(
                "gradient_predivide_factor needs op=hvd.Average (it splits the average)"
            )
        if not predivide > 0:
            raise ArgumentError(f"gradient_predivide_factor={predivide!r} must be positive")
        self._predivide = predivide
        self._sparse_as_dense = sparse_as_dense
        self._sparse: dict[
            int, torch.Tensor
        ] = {}  # this step's sparse gradients (Horovod's sparse allreduce)
        self._compression = compression
        self._passes_per_step = backward_passes_per_step
        self._op = op
        self._fusion_bytes = fusion_bytes
        self._overlap = overlap_mode(overlap)
        self._size = ops.size()
        params_in_order = [p for g in self.param_groups for p in g["params"]]
        if named_parameters is not None:
            named = list(named_parameters)
            if any(not isinstance(item, tuple) or len(item) != 2 for item in named):
                raise ArgumentError(
                    "named_parameters should be a sequence of (name, parameter) tuples, "
                    "as model.named_parameters() gives"
                )
            seen: dict[str, int] = {}
            for n, _ in named:
                seen[n] = seen.get(n, 0) + 1
            duplicates = sorted(n for n, k in seen.items() if k > 1)
            if (
                duplicates
            ):  # Horovod matches gradients by name: two with one name cannot be told apart
                raise ArgumentError(
                    "parameter names in named_parameters must be unique; duplicates: "
                    + ", ".join(duplicates)
                )
            names = {id(p): n for n, p in named}
            missing = [i for i, p in enumerate(params_in_order) if id(p) not in names]
            if missing:
                raise ArgumentError(
                    f"named_parameters misses {len(missing)} of the optimizer's parameters; "
                    "pass model.named_parameters() of the model the optimizer trains"
                )
        else:
            names = {id(p): f"param.{i}" for i, p in enumerate(params_in_order)}
        self._names = names
        self._passes: dict[int, int] = {}
        self._synchronized = False
        self._skip = False
        # Gradients live in one flat buffer per dtype and device (as DDP's
        # gradient_as_bucket_view): backward accumulates straight into it, and the
        # reduction needs no packing or unpacking copies. Reverse order: the last
        # layers' gradients are final first, so the first buckets fill first.
        trained = [p for p in reversed(params_in_order) if p.requires_grad]
        self._params = trained
        self._view: dict[int, torch.Tensor] = {}
        self._buckets_of: dict[int, list[_Bucket]] = {}
        self._buckets: list[_Bucket] = []
        by_kind: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
        for p in trained:
            by_kind.setdefault((p.dtype, p.device), []).append(p)
            # The newest DistributedOptimizer owns the parameter: an older one's hook would
            # start reductions that nothing ever finishes.
            old = getattr(p, "_hpcsuite_grad_hook", None)
            if old is not None:
                old.remove()
            p._hpcsuite_grad_hook = p.register_post_accumulate_grad_hook(self._on_grad)
        for (dtype, device), params in by_kind.items():
            flat = torch.zeros(sum(p.numel() for p in params), dtype=dtype, device=device)
            spans, offset = [], 0
            for p in params:
                view = flat[offset : offset + p.numel()].view_as(p)
                if p.grad is not None:
                    view.copy_(p.grad)
                p.grad = view
                self._view[id(p)] = view
                spans.append((offset, offset + p.numel(), p))
                offset += p.numel()
            wire_size = compression.compress(flat[:0])[0].element_size()
            chunk = max(1, fusion_bytes // wire_size)
            for lo in range(0, flat.numel(), chunk):
                hi = min(lo + chunk, flat.numel())
                inside = [p for a, b, p in spans if a < hi and b > lo]
                bucket = _Bucket(flat, lo, hi, inside)
                self._buckets.append(bucket)
                for p in inside:
                    self._buckets_of.setdefault(id(p), []).append(bucket)
        self._next = 0  # the next bucket to start
        self._started: list[_Bucket] = []
        #: Seconds spent in synchronize() after backward: communication that overlap did not hide.
        self.exposed_seconds = 0.0

    # -- during backward -------------------------------------------------------------------

    def _on_grad(self, p: torch.Tensor) -> None:
        """Post-accumulate hook: count the pass; once the gradient is final, start what can."""
        passes = self._passes[id(p)] = self._passes.get(id(p), 0) + 1
        if passes > self._passes_per_step:  # Horovod raises AssertionError here too
            raise _TooManyPasses(
                f"gradients were computed {passes} times before step(), more than "
                f"backward_passes_per_step={self._passes_per_step}: raise it to accumulate more "
                "passes locally"
            )
        if self._size == 1 or passes != self._passes_per_step or self._overlap == "sync":
            return
        with torch.no_grad():
            self._adopt(p)
        for bucket in self._buckets_of[id(p)]:
            bucket.waiting -= 1
        self._start_ready()
        if self._overlap == "poll":
            ops.progress([b.pending for b in self._started])

    def _adopt(self, p: torch.Tensor) -> None:
        """Make ``p.grad`` the view into the fused buffer (zeros when it has no gradient)."""
        view = self._view[id(p)]
        if p.grad is None:  # unused this step: contributes zeros, receives the average
            view.zero_()
        elif (
            p.grad.is_sparse and self._sparse_as_dense
        ):  # embeddings with sparse=True, reduced dense
            view.copy_(p.grad.to_dense())
        elif (
            p.grad.is_sparse
        ):  # reduced after the buckets, as Horovod's sparse allreduce; zeros here
            self._sparse[id(p)] = p.grad
            view.zero_()
        elif (
            p.grad.data_ptr() != view.data_ptr()
        ):  # a fresh tensor (set_to_none, model.zero_grad())
            view.copy_(p.grad)
        p.grad = view

    def _start_ready(self, everything: bool = False) -> None:
        """Start the buckets that are ready, in order (every rank starts them in the same order)."""
        while self._next < len(self._buckets) and (
            everything or self._buckets[self._next].waiting == 0
        ):
            if self._next == 0:
                self._negotiate()
            self._start(self._buckets[self._next])
            self._next += 1

    def _negotiate(self) -> None:
        # Everything a rank inside hvd.join() needs to rebuild the buckets and mirror them.
        mpi_ops.negotiate(
            "gradients",
            [(self._names[id(p)], p) for p in self._params],
            (
                self._op,
                self._compression.__name__,
                self._passes_per_step,
                self._fusion_bytes,
                self._overlap,
            ),
        )

    def _scales(self) -> tuple[float, float]:
        """Divisor before the sum and factor after it. Averages divide before (a sum of many
        can overflow float16) - all of it, or ``gradient_predivide_factor`` of it, as Horovod.
        The ``backward_passes_per_step`` local passes are summed, not averaged (Horovod's)."""
        if self._op != ops.Average:
            return 1.0, 1.0
        if self._predivide == 1.0:
            return self._size, 1.0
        return self._predivide, self._predivide / self._size

    def _start(self, bucket: _Bucket) -> None:
        scale = self._scales()[0]
        with torch.no_grad():
            segment = bucket.flat[bucket.lo : bucket.hi]
            if scale != 1:
                segment.div_(scale)  # before compressing: a sum of many can overflow float16
            wire, bucket.ctx = self._compression.compress(segment)
            bucket.wire = wire.contiguous()
            bucket.pending = ops.start_sum(bucket.wire, self._overlap)
        self._started.append(bucket)

    # -- after backward --------------------------------------------------------------------

    def synchronize(self) -> None:
        """Reduce the gradients now (e.g. before clipping them); ``step()`` then skips it
        inside :meth:`skip_synchronize`. Calling it again before the step does nothing."""
        if self._synchronized:
            return
        # Fewer passes than backward_passes_per_step: what was accumulated is reduced (Horovod's).
        if self._size == 1:  # nothing to exchange: leave the gradients where backward put them
            if self._sparse_as_dense:  # ... dense, as on more ranks (a dense optimizer may follow)
                for p in self._params:
                    if p.grad is not None and p.grad.is_sparse:
                        p.grad = p.grad.to_dense()
            self._synchronized = True
            return
        started = time.perf_counter()
        with torch.no_grad():
            for b in self._buckets[self._next :]:
                for p in b.params:
                    self._adopt(p)
        self._start_ready(everything=True)
        self._drain()
        self._reduce_sparse()
        self.exposed_seconds += time.perf_counter() - started
        self._synchronized = True

    def _drain(self) -> None:
        """Wait for every started bucket and unpack the results; reset for the next step."""
        started, self._started, self._next = self._started, [], 0
        ops.wait_sums([b.pending for b in started], f"gradient reduction ({len(started)} buckets)")
        post = self._scales()[1]
        with torch.no_grad():
            for b in started:
                if b.wire.data_ptr() != b.flat.data_ptr() + b.lo * b.flat.element_size():
                    b.flat[b.lo : b.hi].copy_(self._compression.decompress(b.wire, b.ctx))
                if post != 1.0:
                    b.flat[b.lo : b.hi].mul_(post)
                b.pending = b.wire = b.ctx = None
        for b in self._buckets:
            b.waiting = len(b.params)

    def _reduce_sparse(self) -> None:
        """Sparse gradients (``sparse_as_dense=False``): Horovod's sparse allreduce - every
        rank's indices and values allgathered and summed - then scaled as the dense ones."""
        sparse, self._sparse = self._sparse, {}
        handles = [
            (
                p,
                mpi_ops.sparse_allreduce_async(
                    sparse[id(p)], name=f"{self._names[id(p)]}.sparse_grad", op=ops.Sum
                ),
            )
            for p in self._params
            if id(p) in sparse
        ]
        scale = (1.0 / self._size) if self._op == ops.Average else 1.0
        for p, handle in handles:
            grad = mpi_ops.synchronize(handle)
            p.grad = grad * scale if scale != 1.0 else grad

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients: to None (the default, as torch), or to zero in the fused buffers.

        ``None`` is cheaper: backward then writes fresh gradients instead of adding to
        zeroed ones, and they are copied into the fused buffer only when there are
        other ranks to exchange with. Reductions still in flight (backward without a
        step) are finished first, so MPI writes nothing into the buffers afterwards.
        """
        if self._started:
            self._drain()
        self._passes.clear()
        self._sparse.clear()
        self._synchronized = False  # the next step reduces the next gradients
        with torch.no_grad():
            for p in self._params:
                if set_to_none:
                    p.grad = None
                else:
                    self._view[id(p)].zero_()
                    p.grad = self._view[id(p)]

    @contextmanager
    def skip_synchronize(self):
        """Within this block ``step()`` does not reduce (after a manual ``synchronize()``)."""
        self._skip = True
        try:
            yield
        finally:
            self._skip = False

    def step(self, closure: Any = None) -> Any:
        if self._synchronized and not self._skip:
            warnings.warn(
                "optimizer.step() called without optimizer.skip_synchronize() after "
                "optimizer.synchronize(): wrap step() in `with optimizer.skip_synchronize():` "
                "(Horovod's warning; the gradients are not reduced twice here)",
                stacklevel=2,
            )
        if not self._synchronized:
            if self._skip:
                raise ArgumentError(
                    "step() inside skip_synchronize() without synchronize() first: "
                    "the gradients would not be reduced"
                )
            self.synchronize()
        self._synchronized = False
        self._passes.clear()
        timeline.step()
        return super(self.__class__, self).step(closure)


def DistributedOptimizer(
    optimizer: torch.optim.Optimizer,
    named_parameters: Any = None,
    compression: Any = Compression.none,
    backward_passes_per_step: int = 1,
    op: str = ops.Average,
    gradient_predivide_factor: float = 1.0,
    num_groups: int = 0,
    groups: Any = None,
    sparse_as_dense: bool = False,
    fusion_bytes: int | None = None,
    overlap: str | None = None,
) -> torch.optim.Optimizer:
    """Wrap ``optimizer`` so that ``step()`` averages (or sums) gradients over ranks first.

    Parameters
    ----------
    optimizer : torch.optim.Optimizer
        The optimizer to wrap (its parameter groups and hyper-parameters are kept).
    named_parameters : iterable of (str, Tensor), optional
        ``model.named_parameters()``: names in error messages and the negotiation.
    compression : Compression.none, Compression.fp16 or Compression.bf16
    backward_passes_per_step : int
        Backward passes accumulated locally (summed, as Horovod) before each reduction.
    op : hvd.Average or hvd.Sum
    gradient_predivide_factor : float
        Averages divide by this before the sum and by ``size / factor`` after (Horovod's);
        the default divides all before.
    num_groups, groups
        Accepted for Horovod scripts: buckets follow ``fusion_bytes`` whatever the
        grouping (the result is the same).
    sparse_as_dense : bool
        Reduce sparse gradients (``Embedding(sparse=True)``) as dense ones; otherwise they
        stay sparse and go through Horovod's sparse allreduce (so ``SparseAdam`` works).
    fusion_bytes : int, optional
        Largest chunk of gradients one MPI reduction carries (on the wire: after
        compression); default ``$HPCSUITE_TRAIN_FUSION_BYTES``, else Horovod's
        ``$HOROVOD_FUSION_THRESHOLD``, else :data:`FUSION_BYTES`.
    overlap : {"sync", "poll", "thread"}, optional
        How reductions overlap backward (module docstring); default
        ``$HPCSUITE_TRAIN_OVERLAP``, else :data:`OVERLAP`, the fastest measured.
    """
    cls = type(
        optimizer.__class__.__name__, (optimizer.__class__,), dict(_DistributedOptimizer.__dict__)
    )
    del num_groups, groups  # see the docstring
    wrapped = cls(
        optimizer.param_groups,
        named_parameters,
        compression,
        backward_passes_per_step,
        op,
        fusion_size(fusion_bytes),
        overlap,
        gradient_predivide_factor,
        sparse_as_dense,
    )
    # Keep what the optimizer already holds (momenta, step counts - e.g. from a checkpoint):
    # re-initializing the class with the parameter groups alone would drop it.
    wrapped.load_state_dict(optimizer.state_dict())
    return wrapped


class _TooManyPasses(HpcsuiteError, AssertionError):
    """More backward passes than ``backward_passes_per_step`` (Horovod raises AssertionError)."""
