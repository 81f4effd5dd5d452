#!/usr/bin/env bash
# Smoke test for scripts/container/env.sh: with the environment it starts, the `docker` CLI
# builds a tiny image FROM debian:bookworm-slim (apt-get inside the build), logs in to the
# local registry with --password-stdin, pushes, and the pushed manifest digest is compared
# three ways (push output, RepoDigests, the registry's Docker-Content-Digest). Then containers
# are run (plain, podman remote with ulimits, --network host reaching a server on 127.0.0.1,
# --read-only with a writable volume) and the CLI's "daemon not running" error is checked.
#
# Usage: scripts/container/smoke.sh [STATE_DIR]   (default: a new temporary directory)
# Ends with "N passed, N failed"; exits non-zero if anything failed.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OWN_STATE=0
if [[ -n ${1:-} ]]; then STATE=$1; else
  STATE=$(mktemp -d /tmp/lew-container-smoke.XXXXXX)
  OWN_STATE=1
fi
WORK=$(mktemp -d /tmp/lew-container-smoke-work.XXXXXX)
HTTP_PID=
PASSED=0
FAILED=0

cleanup() {
  [[ -n $HTTP_PID ]] && kill "$HTTP_PID" 2>/dev/null
  "$HERE/env.sh" stop "$STATE" || true
  rm -rf "$WORK"
  if [[ $OWN_STATE == 1 ]]; then rm -rf "$STATE"; fi
}
trap cleanup EXIT

ok() {
  PASSED=$((PASSED + 1))
  printf 'ok    %s\n' "$*"
}
fail() {
  FAILED=$((FAILED + 1))
  printf 'FAIL  %s\n' "$*"
}
info() { printf '      %s\n' "$*"; }
check() { # DESCRIPTION COMMAND...: ok if the command succeeds
  local what=$1
  shift
  if "$@" >"$WORK/out" 2>&1; then ok "$what"; else
    fail "$what"
    sed 's/^/      | /' "$WORK/out" | tail -n 15
  fi
}

t0=$SECONDS
env_exports=$("$HERE/env.sh" start "$STATE")
eval "$env_exports"
info "environment up in $((SECONDS - t0)) s: DOCKER_HOST=$DOCKER_HOST registry=$LEW_TEST_REGISTRY"

t0=$SECONDS
again=$("$HERE/env.sh" start "$STATE" 2>/dev/null)
if [[ $again == *"LEW_TEST_REGISTRY=$LEW_TEST_REGISTRY"* && $again == *"DOCKER_HOST=$DOCKER_HOST"* ]]; then
  ok "start again on a running STATE_DIR reuses it ($((SECONDS - t0)) s)"
else
  fail "start again on a running STATE_DIR"
fi

IMG="$LEW_TEST_REGISTRY/test/hello:tag1"
mkdir -p "$WORK/ctx"
cat >"$WORK/ctx/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends hello && rm -rf /var/lib/apt/lists/*
EOF

t0=$SECONDS
check "docker build FROM debian:bookworm-slim with apt-get install" docker build -t lew-smoke/hello:latest "$WORK/ctx"
info "build took $((SECONDS - t0)) s"
# shellcheck disable=SC2016 # expanded by the inner bash, from the exported environment
check "docker login --password-stdin $LEW_TEST_REGISTRY" \
  bash -c 'printf %s "$LEW_TEST_REGISTRY_PASSWORD" | docker login --username "$LEW_TEST_REGISTRY_USER" --password-stdin "$LEW_TEST_REGISTRY"'
check "docker tag" docker tag lew-smoke/hello:latest "$IMG"

if docker push "$IMG" >"$WORK/push.out" 2>"$WORK/push.err"; then
  ok "docker push $IMG"
else
  fail "docker push $IMG"
  cat "$WORK/push.err"
fi
info "push stdout: $(tr '\n' '|' <"$WORK/push.out")"
push_digest=$(tail -n 1 "$WORK/push.out" | sed -n 's/.* digest: \(sha256:[0-9a-f]\{64\}\) .*/\1/p')
repo_digests=$(docker image inspect --format '{{json .RepoDigests}}' "$IMG")

auth="$LEW_TEST_REGISTRY_USER:$LEW_TEST_REGISTRY_PASSWORD"
url="http://$LEW_TEST_REGISTRY/v2/test/hello/manifests/tag1"
V2=application/vnd.docker.distribution.manifest.v2+json
OCI=application/vnd.oci.image.manifest.v1+json
ALL="$V2, $OCI, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.index.v1+json"
header_digest() { # METHOD ACCEPT (HEAD needs -I: with -X HEAD curl waits for the body)
  local how=(-D - -o /dev/null)
  [[ $1 == HEAD ]] && how=(-I)
  curl -sS --max-time 20 "${how[@]}" -u "$auth" -H "Accept: $2" "$url" |
    tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}
