SHELL := /bin/bash
# Clocker — one Docker Engine API in front of a fleet of Docker hosts.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/clocker/clocker/proxy.Version=$(VERSION)
# Hosts of `make run`: two local hosts (ARGS="--engine …" serves engines you have).
ARGS    ?= --local-hosts 2
# The machine's own engine, named explicitly: DOCKER_HOST may point at Clocker.
ENGINE  ?= unix:///var/run/docker.sock

export PATH := /usr/local/go/bin:$(PATH)

.PHONY: help setup build test test-unit test-e2e check fuzz bench run image clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: ## install and start what Clocker and its tests need (Docker engine, busybox-static, iproute2, …); root
	bash .ci/setup

build: ## build bin/clocker (static, CGO off)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/clocker ./cmd/clocker

test: setup check build test-unit test-e2e ## everything CI runs: checks, unit and end-to-end tests

test-unit: ## unit tests with the race detector
	$(GO) test -race -count=1 ./...

test-e2e: build ## end-to-end tests on three real dockerd engines in network namespaces (root)
	CLOCKER_E2E=1 $(GO) test -race -count=1 -timeout 60m -tags e2e -v ./internal/testfleet/ ./hosts/provision/ ./cmd/clocker/ 2>&1 | tee /tmp/clocker-e2e.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|panic|\s+\S+_test.go)' ; rc=$${PIPESTATUS[0]}; \
	  [ $$rc -eq 0 ] || bash .ci/failures /tmp/clocker-e2e.log; exit $$rc

check: ## go vet, gofmt, go mod tidy diff, import directions
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	@cp go.mod /tmp/clocker-go.mod.bak; cp go.sum /tmp/clocker-go.sum.bak; \
	  $(GO) mod tidy; \
	  if ! git diff --quiet -- go.mod go.sum; then echo "go mod tidy changes go.mod/go.sum:"; git diff -- go.mod go.sum; \
	    cp /tmp/clocker-go.mod.bak go.mod; cp /tmp/clocker-go.sum.bak go.sum; exit 1; fi
	bash .ci/importcheck

FUZZTIME ?= 10s
fuzz: ## run every fuzz target for FUZZTIME (default 10s) each; their seed corpora (testdata/fuzz) run in every go test
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench: build ## benchmarks (Go benchmarks; the e2e ones need root and real engines)
	$(GO) test -run '^$$' -bench . -benchmem ./...
	CLOCKER_E2E=1 $(GO) test -run '^$$' -bench . -benchtime 200x -tags e2e -timeout 30m ./cmd/clocker/

run: setup build ## serve the Docker API on tcp://127.0.0.1:2375 for a local fleet of two hosts (ARGS="--engine …" instead)
	./bin/clocker serve $(ARGS)

image: build ## a FROM scratch image holding bin/clocker, on the machine's engine (ENGINE=URL for another)
	docker -H $(ENGINE) build -t clocker:$(VERSION) -f Dockerfile .

clean: ## remove build output
	rm -rf bin
