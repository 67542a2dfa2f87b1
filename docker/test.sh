#!/usr/bin/env bash
# `make docker-test`: builds docker/Dockerfile with podman/buildah (no Docker engine, no registry) and proves the
# image serves: /health, a real chat completion, the image's HEALTHCHECK, a graceful stop, the DB on its volume.
#
# Base images are made locally: debootstrap (minbase bookworm) imported as localhost/debian:bookworm-slim, and a
# builder image on top of it with the packages the official swift image carries. The Swift toolchain (/opt/swift)
# and the Swift package mirror (/opt/swift-packages, via git's url.<mirror>.insteadOf) are bind-mounted into the
# build, so the Dockerfile is the very one a Docker engine builds with the official images.
#
# Env: MODEL (default models/SmolLM2-135M-Instruct.Q4_1.gguf), SWIFT_TOOLCHAIN (/opt/swift),
# SWIFT_PACKAGES (/opt/swift-packages), DOCKER_TEST_FETCH_MODEL=0 skips the FETCH_MODEL=1 variant,
# DOCKER_TEST_KEEP_IMAGES=0 removes the images afterwards (kept by default: they are the layer cache).
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
SWIFT_TOOLCHAIN=${SWIFT_TOOLCHAIN:-/opt/swift}
SWIFT_PACKAGES=${SWIFT_PACKAGES:-/opt/swift-packages}
FETCH_VARIANT=${DOCKER_TEST_FETCH_MODEL:-1}
KEEP_IMAGES=${DOCKER_TEST_KEEP_IMAGES:-1}
RUNTIME_BASE=localhost/debian:bookworm-slim
BUILDER_BASE=localhost/valet-swift-builder:local
IMAGE=localhost/valet:test
IMAGE_FETCHED=localhost/valet:test-fetched

