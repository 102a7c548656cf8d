#!/usr/bin/env bash
# Installs the CUDA 11.8 toolkit from Debian's non-free component
# (nvidia-cuda-toolkit: nvcc for `make ptx`, cuda.h and libcuda to build
# `make cuda`) and a C++ compiler (for nvcc and for the kernel emulator the
# tests build). Idempotent: does nothing when nvcc, cuda.h and g++ are there.
# Adds /etc/apt/sources.list.d/sincere-nonfree.sources, on the mirror the
# machine's own Debian entry uses, when the package is not yet available
# from the configured sources. Debian bookworm or newer.
set -euo pipefail

if command -v nvcc >/dev/null && [ -f /usr/include/cuda.h ] && command -v g++ >/dev/null; then
	echo "install-cuda-toolkit: $(nvcc --version | tail -1) already installed"
	exit 0
fi
if [ ! -f /etc/debian_version ]; then
	echo "install-cuda-toolkit: this script installs Debian packages; elsewhere install the CUDA toolkit (nvcc, cuda.h) and a C++ compiler yourself" >&2
	exit 1
fi
. "$(dirname "$0")/apt.sh"
apt_root install-cuda-toolkit nvidia-cuda-toolkit
$sudo apt-get update -qq
if ! apt-cache policy nvidia-cuda-toolkit | grep -q 'Candidate: [0-9]'; then
	. /etc/os-release
	echo "install-cuda-toolkit: enabling Debian's contrib and non-free components for ${VERSION_CODENAME}"
	sources=$(nonfree_sources "${VERSION_CODENAME}")
	echo "$sources" | $sudo tee /etc/apt/sources.list.d/sincere-nonfree.sources >/dev/null
	$sudo apt-get update -qq
fi
$sudo apt-get install -y -qq --no-install-recommends nvidia-cuda-toolkit g++
nvcc --version | tail -1
