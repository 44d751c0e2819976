#!/usr/bin/env bash
# Proves docker/Dockerfile's steps without a container runtime (these machines have none): a brand-new
# Debian 12 root made with debootstrap stands in for `FROM debian:bookworm`, the committed tree is copied
# in for `COPY . /opt/mpibert`, and every RUN step runs there, in order, with the Dockerfile's ARG, ENV,
# WORKDIR and USER in force (RUN as `/bin/sh -c`, as docker does). Then it checks what the image
# promises: the user and its uid, CMD as that user with the image's PATH, and the workers' ssh: sshd
# started as the workers start it (`/usr/sbin/sshd -De -f /home/mpiuser/.sshd_config`, in a network
# namespace of its own) accepts a key login on the Dockerfile's port and runs gaudi_spawn there. The key
# pair stands in for the one the MPI Operator mounts.
# What it cannot prove: docker's own build (layers, .dockerignore) and Kubernetes itself.
# Usage (as root): scripts/check-dockerfile.sh [--keep]   (--keep leaves the root in /tmp)
# Needs Debian's package archive (apt) and debootstrap (installed when missing). Takes as long as a
# fresh install and build (about 25 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
keep=0
case "${1:-}" in
  --keep) keep=1 ;;
  "") ;;
  *) echo "check-dockerfile.sh: error: unknown argument '$1' (valid: --keep)" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "check-dockerfile.sh: needs root (debootstrap, chroot, mounts)" >&2; exit 2; }
say() { echo "check-dockerfile: $*"; }

dockerfile=docker/Dockerfile
root=$(mktemp -d /tmp/mpibert-dockerfile.XXXXXX)
chmod 755 "$root"  # it is the image's /: mktemp's 0700 would lock every other user out
cleanup() {
  for m in proc sys dev; do umount -l "$root/$m" 2>/dev/null || true; done
  [ "$keep" = 1 ] && say "root kept in $root" || rm -rf "$root"
}
trap cleanup EXIT

# The Dockerfile's instructions, continuation lines joined, comments dropped: "INSTRUCTION ARGS" per line.
instructions() {
  sed -e '/^[[:space:]]*#/d' "$dockerfile" | awk '{ if (sub(/\\$/, "")) { buf = buf $0 " "; next } print buf $0; buf = "" }' |
    sed -e '/^[[:space:]]*$/d'
}

from=$(instructions | awk '$1 == "FROM" { print $2; exit }')
[ "$from" = "debian:bookworm" ] || { echo "check-dockerfile.sh: FROM $from: only debian:bookworm is known here" >&2; exit 2; }
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list)
command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
say "FROM $from: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
  { tail -5 "$root.debootstrap.log" >&2; exit 1; }
rm -f "$root.debootstrap.log"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# The network's certificate authority (npm over https), as every machine here has it; no package.
mkdir -p "$root/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --rbind /dev "$root/dev"

