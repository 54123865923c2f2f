#!/usr/bin/env bash
# Runs the Pulumi stack with a local file state backend: no Pulumi Cloud login needed.
#   scripts/stack.sh up|down|preview [extra pulumi args...]
#   scripts/stack.sh check      only the prerequisite checks
# Environment:
#   STACK                      stack name (default: dev)
#   PULUMI_BACKEND_URL         default: file://<repo>/.pulumi-state
#   PULUMI_CONFIG_PASSPHRASE   default: "kind-local-registry-dev" (the dev stack holds no
#                              real secret besides the kubeconfig of a local cluster)
set -euo pipefail

usage() {
  echo "usage: scripts/stack.sh up|down|preview|check [pulumi args...]" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
action=$1
shift
case "$action" in
  up | down | preview | check) ;;
  *) usage ;;
esac

# Pure bash up to here, so that the check works on a bare PATH.
missing=0
require() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "missing: $1 is not installed ($2)" >&2
    missing=1
  fi
}
require docker "https://docs.docker.com/engine/install/"
require kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
require pulumi "https://www.pulumi.com/docs/iac/download-install/"
require node "Node.js 20 or later: https://nodejs.org/"
if [[ $missing -ne 0 ]]; then
  exit 1
fi
if [[ $action != preview ]] && ! docker info >/dev/null 2>&1; then
  echo "docker is installed but no Docker engine answers (is Docker running?)" >&2
  exit 1
fi
if [[ $action == check ]]; then
  echo "docker, kind, pulumi and node are installed; Docker answers"
  exit 0
fi

self=${BASH_SOURCE[0]}
[[ $self == */* ]] || self=./$self
root=$(cd "${self%/*}/.." && pwd)
cd "$root"
if [[ -z ${PULUMI_BACKEND_URL:-} ]]; then
  mkdir -p "$root/.pulumi-state"
  export PULUMI_BACKEND_URL="file://$root/.pulumi-state"
fi
if [[ -z ${PULUMI_CONFIG_PASSPHRASE+set} && -z ${PULUMI_CONFIG_PASSPHRASE_FILE:-} ]]; then
  export PULUMI_CONFIG_PASSPHRASE="kind-local-registry-dev"
fi
export PULUMI_SKIP_UPDATE_CHECK=true
stack=${STACK:-dev}

pulumi stack select --create "$stack" --non-interactive
case "$action" in
  up) pulumi up --yes --non-interactive --stack "$stack" "$@" ;;
  down) pulumi destroy --yes --non-interactive --stack "$stack" "$@" ;;
  preview) pulumi preview --non-interactive --stack "$stack" "$@" ;;
esac
