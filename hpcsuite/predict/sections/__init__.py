"""From records to "prediction" sections: which model fits which series, and what it
says at ``--predict-to`` ranks. Pure (no MPI); the report and ``python -m
hpcsuite.predict`` render these sections.

Series identity is the report's (:func:`hpcsuite.report.series.build`): one module, the
same parameters, problem, node layout and environment; unlike runs are never pooled.

Modules: :mod:`~.base` (the section, the options, the time-sharing factor),
:mod:`~.scaling`, :mod:`~.collectives` and :mod:`~.training` (one kind of section each)
and :mod:`~.assemble` (which model fits which series: :func:`build`).
"""

from hpcsuite.predict.sections.assemble import build
from hpcsuite.predict.sections.base import TABLE_SIZES, Options, Section

__all__ = ["TABLE_SIZES", "Options", "Section", "build"]
