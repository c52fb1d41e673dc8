#!/usr/bin/env bash
# Starts a rootless Docker daemon for an unprivileged user, for the `rootless` test project.
#
# Run as root (CI does). Idempotent: packages, user, subordinate ids and the running daemon are
# each left alone when already there. On success the last line of stdout is the daemon's socket,
# e.g. `unix:///run/user/999/docker.sock`; progress goes to stderr.
#
#   RLM_ROOTLESS_USER   the unprivileged user running the daemon (and the tests); default rlm-rootless
#
# Needs: Debian's docker.io (dockerd and contrib/dockerd-rootless.sh), rootlesskit, slirp4netns,
# uidmap (newuidmap/newgidmap), /dev/net/tun usable by the user (for slirp4netns).
set -euo pipefail

user="${RLM_ROOTLESS_USER:-rlm-rootless}"
contrib=/usr/share/docker.io/contrib

say() { printf '[rootless] %s\n' "$*" >&2; }
die() { printf '[rootless] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run me as root (I install packages and create the user $user)"

# --- packages ----------------------------------------------------------------------------------
missing=()
for pkg in docker.io rootlesskit slirp4netns uidmap; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; } >/tmp/rlm-rootless-apt.log 2>&1 ||
    { tail -40 /tmp/rlm-rootless-apt.log >&2; die "apt-get install ${missing[*]} failed"; }
fi
[ -x "$contrib/dockerd-rootless.sh" ] || die "$contrib/dockerd-rootless.sh is missing (Debian's docker.io ships it)"

# --- the user and its subordinate ids ------------------------------------------------------------
if ! id -u "$user" >/dev/null 2>&1; then
  say "creating user $user"
  useradd --create-home --shell /usr/sbin/nologin --comment 'rlm rootless Docker tests' "$user"
fi
uid="$(id -u "$user")"
gid="$(id -g "$user")"
home="$(getent passwd "$user" | cut -d: -f6)"
[ -d "$home" ] || install -d -o "$uid" -g "$gid" -m 0755 "$home"

# useradd allocates subordinate ids for ordinary users; a user created otherwise may lack them.
# A fresh 65536-id range starts above every range already handed out.
next_free_id() {
  awk -F: 'BEGIN { max = 100000 } NF == 3 && $2 + $3 > max { max = $2 + $3 } END { print max }' /etc/subuid /etc/subgid
}
for file in /etc/subuid /etc/subgid; do
  touch "$file"
  if ! grep -qE "^($user|$uid):" "$file"; then
    start="$(next_free_id)"
    say "adding $file range $start+65536 for $user"
    echo "$user:$start:65536" >>"$file"
  fi
done

# --- /dev/net/tun, which slirp4netns opens as the user --------------------------------------------
if [ ! -c /dev/net/tun ]; then
  say "creating /dev/net/tun"
  mkdir -p /dev/net
  mknod /dev/net/tun c 10 200
fi
chmod 0666 /dev/net/tun

# --- the daemon ----------------------------------------------------------------------------------
runtime_dir="/run/user/$uid"
socket="$runtime_dir/docker.sock"
log="$home/dockerd-rootless.log"
export_host="unix://$socket"
install -d -o "$uid" -g "$gid" -m 0700 "$runtime_dir"

as_user() {
  runuser -u "$user" -- env -i HOME="$home" USER="$user" LOGNAME="$user" XDG_RUNTIME_DIR="$runtime_dir" \
    PATH="$contrib:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "$@"
}
daemon_up() { as_user docker --host "$export_host" info >/dev/null 2>&1; }

if daemon_up; then
  say "a rootless daemon already answers on $socket"
else
  say "starting the rootless daemon for $user (uid $uid); log: $log"
  # Leftovers of a daemon that died uncleanly keep a new one from starting.
  rm -f "$socket" "$runtime_dir/docker.pid"
  rm -rf "$runtime_dir/dockerd-rootless"
  : >"$log"
  chown "$uid:$gid" "$log"
  # setsid --fork: the daemon detaches at once and outlives this script and the CI step that ran it,
  # like the rootful one. `kill $(cat $runtime_dir/docker.pid)` stops it (rootlesskit follows).
  as_user setsid --fork dockerd-rootless.sh >>"$log" 2>&1 </dev/null
  for _ in $(seq 1 60); do
    daemon_up && break
    sleep 1
  done
  if ! daemon_up; then
    say "the rootless daemon did not answer within 60 s; the last lines of $log:"
    tail -40 "$log" >&2 || true
    die "no rootless Docker daemon on $socket"
  fi
fi

security="$(as_user docker --host "$export_host" info --format '{{json .SecurityOptions}}')"
case "$security" in
  *name=rootless*) ;;
  *) die "the daemon on $socket does not say it is rootless (SecurityOptions: $security)" ;;
esac
say "rootless daemon up: $(as_user docker --host "$export_host" version --format '{{.Server.Version}}'), cgroup v$(as_user docker --host "$export_host" info --format '{{.CgroupVersion}}'), $security"
echo "$export_host"
