# sincere: build, test and measure. `make test` is the one test command.

GO      ?= go
BIN     := bin/sincere
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test lint bench run data peak-rss clean cuda ptx ptx-check vet-gpu gpu-check-build gpu-check-dry

# The CUDA kernels: one source per family, each compiled to PTX for two targets. The PTX is
# committed and embedded in the gpu build, so that building it needs only
# cuda.h and libcuda; `make ptx` (nvcc from scripts/install-cuda-toolkit.sh)
# regenerates it after a change to the .cu source.
CUDA_DIR  := internal/kernels/cuda
CUDA_OUT  ?= $(CUDA_DIR)
NVCC      ?= nvcc
NVCCFLAGS := -std=c++17 -O3
CUDA_BIN  := bin/sincere-cuda
# One .cu per family of kernels; each compiles to <family>_sm80.ptx and
# <family>_sm60.ptx.
CUDA_FAMILIES := loss elementwise norm gemm conv

## build: the CPU binary (pure Go, no CGO) in bin/sincere
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/sincere

# The experiment tests that train on the CUDA device (the emulator here).
GPU_TRAIN_TESTS := OnTheGPU|AcrossDevices

## test: formatting, vet (both kernel builds and a non-amd64 build) and every
## test, the CUDA kernels' included (on the CPU emulator, which needs g++)
test: lint
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags purego ./internal/kernels/...
	@if command -v g++ >/dev/null; then \
		echo "$(GO) test -count=1 -tags gpuemu ./internal/cudaemu/ ./internal/kernels/cuda/ && $(GO) test -count=1 -tags gpuemu -run '$(GPU_TRAIN_TESTS)' ./internal/experiment/"; \
		$(GO) test -count=1 -tags gpuemu ./internal/cudaemu/ ./internal/kernels/cuda/ && \
		$(GO) test -count=1 -tags gpuemu -run '$(GPU_TRAIN_TESTS)' ./internal/experiment/; \
	elif [ -n "$$SINCERE_REQUIRE_GPU_TOOLS" ]; then \
		echo "make test: g++ is missing (scripts/install-cuda-toolkit.sh installs it)" >&2; exit 1; \
	else \
		echo "make test: SKIPPING the CUDA kernel tests: no g++ for the emulator (scripts/install-cuda-toolkit.sh)"; \
	fi

## lint: gofmt, go vet, and vet/build of the portable kernels (purego, arm64)
lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags purego ./...
	GOARCH=arm64 $(GO) build ./...
	@if command -v g++ >/dev/null; then \
		echo "$(GO) vet -tags gpuemu ./internal/..."; $(GO) vet -tags gpuemu ./internal/...; fi
	@if [ -f /usr/include/cuda.h ]; then $(MAKE) --no-print-directory vet-gpu; \
	elif [ -n "$$SINCERE_REQUIRE_GPU_TOOLS" ]; then \
		echo "make lint: cuda.h is missing (scripts/install-cuda-toolkit.sh)" >&2; exit 1; \
	else echo "make lint: skipping vet of the gpu build (no cuda.h)"; fi

## vet-gpu: vet the gpu build (cgo against cuda.h) and compile its tests
vet-gpu:
	CGO_ENABLED=1 $(GO) vet -tags gpu ./...
	CGO_ENABLED=1 $(GO) test -tags gpu -run XXX -count=1 -c -o /dev/null ./internal/kernels/cuda/

## cuda: the GPU binary, bin/sincere-cuda (-tags gpu: cgo, cuda.h, libcuda).
## It runs only where the NVIDIA driver is: gorgonia.org/cu initialises the
## driver when the program starts and exits without one.
cuda:
	CGO_ENABLED=1 $(GO) build -tags gpu -ldflags "$(LDFLAGS)" -o $(CUDA_BIN) ./cmd/sincere

