#!/usr/bin/env bash
# Numbers across two "hosts" made of network namespaces on a veth bridge (tests/e2e/multihost/hosts.sh),
# gaudi_spawn started on h1 with the test agent in ssh's place, one rank per host, Open MPI over TCP:
#   1. bench_allreduce: HcclLike against raw MPI, bus bandwidth by message size (its own JSON lines);
#   2. run_mlm's training throughput on CONFIG with the link unlimited, at 1 Gbit/s and at 100 Mbit/s
#      (tc tbf on both ends of h2's link: this kernel has no netem), next to the same 2 ranks on one host.
# JSON lines on stdout (also OUT/multihost.jsonl), a table on stderr. Both hosts share this machine's cores,
# so compare the rows with each other, not with a real cluster.
# Usage (as root): bench/multihost.sh [CONFIG] [STEPS]
#   CONFIG  run file (default configs/demo.yaml; its data prepared: prepare_data all --config CONFIG)
#   STEPS   training steps per run (default 20)
# Environment: BIN_DIR (default build/bin), MULTIHOST_OUT (default runs/multihost).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
src=$PWD
config=${1:-configs/demo.yaml}
steps=${2:-20}
die() {
  echo "bench/multihost.sh: $*" >&2
  exit 2
}
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, tc)"
for tool in ip tc unshare; do command -v "$tool" >/dev/null || die "needs $tool (iproute2, util-linux)"; done
bin=$(cd "${BIN_DIR:-build/bin}" 2>/dev/null && pwd) || die "no ${BIN_DIR:-build/bin} (set BIN_DIR)"
for p in gaudi_spawn run_mlm bench_allreduce; do [ -x "$bin/$p" ] || die "$bin/$p is not built"; done
[ -f "$config" ] || die "config '$config' not found"
out=${MULTIHOST_OUT:-runs/multihost}
mkdir -p "$out" && out=$(cd "$out" && pwd)
rm -f "$out/multihost.jsonl"

work=$(mktemp -d /tmp/mpibert-mhbench.XXXXXX)
id="mb$$"
id=${id:0:8}
source "$src/tests/e2e/multihost/hosts.sh"
trap 'mh_teardown; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
mh_setup 2 2>"$work/setup.err" || die "cannot make network namespaces: $(head -1 "$work/setup.err")"

# spawn ARGS...: gaudi_spawn on h1, one thread per rank (both hosts share this machine's cores).
spawn() {
  mh_run h1 "$bin/gaudi_spawn" --launch_agent "$src/tests/e2e/multihost/agent.sh $work/hosts.map" \
    --network_interface "$mh_subnet.0/24" --bind_to none --threads_per_rank 1 "$@"
}
emit() { echo "$1" | tee -a "$out/multihost.jsonl"; }

# limit RATE: tbf on h2's interface and on the bridge port that sends to it; "" removes the limit.
limit() {
  local dev ns
  for dev in "$(mh_ns h2):eth0" "${id}br:port2"; do
    ns=${dev%%:*}
    ip -n "$ns" link set "${dev#*:}" up
    tc -n "$ns" qdisc del dev "${dev#*:}" root 2>/dev/null
    [ -z "$1" ] || tc -n "$ns" qdisc add dev "${dev#*:}" root tbf rate "$1" burst 256kb latency 100ms || return 1
  done
}

echo "== bench_allreduce, 1 rank on each host (TCP over the bridge)" >&2
spawn --hosts h1:1,h2:1 "$bin/bench_allreduce" --max_bytes 16777216 --target_ms 100 >"$work/allreduce.out" \
  2>"$work/allreduce.err" || { cat "$work/allreduce.err" >&2; die "bench_allreduce failed"; }
grep '^{' "$work/allreduce.out" | while read -r line; do emit "${line%\}}, \"link\": \"namespaces, TCP\"}"; done
grep -v '^{' "$work/allreduce.out" >&2

# train LABEL HOSTS [RATE]: run_mlm for STEPS steps; one JSON line with its throughput.
base_sps=""
train() {
  local label=$1 hosts=$2 rate=${3:-} run
  run="$out/run-$(echo "$label" | tr -cs 'a-zA-Z0-9\n' '-')"
  limit "$rate" || die "tc could not limit the link to $rate"
  echo "== run_mlm, $label" >&2
  if ! spawn --hosts "$hosts" --log_dir "$run/launcher-logs" "$bin/run_mlm" --config "$config" --output_dir "$run" \
    --overwrite_output_dir --max_steps "$steps" --save_steps 0 --eval_steps 0 --do_eval false \
    >"$run.console.log" 2>&1; then
    tail -5 "$run.console.log" >&2
    die "run_mlm failed ($label); see $run.console.log"
  fi
  local sps batch
  sps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["train_samples_per_second"])' \
    "$run/train_results.json")
  batch=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["global_batch"])' "$run/$(cat "$run/latest" 2>/dev/null)/trainer_state.json" 2>/dev/null ||
    echo 0)
  [ -n "$base_sps" ] || base_sps=$sps
  emit "$(printf '{"bench": "multihost_step", "case": "%s", "hosts": "%s", "link_rate": "%s", "samples_per_second": %s, "global_batch": %s, "seconds_per_step": %s, "ratio_to_one_host": %s, "steps": %d, "config": "%s"}' \
    "$label" "$hosts" "${rate:-unlimited}" "$sps" "$batch" \
    "$(awk -v s="$sps" -v b="$batch" 'BEGIN { printf "%.4f", (s > 0 && b > 0) ? b / s : 0 }')" \
    "$(awk -v s="$sps" -v b="$base_sps" 'BEGIN { printf "%.4f", s / b }')" "$steps" "$config")"
}
train "one host" h1:2
train "two hosts" h1:1,h2:1
train "two hosts, 1 Gbit/s" h1:1,h2:1 1gbit
train "two hosts, 100 Mbit/s" h1:1,h2:1 100mbit
limit ""
