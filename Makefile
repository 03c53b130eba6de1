# ebb: see README.md. Every target works on a fresh machine: services are
# found or started by scripts/services.sh.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go

.PHONY: build test demo bench bench-quick microbench vet fmt asynqmon fuzz

build:
	$(GO) build -o bin/ ./cmd/...

test:
	eval "$$(scripts/services.sh)" && $(GO) test -race -count=1 -timeout 12m ./...

# DEMO_DB names the database the demo creates and seeds (default ebb_demo);
# DATABASE_URL and REDIS_URL point it at other servers, as for every target.
DEMO_DB ?= ebb_demo
DEMO_ROWS ?= 1000000
demo: build
	eval "$$(scripts/services.sh)" && bin/demo -bin bin -db '$(DEMO_DB)' -rows $(DEMO_ROWS)

# The open-loop benchmark (bench/): ebb against the hand-written ways of
# filling a table, under live traffic, on a throwaway PostgreSQL cluster and
# redis-server of its own (or BENCH_DATABASE_URL). ROWS sets the table size.
ROWS ?= 2000000
bench: build
	$(GO) run ./bench -rows $(ROWS)

bench-quick: build
	$(GO) run ./bench -quick

# Go micro-benchmarks (range slicing, the batch sizer, the guard's check,
# Redis commands per batch) against the local services.
microbench:
	eval "$$(scripts/services.sh)" && $(GO) test -run '^$$' -bench . -benchmem ./...

vet:
	gofmt -l . | (! grep .) && $(GO) vet ./...

# Fuzz each parser of outside input for FUZZTIME (the job file, a range
# task's body, integer range slicing, a pause key's value). Their seed
# corpora (the f.Add calls and testdata/fuzz/) run in make test; what the
# fuzzer finds lands in testdata/fuzz/ too: commit it with the fix.
FUZZTIME ?= 30s
FUZZ_TARGETS := FuzzParse:./internal/jobspec FuzzPayload:./internal/rangetask FuzzSlice:./internal/keyspace FuzzFlagOn:./internal/pause
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} ($${t#*:}) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t%%:*}$$" -fuzztime $(FUZZTIME) "$${t#*:}"; \
	done

# Asynqmon, asynq's web UI, standalone on the fleet's Redis: the same UI
# `enqueuer ui` embeds under /monitoring/. It listens on ALL interfaces (it has
# no bind flag) and has no authentication: run it on a trusted machine, or use
# `enqueuer ui`, which binds to loopback and can require a token.
ASYNQMON_PORT ?= 8089
asynqmon:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/hibiken/asynqmon/cmd/asynqmon@v0.7.2
	eval "$$(scripts/services.sh)" && bin/asynqmon --port $(ASYNQMON_PORT) --redis-url "$$REDIS_URL"
