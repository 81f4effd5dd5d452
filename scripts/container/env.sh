#!/usr/bin/env bash
# Local container build + registry environment for tests (no Docker engine needed).
#
# `lew push-image` drives the `docker` CLI (or `podman`; installed when missing, docker.io's
# for the CLI). On machines without a Docker engine this script stands one in: a rootful podman API service (Docker-compatible socket, vfs
# storage, runc, chroot build isolation) and Debian's `docker-registry` on a loopback port with
# htpasswd (bcrypt) auth over plain HTTP, so build, login and push can be tested for real.
# `FROM debian:bookworm-slim` resolves locally: a debootstrap'ed minbase rootfs is built once,
# cached as a tarball, and imported under that name (its apt sources point at the mirror this
# machine's apt uses, so `RUN apt-get install ...` works inside builds).
#
# Usage:
#   eval "$(scripts/container/env.sh start STATE_DIR)"   # idempotent; progress on stderr
#   (`eval "$(...)"` hides a failed start, even under set -e; in scripts prefer
#    `env=$(scripts/container/env.sh start STATE_DIR) || exit 1; eval "$env"`)
#   ...  docker build / docker login / docker push ...
#   scripts/container/env.sh stop STATE_DIR              # idempotent; keeps the cache
#
# `start` prints `export` lines: DOCKER_HOST, CONTAINER_HOST (podman remote), DOCKER_CONFIG,
# LEW_TEST_REGISTRY (localhost:PORT), LEW_TEST_REGISTRY_USER, LEW_TEST_REGISTRY_PASSWORD,
# CONTAINER_STATE_DIR. Logs and PIDs live in STATE_DIR (podman.log, registry.log, *.pid).
#
# Environment:
#   LEW_CACHE_DIR             cache root (default ~/.cache/lew); holds the base-image tarball
#                             and podman's image storage, so later starts skip debootstrap and
#                             reuse build layers
#   LEW_REGISTRY_USER/_PASSWORD   registry credentials (default: user "lew", random password)
#   LEW_DEBIAN_MIRROR, LEW_DEBIAN_SECURITY_MIRROR   override the mirrors found in apt's config
#   LEW_SKIP_APT=1            never call apt-get (fail if a package is missing)
#
# No file outside STATE_DIR and the cache is written (apart from installing missing packages):
# podman reads its containers.conf, storage.conf and registries.conf (which marks the registry
# insecure) from STATE_DIR via CONTAINERS_CONF / CONTAINERS_STORAGE_CONF /
# CONTAINERS_REGISTRIES_CONF, so nothing under /etc/containers changes. The CNI bridge that
# podman sets up when a container runs without --network host is removed again by `stop`.
set -euo pipefail

PROG=container-env
BASE_NAME=debian:bookworm-slim
BASE_FQ_NAME=docker.io/library/debian:bookworm-slim
BASE_FORMAT=1 # bump to invalidate cached base tarballs when the recipe below changes
PACKAGES=(podman buildah skopeo runc docker-registry debootstrap apache2-utils curl
  debian-archive-keyring gpgv)

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  cat >&2 <<EOF
usage: $0 start STATE_DIR   set up (or reuse) the environment; prints export lines on stdout
       $0 stop STATE_DIR    stop the services started for STATE_DIR (keeps the cache)
EOF
  exit 2
}

# --- paths --------------------------------------------------------------------------------

set_paths() {
  mkdir -p "$1"
  STATE=$(cd "$1" && pwd -P)
  CACHE_ROOT=${LEW_CACHE_DIR:-${HOME:-/root}/.cache/lew}
  CACHE="$CACHE_ROOT/container"
  SOCK="$STATE/podman.sock"
  PODMAN_DIR="$STATE/podman"
  REG_DIR="$STATE/registry"
  DOCKER_CFG_DIR="$STATE/docker-config"
  # Our own podman/buildah calls use the same configuration as the service, never a remote.
  export CONTAINERS_CONF="$STATE/containers.conf"
  export CONTAINERS_STORAGE_CONF="$STATE/storage.conf"
  export CONTAINERS_REGISTRIES_CONF="$STATE/registries.conf"
  unset CONTAINER_HOST CONTAINER_CONNECTION DOCKER_HOST
}

# --- processes ----------------------------------------------------------------------------

