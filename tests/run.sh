#!/usr/bin/env bash
# The whole test suite in one command: plain pytest, then the MPI tests inside real
# MPI jobs at n = 1, 2, 3 and 4 (HPCSUITE_TEST_RANKS overrides the list).
#
# Each MPI leg runs as `mpiexec -n N python -m mpi4py -m pytest --with-mpi`, so a rank
# that fails aborts the job instead of leaving the others waiting, and runs under
# `timeout`, so nothing can hang CI. Rank 0 prints; the other ranks log to files that
# are shown when a leg fails. Exits non-zero if any leg fails or runs no test.
# Extra arguments go to every pytest run (e.g. -x, -k NAME).
set -u
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
RANKS=${HPCSUITE_TEST_RANKS:-1 2 3 4}
export HPCSUITE_TEST_LOGS
HPCSUITE_TEST_LOGS=$(mktemp -d "${TMPDIR:-/tmp}/hpcsuite-tests.XXXXXX")
failed=0

echo "== plain tests (no MPI launcher)"
timeout -k 10 900 "$PYTHON" -m pytest -m "not mpi and not gpu" -p no:cacheprovider \
    --timeout 300 --junitxml="$HPCSUITE_TEST_LOGS/plain.xml" "$@" tests || failed=1

for n in $RANKS; do
    echo "== MPI tests at n=$n: mpiexec -n $n python -m mpi4py -m pytest --with-mpi -m \"mpi and not gpu\""
    timeout -k 10 600 mpiexec -n "$n" sh -c '
        r=${PMI_RANK:-${OMPI_COMM_WORLD_RANK:-${PMIX_RANK:-0}}}
        if [ "$r" = 0 ]; then
            exec "$0" "$@" --junitxml="$HPCSUITE_TEST_LOGS/mpi'"$n"'.xml"
        else
            exec "$0" "$@" -q >"$HPCSUITE_TEST_LOGS/mpi'"$n"'-rank$r.log" 2>&1
        fi' "$PYTHON" -m mpi4py -m pytest --with-mpi -m "mpi and not gpu" -p no:cacheprovider "$@" tests
    code=$?
    if [ "$code" != 0 ]; then
        failed=1
        echo "!! MPI leg n=$n failed (exit $code); the other ranks said:"
        for f in "$HPCSUITE_TEST_LOGS"/mpi"$n"-rank*.log; do
            [ -f "$f" ] && { echo "-- $f"; tail -n 40 "$f"; }
        done
    fi
done

# One closing line over all legs; a leg that ran no test counts as a failure.
"$PYTHON" - "$HPCSUITE_TEST_LOGS" $RANKS <<'PYEOF' || failed=1
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

logs, ranks = Path(sys.argv[1]), sys.argv[2:]
total = {"passed": 0, "failed": 0, "skipped": 0}
reasons = {}  # why tests skipped, over all legs: a skip is said, never silent
ok = True
for name in ["plain"] + [f"mpi{n}" for n in ranks]:
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