started=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }
fail() { echo "docker-test: FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "run as root (podman builds here need it)"
[ -f "$MODEL" ] || fail "no model at $MODEL (make model)"
[ -x "$SWIFT_TOOLCHAIN/usr/bin/swift" ] || fail "no Swift toolchain at $SWIFT_TOOLCHAIN"
[ -d "$SWIFT_PACKAGES" ] || fail "no Swift package mirror at $SWIFT_PACKAGES"

step "tools"
missing=""
for p in podman buildah debootstrap runc curl; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# crun fails here (rlimits, hybrid cgroups) and container ulimits may not exceed the host's.
work=$(mktemp -d /tmp/valet-docker-test.XXXXXX)
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$work/containers.conf"

containers=()
volumes=()
cleanup() {
  local rc=$?
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  for v in "${volumes[@]}"; do podman volume rm -f "$v" >/dev/null 2>&1 || true; done
  if [ "$KEEP_IMAGES" = 0 ]; then podman rmi -f "$IMAGE" "$IMAGE_FETCHED" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT

step "runtime base image $RUNTIME_BASE"
if ! podman image exists "$RUNTIME_BASE"; then
  # The same Debian mirror the host's apt uses.
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
           | grep -oE '^(URIs:|deb) +[^ ]+/debian/?( |$)' | awk '{print $2}' | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs="$work/rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  # Same suites as the official image, so security updates reach the runtime stage's apt-get.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb ${mirror%/} bookworm main
deb ${mirror%/} bookworm-updates main
deb ${mirror%/}-security bookworm-security main
EOF
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$RUNTIME_BASE" >/dev/null
  rm -rf "$rootfs"
fi

step "builder base image $BUILDER_BASE"
if ! podman image exists "$BUILDER_BASE"; then
  # What the official swift:*-bookworm image adds to Debian, minus the toolchain itself (mounted at build time).
  cat >"$work/Containerfile.builder" <<EOF
FROM $RUNTIME_BASE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      binutils git gnupg2 libc6-dev libcurl4-openssl-dev libedit2 libgcc-12-dev libncurses-dev \
      libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-dev pkg-config tzdata unzip zlib1g-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && git config --system url.$SWIFT_PACKAGES/.insteadOf https://github.com/
ENV PATH=$SWIFT_TOOLCHAIN/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
  podman build --format docker --pull=never -t "$BUILDER_BASE" -f "$work/Containerfile.builder" "$work"
fi

build() {  # build TAG [extra build args...]
  local tag=$1; shift
  podman build --format docker --pull=never \
    --build-arg SWIFT_IMAGE="$BUILDER_BASE" --build-arg RUNTIME_IMAGE="$RUNTIME_BASE" \
    --build-arg VALET_REVISION="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" "$@" \
    --volume "$SWIFT_TOOLCHAIN:$SWIFT_TOOLCHAIN:ro" --volume "$SWIFT_PACKAGES:$SWIFT_PACKAGES:ro" \
    --ignorefile docker/Dockerfile.dockerignore -f docker/Dockerfile -t "$tag" .
}

step "build $IMAGE (model mounted at run time)"
build "$IMAGE"

step "image configuration"
inspect() { podman image inspect --format "$1" "$IMAGE"; }
[ "$(inspect '{{.Config.User}}')" = "10001:10001" ] || fail "image user is $(inspect '{{.Config.User}}')"
inspect '{{json .Config.Healthcheck}}' | grep -q '/health' || fail "HEALTHCHECK lost (needs --format docker)"
inspect '{{json .Config.ExposedPorts}}' | grep -q '8080/tcp' || fail "8080 not exposed"
inspect '{{json .Config.Volumes}}' | grep -q '/var/lib/valet' || fail "no DB volume"
[ "$(inspect '{{.Config.StopSignal}}')" = "SIGTERM" ] || fail "stop signal $(inspect '{{.Config.StopSignal}}')"
inspect '{{json .Config.Env}}' | grep -q 'VALET_HOST=0.0.0.0' || fail "VALET_HOST not set"
echo "image size: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
# Nothing from the Swift toolchain may be needed at run time.
if podman run --rm --entrypoint /usr/bin/ldd "$IMAGE" /usr/local/bin/valet | tee "$work/ldd" | grep -q 'not found'; then
  cat "$work/ldd"; fail "unresolved libraries"
fi
grep -qi swift "$work/ldd" && { cat "$work/ldd"; fail "links a Swift runtime library"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

serve_and_check() {  # serve_and_check IMAGE NAME [podman run args...]
  local image=$1 name=$2; shift 2
  local port; port=$(free_port)
  local volume="$name-data"
  containers+=("$name"); volumes+=("$volume")
  podman volume create "$volume" >/dev/null
  podman run -d --name "$name" -p "127.0.0.1:$port:8080" -v "$volume:/var/lib/valet" "$@" "$image" >/dev/null
  local url="http://127.0.0.1:$port"

  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "$url/health" 2>/dev/null && break
    [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] \
      || { podman logs "$name" | tail -30; fail "$name exited before /health answered"; }
    sleep 0.5
  done
  curl -fsS "$url/health" | grep -q '"ok"' || { podman logs "$name" | tail -30; fail "$name /health"; }
  echo "$name: /health ok after $(( $(date +%s) - started ))s total"

  local model
  model=$(curl -fsS "$url/v1/models" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])') \
    || fail "$name /v1/models"
  curl -sS "$url/v1/chat/completions" -H 'Content-Type: application/json' -o "$work/chat.json" -w '%{http_code}' \
    -d '{"model":"'"$model"'","messages":[{"role":"user","content":"Say hello."}],"max_tokens":8,"temperature":0}' \
    >"$work/chat.status" || fail "$name chat completion: no answer"
  [ "$(cat "$work/chat.status")" = 200 ] \
    || { podman logs "$name" | tail -30; fail "$name chat completion: $(cat "$work/chat.status") $(cat "$work/chat.json")"; }
  python3 - "$work/chat.json" <<'EOF' || fail "$name chat completion body"
import json, sys
body = json.load(open(sys.argv[1]))
choice = body["choices"][0]
assert body["object"] == "chat.completion" and choice["message"]["role"] == "assistant", body
assert choice["finish_reason"] in ("stop", "length") and body["usage"]["completion_tokens"] > 0, body
print("chat completion:", json.dumps(choice["message"]["content"]), "usage", body["usage"])
EOF
  curl -fsS "$url/metrics" >"$work/metrics.txt" || fail "$name /metrics"
  grep -q '^valet_request_success_total{finished_reason="length"} 1$' "$work/metrics.txt" \
    || fail "$name /metrics does not count the completion: $(grep '^valet_request_success_total' "$work/metrics.txt")"

  podman healthcheck run "$name" || fail "$name: podman healthcheck run"
  [ "$(podman inspect --format '{{.State.Health.Status}}' "$name")" = healthy ] || fail "$name not healthy"
  [ "$(podman exec "$name" id -u)" = 10001 ] || fail "$name runs as $(podman exec "$name" id -u)"

  # SIGTERM (the image's stop signal) must end it cleanly well inside the timeout, record flushed.
  local t0; t0=$(date +%s)
  podman stop -t 60 "$name" >/dev/null
  local code; code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
  [ "$code" = 0 ] || { podman logs "$name" | tail -30; fail "$name exited $code on SIGTERM"; }
  echo "$name: stopped with exit 0 in $(( $(date +%s) - t0 ))s"
  podman run --rm --entrypoint /bin/ls -v "$volume:/var/lib/valet" "$image" /var/lib/valet | grep -q '^valet.sqlite$' \
    || fail "$name: no valet.sqlite on the volume"
}

step "serve $IMAGE with the model mounted read-only"
model_dir=$(cd "$(dirname "$MODEL")" && pwd)
serve_and_check "$IMAGE" "valet-test-$$" -v "$model_dir:/models:ro" \
  -e VALET_MODEL="/models/$(basename "$MODEL")"

if [ "$FETCH_VARIANT" = 1 ]; then
  step "build $IMAGE_FETCHED (FETCH_MODEL=1, builder stage from cache)"
  # This machine reaches PyPI through a TLS-intercepting proxy whose CA only the host's bundle holds.
  secret=()
  [ -s /etc/ssl/certs/ca-certificates.crt ] && secret=(--secret id=ca_bundle,src=/etc/ssl/certs/ca-certificates.crt)
  build "$IMAGE_FETCHED" --build-arg FETCH_MODEL=1 "${secret[@]}"
  step "serve $IMAGE_FETCHED with the model baked in"
  serve_and_check "$IMAGE_FETCHED" "valet-test-fetched-$$"
fi

step "docker-test passed"
