"""``python -m hpcsuite.deploy``: see :mod:`hpcsuite.deploy`."""

import sys

from hpcsuite.core import cli
from hpcsuite.deploy.command import PROG, main

if __name__ == "__main__":
    sys.exit(cli.run(main, prog=PROG))
