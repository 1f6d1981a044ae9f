from __future__ import annotations

import pytest

from hpcsuite.core.errors import InputError
from hpcsuite.core.memory import USABLE, available_bytes, check_fits


def test_available_bytes_reads_memavailable(tmp_path):
    fake = tmp_path / "meminfo"
    fake.write_text("MemTotal:       1000 kB\nMemFree:         10 kB\nMemAvailable:    500 kB\n")
    assert available_bytes(str(fake)) == 500 * 1024


def test_available_bytes_of_this_machine_is_plausible():
    free = available_bytes()
    assert free is not None and free > 10**6  # Linux has /proc/meminfo


def test_check_fits_refuses_with_the_numbers_and_the_fix():
    check_fits(int(USABLE * 1000), 1000, where="node a", hint="x")
    check_fits(10**15, None, where="node a", hint="x")  # unknown memory never refuses
    with pytest.raises(InputError, match=r"needs 2\.00 GB on node a but only 1\.00 GB .*; use fewer"):
        check_fits(2 * 10**9, 10**9, where="node a", hint="use fewer")
