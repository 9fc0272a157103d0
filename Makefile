# tasksync — developer entry points. `make help` lists them.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
BIN       := bin/tasksync
CACHE     := .cache
BENCH_TENANTS ?= 10000
BENCH_TREE    := $(CACHE)/bench/tree-$(BENCH_TENANTS)
FUZZTIME  ?= 60s
# The daemon benchmark's size: make bench BENCH_DAEMON_TENANTS=10000 for
# 100,000 definitions; BENCH_DAEMON_REG_WAIT bounds its wait for the first
# registration of every app (the dev server needs hours for 10,000).
BENCH_DAEMON_TENANTS ?= 1000
BENCH_DAEMON_REG_WAIT ?= 30m

.PHONY: help build test lint bench fuzz run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/tasksync
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/tasksync

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

test: lint bin/inngest ajv ## lint, then every test with the race detector (builds the Inngest dev server once)
	$(GO) test -race -count=1 ./...
	@echo "== the deployment examples (examples/deploy/check, a module of its own)"
	cd examples/deploy/check && $(GO) vet ./... && $(GO) test -count=1 ./...

# ajv-cli, the JSON Schema validator that checks the published schema
# independently of tasksync's own (schema/ajv_test.go), from the npm
# registry into the ignored cache.
AJV := $(CACHE)/ajv/node_modules/.bin/ajv

.PHONY: ajv
ajv: $(AJV) ## install ajv-cli and ajv-formats into .cache/ajv (npm)

$(AJV):
	@mkdir -p $(CACHE)/ajv
	npm install --no-audit --no-fund --prefix $(CACHE)/ajv ajv-cli@5 ajv-formats@3

$(BENCH_TREE):
	$(GO) run ./cmd/gentree -tenants $(BENCH_TENANTS) $@.tmp && mv $@.tmp $@

bench: build bin/inngest $(BENCH_TREE) ## benchmarks on the generated 10k-tenant tree (see docs/benchmarks.md)
	@echo "== floor: one goroutine yaml.v3-decoding every file (default GC, then GOGC=800 as validate runs)"
	TASKSYNC_BENCH_TREE=$(CURDIR)/$(BENCH_TREE) $(GO) test -run '^$$' -bench YAMLDecodeFloor -benchtime 3x ./reconciler/definitions/
	TASKSYNC_BENCH_TREE=$(CURDIR)/$(BENCH_TREE) GOGC=800 $(GO) test -run '^$$' -bench YAMLDecodeFloor -benchtime 3x ./reconciler/definitions/
	@echo "== tasksync validate $(BENCH_TREE), three runs"
	@for i in 1 2 3; do /usr/bin/time -f "  wall %e s, peak RSS %M KiB, user %U s, sys %S s" $(BIN) validate $(BENCH_TREE) >/dev/null; done
	@echo "== reconcile (run --once's work) against a throwaway PostgreSQL"
	TASKSYNC_BENCH_TREE=$(CURDIR)/$(BENCH_TREE) GOGC=800 $(GO) test -run '^$$' -bench Reconcile -benchtime 1x -timeout 60m ./reconciler/store/
	@echo "== Inngest sync of one tenant (10 and 500 functions) against the dev server"
	$(GO) test -run '^$$' -bench Sync -benchtime 20x ./reconciler/inngest/
	@echo "== memory per tenant: the apps (10,000 tenants) and the loader's kept results"
	$(GO) test -run '^$$' -bench RegistryMemory -benchtime 1x ./reconciler/inngest/
	TASKSYNC_BENCH_TENANTS=10000 $(GO) test -run '^$$' -bench RetainedHeap -benchtime 1x ./reconciler/definitions/
	@echo "== executors: api_call to a loopback server, a trivial sandboxed script"
	$(GO) test -run '^$$' -bench . -benchtime 200x ./reconciler/executor/
	@echo "== the daemon on $(BENCH_DAEMON_TENANTS) tenants x 10 definitions: cold start, first registration, edit to live, restart, idle CPU, RSS, failover"
	TASKSYNC_BENCH_DAEMON_TENANTS=$(BENCH_DAEMON_TENANTS) TASKSYNC_BENCH_DAEMON_REG_WAIT=$(BENCH_DAEMON_REG_WAIT) $(GO) test -run '^$$' -bench Daemon -benchtime 1x -timeout 120m ./cmd/tasksync/