# pid_of NAME: prints the recorded PID if that process is alive and still ours (its command
# line names this STATE_DIR's socket or config file), so a recycled PID is never signalled.
pid_of() {
  local pidfile="$STATE/$1.pid" pid marker
  case $1 in
  podman) marker="unix://$SOCK" ;;
  registry) marker="$REG_DIR/config.yml" ;;
  esac
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "$marker" || return 1
  printf '%s\n' "$pid"
}

stop_proc() {
  local name=$1 pid i
  if pid=$(pid_of "$name"); then
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      [[ -d /proc/$pid ]] || break
      # a zombie child of ours would linger until reaped; it is gone for our purposes
      [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
      sleep 0.1
    done
    if [[ -d /proc/$pid && $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]; then
      log "$name did not stop on SIGTERM, killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$STATE/$name.pid"
}

podman_answers() {
  [[ -S $SOCK ]] && [[ $(curl -sS --max-time 5 --unix-socket "$SOCK" http://d/_ping 2>/dev/null) == OK ]]
}

registry_answers() { # PORT: the registry answers /v2/ (401 without credentials)
  local code
  code=$(curl -s -o /dev/null --max-time 5 -w '%{http_code}' "http://127.0.0.1:$1/v2/" 2>/dev/null) || true
  [[ $code == 401 ]]
}

stop_services() {
  if pid_of podman >/dev/null && podman_answers; then
    # containers started through the socket (docker run -d ...) would outlive the service
    timeout 60 podman --remote --url "unix://$SOCK" rm --all --force --time 0 >/dev/null 2>&1 || true
  fi
  stop_proc podman
  stop_proc registry
  rm -f "$SOCK"
  kill_leftover_conmons
  remove_bridge_if_ours
  # a private storage (see choose_storage) is no cache: drop it
  if [[ -d $STATE/storage-vfs ]]; then
    safe_rmtree "$STATE/storage-vfs"
  fi
}

# `docker run` without --network host puts the container on podman's CNI bridge, which creates
# the cni-podman0 interface and CNI-* iptables chains on first use; podman removes a
# container's own rules but keeps those. Remove them again if they were not there at start
# and nothing uses them any more (no veth on the bridge, no per-container rule).
remove_bridge_if_ours() {
  [[ -e $STATE/bridge-absent-at-start ]] || return 0
  command -v ip >/dev/null || return 0
  if ip link show cni-podman0 >/dev/null 2>&1; then
    [[ -z $(ip -o link show master cni-podman0 2>/dev/null) ]] || return 0
    log "removing the cni-podman0 bridge created during this run"
    ip link del cni-podman0 2>/dev/null || true
  fi
  if command -v iptables >/dev/null && iptables -S CNI-FORWARD >/dev/null 2>&1 &&
    [[ $(iptables -S CNI-FORWARD | grep -vc -e '^-N' -e 'CNI-ADMIN') == 0 ]] &&
    [[ $(iptables -S CNI-ADMIN 2>/dev/null | grep -vc '^-N') == 0 ]] &&
    [[ $(iptables -t nat -S | grep -c 'CNI-') == 0 ]]; then
    iptables -D FORWARD -m comment --comment "CNI firewall plugin rules" -j CNI-FORWARD 2>/dev/null || true
    local chain
    for chain in CNI-FORWARD CNI-ADMIN; do
      iptables -F "$chain" 2>/dev/null || true
      iptables -X "$chain" 2>/dev/null || true
    done
  fi
  rm -f "$STATE/bridge-absent-at-start"
}

kill_tree() { # PID: SIGKILL the process and its descendants, children first
  local child
  for child in $(pgrep -P "$1" || true); do
    kill_tree "$child"
  done
  kill -KILL "$1" 2>/dev/null || true
}

# conmon processes outlive the service by design; a container the service could not remove
# (it was stopped mid-way) leaves one behind, still holding the storage lock.
kill_leftover_conmons() {
  local root pid
  [[ -s $STATE/graphroot ]] || return 0
  root=$(<"$STATE/graphroot")
  for pid in $(pgrep -x conmon || true); do
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$root/" || continue
    log "killing leftover conmon (pid $pid) and its container"
    kill_tree "$pid"
  done
}

# --- packages -----------------------------------------------------------------------------

ensure_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  # The tests drive the docker CLI (the default worker.container_cli) against podman's service.
  # Any `docker` on PATH will do; without one, Debian's: bookworm ships the CLI only inside
  # docker.io, with an engine that is installed but never started here.
  command -v docker >/dev/null || missing+=(docker.io)
  ((${#missing[@]} == 0)) && return 0
  [[ ${LEW_SKIP_APT:-} == 1 ]] && die "missing packages: ${missing[*]} (LEW_SKIP_APT=1)"
  log "installing ${missing[*]} (apt-get)"
  [[ $(id -u) == 0 ]] || die "need root to install packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -q -o DPkg::Lock::Timeout=300 update >&2 || log "apt-get update failed; trying the install anyway"
  apt-get -q -y -o DPkg::Lock::Timeout=300 install --no-install-recommends "${missing[@]}" >&2
}

# --- mirrors (the ones this machine's apt uses) ---------------------------------------------

find_mirrors() {
  local targets
  # shellcheck disable=SC2016 # $(SITE) etc. are apt's format fields, not shell
  targets=$(apt-get indextargets --format '$(SITE)|$(RELEASE)|$(LABEL)' 'Created-By: Packages' 2>/dev/null | sort -u) || true
  MIRROR=${LEW_DEBIAN_MIRROR:-}
  SECURITY_MIRROR=${LEW_DEBIAN_SECURITY_MIRROR:-}
  if [[ -z $MIRROR ]]; then
    MIRROR=$(awk -F'|' '$3 == "Debian" { print $1; exit }' <<<"$targets")
    [[ -n $MIRROR ]] || MIRROR=$(awk -F'|' '$2 ~ /^[a-z]+$/ { print $1; exit }' <<<"$targets")
  fi
  if [[ -z $SECURITY_MIRROR ]]; then
    SECURITY_MIRROR=$(awk -F'|' '$3 == "Debian-Security" { print $1; exit }' <<<"$targets")
    [[ -n $SECURITY_MIRROR ]] || SECURITY_MIRROR=$(awk -F'|' '$2 ~ /-security$/ { print $1; exit }' <<<"$targets")
  fi
  MIRROR=${MIRROR:-http://deb.debian.org/debian}
  SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
  MIRROR=${MIRROR%/}
  SECURITY_MIRROR=${SECURITY_MIRROR%/}
  # apt's proxy, if any, is needed by debootstrap and by apt inside builds as well
  APT_PROXY=$(apt-config dump 2>/dev/null | sed -n 's/^Acquire::http::Proxy "\(.*\)";$/\1/p' | head -n1) || true
  [[ $APT_PROXY == DIRECT || $APT_PROXY == false ]] && APT_PROXY=
  return 0
}

# --- base image ---------------------------------------------------------------------------

# Removes a directory tree without ever descending into something mounted inside it
# (debootstrap bind-mounts /dev, /proc and /sys into the target while it runs).
safe_rmtree() {
  local dir=$1 mnt
  [[ -e $dir ]] || return 0
  while read -r mnt; do
    umount -l "$mnt" 2>/dev/null || true
  done < <(awk -v d="$dir" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  if awk -v d="$dir" 'index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die "$dir still has mounts inside; not removing it"
  fi
  rm -rf --one-file-system -- "$dir"
}

build_base_tarball() { # TARBALL
  local tarball=$1 rootfs="$CACHE/rootfs.$$" start=$SECONDS
  safe_rmtree "$rootfs"
  ROOTFS_TMP=$rootfs # removed by on_start_exit if we fail half-way
  log "building the base image with debootstrap from $MIRROR (about 1.5 min; log: $STATE/debootstrap.log)"
  local -a envs=()
  [[ -n $APT_PROXY ]] && envs=("http_proxy=$APT_PROXY")
  if ! env "${envs[@]}" debootstrap --variant=minbase --components=main bookworm "$rootfs" "$MIRROR" \
    >"$STATE/debootstrap.log" 2>&1; then
    tail -n 20 "$STATE/debootstrap.log" >&2 || true
    die "debootstrap failed (see $STATE/debootstrap.log)"
  fi
  # Make it look like the official image: apt sources (deb822) on this machine's mirrors,
  # no services started by maintainer scripts, apt caches cleaned, docs and locales trimmed.
  rm -f "$rootfs/etc/apt/sources.list"
  cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  if [[ -n $APT_PROXY ]]; then
    printf 'Acquire::http::Proxy "%s";\n' "$APT_PROXY" >"$rootfs/etc/apt/apt.conf.d/01proxy"
  fi
  printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
  chmod 755 "$rootfs/usr/sbin/policy-rc.d"
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$rootfs"/usr/share/{man,info,groff,linda,locale}/* "$rootfs"/usr/share/lintian/overrides/*
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
  rm -rf "$rootfs"/var/log/* "$rootfs"/tmp/* "$rootfs"/var/tmp/*
  rm -f "$rootfs/etc/resolv.conf" "$rootfs/etc/hostname"
  if awk -v d="$rootfs" 'index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die "something is still mounted under $rootfs"
  fi
  tar --numeric-owner --one-file-system -C "$rootfs" -cf "$tarball.tmp.$$" .
  mv -f "$tarball.tmp.$$" "$tarball"
  safe_rmtree "$rootfs"
  ROOTFS_TMP=
  log "base rootfs cached as $tarball ($(du -h "$tarball" | cut -f1), $((SECONDS - start)) s)"
}

base_label() { # the label of the local base image, empty if it is missing
  podman image inspect --format '{{index .Labels "org.lew.base"}}' "$BASE_FQ_NAME" 2>/dev/null || true
}

ensure_base_image() {
  local key tarball
  key=$(printf 'format=%s bookworm minbase %s %s %s' "$BASE_FORMAT" "$MIRROR" "$SECURITY_MIRROR" "$APT_PROXY" |
    sha256sum | cut -c1-16)
  tarball="$CACHE/debian-bookworm-minbase-$key.tar"
  # serialise with other starts sharing this cache (they would build/import the same thing)
  exec 7>>"$CACHE/base.lock"
  flock -x 7
  if [[ $(base_label) == "$key" ]]; then
    exec 7>&-
    return 0
  fi
  [[ -s $tarball ]] || build_base_tarball "$tarball"
  log "importing $tarball as $BASE_NAME"
  local id
  id=$(podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL org.lew.base=$key" \
    "$tarball" "$BASE_FQ_NAME")
  podman tag "$id" "$BASE_NAME" # stored as localhost/debian:bookworm-slim
  exec 7>&-
}

# --- podman storage ---------------------------------------------------------------------

# One podman service per storage. The cached storage (kept between runs: base image and build
# layers) is used by whoever holds an exclusive flock on CACHE/storage.lock; this script takes
# it on fd 9 and the service inherits that fd, so the lock lives exactly as long as the service
# (and any conmon it left behind). When another environment holds it, this one gets a private
# storage in STATE_DIR (slower: no layer cache; the base image is imported from the tarball).
# Podman keeps its database in GRAPHROOT/libpod whenever --root is given (the service's
# containers' exit commands always give it), and that database pins the run and tmp dirs, so
# those live next to the storage, not in STATE_DIR.
choose_storage() {
  exec 9>>"$CACHE/storage.lock"
  if flock -xn 9; then
    GRAPHROOT="$CACHE/storage-vfs"
    RUNROOT="$CACHE/podman-run"
    PODMAN_TMP="$CACHE/podman-tmp"
  else
    exec 9>&-
    log "another environment uses the cached podman storage; using a private one in $STATE"
    GRAPHROOT="$STATE/storage-vfs"
    RUNROOT="$PODMAN_DIR/run"
    PODMAN_TMP="$PODMAN_DIR/tmp"
  fi
  echo "$GRAPHROOT" >"$STATE/graphroot"
}

# Runs while nobody else uses the storage: starts podman's state afresh (run/tmp dirs and
# database; containers never outlive an environment), removes leftover build/run containers
# (with vfs each is a full copy of its image) and dangling images, and wipes a broken storage.
maintain_storage() {
  rm -rf "$RUNROOT" "$PODMAN_TMP" "$GRAPHROOT/libpod" "$GRAPHROOT/volumes"
  mkdir -p "$RUNROOT" "$PODMAN_TMP" "$GRAPHROOT"
  if ! podman images -q >/dev/null 2>"$STATE/storage-check.err"; then
    log "podman storage looks broken ($(head -c 300 "$STATE/storage-check.err")); wiping $GRAPHROOT"
    safe_rmtree "$GRAPHROOT"
    rm -rf "$RUNROOT" "$PODMAN_TMP"
    mkdir -p "$RUNROOT" "$PODMAN_TMP" "$GRAPHROOT"
    return 0
  fi
  buildah rm --all >/dev/null 2>&1 || true
  local leftovers
  leftovers=$(podman ps --all --external --quiet 2>/dev/null) || true
  if [[ -n $leftovers ]]; then
    log "removing leftover containers from earlier runs"
    # shellcheck disable=SC2086 # one ID per word
    podman rm --force $leftovers >/dev/null 2>&1 || true
  fi
  # names in registries of earlier runs (localhost:PORT/...) point nowhere now
  local name
  while read -r name; do
    podman untag "$name" "$name" >/dev/null 2>&1 || true
  done < <(podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -E '^localhost:[0-9]+/' || true)
  podman image prune --force >/dev/null 2>&1 || true
}

# --- configuration files --------------------------------------------------------------------

write_podman_configs() {
  mkdir -p "$PODMAN_DIR/image-tmp" "$GRAPHROOT" "$RUNROOT" "$PODMAN_TMP"
  cat >"$CONTAINERS_CONF" <<EOF
# written by scripts/container/env.sh
[containers]
# the machine's hard nofile limit is below podman's default (1048576): runc would fail
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$PODMAN_DIR/events.log"
runtime = "runc"
tmp_dir = "$PODMAN_TMP"
image_copy_tmp_dir = "$PODMAN_DIR/image-tmp"
EOF
  cat >"$CONTAINERS_STORAGE_CONF" <<EOF
# written by scripts/container/env.sh
[storage]
driver = "vfs"
graphroot = "$GRAPHROOT"
runroot = "$RUNROOT"
EOF
  write_registries_conf ""
}

write_registries_conf() { # PORT (empty: no local registry entry yet)
  {
    echo '# written by scripts/container/env.sh'
    echo 'unqualified-search-registries = ["docker.io"]'
    echo 'short-name-mode = "permissive"'
    if [[ -n $1 ]]; then
      printf '\n[[registry]]\nlocation = "localhost:%s"\ninsecure = true\n' "$1"
    fi
  } >"$CONTAINERS_REGISTRIES_CONF"
}

# --- registry -----------------------------------------------------------------------------

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
  (exec 3<>"/dev/tcp/localhost/$1") 2>/dev/null && return 0
  return 1
}

random_secret() { head -c 24 /dev/urandom | base64 | tr -d '/+=\n'; }

setup_credentials() {
  local creds="$REG_DIR/credentials"
  mkdir -p "$REG_DIR"
  REG_USER=${LEW_REGISTRY_USER:-}
  REG_PASSWORD=${LEW_REGISTRY_PASSWORD:-}
  if [[ -z $REG_USER || -z $REG_PASSWORD ]] && [[ -s $creds ]]; then
    local u p
    { IFS= read -r u && IFS= read -r p; } <"$creds" || true
    REG_USER=${REG_USER:-$u}
    [[ -z $REG_PASSWORD && $u == "$REG_USER" ]] && REG_PASSWORD=$p
  fi
  REG_USER=${REG_USER:-lew}
  REG_PASSWORD=${REG_PASSWORD:-$(random_secret)}
  [[ $REG_USER != *:* ]] || die "LEW_REGISTRY_USER must not contain ':'"
  (
    umask 077
    printf '%s\n%s\n' "$REG_USER" "$REG_PASSWORD" >"$creds"
    printf '%s' "$REG_PASSWORD" | htpasswd -niB "$REG_USER" | sed '/^$/d' >"$REG_DIR/htpasswd"
  )
}

start_registry() {
  local attempt port pid i preferred=""
  mkdir -p "$REG_DIR/data"
  [[ -s $REG_DIR/port ]] && preferred=$(<"$REG_DIR/port")
  for ((attempt = 0; attempt < 20; attempt++)); do
    if ((attempt == 0)) && [[ $preferred =~ ^[0-9]+$ ]]; then
      port=$preferred
    else
      port=$((30000 + (RANDOM * 32768 + RANDOM) % 30000))
    fi
    port_in_use "$port" && continue
    cat >"$REG_DIR/config.yml" <<EOF
# written by scripts/container/env.sh
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: "$REG_DIR/data"
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: "127.0.0.1:$port"
  secret: "$(random_secret)"
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: lew-test-registry
    path: "$REG_DIR/htpasswd"
EOF
    (cd / && exec setsid docker-registry serve "$REG_DIR/config.yml") </dev/null >>"$STATE/registry.log" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$STATE/registry.pid"
    for ((i = 0; i < 100; i++)); do
      if registry_answers "$port"; then
        echo "$port" >"$REG_DIR/port"
        REG_PORT=$port
        log "registry listening on localhost:$port (pid $pid)"
        return 0
      fi
      [[ -d /proc/$pid ]] || break
      sleep 0.1
    done
    log "registry did not come up on port $port; retrying"
    stop_proc registry
  done
  tail -n 20 "$STATE/registry.log" >&2 || true
  die "could not start docker-registry (see $STATE/registry.log)"
}

# --- podman service -----------------------------------------------------------------------

start_podman() {
  local pid i
  rm -f "$SOCK"
  # fd 9 (the storage lock, see choose_storage) is inherited on purpose
  (cd / && BUILDAH_ISOLATION=chroot exec setsid \
    podman --storage-driver vfs --runtime runc system service --time=0 "unix://$SOCK") \
    </dev/null >>"$STATE/podman.log" 2>&1 &
  pid=$!
  echo "$pid" >"$STATE/podman.pid"
  for ((i = 0; i < 600; i++)); do
    if podman_answers; then
      log "podman service on $SOCK (pid $pid)"
      return 0
    fi
    [[ -d /proc/$pid ]] || break
    sleep 0.1
  done
  tail -n 20 "$STATE/podman.log" >&2 || true
  die "podman system service did not answer on $SOCK (see $STATE/podman.log)"
}

# --- commands -----------------------------------------------------------------------------

print_exports() {
  local -A vars=(
    [DOCKER_HOST]="unix://$SOCK"
    [CONTAINER_HOST]="unix://$SOCK"
    [DOCKER_CONFIG]="$DOCKER_CFG_DIR"
    [LEW_TEST_REGISTRY]="localhost:$REG_PORT"
    [LEW_TEST_REGISTRY_USER]="$REG_USER"
    [LEW_TEST_REGISTRY_PASSWORD]="$REG_PASSWORD"
    [CONTAINER_STATE_DIR]="$STATE"
  )
  local k
  for k in DOCKER_HOST CONTAINER_HOST DOCKER_CONFIG LEW_TEST_REGISTRY LEW_TEST_REGISTRY_USER \
    LEW_TEST_REGISTRY_PASSWORD CONTAINER_STATE_DIR; do
    printf 'export %s=%q\n' "$k" "${vars[$k]}"
  done
}

ROOTFS_TMP=
START_DONE=0
on_start_exit() {
  [[ -n $ROOTFS_TMP ]] && safe_rmtree "$ROOTFS_TMP"
  if [[ $START_DONE != 1 ]]; then
    log "start failed; stopping what was started"
    stop_services || true
  fi
}

cmd_start() {
  set_paths "$1"
  local start=$SECONDS
  # Already running for this STATE_DIR and healthy: just print the environment again.
  if pid_of podman >/dev/null && pid_of registry >/dev/null && podman_answers &&
    [[ -s $REG_DIR/port ]] && registry_answers "$(<"$REG_DIR/port")" && [[ -s $REG_DIR/credentials ]] &&
    [[ -z ${LEW_REGISTRY_USER:-} && -z ${LEW_REGISTRY_PASSWORD:-} ]]; then
    REG_PORT=$(<"$REG_DIR/port")
    { IFS= read -r REG_USER && IFS= read -r REG_PASSWORD; } <"$REG_DIR/credentials"
    log "already running in $STATE"
    print_exports
    return 0
  fi
  stop_services
  trap on_start_exit EXIT
  mkdir -p "$CACHE" "$DOCKER_CFG_DIR"
  echo "{}" >"$DOCKER_CFG_DIR/config.json" # no logins carried over from an earlier start
  ensure_packages
  find_mirrors
  rm -rf "$PODMAN_DIR"
  mkdir -p "$PODMAN_DIR"
  if command -v ip >/dev/null && ! ip link show cni-podman0 >/dev/null 2>&1; then
    touch "$STATE/bridge-absent-at-start"
  fi
  choose_storage
  write_podman_configs
  maintain_storage
  ensure_base_image
  setup_credentials
  start_registry
  write_registries_conf "$REG_PORT" # read by the service at start-up
  start_podman
  log "ready in $((SECONDS - start)) s"
  START_DONE=1
  print_exports
}

cmd_stop() {
  if [[ ! -d $1 ]]; then
    log "nothing to stop: $1 does not exist"
    return 0
  fi
  set_paths "$1"
  stop_services
  log "stopped (cache kept in $CACHE)"
}

(($# == 2)) || usage
case $1 in
start) cmd_start "$2" ;;
stop) cmd_stop "$2" ;;
*) usage ;;
esac
