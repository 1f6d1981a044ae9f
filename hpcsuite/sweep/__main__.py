"""``python -m hpcsuite.sweep``: see :mod:`hpcsuite.sweep`."""

import sys

from hpcsuite.core import cli
from hpcsuite.sweep.command import PROG, main

if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
