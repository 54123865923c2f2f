#!/usr/bin/env bash
# Installs, from Debian, the real clients the end-to-end tests drive (skopeo, buildah,
# containerd's ctr) and the reference registry the benchmark compares with (docker-registry).
# Does nothing when they are all present, so repeated runs stay fast.
set -euo pipefail
declare -A pkg=([skopeo]=skopeo [buildah]=buildah [containerd]=containerd [ctr]=containerd [docker-registry]=docker-registry)
missing=()
for tool in "${!pkg[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${pkg[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "missing test tools: ${missing[*]} (install them: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "installing test tools: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
