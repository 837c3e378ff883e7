SHELL := /bin/bash
# skiff — the two commands a new user needs are `make run` and `make test`.
GO ?= go
BIN := bin/skiff
DATA_DIR ?= /var/lib/skiff
export PATH := $(PATH):/usr/local/go/bin

.PHONY: build run test unit integration e2e fuzz vet deps host-deps clean images conformance

# -trimpath and stripped symbols: 98 MB (stack traces and pprof keep their
# function names and lines).
build:
	$(GO) build -trimpath -ldflags '-s -w' -o $(BIN) ./cmd/skiff

# Installs what is missing (Go modules), builds skiff and the images in
# build/images, puts the images where the server imports them at start, and
# starts a one-node cluster on the embedded defaults in the foreground:
# control plane, scheduler, controllers and the node agent with its own
# containerd (needs root, containerd, runc and the CNI plugins; see README).
# Ctrl-C stops it cleanly; running containers are adopted on the next start.
run: host-deps deps build images
	mkdir -p $(DATA_DIR)/images && cp build/images/*.tar $(DATA_DIR)/images/
	@echo "starting skiff; in another shell:"
	@echo "    export KUBECONFIG=$(DATA_DIR)/admin.kubeconfig"
	@echo "    kubectl run hello --image=skiff.io/test/server:v1 && kubectl get pods -o wide"
	$(BIN) server --data-dir $(DATA_DIR)

deps:
	$(GO) mod download

# What the node agent needs from the host (Debian's packages): containerd,
# runc and the CNI plugins for pods, nftables for services, busybox-static
# for the busybox image, docker-registry (the Distribution registry) for the
# e2e test of image pulls. Installed only when missing.
HOST_PKGS := containerd runc containernetworking-plugins iptables nftables busybox-static docker-registry iproute2
host-deps:
	@if ! command -v containerd >/dev/null || ! command -v runc >/dev/null || [ ! -x /usr/lib/cni/bridge ] \
	    || [ ! -x /bin/busybox ] || ! command -v nft >/dev/null || [ ! -x /usr/bin/docker-registry ] || ! command -v ip >/dev/null; then \
	  echo "installing $(HOST_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(HOST_PKGS) >/dev/null; \
	fi

# The whole suite: vet, unit tests, integration tests (in-process control
# plane on embedded etcd, client-go), end-to-end tests (the built binary
# driven by the stock kubectl), and a short bounded fuzz run.
test: host-deps deps vet unit integration e2e fuzz

vet:
	$(GO) vet ./...

# crwatch (test/clients/crwatch), the controller-runtime operator the e2e
# tests run, is a module of its own: its webhook handlers' tests run here.
unit:
	$(GO) test -count=1 -timeout 600s ./internal/... ./cmd/... ./test/conformance/
	cd test/clients/crwatch && GOWORK=off $(GO) test -count=1 -timeout 300s ./...

integration:
	$(GO) test -count=1 -timeout 900s ./test/integration/...

e2e:
	$(GO) test -count=1 -timeout 1500s -v ./test/e2e/... 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok|SKIP|panic)|_test.go' ; exit $${PIPESTATUS[0]}

# A count, not a duration: Go 1.26's fuzz coordinator can report a spurious
# "context deadline exceeded" when a -fuzztime duration ends (go.dev/issue/75804).
# One target per run (go test fuzzes one at a time): object bodies (JSON,
# YAML, protobuf), patches (JSON, merge, strategic merge) and apply
# bodies (YAML, CBOR) against stored objects, and request metadata (path,
# query, headers, DeleteOptions). About a minute in all on 2 cores.
FUZZ = $(GO) test -run '^$$' -fuzzminimizetime 50x ./internal/apiserver/ -fuzz
fuzz:
	$(FUZZ) '^FuzzDecodeDefaultValidate$$' -fuzztime 6000x
	$(FUZZ) '^FuzzDecodeProtobuf$$' -fuzztime 3000x
	$(FUZZ) '^FuzzPatch$$' -fuzztime 4000x
	$(FUZZ) '^FuzzApply$$' -fuzztime 4000x
	$(FUZZ) '^FuzzRequest$$' -fuzztime 2000x
	$(GO) test -run '^$$' -fuzzminimizetime 50x -fuzz '^FuzzParse$$' -fuzztime 20000x ./internal/resourcemetrics/

# The container images tests and `make run` use, as OCI tarballs in
# build/images (pause, busybox from busybox-static, the test server v1/v2);
# `skiff image import` loads them into the node's containerd.
images:
	$(GO) run ./test/images/build -out build/images

# Upstream's conformance suite (e2e.test from the k8s.io/kubernetes module
# named in test/conformance/suite/go.mod, focus [Conformance], skipping
# [Serial] and [Disruptive]) against a two-node cluster in network
# namespaces; writes docs/conformance.md. Not part of `make test`: it runs
# for hours. The built suite is cached under ~/.cache/skiff/conformance.
# CONFORMANCE_FOCUS, CONFORMANCE_SKIP, CONFORMANCE_PROCS (default 8) and
# CONFORMANCE_REPORT change the selection, the parallelism and the output;
# CONFORMANCE_TIMEOUT (default 8h) bounds the run (tests not reached are
# reported as not run).
# dig, getent, curl, nc, socat ... go into the agnhost image from the host;
# gcc, make, bzip2 and glibc's static libraries build upstream's busybox.
CONFORMANCE_PKGS := bind9-dnsutils netcat-openbsd socat curl gcc make bzip2 libc6-dev
conformance: host-deps deps
	@if ! command -v dig >/dev/null || ! command -v nc.openbsd >/dev/null || ! command -v socat >/dev/null || ! command -v curl >/dev/null || \
	  ! command -v gcc >/dev/null || ! command -v make >/dev/null || ! command -v bzip2 >/dev/null || ! dpkg -s libc6-dev >/dev/null 2>&1; then \
	  echo "installing $(CONFORMANCE_PKGS)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(CONFORMANCE_PKGS) >/dev/null; \
	fi
	$(GO) test -tags conformance -count=1 -timeout 10h -v -run '^TestConformance$$' ./test/conformance/

clean:
	rm -rf bin build
