# sincere: build, test and measure. `make test` is the one test command.

GO      ?= go
BIN     := bin/sincere
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: build test lint bench run data peak-rss clean

## build: the CPU binary (pure Go, no CGO) in bin/sincere
build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/sincere

## test: formatting, vet (both kernel builds and a non-amd64 build) and every test
test: lint
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags purego ./internal/kernels/

## lint: gofmt, go vet, and vet/build of the portable kernels (purego, arm64)
lint:
	@unformatted="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt would change:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags purego ./...
	GOARCH=arm64 $(GO) build ./...

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
	rm -rf bin runs
