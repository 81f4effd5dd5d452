#!/usr/bin/env bash
# Runs the worker image as lew's task definition (src/resources/task_definition.rs) has Fargate
# run it, for the tests: a read-only root filesystem where nothing is writable but the
# container runtime's own /dev/shm and /dev/mqueue, and one volume at /scratch that starts as
# the image's /scratch.
#
#   fargate-run.sh SCRATCH_DIR IMAGE [PODMAN_RUN_OPTION...] [-- ARG...]
#
# SCRATCH_DIR (a host folder, made if missing) is given to the image's user with mode 0511, as
# Fargate starts a bind-mount volume with the image's ownership and mode of the path it is
# mounted at. Options such as `-e NAME` (the value taken from this environment, so none is on a
# command line) go to `podman run`, ARGs after `--` to the image's entrypoint. Needs podman,
# local or (CONTAINER_HOST, as scripts/container/env.sh exports) remote; root, for the chown.
#
# How each option stands for the task definition:
#   readonlyRootFilesystem: true  --read-only. podman's --read-only
#                                 alone mounts writable tmpfs on /tmp, /var/tmp and /run, and so
#                                 does the docker CLI through podman's API (it cannot say
#                                 otherwise); Fargate cannot: AWS's "Amazon ECS task definition
#                                 differences for the Fargate launch type" says of
#                                 linuxParameters "The devices, sharedMemorySize, and tmpfs
#                                 parameters are not supported".
#   mountPoints scratch:/scratch  -v SCRATCH_DIR:/scratch
#   no user, no linuxParameters   the image's USER, the runtime's default capabilities
#   networkMode awsvpc            --network host, so the container reaches the tests' moto on
#                                 loopback
set -euo pipefail

if (($# < 2)); then
  echo "usage: $0 SCRATCH_DIR IMAGE [PODMAN_RUN_OPTION...] [-- ARG...]" >&2
  exit 2
fi
scratch=$1
image=$2
shift 2
options=()
while (($# > 0)) && [[ $1 != -- ]]; do
  options+=("$1")
  shift
done
(($# > 0)) && shift # the --

user=$(podman image inspect --format '{{.Config.User}}' "$image")
if [[ ! $user =~ ^[0-9]+(:[0-9]+)?$ ]]; then
  echo "$0: the image's USER is '$user', not a numeric uid[:gid] this host can chown to" >&2
  exit 2
fi
mkdir -p "$scratch"
chown "$user" "$scratch"
chmod 0511 "$scratch"

exec podman run --rm --read-only --read-only-tmpfs=false --network host \
  -v "$scratch:/scratch" "${options[@]}" "$image" "$@"
