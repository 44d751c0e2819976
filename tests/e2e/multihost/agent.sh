#!/bin/sh
# Open MPI's remote agent for tests/e2e/multihost.sh, in ssh's place (gaudi_spawn --launch_agent
# "agent.sh MAP"): agent.sh MAP [ssh options] HOST COMMAND...
# HOST is resolved like ssh would, in the calling host's namespace (its /etc/hosts), and its address looked
# up in MAP ("ADDRESS NAMESPACE TMP" per line). COMMAND runs in that host's network namespace with its
# own hostname (unshare --uts) and its own /tmp (unshare --mount + a bind mount of TMP), joined into one
# string and run by sh, as ssh runs a remote command.
map=$1
shift
while [ $# -gt 0 ]; do
  case $1 in
    -p | -l | -i | -o | -F) shift 2 ;;  # ssh options with a value (gaudi_spawn --ssh_port gives -p)
    -*) shift ;;
    *) break ;;
  esac
done
host=$1
shift
addr=$(getent hosts "$host" | awk '{print $1; exit}')
[ -n "$addr" ] || { echo "agent.sh: Could not resolve hostname $host: not in this host's /etc/hosts" >&2; exit 255; }
line=$(awk -v a="$addr" '$1 == a { print $2, $3; exit }' "$map")
[ -n "$line" ] || { echo "agent.sh: connect to host $host port 22: No route to host" >&2; exit 255; }
set -- $line "$host" "$*"
exec ip netns exec "$1" unshare --uts --mount sh -c 'mount --bind "$1" /tmp && hostname "$2" && exec sh -c "$3"' \
  agent "$2" "$3" "$4"
