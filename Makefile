# ebb: see README.md. Every target works on a fresh machine: services are
# found or started by scripts/services.sh.
SHELL := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO ?= go

.PHONY: build test demo bench vet fmt

build:
	$(GO) build -o bin/ ./cmd/...

test:
	eval "$$(scripts/services.sh)" && $(GO) test -race -count=1 -timeout 12m ./...

demo: build
	eval "$$(scripts/services.sh)" && bin/demo -bin bin

bench:
	eval "$$(scripts/services.sh)" && $(GO) test -run '^$$' -bench . -benchmem ./...

vet:
	gofmt -l . | (! grep .) && $(GO) vet ./...
