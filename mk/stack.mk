# Pulumi stack targets; included by the Makefile (`include mk/stack.mk`), run from the repo root.
# Defines: stack-install stack-test stack-check up down preview build.

.PHONY: stack-install stack-test stack-check up down preview build

# `npm ci` only when node_modules is missing or older than package-lock.json.
node_modules/.package-lock.json: package-lock.json package.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

stack-install: node_modules/.package-lock.json

# The e2e tests run registry-server/dist/src/main.js (server-build) and real containerd,
# skopeo and buildah (test-tools); both targets are the Makefile's.
stack-test: stack-install server-build test-tools
	npx tsc --noEmit
	npx jest

# Reports each missing tool (docker, kind, pulumi, node) before anything is installed.
stack-check:
	scripts/stack.sh check

up: stack-check stack-install
	scripts/stack.sh up

down: stack-check stack-install
	scripts/stack.sh down

preview: stack-install
	scripts/stack.sh preview

# make build APP=path/to/app [REGISTRY=localhost:5000]
build:
	@test -n "$(APP)" || { echo "usage: make build APP=path/to/app" >&2; exit 2; }
	scripts/build-app.sh "$(APP)"
