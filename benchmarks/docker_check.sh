#!/usr/bin/env bash
# Builds the Dockerfile for real and runs the image as `python -m hpcsuite.deploy k8s`'s
# manifests do: `hpcsuite info` and a 2-rank job in one container; then two containers on
# one docker network with sshd as the image's CMD and the keys mounted at /root/.ssh the
# way the kubelet mounts a Secret (a 1777 directory of ..data links), where rank 1 starts
# on the second container over ssh: once with keys only (the MPI Operator's Secret, no
# client config) and once as the Indexed Job's pod script that hpcsuite.deploy writes (README's
# Secret, with its config). A manual check, not part of CI: 5 minutes on 2 cores, nearly
# all of it debootstrap (the first time) and apt and pip inside the builds.
#
# usage: bash benchmarks/docker_check.sh        (needs a running docker daemon)
#   BASE=python:3.11-slim-bookworm   build FROM this; by default FROM a Debian 12 made here
#                                    with debootstrap (root, debootstrap and a Debian
#                                    mirror; no Docker Hub), which the Dockerfile treats
#                                    like a CUDA base: no python3 in it
#   MPIS="mpich openmpi"             the MPI build arguments to check (intelmpi too)
#   PY3_BASE=1                       with the debootstrap base: also build FROM it plus
#                                    python3 without python3-venv (Ubuntu-like bases)
#   MIRROR=http://deb.debian.org/debian    REBUILD_BASE=1 (debootstrap again)
# A TLS-intercepting proxy: the host's /usr/local/share/ca-certificates/*.crt go into the
# debootstrap base, with PIP_CERT set there; the Dockerfile itself is built as shipped.
# Writes ${OUT:-.}/docker_check.txt (PASS/FAIL per check) and docker_check.log; exits
# non-zero if any check failed. Images stay (docker rmi $(docker images -q 'hpcsuite-check*')).
# Afterwards: stop dockerd and flush the iptables rules it left (iptables -P FORWARD ACCEPT;
# iptables -F; iptables -X; iptables -t nat -F; iptables -t nat -X) before running the tests
# here: with them and docker0 in place, the Open MPI and Intel MPI 2-node tests of
# tests/test_slurm_cluster.py timed out once, and passed again once they were gone.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! docker info >/dev/null 2>&1; then
    echo "docker_check: no docker daemon answers (docker info failed); start dockerd first" >&2
    exit 2
