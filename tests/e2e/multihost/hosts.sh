# Namespace "hosts" for tests/e2e/multihost.sh (sourced). Each host is a network namespace with one
# interface on a bridge that lives in a namespace of its own; addresses come from 198.18.0.0/24 (the
# benchmarking test range) and exist only inside these namespaces: the root namespace gets none and no
# route leads out. Names carry a per-run prefix, so runs never collide.
# Needs: $id (unique prefix, <= 8 characters), $work (the run's directory).

mh_subnet=198.18.0
mh_hosts=""

# mh_ns HOST: the namespace of HOST.
mh_ns() { echo "${id}$1"; }
# mh_tmp HOST: the directory that is HOST's /tmp (h1 keeps the machine's).
mh_tmp() { [ "$1" = h1 ] && echo /tmp || echo "$work/$1-tmp"; }

# mh_setup N: hosts h1..hN; returns non-zero (with the reason on stderr) when namespaces cannot be made.
mh_setup() {
  local n=$1 i ns
  ip netns add "${id}br" || return 1
  ip -n "${id}br" link add br0 type bridge && ip -n "${id}br" link set br0 up || return 1
  for i in $(seq 1 "$n"); do
    ns=$(mh_ns "h$i")
    ip netns add "$ns" || return 1
    mh_hosts="$mh_hosts h$i"
    ip -n "${id}br" link add "port$i" type veth peer name eth0 netns "$ns" || return 1
    ip -n "${id}br" link set "port$i" master br0 up || return 1
    ip -n "$ns" addr add "$mh_subnet.$i/24" dev eth0 || return 1
    ip -n "$ns" link set eth0 up && ip -n "$ns" link set lo up || return 1
    mkdir -p "/etc/netns/$ns" "$(mh_tmp "h$i")"
    # Names resolve from each host's own /etc/hosts; a name not there asks a resolver on its own
    # loopback, where nothing listens, so no lookup ever leaves the namespace.
    { echo "127.0.0.1 localhost"; for j in $(seq 1 "$n"); do echo "$mh_subnet.$j h$j"; done; } >"/etc/netns/$ns/hosts"
    echo "nameserver 127.0.0.1" >"/etc/netns/$ns/resolv.conf"
    echo "$mh_subnet.$i $ns $(mh_tmp "h$i")" >>"$work/hosts.map"
  done
}

# mh_run HOST CMD...: runs CMD on HOST (its network namespace and hostname), in the foreground.
mh_run() {
  local host=$1
  shift
  ip netns exec "$(mh_ns "$host")" unshare --uts sh -c 'hostname "$0" && exec "$@"' "$host" "$@"
}

# mh_pids HOST: the processes on HOST.
mh_pids() { ip netns pids "$(mh_ns "$1")" 2>/dev/null; }

# mh_kill_all HOST: SIGKILL for every process on HOST (a host crash).
mh_kill_all() {
  local p
  for p in $(mh_pids "$1"); do kill -KILL "$p" 2>/dev/null; done
}

# mh_bytes HOST: bytes sent and received on HOST's interface.
mh_bytes() {
  ip netns exec "$(mh_ns "$1")" sh -c 'echo $(( $(cat /sys/class/net/eth0/statistics/tx_bytes) + $(cat /sys/class/net/eth0/statistics/rx_bytes) ))'
}

# mh_teardown: every process in our namespaces killed, the namespaces and their /etc/netns files removed.
mh_teardown() {
  local h ns
  for h in $mh_hosts; do mh_kill_all "$h"; done
  for h in $mh_hosts br; do
    [ "$h" = br ] && ns="${id}br" || ns=$(mh_ns "$h")
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
}
