"""Performance models fitted from hpcsuite's own measurements, with honest intervals.

``python -m hpcsuite.predict RESULTS...`` (or ``python -m hpcsuite.report --model``)
answers "how will it scale where I have not run it?":

* :mod:`.comm`: Hockney alpha-beta fits of point-to-point curves per message-size
  regime (intra- and inter-node apart), and the standard collective algorithm models
  (ring, recursive doubling, Rabenseifner, binomial tree, ...) fitted to allreduce,
  bcast, allgather and alltoall curves, the algorithm chosen per size regime;
* :mod:`.empirical`: Extra-P's performance-model normal form fitted to kernel and
  sweep series, with model selection and an interval that includes the uncertainty of
  the form;
* :mod:`.training`: the data-parallel step time at N ranks from a one-rank compute
  measurement, the fusion buffers' allreduces and the measured overlap;
* :mod:`.sections` turns records into "prediction" sections, :mod:`.render` prints and
  plots them.

Nothing here imports MPI; SciPy is used for the fits (never imported by ranks).
"""

from __future__ import annotations
