"""Training jobs that go wrong, for tests/test_train_jobs.py.

usage: mpiexec -n N python tests/helpers/train_faults.py stall|raise
  stall  rank 1 leaves while the others reduce: the watchdog must abort the job
  raise  rank 1 raises in the middle of training: the job must end at once
"""

import os
import sys
import time

import torch

import hpcsuite.train as hvd
from hpcsuite.core import cli


def main(argv):
    hvd.init()
    model = torch.nn.Linear(4, 2)
    opt = hvd.DistributedOptimizer(
        torch.optim.SGD(model.parameters(), lr=0.1), model.named_parameters()
    )
    for step in range(5):
        if hvd.rank() == 1 and step == 2:
            # The tests time the job's end from here: a file, since an aborted job's
            # output is the very thing under test.
            with open(os.environ["FAULT_STAMP"], "w") as f:
                f.write(f"{time.time():.3f}")
            print("rank 1 fails now", flush=True)
            if argv[0] == "raise":
                raise RuntimeError("injected failure in rank 1's training step")
            return 0  # stall: leave without telling anyone
        opt.zero_grad()
        model(torch.randn(3, 4)).sum().backward()
        opt.step()
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main, sys.argv[1:], prog="train_faults"))