fuzz: ## fuzz the loader for FUZZTIME (default 60s); crashers land in testdata/fuzz
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./reconciler/definitions/

# make run's ports (docs/development.md): set them when another make run
# holds these, e.g. make run PG_PORT=55532 INNGEST_PORT=8388 LISTEN=127.0.0.1:8180.
# DEVRUN_FLAGS passes more (bin/devrun -h lists them).
PG_PORT      ?= 55432
INNGEST_PORT ?= 8288
LISTEN       ?= 127.0.0.1:8080
DEVRUN_FLAGS ?=

run: build bin/inngest ## Postgres (data in .run/), the Inngest dev server and tasksync on tasks.d/; Ctrl-C stops all
	$(BIN) validate tasks.d
	$(GO) build -o bin/devrun ./cmd/devrun
	bin/devrun -pg-port $(PG_PORT) -inngest-port $(INNGEST_PORT) -listen $(LISTEN) $(DEVRUN_FLAGS)

clean: ## remove build output and caches
	rm -rf bin $(CACHE)

# The Inngest dev server, built from its Go module in an ignored cache
# (docs/inngest.md, "The dev server"): go install refuses a
# module with replace directives, so a build module of its own repeats the
# server's replace directive and points at a writable copy of the module
# with the one file its docs embed needs. The published module holds the
# web UI's sources, not its built assets: inngest-ui builds them first, as
# the server's own Makefile does (pnpm from the npm registry, Node.js 20.19
# or later). Everything lands in $(CACHE), so a warm make test builds
# nothing. An inngest already on PATH is used instead.
INNGEST_VERSION ?= v1.44.0
INNGEST_BUILD   := $(CACHE)/inngest-$(INNGEST_VERSION)
INNGEST_SRC     := $(INNGEST_BUILD)/src
INNGEST_UI_APP  := $(INNGEST_SRC)/ui/apps/dev-server-ui
PNPM_VERSION    ?= 10.18.2
PNPM_DIR        := $(CACHE)/pnpm-$(PNPM_VERSION)
PNPM            := $(CURDIR)/$(PNPM_DIR)/node_modules/.bin/pnpm
# pnpm and npm keep their store, cache and state under $(CACHE) too;
# HUSKY=0: the UI's prepare step installs git hooks, and the copy is no
# git repository.
NODE_ENV_VARS   := XDG_CACHE_HOME=$(CURDIR)/$(CACHE)/xdg-cache XDG_DATA_HOME=$(CURDIR)/$(CACHE)/xdg-data \
	XDG_STATE_HOME=$(CURDIR)/$(CACHE)/xdg-state npm_config_cache=$(CURDIR)/$(CACHE)/npm \
	npm_config_update_notifier=false CI=true HUSKY=0
# A bin/inngest older than this stamp was built by an older recipe (one
# without the UI serves empty pages): bump the number to rebuild it.
INNGEST_RECIPE  := $(INNGEST_BUILD)/recipe-2

.PHONY: inngest
inngest: bin/inngest ## build (or link) the Inngest dev server, with its web UI, into bin/inngest

$(INNGEST_RECIPE):
	@mkdir -p $(INNGEST_BUILD) && touch $@

bin/inngest: $(INNGEST_RECIPE)
	@mkdir -p bin
	@if command -v inngest >/dev/null 2>&1; then \
		ln -sf "$$(command -v inngest)" bin/inngest; echo "using $$(command -v inngest)"; \
	else $(MAKE) --no-print-directory inngest-build; fi

