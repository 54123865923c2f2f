#!/usr/bin/env bash
# Builds an application's image and pushes it to the local registry.
#   scripts/build-app.sh path/to/app          (make build APP=path/to/app)
# Image: $REGISTRY/<directory basename>, tagged $TAG and `latest`.
# Environment:
#   REGISTRY         default localhost:5000
#   TAG              default: git short sha of the app's checkout, else a UTC timestamp
#   BUILDAH_ROOT, BUILDAH_RUNROOT   optional storage directories for the buildah fallback
# With a Docker engine: `docker compose build` when the directory has a compose file,
# otherwise `docker buildx build` (or `docker build`), then `docker push`.
# Without one (`docker info` fails): buildah (vfs storage, chroot isolation), which pushes
# over plain HTTP. The pushed references are printed on stdout, one a line.
set -euo pipefail

fail() {
  echo "build-app: $*" >&2
  exit 1
}

[[ $# -eq 1 && -n $1 ]] || fail "usage: scripts/build-app.sh path/to/app   (make build APP=path/to/app)"
[[ -d $1 ]] || fail "not a directory: $1"
app=$(cd "$1" && pwd)
registry=${REGISTRY:-localhost:5000}
# Repository names are lower case: [a-z0-9] separated by '.', '_' or '-'.
name=$(basename "$app" | tr '[:upper:]' '[:lower:]' | sed -e 's/[^a-z0-9._-]/-/g' -e 's/^[^a-z0-9]*//' -e 's/[^a-z0-9]*$//')
[[ -n $name ]] || fail "cannot derive an image name from directory $app"
tag=${TAG:-$(git -C "$app" rev-parse --short --verify -q HEAD 2>/dev/null || date -u +%Y%m%d%H%M%S)}
image="$registry/$name"

find_first() {
  local candidate
  for candidate in "$@"; do
    if [[ -f $app/$candidate ]]; then
      echo "$app/$candidate"
      return
    fi
  done
}
compose_file=$(find_first compose.yaml compose.yml docker-compose.yaml docker-compose.yml)
dockerfile=$(find_first Dockerfile Containerfile)

# Prints "<local image> <target repository>" for each compose service that has a build
# section: a single one becomes $image, several become $image-<service>.
compose_targets() {
  docker compose -f "$compose_file" config --format json | node -e '
    const config = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const built = Object.entries(config.services || {}).filter(([, s]) => s.build);
    for (const [service, s] of built) {
      const local = s.image || `${config.name}-${service}`;
      const target = built.length === 1 ? process.argv[1] : `${process.argv[1]}-${service}`;
      console.log(`${local} ${target}`);
    }' "$image"
}

push_with_docker() {
  local ref
  for ref in "$@"; do
    docker push "$ref" >&2
    echo "$ref"
  done
}

if docker info >/dev/null 2>&1; then
  if [[ -n $compose_file ]]; then
    docker compose -f "$compose_file" build >&2
    targets=$(compose_targets)
    [[ -n $targets ]] || fail "$compose_file has no service with a build section"
    while read -r local target; do
      docker tag "$local" "$target:$tag"
      docker tag "$local" "$target:latest"
      push_with_docker "$target:$tag" "$target:latest"
    done <<<"$targets"
  else
    [[ -n $dockerfile ]] || fail "no Dockerfile, Containerfile or compose file in $app"
    if docker buildx version >/dev/null 2>&1; then
      docker buildx build --load -f "$dockerfile" -t "$image:$tag" -t "$image:latest" "$app" >&2
    else
      docker build -f "$dockerfile" -t "$image:$tag" -t "$image:latest" "$app" >&2
    fi
    push_with_docker "$image:$tag" "$image:latest"
  fi
  exit 0
fi

command -v buildah >/dev/null 2>&1 ||
  fail "no Docker engine answers (docker info failed) and buildah is not installed: start Docker or install buildah"
[[ -n $dockerfile ]] || fail "without a Docker engine only a Dockerfile or Containerfile can be built; none in $app"
echo "build-app: no Docker engine answers; building with buildah" >&2
storage=(--storage-driver vfs)
[[ -z ${BUILDAH_ROOT:-} ]] || storage+=(--root "$BUILDAH_ROOT")
[[ -z ${BUILDAH_RUNROOT:-} ]] || storage+=(--runroot "$BUILDAH_RUNROOT")
buildah "${storage[@]}" bud --isolation chroot -f "$dockerfile" -t "$image:$tag" -t "$image:latest" "$app" >&2
for ref in "$image:$tag" "$image:latest"; do
  # Plain HTTP: the local registry has no TLS.
  buildah "${storage[@]}" push --tls-verify=false "$ref" "docker://$ref" >&2
  echo "$ref"
done
