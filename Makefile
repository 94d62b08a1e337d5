# amld — see README.md. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
GO ?= go
BIN := $(CURDIR)/bin
export GOFLAGS ?= -mod=mod
PKGS := ./...
FUZZTIME ?= 10s

.PHONY: all build test unit integration fuzz lint deps demo bench clean

all: build

build:
	$(GO) build -o $(BIN)/amld ./cmd/amld
	$(GO) build -o $(BIN)/amlctl ./cmd/amlctl

# deps installs what the tests need on a fresh Debian machine.
deps:
	@scripts/deps.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 15m $$($(GO) list ./... | grep -v /integration)

# Each fuzz target runs briefly; the seed corpora run in `unit` too.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCommand$$' -fuzztime $(FUZZTIME) ./raftstore
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRunSpec$$' -fuzztime $(FUZZTIME) ./cmd/amld/internal/server
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeTargetSpec$$' -fuzztime $(FUZZTIME) ./cmd/amld/internal/server
	$(GO) test -run '^$$' -fuzz '^FuzzOpenPeerMessage$$' -fuzztime $(FUZZTIME) ./cmd/amld/internal/server

integration: build
	AMLD_BIN=$(BIN) $(GO) test -count=1 -timeout 20m -v ./integration/ 2>&1 | tee $(CURDIR)/.integration.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic)|_test.go' ; exit $${PIPESTATUS[0]}

test: deps lint unit fuzz integration

demo: build
	@scripts/demo.sh

bench: build
	$(GO) test -run '^$$' -bench . -benchtime 3x ./scheduler
	$(GO) test -run '^$$' -bench . -benchtime 1x ./cmd/amld/internal/server
	AMLD_BIN=$(BIN) $(GO) test -run '^$$' -bench . -benchtime 1x ./integration/

clean:
	rm -rf $(BIN) .integration.log
