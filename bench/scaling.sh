#!/usr/bin/env bash
# Weak scaling of run_mlm under gaudi_spawn: the same per-rank batch (from the config) at each world size,
# so ideal throughput grows with N. Prints a table on stderr and one JSON object per world size on stdout:
#   {"bench": "scaling", "world_size": N, "samples_per_second": S, "efficiency": S / (N * S1), ...}
# where S1 is the throughput at the smallest size run (scaled to one rank). Throughput is run_mlm's own
# train_samples_per_second from OUTPUT_DIR/train_results.json.
#
# It also draws OUT/scaling.png (throughput and efficiency against world size, matplotlib) and
# OUT/runs.png (every run's curves overlaid, with plot_run).
#
# Usage: bench/scaling.sh [CONFIG] [STEPS] [SIZES]
#   CONFIG  run file (default configs/demo.yaml; its data must be prepared: prepare_data all --config CONFIG)
#   STEPS   training steps per run (default 20)
#   SIZES   world sizes, quoted (default "1 2 4"); more ranks than cores are oversubscribed (and flagged)
# Environment: BIN_DIR (default build/bin), SCALING_OUT (default runs/scaling), SCALING_TIMEOUT seconds per
# run (default 3600), SCALING_ARGS extra run_mlm flags, SCALING_LAUNCH_ARGS extra gaudi_spawn options (e.g.
# "--threads_per_rank 1"; both split on spaces).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
config=${1:-configs/demo.yaml}
steps=${2:-20}
sizes=${3:-1 2 4}
bin=${BIN_DIR:-build/bin}
out_root=${SCALING_OUT:-runs/scaling}
timeout=${SCALING_TIMEOUT:-3600}
read -r -a extra <<<"${SCALING_ARGS:-}"
read -r -a launch_extra <<<"${SCALING_LAUNCH_ARGS:-}"
cores=$(nproc)

for p in gaudi_spawn run_mlm; do
  [ -x "$bin/$p" ] || { echo "bench/scaling.sh: $bin/$p is not built (set BIN_DIR)" >&2; exit 2; }
done
[ -f "$config" ] || { echo "bench/scaling.sh: config '$config' not found" >&2; exit 2; }

status=0
mkdir -p "$out_root"
rm -f "$out_root/scaling.jsonl"
base_size=""
base_sps=""
printf '%-10s %-8s %14s %12s %s\n' world_size threads samples/s efficiency note >&2
for n in $sizes; do
  out="$out_root/ws$n"
  rm -rf "$out"
  mkdir -p "$out"
  threads=$("$bin/gaudi_spawn" --world_size "$n" "${launch_extra[@]}" --dry_run run_mlm 2>/dev/null |
            sed -n 's/^OMP_NUM_THREADS=//p')
  note=""
  [ "$n" -gt "$cores" ] && note="oversubscribed ($n ranks on $cores cores)"
  if ! "$bin/gaudi_spawn" --world_size "$n" "${launch_extra[@]}" --log_dir "$out/launcher-logs" --timeout "$timeout" \
      run_mlm --config "$config" --output_dir "$out" --overwrite_output_dir --max_steps "$steps" \
      --save_steps 0 "${extra[@]}" >"$out/console.log" 2>&1; then
    echo "bench/scaling.sh: world size $n failed; see $out/console.log and $out/launcher-logs" >&2
    printf '{"bench": "scaling", "world_size": %d, "error": "run failed", "log": "%s/console.log"}\n' "$n" "$out"
    status=1
    continue
  fi
  sps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["train_samples_per_second"])' \
        "$out/train_results.json") || { echo "bench/scaling.sh: no train_samples_per_second in $out" >&2; status=1; continue; }
  if [ -z "$base_size" ]; then
    base_size=$n
    base_sps=$sps
  fi
  eff=$(awk -v s="$sps" -v n="$n" -v b="$base_sps" -v bn="$base_size" 'BEGIN { printf "%.4f", s / (n / bn * b) }')
  printf '%-10s %-8s %14.2f %12s %s\n' "$n" "$threads" "$sps" "$eff" "$note" >&2
  printf '{"bench": "scaling", "world_size": %d, "threads_per_rank": %s, "samples_per_second": %s, "efficiency": %s, "baseline_world_size": %d, "baseline_samples_per_second": %s, "steps": %d, "cores": %d, "oversubscribed": %s, "config": "%s"}\n' \
    "$n" "${threads:-0}" "$sps" "$eff" "$base_size" "$base_sps" "$steps" "$cores" \
    "$([ -n "$note" ] && echo true || echo false)" "$config" | tee -a "$out_root/scaling.jsonl"
done
draw_efficiency() {  # scaling.jsonl -> scaling.png
  /usr/bin/python3 - "$out_root/scaling.jsonl" "$out_root/scaling.png" <<'PY'  # Debian's, with python3-matplotlib
import json, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = [r for r in map(json.loads, open(sys.argv[1])) if "efficiency" in r]
n = [r["world_size"] for r in rows]
fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
a.plot(n, [r["samples_per_second"] for r in rows], "o-", label="measured")
a.plot(n, [r["baseline_samples_per_second"] * w / rows[0]["baseline_world_size"] for r, w in zip(rows, n)], "--",
       label="ideal")
a.set(xlabel="ranks", ylabel="samples/s", title="throughput")
a.legend()
b.plot(n, [r["efficiency"] for r in rows], "o-")
b.axhline(1.0, linestyle="--", color="grey")
b.set(xlabel="ranks", ylabel="efficiency", title="weak-scaling efficiency", ylim=(0, 1.1))
for ax in (a, b):
    ax.set_xticks(n)
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
PY
}
if [ -s "$out_root/scaling.jsonl" ]; then
  draw_efficiency && echo "bench/scaling.sh: wrote $out_root/scaling.png" >&2 || status=1
  runs=()
  for n in $sizes; do [ -f "$out_root/ws$n/metrics.jsonl" ] && runs+=("$out_root/ws$n"); done
  "$bin/plot_run" "${runs[@]}" -o "$out_root/runs.png" >/dev/null 2>&1 || echo "bench/scaling.sh: plot_run failed" >&2
fi
exit $status
