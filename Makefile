# tasksync — developer entry points. `make help` lists them.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
BIN       := bin/tasksync
CACHE     := .cache
BENCH_TENANTS ?= 10000
BENCH_TREE    := $(CACHE)/bench/tree-$(BENCH_TENANTS)
FUZZTIME  ?= 60s

.PHONY: help build test lint bench fuzz run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/tasksync
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tasksync

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint ## lint, then every test with the race detector
	$(GO) test -race -count=1 ./...

$(BENCH_TREE):
	$(GO) run ./cmd/gentree -tenants $(BENCH_TENANTS) $@.tmp && mv $@.tmp $@

bench: build $(BENCH_TREE) ## benchmarks on the generated 10k-tenant tree (see docs/benchmarks.md)
	@echo "== floor: one goroutine yaml.v3-decoding every file (default GC, then GOGC=800 as validate runs)"
	TASKSYNC_BENCH_TREE=$(CURDIR)/$(BENCH_TREE) $(GO) test -run '^$$' -bench YAMLDecodeFloor -benchtime 3x ./reconciler/definitions/
	TASKSYNC_BENCH_TREE=$(CURDIR)/$(BENCH_TREE) GOGC=800 $(GO) test -run '^$$' -bench YAMLDecodeFloor -benchtime 3x ./reconciler/definitions/
	@echo "== tasksync validate $(BENCH_TREE), three runs"
	@for i in 1 2 3; do /usr/bin/time -f "  wall %e s, peak RSS %M KiB, user %U s, sys %S s" $(BIN) validate $(BENCH_TREE) >/dev/null; done
	@echo "== reconcile (run --once's work) against a throwaway PostgreSQL"
	TASKSYNC_BENCH_TREE=$(CURDIR)/$(BENCH_TREE) GOGC=800 $(GO) test -run '^$$' -bench Reconcile -benchtime 1x -timeout 60m ./reconciler/store/

fuzz: ## fuzz the loader for FUZZTIME (default 60s); crashers land in testdata/fuzz
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./reconciler/definitions/

run: build ## build and validate tasks.d/ (later: start everything)
	$(BIN) validate tasks.d

clean: ## remove build output and caches
	rm -rf bin $(CACHE)
