#!/usr/bin/env bash
# Installs PyTorch and NumPy for the system python3 from Debian
# (python3-torch, CPU only), which scripts/torch_check.py and the test that
# runs it (TestTorchCheck) need. Idempotent: does nothing when
# /usr/bin/python3 already imports torch and numpy.
set -euo pipefail

if /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
	echo "install-torch: torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') already installed"
	exit 0
fi
if [ ! -f /etc/debian_version ]; then
	echo "install-torch: this script installs Debian packages; elsewhere install torch and numpy for python3 yourself" >&2
	exit 1
fi
. "$(dirname "$0")/apt.sh"
apt_root install-torch python3-torch
$sudo apt-get update -qq
$sudo apt-get install -y -qq python3-torch
