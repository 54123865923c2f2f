# The two commands a newcomer needs: `make start` (the registry on 127.0.0.1:5000, storage in
# ./data, no cluster, no Docker) and `make test` (installs what the tests need, runs them all).
SHELL := /bin/bash
.DEFAULT_GOAL := help

SERVER := registry-server
REGISTRY_HTTP_ADDR ?= 127.0.0.1:5000
REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY ?= $(CURDIR)/data
export REGISTRY_HTTP_ADDR REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY

.PHONY: help start test server-install server-build server-test test-tools bench gc fsck

help:
	@echo "make start              run the registry on $(REGISTRY_HTTP_ADDR), storage in $(REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY)"
	@echo "make test               install test tools and dependencies, run every test"
	@echo "make up / make down     create / destroy the kind cluster with the registry (Pulumi, local state)"
	@echo "make build APP=dir      build an app's image and push it to localhost:5000"
	@echo "make gc [DRY_RUN=1]     collect garbage in the store make start uses (while it runs)"
	@echo "make fsck [REPAIR=1]    check (and repair) that store"
	@echo "make bench              benchmark against CNCF distribution (docker-registry), when installed"

# The same Node flags as the image (registry-server/Dockerfile).
NODE_FLAGS := --max-old-space-size=160 --max-semi-space-size=1
# glibc malloc settings of the image (see registry-server/Dockerfile): less memory kept after bursts.
MALLOC_ENV := MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072

start: server-build
	cd $(SERVER) && exec env $(MALLOC_ENV) node $(NODE_FLAGS) dist/src/main.js serve

# Garbage collection of the store `make start` uses, while it keeps running (DRY_RUN=1: report only).
gc: server-build
	cd $(SERVER) && node dist/src/main.js gc $(if $(DRY_RUN),--dry-run)

# Check the store `make start` uses (REPAIR=1: quarantine corrupt blobs, drop dangling links).
fsck: server-build
	cd $(SERVER) && node dist/src/main.js fsck $(if $(REPAIR),--repair)

# npm ci only when the lock file changed since the last install.
server-install: $(SERVER)/node_modules/.install-stamp
$(SERVER)/node_modules/.install-stamp: $(SERVER)/package-lock.json
	cd $(SERVER) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

server-build: server-install
	cd $(SERVER) && rm -rf dist && npx tsc -p tsconfig.json

# Real clients for the end-to-end tests and the reference registry for benchmarks (Debian).
test-tools:
	@scripts/install-test-tools.sh

server-test: test-tools server-build
	cd $(SERVER) && node --test --test-concurrency=2 $$(find dist/test -name "*.test.js" | sort)

test: server-test stack-test

bench: server-build
	cd $(SERVER) && node dist/bench/bench.js $(BENCH_ARGS)

include mk/stack.mk