.PHONY: inngest-src
inngest-src:
	@set -e; \
	if [ ! -d $(INNGEST_SRC) ]; then \
		src=$$($(GO) mod download -json github.com/inngest/inngest@$(INNGEST_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
		test -n "$$src" || { echo "cannot download github.com/inngest/inngest@$(INNGEST_VERSION)"; exit 1; }; \
		mkdir -p $(INNGEST_BUILD); rm -rf $(INNGEST_SRC).tmp; \
		cp -r "$$src" $(INNGEST_SRC).tmp && chmod -R u+w $(INNGEST_SRC).tmp && \
		mkdir -p $(INNGEST_SRC).tmp/internal/embeddocs/website/pages/docs && \
		echo "# Inngest docs are not part of this build" > $(INNGEST_SRC).tmp/internal/embeddocs/website/pages/docs/index.mdx && \
		mv $(INNGEST_SRC).tmp $(INNGEST_SRC); \
	fi

# The UI's own build script also runs tsc --noEmit, which type-checks the
# dashboard app that the filtered install leaves out: it is skipped.
.PHONY: inngest-ui
inngest-ui: inngest-src
	@set -e; \
	if [ -f $(INNGEST_SRC)/pkg/devserver/static/client/_shell.html ]; then exit 0; fi; \
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
		echo "the Inngest dev server's web UI needs Node.js 20.19 or later and npm (Debian: apt-get install nodejs npm; .ci/run checks this)"; exit 1; }; \
	node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' || { \
		echo "the Inngest dev server's web UI needs Node.js 20.19 or later (vite 8); this is $$(node --version)"; exit 1; }; \
	echo "building the dev server UI (pnpm $(PNPM_VERSION), node $$(node --version))"; \
	if [ ! -x $(PNPM) ]; then \
		mkdir -p $(PNPM_DIR) && env $(NODE_ENV_VARS) npm install --prefix $(PNPM_DIR) --no-audit --no-fund -E pnpm@$(PNPM_VERSION); \
	fi; \
	cd $(INNGEST_SRC)/ui && env $(NODE_ENV_VARS) $(PNPM) install --frozen-lockfile --filter '@inngest/dev-server-ui...'; \
	cd $(CURDIR)/$(INNGEST_UI_APP) && env $(NODE_ENV_VARS) $(PNPM) exec graphql-codegen --config codegen.ts; \
	cd $(CURDIR)/$(INNGEST_UI_APP) && rm -rf dist && env $(NODE_ENV_VARS) $(PNPM) exec vite build --mode=production; \
	cd $(CURDIR) && test -f $(INNGEST_UI_APP)/dist/client/_shell.html || { echo "vite build left no dist/client/_shell.html"; exit 1; }; \
	cp -r $(INNGEST_UI_APP)/dist/. $(INNGEST_SRC)/pkg/devserver/static/; \
	echo "built the dev server UI into $(INNGEST_SRC)/pkg/devserver/static"

.PHONY: inngest-build
inngest-build: inngest-ui
	@set -e; \
	mkdir -p $(INNGEST_BUILD)/build; \
	printf '%s\n' 'module tasksync.invalid/inngest-build' '' 'go 1.26' '' \
		'require github.com/inngest/inngest $(INNGEST_VERSION)' '' \
		'replace github.com/inngest/inngest => ../src' '' \
		'replace github.com/tencentcloud/tencentcloud-sdk-go v3.0.82+incompatible => github.com/tencentcloud/tencentcloud-sdk-go v1.0.191' \
		> $(INNGEST_BUILD)/build/go.mod; \
	test -f $(INNGEST_BUILD)/build/go.sum || cp $(INNGEST_SRC)/go.sum $(INNGEST_BUILD)/build/go.sum; \
	cd $(INNGEST_BUILD)/build && GOFLAGS=-mod=mod $(GO) build -trimpath -o $(CURDIR)/bin/inngest.tmp github.com/inngest/inngest/cmd; \
	cd $(CURDIR) && mv bin/inngest.tmp bin/inngest; \
	echo "built bin/inngest ($(INNGEST_VERSION), with its web UI)"
