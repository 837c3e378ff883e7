SHELL := /bin/bash
# skiff — the two commands a new user needs are `make run` and `make test`.
GO ?= go
BIN := bin/skiff
DATA_DIR ?= /var/lib/skiff
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build run test unit integration e2e fuzz vet deps clean

build:
	$(GO) build -o $(BIN) ./cmd/skiff

# Installs what is missing (Go modules), builds, and starts a cluster on
# the embedded defaults in the foreground. Ctrl-C stops it cleanly.
run: deps build
	@echo "starting skiff; in another shell:"
	@echo "    export KUBECONFIG=$(DATA_DIR)/admin.kubeconfig"
	@echo "    kubectl get namespaces"
	$(BIN) server --data-dir $(DATA_DIR) --disable-agent

deps:
	$(GO) mod download

# The whole suite: vet, unit tests, integration tests (in-process control
# plane on embedded etcd, client-go), end-to-end tests (the built binary
# driven by the stock kubectl), and a short bounded fuzz run.
test: deps vet unit integration e2e fuzz

vet:
	$(GO) vet ./...

unit:
	$(GO) test -count=1 -timeout 600s ./internal/... ./cmd/...

integration:
	$(GO) test -count=1 -timeout 900s ./test/integration/...

e2e:
	$(GO) test -count=1 -timeout 900s -v ./test/e2e/... 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|SKIP|panic)|_test.go' ; exit $${PIPESTATUS[0]}

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeDefaultValidate -fuzztime 20s -fuzzminimizetime 50x ./internal/apiserver/

clean:
	rm -rf bin