fi
MPIS=${MPIS:-mpich openmpi}
PY3_BASE=${PY3_BASE:-1}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
out="${OUT:-.}/docker_check.txt"
log="${OUT:-.}/docker_check.log"
: >"$out"
: >"$log"
p=hpcsuite-check # prefix of every image, container and network made here
work=$(mktemp -d)
status=0
cleanup() {
    docker ps -aq --filter "label=$p" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker network rm "$p" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

# check NAME CMD...: run CMD with errexit on, log it all, print one PASS/FAIL line and set
# $ok. Never call it as a condition (`check ... || ...`): bash then ignores errexit inside.
check() {
    local name=$1 start=$SECONDS code
    shift
    echo "== $name" >>"$log"
    set +e
    (
        set -e
        "$@"
    ) >>"$log" 2>&1
    code=$?
    set -e
    ok=PASS
    [ "$code" = 0 ] || { ok=FAIL && status=1; }
    printf '%-50s %-4s %4ss\n' "$name" "$ok" "$((SECONDS - start))" | tee -a "$out"
}

debian_base() { # a Debian 12 image without python3, from debootstrap (no registry needed)
    local root=$work/rootfs
    command -v debootstrap && [ "$(id -u)" = 0 ] ||
        { echo "debootstrap needs root and the debootstrap package; or set BASE" && return 1; }
    local change=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
        --change 'CMD ["/bin/bash"]')
    timeout -k 10 1200 debootstrap --variant=minbase bookworm "$root" "$MIRROR"
    if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
        mkdir -p "$root/usr/local/share/ca-certificates"
        cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
        change+=(--change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt')
    fi
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import "${change[@]}" - "$p-base:bookworm"
    rm -rf "$root"
}

python3_base() { # the same plus Debian's python3, without python3-venv (so no ensurepip)
    printf 'FROM %s\nRUN %s\n' "$p-base:bookworm" "apt-get update \
&& apt-get install -y --no-install-recommends python3 && apt-get clean \
&& rm -rf /var/lib/apt/lists/* && ! python3 -c 'import ensurepip'" |
        timeout -k 10 900 docker build -t "$p-base:bookworm-python3" -
}

build() { # build IMAGE BASE MPI
    timeout -k 10 1800 docker build --build-arg "BASE=$2" --build-arg "MPI=$3" -t "$1" .
    echo "image $1: $(($(docker image inspect -f '{{.Size}}' "$1") / 1000000)) MB"
}

context_is_small() { # the build context kept out .git and the venvs (gigabytes)
    docker run --rm --label "$p" "$1" sh -c 'cd /src/hpcsuite && ls -a \
        && test ! -e .git && test ! -e .venv && ! ls -d .venv-* 2>/dev/null \
        && test "$(du -sm . | cut -f1)" -lt 20'
}

root_env() { # docker -e options the manifests give for MPI $1 (Open MPI refuses root otherwise)
    [ "$1" != openmpi ] || echo "-e OMPI_ALLOW_RUN_AS_ROOT=1 -e OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
}

one_container() { # info, then mpirun -n 2 in one container
    docker run --rm --label "$p" "$1" python -m hpcsuite info | tee "$work/info"
    grep -q '^mpi library' "$work/info"
    # shellcheck disable=SC2046
    docker run --rm --label "$p" $(root_env "$2") "$1" \
        timeout 120 mpirun -n 2 python -m hpcsuite.mean --shape 2000x2000 | tee "$work/run"
    grep -Eq 'ranks +2 on 1 node' "$work/run"
}

secret() { # secret DIR FILE...: keys/FILE laid out as the kubelet mounts a Secret volume
    local dir=$1 data=..2026_01_01_00_00_00.000000001 f
    shift
    mkdir -p "$dir/$data"
    for f in "$@"; do
        cp "$work/keys/$f" "$dir/$data/$f"
        chmod 600 "$dir/$data/$f" # defaultMode 0600, as hpcsuite.deploy and the MPI Operator set
        ln -s "..data/$f" "$dir/$f"
    done
    ln -s "$data" "$dir/..data"
    chmod 755 "$dir/$data"
    chmod 1777 "$dir" # world-writable, as Secret volumes are: sshd's StrictModes refuses it
}

keys() { # a throwaway key pair and README's client config, made with the image's ssh-keygen
    mkdir -p "$work/keys"
    docker run --rm --label "$p" -v "$work/keys:/k" "$1" sh -c "ssh-keygen -q -t ed25519 \
        -N '' -f /k/id_ed25519 && cp /k/id_ed25519.pub /k/authorized_keys \
        && printf 'StrictHostKeyChecking no\nUserKnownHostsFile /dev/null\n' > /k/config \
        && chown -R $(id -u):$(id -g) /k"
    secret "$work/operator" id_ed25519 authorized_keys
    secret "$work/indexed" id_ed25519 authorized_keys config
}

over_ssh() { # IMAGE MPI: sshd as CMD on two containers, the MPI Operator's keys, rank 1 via ssh
    local a=$p-$2-a b=$p-$2-b i c
    docker rm -f "$a" "$b" >/dev/null 2>&1 || true
    for c in "$a" "$b"; do
        docker run -d --label "$p" --name "$c" --hostname "$c" --network "$p" \
            -v "$work/operator:/root/.ssh:ro" "$1" >/dev/null
    done
    for i in $(seq 30); do # sshd up, key accepted, host key not asked about
        if docker exec "$a" ssh -o BatchMode=yes "$b" true; then break; fi
        [ "$i" != 30 ] || return 1
        sleep 1
    done
    if [ "$2" = openmpi ]; then # hpcsuite.deploy's Open MPI launch: host:slots, ssh as the agent
        # shellcheck disable=SC2046
        docker exec $(root_env "$2") "$a" timeout 120 mpirun -n 2 --host "$a:1,$b:1" \
            --mca plm_rsh_agent ssh python -m hpcsuite.mean --shape 2000x2000 | tee "$work/run"
    else # Hydra (MPICH, Intel MPI; -ppn 1, or Intel MPI fills the first host)
        docker exec "$a" timeout 120 mpiexec -launcher ssh -hosts "$a,$b" -ppn 1 -n 2 \
            python -m hpcsuite.mean --shape 2000x2000 | tee "$work/run"
    fi
    docker rm -f "$a" "$b" >/dev/null
    grep -Eq 'ranks +2 on 2 nodes' "$work/run"
}

indexed_job() { # IMAGE MPI: hpcsuite.deploy's Indexed Job pod script and env on pods j-0, j-1
    local mpi=${2/intelmpi/intel} # the Dockerfile's MPI=intelmpi is deploy's --mpi intel
    docker rm -f "$p-j-0" "$p-j-1" >/dev/null 2>&1 || true
    docker run --rm --label "$p" --user "$(id -u):$(id -g)" -v "$work:/out" "$1" python -c "
import sys
from hpcsuite import deploy
sys.modules[deploy.indexed_job.__module__].PEER_WAIT_S = 60  # pod 0 gives up after 1 min
docs = deploy.indexed_job('j', 'image', workers=2, slots=1, gpus=0, cpu='1', memory='1Gi',
    module='mean', args=['--shape', '2000x2000'], ssh_secret='s', mpi='$mpi')
c = docs[1]['spec']['template']['spec']['containers'][0]
open('/out/pod.sh', 'w').write(c['command'][2])
open('/out/pod.env', 'w').write(''.join(f\"{e['name']}={e['value']}\n\" for e in c.get('env', [])))
"
    cat "$work/pod.sh" "$work/pod.env"
    local run=(--label "$p" --network "$p" --env-file "$work/pod.env"
        -v "$work/indexed:/root/.ssh:ro" "$1" /bin/bash -c "$(cat "$work/pod.sh")")
    docker run -d --name "$p-j-1" --hostname j-1 --network-alias j-1.j \
        -e JOB_COMPLETION_INDEX=1 "${run[@]}" >/dev/null
    timeout -k 10 300 docker run --name "$p-j-0" --hostname j-0 --network-alias j-0.j \
        -e JOB_COMPLETION_INDEX=0 "${run[@]}" | tee "$work/run" # pod 0: the job's result
    docker rm -f "$p-j-0" "$p-j-1" >/dev/null
    grep -Eq 'ranks +2 on 2 nodes' "$work/run"
}

docker network inspect "$p" >/dev/null 2>&1 || docker network create "$p" >/dev/null
base=${BASE:-}
if [ -z "$base" ]; then
    base=$p-base:bookworm
    if [ -n "${REBUILD_BASE:-}" ] || ! docker image inspect "$base" >/dev/null 2>&1; then
        check "base: debootstrap bookworm (no python3)" debian_base
        [ "$ok" = PASS ] || exit 1
    fi
fi
echo "FROM $base" | tee -a "$out"
first=1
for mpi in $MPIS; do
    image=$p:$mpi
    check "build MPI=$mpi" build "$image" "$base" "$mpi"
    [ "$ok" = PASS ] || continue
    if [ "$first" = 1 ]; then
        check "no .git or .venv* in the image" context_is_small "$image"
        check "ssh keys (throwaway), Secret layouts" keys "$image"
        first=0
    fi
    check "$mpi: info, mpirun -n 2 (one container)" one_container "$image" "$mpi"
    check "$mpi: rank over ssh, MPI Operator's keys" over_ssh "$image" "$mpi"
    check "$mpi: Indexed Job pod script (deploy k8s)" indexed_job "$image" "$mpi"
done
if [ -z "${BASE:-}" ] && [ "$PY3_BASE" = 1 ]; then # the Dockerfile's other branch
    check "base: + python3 without python3-venv" python3_base
    if [ "$ok" = PASS ]; then
        check "build MPI=mpich FROM that base" build "$p:mpich-python3" \
            "$p-base:bookworm-python3" mpich
    fi
    if [ "$ok" = PASS ]; then
        check "mpich (python3 base): info, mpirun -n 2" one_container "$p:mpich-python3" mpich
    fi
fi
grep -a '^image ' "$log" | tee -a "$out" || true
exit "$status"
