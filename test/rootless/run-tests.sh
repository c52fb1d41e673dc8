#!/usr/bin/env bash
# Runs the `rootless` vitest project against a rootless Docker daemon (`pnpm test:rootless`).
# Arguments go to `vitest run`.
#
# As root (CI): starts the daemon with setup-rootless-docker.sh (idempotent) and runs the tests as
# the daemon's unprivileged user, as in real rootless use: the user who runs rlm is the user whose
# daemon bind-mounts rlm's state directories. Vitest's outputs (e.g. --outputFile) must go where
# that user can write: test/.artifacts/rootless/ is made for it.
#
# As anyone else: runs the tests as you, against the daemon DOCKER_HOST names (default: your own
# rootless daemon at unix://$XDG_RUNTIME_DIR/docker.sock).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ]; then
  : "${XDG_RUNTIME_DIR:=/run/user/$(id -u)}"
  export XDG_RUNTIME_DIR DOCKER_HOST="${DOCKER_HOST:-unix://$XDG_RUNTIME_DIR/docker.sock}"
  exec pnpm exec vitest run --configLoader runner --project rootless "$@"
fi

user="${RLM_ROOTLESS_USER:-rlm-rootless}"
docker_host="$(bash test/rootless/setup-rootless-docker.sh | tail -1)"
uid="$(id -u "$user")"
home="$(getent passwd "$user" | cut -d: -f6)"
runuser -u "$user" -- test -r package.json -a -x test/rootless ||
  { echo "the rootless tests run as $user, who cannot read the checkout at $PWD; put it where other users can read it" >&2; exit 1; }
mkdir -p test/.artifacts && install -d -o "$user" -m 0755 test/.artifacts/rootless
# The checkout stays root's and read-only to the user: `--configLoader runner` loads vitest.config.ts
# without writing a bundled copy into node_modules/.vite-temp.
exec runuser -u "$user" -- env -i \
  HOME="$home" USER="$user" LOGNAME="$user" \
  PATH="$PATH" \
  XDG_RUNTIME_DIR="/run/user/$uid" \
  DOCKER_HOST="$docker_host" \
  ${CI:+CI="$CI"} \
  pnpm exec vitest run --configLoader runner --project rootless "$@"
