#!/usr/bin/env bash
# Usage: scripts/peak-rss.sh BINARY N D
#
# Measures the peak resident memory of one whole `sincere loss` process
# (reading the .npy files, SINCERE forward and backward, writing the
# gradient) on N random unit-norm rows of width D with 10 balanced classes.
# Needs python3 (standard library only) to write the inputs.
set -euo pipefail
bin=${1:?usage: $0 BINARY N D} n=${2:?N} d=${3:?D}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" "$n" "$d" <<'PY'
import array, math, random, struct, sys
out, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def npy(path, descr, shape, data):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(data.tobytes())
rng = random.Random(1)
z = array.array("f")
for _ in range(n):
    row = [rng.gauss(0, 1) for _ in range(d)]
    s = math.sqrt(sum(v * v for v in row))
    z.extend(v / s for v in row)
npy(out + "/z.npy", "<f4", "(%d, %d)" % (n, d), z)
npy(out + "/y.npy", "<i8", "(%d,)" % n, array.array("q", [i % 10 for i in range(n)]))
PY
python3 - "$bin" "$dir" <<'PY'
import resource, subprocess, sys
bin, dir = sys.argv[1], sys.argv[2]
out = subprocess.run([bin, "loss", "--loss", "sincere", "--temperature", "0.1", "--device", "cpu",
                      "--embeddings", dir + "/z.npy", "--labels", dir + "/y.npy",
                      "--grad-out", dir + "/g.npy"], check=True, capture_output=True, text=True).stdout
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(out.strip())
print("peak RSS of the sincere loss process: %.1f MiB" % peak)
PY