declare -A vars=()  # ARG and ENV values, in force for the RUN steps after them
order=()
set_var() {
  [ -n "${vars[$1]+set}" ] || order+=("$1")
  vars[$1]=$2
}
env_args() {
  local k
  for k in "${order[@]}"; do printf '%s=%s\n' "$k" "${vars[$k]}"; done
}
set_var PATH /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
user=root
workdir=/
cmd_json=""
step=0
# run_in_root USER DIR COMMAND: /bin/sh -c COMMAND in the root as USER, in DIR, with the variables.
run_in_root() {
  local -a env=()
  mapfile -t env < <(env_args)
  if [ "$1" = root ]; then
    chroot "$root" /usr/bin/env -i HOME=/root "${env[@]}" /bin/sh -c "cd '$2' && $3" </dev/null
  else
    chroot "$root" /usr/bin/env -i HOME="/home/$1" "${env[@]}" runuser -u "$1" -- /bin/sh -c "cd '$2' && $3" </dev/null
  fi
}
expand() {  # $VAR and ${VAR} from the ARG/ENV values, as docker expands ENV/WORKDIR/COPY arguments
  local text=$1 k
  for k in "${order[@]}"; do text=${text//\$\{$k\}/${vars[$k]}}; text=${text//\$$k/${vars[$k]}}; done
  echo "$text"
}

while read -r op rest; do
  case "$op" in
    FROM) ;;
    ARG)
      [[ "$rest" == *=* ]] && set_var "${rest%%=*}" "$(echo "${rest#*=}" | sed 's/^"\(.*\)"$/\1/')" || set_var "$rest" "" ;;
    ENV)
      for kv in $rest; do set_var "${kv%%=*}" "$(expand "${kv#*=}")"; done ;;
    COPY)
      read -r from_path to_path <<<"$rest"
      [ "$from_path" = . ] || { echo "check-dockerfile.sh: COPY $rest: only 'COPY . DIR' is known here" >&2; exit 2; }
      say "COPY . $to_path (the committed tree, git archive HEAD)"
      mkdir -p "$root$to_path"
      git archive HEAD | tar -x -C "$root$to_path" ;;
    WORKDIR)
      workdir=$(expand "$rest")
      mkdir -p "$root$workdir" ;;
    USER) user=$rest ;;
    RUN)
      step=$((step + 1))
      say "RUN step $step as $user in $workdir: ${rest:0:100}..."
      t0=$SECONDS
      if ! run_in_root "$user" "$workdir" "$rest" >"$root.run$step.log" 2>&1; then
        tail -30 "$root.run$step.log" >&2
        echo "check-dockerfile.sh: RUN step $step failed (log: $root.run$step.log)" >&2
        keep=1
        exit 1
      fi
      rm -f "$root.run$step.log"
      say "RUN step $step: ok ($((SECONDS - t0)) s)" ;;
    EXPOSE) port=$rest ;;
    CMD) cmd_json=$rest ;;
    *) echo "check-dockerfile.sh: $op: not an instruction this script knows" >&2; exit 2 ;;
  esac
done < <(instructions)

failed=0
check() {  # WHAT COMMAND...: one line per promise
  if "${@:2}" >"$root.check.log" 2>&1; then say "ok: $1"; else
    say "FAILED: $1"
    sed 's/^/    /' "$root.check.log" | tail -15
    failed=1
  fi
}
check "the image's user is $user with uid 1000" sh -c "[ \"\$(chroot '$root' id -u '$user')\" = 1000 ]"
cmd=$(python3 -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])))' "$cmd_json")
check "CMD ($cmd) runs as $user with the image's PATH" run_in_root "$user" "$workdir" "$cmd"
# The workers: the operator mounts a key pair and authorized_keys at /home/mpiuser/.ssh; this makes one.
home=/home/$user
check "a key pair for $user (what the operator mounts)" run_in_root "$user" "$home" \
  "mkdir -p .ssh && ssh-keygen -q -t rsa -N '' -f .ssh/id_rsa && cp .ssh/id_rsa.pub .ssh/authorized_keys"
check "sshd accepts the workers' config (sshd -t)" run_in_root "$user" "$home" "/usr/sbin/sshd -t -f $home/.sshd_config"
# An ssh session gets sshd's default PATH, not the image's ENV: mpirun finds orted there and starts the
# rank wrapper (gaudi_spawn) by its absolute path, which is what the login checks. 127.0.0.1, not
# localhost: an image has no /etc/hosts of its own (docker and Kubernetes supply one at run time).
exe=$(chroot "$root" /usr/bin/env PATH="${vars[PATH]}" sh -c 'command -v gaudi_spawn')
ssh_test="ip link set lo up && runuser -u $user -- /usr/sbin/sshd -f $home/.sshd_config && sleep 1 &&
  runuser -u $user -- ssh -p ${port:-22} -o BatchMode=yes 127.0.0.1 'command -v orted && $exe --help | head -1';
  rc=\$?; kill \$(cat $home/sshd.pid) 2>/dev/null; exit \$rc"
check "a key login on port ${port:-22} as $user finds orted and runs $exe (sshd in its own network namespace)" \
  unshare --net chroot "$root" /usr/bin/env -i HOME="$home" PATH="${vars[PATH]}" /bin/sh -c "$ssh_test"
rm -f "$root.check.log"
[ "$failed" = 0 ] && say "every RUN step and check passed" || { say "some checks failed"; keep=1; }
exit "$failed"
