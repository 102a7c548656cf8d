#!/usr/bin/env bash
# The one GPU check of the CUDA backend (DESIGN section 7): correctness
# against the CPU, speed, and the PyTorch reference, in one run.
#
#   scripts/gpu-check.sh build
#       Here, with Go and the CUDA toolkit (scripts/install-cuda-toolkit.sh):
#       builds bin/gpu-check/ (sincere-cuda and the CUDA backend's test binary,
#       both -tags gpu). The GPU machine needs no Go.
#
#   scripts/gpu-check.sh run [OUTDIR]
#       On a machine with an NVIDIA GPU, from the repository root with
#       bin/gpu-check/ in place. Writes everything to OUTDIR (default $OUT,
#       else ./gpu-check-out) and prints the table last:
#       (a) every CUDA kernel against the CPU engine and the float64
#           reference, output buffers poisoned with NaN first, N from 1 to
#           65536, tau 0.1 and 0.02, every loss and precision (check.log);
#       (b) sincere bench loss --device cuda, N = 1024 ... 262144, D = 128
#           (bench.jsonl, bench.log);
#       (c) the same sizes through PyTorch written as the public reference
#           code is, eager and under torch.compile, noting out-of-memory
#           (torch.json, torch.log), and `sincere loss --device cuda` checked
#           end to end against the formulas in float64 (crosscheck.json);
#       (d) the table (report.txt); then, while time is left,
#           compute-sanitizer memcheck and racecheck on small cases
#           (sanitizer.log).
#       Exit status: non-zero when a correctness check failed.
#
# With the device tool:
#   run(command="scripts/gpu-check.sh run", carry=["bin/gpu-check"], timeout_s=600)
set -uo pipefail
cd "$(dirname "$0")/.."

BIN=bin/gpu-check
# Overridable for a dry run of the script itself (e.g. with binaries built
# -tags gpuemu on a machine without a GPU).
read -r -a SIZES <<<"${SINCERE_GPU_CHECK_SIZES:-1024 8192 32768 65536 262144}"
TESTS=${SINCERE_GPU_CHECK_TESTS:-full}

if [ "${1:-}" = build ]; then
	set -e
	make gpu-check-build
	ls -la "$BIN"
	exit 0
fi
if [ "${1:-}" != run ]; then
	echo "usage: scripts/gpu-check.sh build | run [OUTDIR]" >&2
	exit 2
fi

out=${2:-${OUT:-gpu-check-out}}
mkdir -p "$out"
budget=${SINCERE_GPU_CHECK_BUDGET:-540} # seconds for the whole run
start=$(date +%s)
left() { echo $((budget - ($(date +%s) - start))); }
# upto N: seconds for a stage, at most N and at least 10.
upto() {
	local l
	l=$(($(left) - 30))
	if [ "$l" -gt "$1" ]; then l=$1; fi
	if [ "$l" -lt 10 ]; then l=10; fi
	echo "$l"
}
log() { echo "gpu-check [$(($(date +%s) - start)) s] $*" >&2; }
failed=0

for f in "$BIN/sincere-cuda" "$BIN/cuda.test"; do
	if [ ! -x "$f" ]; then
		echo "gpu-check: $f is missing: run scripts/gpu-check.sh build here and carry $BIN" >&2
		exit 2
	fi
done
# The gpu build links libcuda.so.1 from the driver.
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/check.log" >&2
"$BIN/sincere-cuda" version 2>&1 | tee -a "$out/check.log" >&2

# (a) correctness: the CUDA tests at full size.
log "(a) CUDA kernels vs CPU engine and float64 reference"
if SINCERE_GPU_CHECK=$TESTS timeout 240 "$BIN/cuda.test" -test.run 'CUDA' -test.v -test.count=1 >>"$out/check.log" 2>&1; then
	log "(a) passed"
else
	log "(a) FAILED (see check.log)"
	failed=1
fi

# (b) our speed.
log "(b) sincere bench loss --device cuda"
nflags=()
for n in "${SIZES[@]}"; do nflags+=(--n "$n"); done
: >"$out/bench.jsonl"
for prec in tf32x3 tf32 fp32; do
	losses=(--loss sincere)
	sizes=("${nflags[@]}")
	case $prec in
	tf32x3) losses=(--loss all) ;;
	fp32) sizes=("${nflags[@]:0:8}") ;; # the first four sizes: the FP32 cores are the slow path
	esac
	if ! timeout 180 "$BIN/sincere-cuda" bench loss --device cuda --precision "$prec" --d 128 "${sizes[@]}" "${losses[@]}" --json \
		>>"$out/bench.jsonl" 2>>"$out/bench.log"; then
		log "(b) bench $prec failed (see bench.log)"
		failed=1
	fi
done

# (c) the PyTorch reference and the end-to-end check.
if command -v python3 >/dev/null && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
	log "(c) PyTorch reference, eager and torch.compile"
	tflags=()
	for n in "${SIZES[@]}"; do tflags+=(--n "$n"); done
	timeout "$(upto 300)" python3 scripts/torch_reference.py bench "$out/torch.json" "${tflags[@]}" \
		--loss sincere --loss supcon >"$out/torch.log" 2>&1 || log "(c) PyTorch bench stopped early (see torch.log)"
	log "(c) sincere loss --device cuda vs float64 formulas"
	if ! timeout "$(upto 120)" python3 scripts/torch_reference.py crosscheck "$BIN/sincere-cuda" "$out/crosscheck.json" >>"$out/torch.log" 2>&1; then
		log "(c) crosscheck failed (see torch.log)"
		failed=1
	fi
else
	log "(c) skipped: no python3 with a CUDA-enabled torch here"
fi

# (d) the table.
python3 scripts/torch_reference.py report "$out/report.txt" "$out/bench.jsonl" \
	--torch "$out/torch.json" --crosscheck "$out/crosscheck.json" >/dev/null 2>>"$out/torch.log" || failed=1
if grep -q FAILED "$out/report.txt" 2>/dev/null; then failed=1; fi

# Then, while time is left: compute-sanitizer on small cases.
if command -v compute-sanitizer >/dev/null && [ "$(left)" -gt 90 ]; then
	log "compute-sanitizer memcheck, racecheck"
	{
		timeout $(($(left) / 2)) compute-sanitizer --tool memcheck --error-exitcode 3 \
			"$BIN/cuda.test" -test.run 'TestCUDAForwardOnlyAndRepeat|TestDeviceConformance/fp32/L2Normalize' -test.count=1
		echo "memcheck exit $?"
		timeout $(($(left) - 15)) compute-sanitizer --tool racecheck --error-exitcode 3 \
			"$BIN/cuda.test" -test.run 'TestCUDAForwardOnlyAndRepeat' -test.count=1
		echo "racecheck exit $?"
	} >"$out/sanitizer.log" 2>&1
	grep -E "exit [0-9]+|ERROR SUMMARY|RACECHECK SUMMARY" "$out/sanitizer.log" >&2
	if grep -q "exit 3" "$out/sanitizer.log"; then failed=1; fi
fi

log "done: files in $out"
echo
cat "$out/report.txt"
grep -E "^(--- FAIL|FAIL|ok|PASS)" "$out/check.log" | head -20
if [ "$failed" != 0 ]; then
	echo "gpu-check: FAILED (see the logs in $out)"
fi
exit "$failed"
