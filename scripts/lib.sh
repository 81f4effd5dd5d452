# shellcheck shell=bash
# Shared shell functions for lew's scripts (test, demo, bench): installing what is missing and
# starting and stopping a moto server. Sourced, not run.

# step MESSAGE: a visible progress line on stderr.
step() { printf '\n==> %s\n' "$*" >&2; }

# ensure_debian_packages PKG...: installs the Debian packages that are missing.
ensure_debian_packages() {
  local missing=()
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "installing Debian packages: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
}

# ensure_venv: .venv with the pinned test dependencies (moto server, boto3, pytest, ruff).
ensure_venv() {
  local req=scripts/requirements-test.txt
  if [ ! -x .venv/bin/python ] || ! cmp -s "$req" .venv/.requirements 2>/dev/null; then
    step "creating .venv with $(grep -v -e '^#' -e '^$' "$req" | tr '\n' ' ')"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r "$req" >&2
    cp "$req" .venv/.requirements
  fi
}

# free_port: a TCP port on loopback that nothing listens on right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_moto STATE_DIR: starts moto_server on a free loopback port, waits until it answers,
# sets MOTO_URL and records the PID in STATE_DIR/moto.pid.
start_moto() {
  local dir=$1 port
  port=$(free_port)
  MOTO_URL="http://127.0.0.1:$port"
  .venv/bin/python scripts/moto_server.py -H 127.0.0.1 -p "$port" >"$dir/moto.log" 2>&1 &
  echo $! >"$dir/moto.pid"
  local i
  for i in $(seq 1 100); do
    if curl -fsS -o /dev/null "$MOTO_URL/moto-api/" 2>/dev/null; then
      step "moto server at $MOTO_URL"
      return 0
    fi
    if ! kill -0 "$(cat "$dir/moto.pid")" 2>/dev/null; then
      cat "$dir/moto.log" >&2
      echo "moto_server exited before it answered" >&2
      return 1
    fi
    sleep 0.2 # polling a starting server; i bounds it to 20 s
    : "$i"
  done
  echo "moto_server did not answer within 20 s" >&2
  return 1
}

# stop_moto STATE_DIR: stops the server start_moto started.
stop_moto() {
  local dir=$1
  if [ -f "$dir/moto.pid" ]; then
    kill "$(cat "$dir/moto.pid")" 2>/dev/null || true
    wait "$(cat "$dir/moto.pid")" 2>/dev/null || true
    rm -f "$dir/moto.pid"
  fi
}