## ptx: compile each kernel family internal/kernels/cuda/<family>.cu to the
## committed PTX <family>_sm80.ptx (compute_80: TF32 tensor cores and FP32)
## and <family>_sm60.ptx (compute_60: FP32)
ptx:
	@for f in $(CUDA_FAMILIES); do \
		echo "$(NVCC) -ptx -arch=compute_80 $(NVCCFLAGS) -o $(CUDA_OUT)/$${f}_sm80.ptx $(CUDA_DIR)/$$f.cu"; \
		$(NVCC) -ptx -arch=compute_80 $(NVCCFLAGS) -o $(CUDA_OUT)/$${f}_sm80.ptx $(CUDA_DIR)/$$f.cu || exit 1; \
		echo "$(NVCC) -ptx -arch=compute_60 $(NVCCFLAGS) -o $(CUDA_OUT)/$${f}_sm60.ptx $(CUDA_DIR)/$$f.cu"; \
		$(NVCC) -ptx -arch=compute_60 $(NVCCFLAGS) -o $(CUDA_OUT)/$${f}_sm60.ptx $(CUDA_DIR)/$$f.cu || exit 1; \
	done

## ptx-check: fail when the committed PTX differs from a fresh `make ptx`
ptx-check:
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(MAKE) --no-print-directory -s ptx CUDA_OUT="$$tmp" >/dev/null || exit 1; \
	for f in $(CUDA_FAMILIES); do for a in sm80 sm60; do \
		if ! cmp -s "$$tmp/$${f}_$$a.ptx" $(CUDA_DIR)/$${f}_$$a.ptx; then \
			echo "$(CUDA_DIR)/$${f}_$$a.ptx is not what make ptx builds from $$f.cu: run make ptx and commit it" >&2; exit 1; \
		fi; \
	done; done; echo "ptx-check: the committed PTX matches a fresh make ptx"

## gpu-check-build: everything scripts/gpu-check.sh takes to a GPU machine, in
## bin/gpu-check/: sincere-cuda and the CUDA backend's test binary (-tags gpu,
## stripped, xz-compressed), MNIST's four IDX files, a MANIFEST; fails when it
## and the tracked tree pass the device tool's 64 MiB. GPU_CHECK_TAGS=gpuemu
## GPU_CHECK_DIR=bin/gpu-check-emu builds the dry run's (scripts/gpu-check.sh dry)
GPU_CHECK_DIR  ?= bin/gpu-check
GPU_CHECK_TAGS ?= gpu
gpu-check-build:
	rm -rf $(GPU_CHECK_DIR) $(GPU_CHECK_DIR)-raw
	mkdir -p $(GPU_CHECK_DIR)-raw
	CGO_ENABLED=1 $(GO) build -tags $(GPU_CHECK_TAGS) -ldflags "-s -w $(LDFLAGS)" -o $(GPU_CHECK_DIR)-raw/sincere-cuda ./cmd/sincere
	CGO_ENABLED=1 $(GO) test -tags $(GPU_CHECK_TAGS) -c -ldflags "-s -w" -o $(GPU_CHECK_DIR)-raw/cuda.test ./internal/kernels/cuda/
	scripts/gpu-check.sh pack $(GPU_CHECK_DIR) $(GPU_CHECK_TAGS) $(VERSION)

## gpu-check-dry: scripts/gpu-check.sh's every stage on the CPU emulator at
## tiny sizes (no GPU needed), into gpu-check-dry/
gpu-check-dry:
	scripts/gpu-check.sh dry gpu-check-dry

## bench: time the fused losses at N = 1024, 8192 and 65536 (several minutes),
## the input pipeline and a training step of the small CNN
bench: build
	$(BIN) bench loss --n 1024 --n 8192 --n 65536
	$(BIN) bench data
	$(BIN) bench train --config configs/quick.yaml

## run: the main job: set up (data included), then compare SupCon, SINCERE and
## cross entropy on MNIST with Fashion-MNIST transfer (configs/quick.yaml)
run: build data
	$(BIN) compare --config configs/quick.yaml --out runs

## data: install MNIST (Go module cache) and Fashion-MNIST (Debian package)
data:
	scripts/install-data.sh

## peak-rss: peak memory of a whole `sincere loss` process at N = 8192, D = 128
peak-rss: build
	scripts/peak-rss.sh $(BIN) 8192 128

clean:
	rm -rf bin runs gpu-check-out gpu-check-dry