content_type() { curl -sS --max-time 20 -I -u "$auth" -H "Accept: $1" "$url" | tr -d '\r' | sed -n 's/^[Cc]ontent-[Tt]ype: //p'; }
head_v2=$(header_digest HEAD "$V2")
get_v2=$(header_digest GET "$V2")
head_all=$(header_digest HEAD "$ALL")
head_oci=$(header_digest HEAD "$OCI")
body_v2="sha256:$(curl -sS --max-time 20 -u "$auth" -H "Accept: $ALL" "$url" | sha256sum | cut -c1-64)"
info "(a) docker push, last line:            $push_digest"
info "(b) RepoDigests after push:            $repo_digests"
info "(c) HEAD Accept docker v2:             $head_v2"
info "    GET  Accept docker v2:             $get_v2"
info "    HEAD Accept v2+OCI+lists:          $head_all"
info "    sha256 of the GET body:            $body_v2"
info "    HEAD Accept OCI only:              $head_oci ($(content_type "$OCI"))"
if [[ -n $push_digest && $push_digest == "$head_v2" && $head_v2 == "$get_v2" && $head_v2 == "$head_all" && $head_v2 == "$body_v2" ]]; then
  ok "push output digest == registry Docker-Content-Digest (docker v2 Accept) == sha256(manifest)"
else
  fail "push output digest and registry digest differ"
fi
if [[ $repo_digests == *"$push_digest"* ]]; then
  info "RepoDigests contains the pushed digest"
else
  info "RepoDigests does NOT contain the pushed digest (podman records its local manifest's digest)"
fi

# pinning by digest works: pull it back by digest through the daemon
check "docker pull $LEW_TEST_REGISTRY/test/hello@$push_digest" docker pull "$LEW_TEST_REGISTRY/test/hello@$push_digest"

check "docker run --rm IMAGE hello (default ulimits from containers.conf)" \
  bash -c "docker run --rm '$IMG' hello | grep -qx 'Hello, world!'"
check "podman (remote) run --ulimit nofile/nproc --rm IMAGE hello" \
  bash -c "podman run --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 --rm '$IMG' hello | grep -qx 'Hello, world!'"

if command -v python3 >/dev/null; then
  python3 -c '
import http.server, sys
srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
open(sys.argv[1], "w").write(str(srv.server_address[1]))
srv.serve_forever()' "$WORK/port" >"$WORK/http.log" 2>&1 &
  HTTP_PID=$!
  for _ in $(seq 50); do [[ -s $WORK/port ]] && break; sleep 0.1; done
  port=$(<"$WORK/port")
  # shellcheck disable=SC2016 # expanded inside the container
  check "docker run --network host reaches a server on 127.0.0.1:$port" \
    docker run --rm --network host "$IMG" bash -c \
    'exec 3<>/dev/tcp/127.0.0.1/'"$port"' && printf "GET / HTTP/1.0\r\n\r\n" >&3 && head -n1 <&3 | grep -q " 200 "'
else
  info "python3 missing: skipped the --network host check"
fi

mkdir -p "$WORK/job"
check "docker run --read-only -v DIR:/job: /job writable, / read-only" \
  docker run --rm --read-only -v "$WORK/job:/job" "$IMG" bash -c 'touch /job/out && ! touch /etc/x 2>/dev/null'
if [[ -e $WORK/job/out ]]; then
  ok "file written in the container appears in the bind-mounted dir"
else
  fail "file written in the container is missing from the bind-mounted dir"
fi

out=$(DOCKER_HOST="unix://$STATE/nothing-listens.sock" docker version --format '{{.Server.Version}}' 2>&1) && rc=0 || rc=$?
if [[ $rc == 1 && $out == *"Cannot connect to the Docker daemon at unix://$STATE/nothing-listens.sock. Is the docker daemon running?"* ]]; then
  ok "no daemon: docker exits 1 with \"Cannot connect to the Docker daemon at ... Is the docker daemon running?\""
else
  fail "no daemon: unexpected rc=$rc output: $out"
fi

docker rmi "$IMG" "$LEW_TEST_REGISTRY/test/hello@$push_digest" lew-smoke/hello:latest >/dev/null 2>&1 || true

echo "$PASSED passed, $FAILED failed"
((FAILED == 0))
