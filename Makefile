# amld — see README.md. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
export GOFLAGS ?= -mod=mod
PKGS := ./...
# Fuzz budgets are counts, not durations: Go 1.26's fuzz coordinator can report a
# bare "context deadline exceeded" when a duration runs out while a worker is busy
# (golang/go#75804, fixed in Go 1.27), which failed CI on a loaded machine.
FUZZTIME ?= 50000x

.PHONY: all build test unit integration fuzz lint deps demo bench clean images
.PHONY: gpu-check gpu-check-bin
# go-nvml's cgo code calls NVML functions the header marks deprecated.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations

all: build

build:
	$(GO) build -o $(BIN)/amld ./cmd/amld
	$(GO) build -o $(BIN)/amlctl ./cmd/amlctl
	CGO_ENABLED=0 $(GO) build -o $(BIN)/amld-rsh ./cmd/amld-rsh

# deps installs what the tests need on a fresh Debian machine.
deps:
	@scripts/deps.sh

# images builds the node image and amld/base:cpu from local material (no
# registry); cached, so a second run takes seconds. Needs root and Docker.
images:
	@GO=$(GO) BIN=$(BIN) scripts/images.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/amld

unit:
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v /integration)
	CGO_ENABLED=0 $(GO) test -count=1 ./gpu/

# Each fuzz target runs briefly; the seed corpora run in `unit` too.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommand$$' -fuzztime $(FUZZTIME) ./raftstore
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeBatch$$' -fuzztime $(FUZZTIME) ./raftstore
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRunSpec$$' -fuzztime $(FUZZTIME) ./cmd/amld/internal/server
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeTargetSpec$$' -fuzztime $(FUZZTIME) ./cmd/amld/internal/server
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeJSONLikeEncodingJSON$$' -fuzztime $(FUZZTIME) ./cmd/amld/internal/server
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeJobYAML$$' -fuzztime $(FUZZTIME) ./cmd/amlctl
	$(GO) test -run '^$$' -fuzz '^FuzzAmlignore$$' -fuzztime $(FUZZTIME) ./cmd/amlctl
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeAttachRequest$$' -fuzztime $(FUZZTIME) ./cmd/amld/internal/server
	$(GO) test -run '^$$' -fuzz '^FuzzParseFailure$$' -fuzztime $(FUZZTIME) ./mpi
	$(GO) test -run '^$$' -fuzz '^FuzzOpenPeerMessage$$' -fuzztime $(FUZZTIME) ./cmd/amld/internal/server

integration: build images
	AMLD_BIN=$(BIN) $(GO) test -count=1 -timeout 20m -v ./integration/ 2>&1 | tee $(CURDIR)/.integration.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; exit $${PIPESTATUS[0]}

test: deps lint unit fuzz integration

demo: build
	@scripts/demo.sh

bench: build images
	$(GO) test -run '^$$' -bench . -benchtime 3x ./scheduler
	$(GO) test -run '^$$' -bench . -benchtime 3s ./raftstore
	$(GO) test -run '^$$' -bench . -benchtime 1x ./cmd/amld/internal/server
	AMLD_BIN=$(BIN) $(GO) test -run '^$$' -bench . -benchtime 1x ./integration/

clean:
	rm -rf $(BIN) .integration.log

# The real-GPU check (docs/gpu.md): build amld with cgo (NVML) into bin/gpu,
# copy bin/gpu and scripts/ to a machine with an NVIDIA GPU if this one has
# none, and run scripts/gpu-check.sh bin/gpu there.
gpu-check-bin:
	CGO_ENABLED=1 $(GO) build -ldflags "-s -w" -o $(BIN)/gpu/amld ./cmd/amld
	CGO_ENABLED=0 $(GO) build -ldflags "-s -w" -o $(BIN)/gpu/amlctl ./cmd/amlctl

gpu-check: gpu-check-bin
	scripts/gpu-check.sh $(BIN)/gpu
