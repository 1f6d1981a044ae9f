#!/usr/bin/env bash
# One script for a GPU machine (H100 class), under 5 minutes: the GPU tests, a GPU job
# at two ranks, and the GPU reduction benchmark. Writes a short summary table to
# ${OUT:-.}/gpu_check.txt and exits non-zero if anything failed.
#
# usage: bash benchmarks/gpu_check.sh      (needs CuPy, mpi4py with an MPI, pytest)
set -u
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # works without `pip install -e .`
out="${OUT:-.}/gpu_check.txt"
log="${OUT:-.}/gpu_check.log"
: >"$out"
status=0

step() {  # step NAME TIMEOUT CMD...: run, log everything, one summary line
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout -k 10 "$limit" "$@" >>"$log" 2>&1
    local code=$?
    [ "$code" = 0 ] || status=1
    printf '%-28s %-6s %4ss\n' "$name" "$([ "$code" = 0 ] && echo ok || echo "FAIL($code)")" \
        "$((SECONDS - start))" >>"$out"
}

{ echo "== python -m hpcsuite info"; python -m hpcsuite info; nvidia-smi -L; } >>"$log" 2>&1
step "a usable GPU" 60 python -c "from hpcsuite.core import backend; assert backend.gpu_count() > 0, 'no usable GPU'"
step "gpu tests (pytest -m gpu)" 240 python -m pytest -m gpu -q -p no:cacheprovider tests
step "mean n=2 --device gpu" 120 mpiexec -n 2 python -m hpcsuite.mean --device gpu --check
step "montecarlo n=2 gpu (device RNG)" 120 mpiexec -n 2 python -m hpcsuite.montecarlo --device gpu \
    --paths 200000000 --repeat 3
step "gpu reduction benchmark" 120 python benchmarks/gpu_mean_bench.py --gbytes 4
step "suite small gpu, 2 ranks" 180 mpiexec -n 2 python -m hpcsuite.suite --size small --device gpu
step "train.mnist --device cuda" 120 mpiexec -n 1 python -m hpcsuite.train.mnist --device cuda \
    --checkpoint-dir "${OUT:-.}/ck" --target-accuracy 0.95 --quiet
step "train.synthetic resnet cuda" 120 mpiexec -n 1 python -m hpcsuite.train.synthetic --model resnet --device cuda
step "train on cuda at n=2 (tests)" 180 mpiexec -n 2 python -m mpi4py -m pytest --with-mpi -m "mpi and gpu" -q \
    -p no:cacheprovider tests/test_gpu_train.py
step "train.synthetic n=2 cuda fp16" 120 mpiexec -n 2 python -m hpcsuite.train.synthetic --model resnet \
    --device cuda --fp16-allreduce
step "microbench cupy, validated" 120 mpiexec -n 2 python -m hpcsuite.microbench latency bw allreduce \
    --buffer cupy --validate --max 4M --time-per-size 2 --format table
echo "-- benchmark" >>"$out"
sed -n '/^device /,/^reduction \//p' "$log" >>"$out"
echo "-- gpu job" >>"$out"
grep -A6 '^hpcsuite.mean: mean' "$log" | grep -E 'mean =|device|reduction|check' >>"$out"
echo "-- montecarlo on the GPU (normals made on the device)" >>"$out"
grep -A8 '^hpcsuite.montecarlo: call' "$log" | grep -E 'price|paths/s|check' >>"$out"
echo "-- suite on the GPU" >>"$out"
sed -n '/^hpcsuite.suite: --size small/,/^kmer/p' "$log" >>"$out"
echo "-- training on the GPU" >>"$out"
grep -E '^hpcsuite.train.mnist: test accuracy|samples/s per rank|step time' "$log" >>"$out"
echo "-- microbench with device buffers (largest sizes)" >>"$out"
grep -B1 -E '^ +(4194304|1048576) ' "$log" >>"$out"
cat "$out"
exit "$status"
