#!/usr/bin/env bash
# OpenBLAS's own core against the one the programs fit to the CPU (see docs/training.md, "BLAS core"),
# side by side: bench_step (ours only) alternates between OPENBLAS_CORETYPE=<OpenBLAS's own choice> and the
# fitted core, REPEATS times each, and prints one JSON object per model and precision on stdout:
#   {"bench": "blas_fit", "model": M, "precision": P, "own_core": C0, "fitted_core": C1,
#    "gemm_gflops": {"own": G0, "fitted": G1}, "tokens_per_s": {"own": T0, "fitted": T1},
#    "gemm_ratio": G1 / G0, "step_ratio": T1 / T0, ...}   (medians of the repeats)
# and a table on stderr. Where OpenBLAS's own choice already fits the CPU, it says so and measures nothing.
#
# Usage: bench/blas_fit.sh [MODELS] [PRECISIONS] [REPEATS]
#   MODELS      comma-separated presets (default mini,base)
#   PRECISIONS  comma-separated (default fp32,bf16)
#   REPEATS     runs of each side (default 3)
# Environment: BIN_DIR (default build/bin), BLAS_FIT_ARGS extra bench_step flags (default
# "--vocab 8000 --batch 8 --seq_len 128 --steps 4 --warmup 3 --gemm_n 1024 --threads 2").
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
models=${1:-mini,base}
precisions=${2:-fp32,bf16}
repeats=${3:-3}
bin=${BIN_DIR:-build/bin}
read -r -a extra <<<"${BLAS_FIT_ARGS:---vocab 8000 --batch 8 --seq_len 128 --steps 4 --warmup 3 --gemm_n 1024 --threads 2}"
for p in bench_step blas_probe; do
  [ -x "$bin/$p" ] || { echo "bench/blas_fit.sh: $bin/$p is not built (set BIN_DIR)" >&2; exit 2; }
done
[ -z "${OPENBLAS_CORETYPE:-}" ] || { echo "bench/blas_fit.sh: unset OPENBLAS_CORETYPE first (it is measured here)" >&2; exit 2; }

own=$(MPIBERT_BLAS_FIT=0 "$bin/blas_probe" | sed -n 's/^blas_probe: core \([A-Za-z0-9_]*\):.*/\1/p')
work=$(mktemp -d "${TMPDIR:-/tmp}/blas_fit.XXXXXX")
trap 'rm -rf "$work"' EXIT
# The fitted core: what bench_step itself runs when nothing is set.
"$bin/bench_step" --no_baseline --models mini --precisions fp32 --steps 1 --warmup 0 --gemm_n 64 --vocab 8000 \
  --batch 2 --seq_len 16 >"$work/probe.jsonl" 2>"$work/probe.err" ||
  { cat "$work/probe.err" >&2; exit 1; }
fitted=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["openblas_coretype"])' "$work/probe.jsonl")
if [ -z "$own" ] || [ "$fitted" = auto ] || [ "$fitted" = "$own" ]; then
  echo "{\"bench\": \"blas_fit\", \"own_core\": \"$own\", \"fitted_core\": \"$own\", \"note\": \"OpenBLAS's own choice fits this CPU: nothing to compare\"}"
  exit 0
fi

for r in $(seq 1 "$repeats"); do
  for side in own fitted; do
    core=$own
    [ "$side" = fitted ] && core=$fitted
    echo "bench/blas_fit.sh: run $r of $repeats, $side core $core" >&2
    "$bin/bench_step" --no_baseline --models "$models" --precisions "$precisions" --openblas_coretype "$core" \
      "${extra[@]}" >"$work/$side-$r.jsonl" 2>"$work/$side-$r.err" || { tail -20 "$work/$side-$r.err" >&2; exit 1; }
  done
done

python3 - "$work" "$own" "$fitted" "$repeats" <<'PY'
import glob, json, statistics, sys
work, own, fitted, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
gemm, step, meta = {}, {}, {}
for side in ("own", "fitted"):
    for path in glob.glob(f"{work}/{side}-*.jsonl"):
        for row in map(json.loads, open(path)):
            if row["bench"] == "gemm":
                gemm.setdefault((row["precision"], side), []).append(row["gflops"])
                meta["cpu_avx512_bf16"], meta["cpu_amx_bf16"] = row["cpu_avx512_bf16"], row["cpu_amx_bf16"]
            elif row["bench"] == "step":
                step.setdefault((row["model"], row["precision"], side), []).append(row["ours_tokens_per_s"])
                meta.update(batch=row["batch"], seq_len=row["seq_len"], threads=row["threads"], vocab=row.get("vocab"))
print(f"{'model':8} {'precision':9} {'GEMM ' + own:>16} {'GEMM ' + fitted:>16} {'ratio':>6} "
      f"{'tok/s ' + own:>16} {'tok/s ' + fitted:>18} {'ratio':>6}", file=sys.stderr)
for (model, precision, side) in sorted(k for k in step if k[2] == "own"):
    g = {s: statistics.median(gemm[(precision, s)]) for s in ("own", "fitted")}
    t = {s: statistics.median(step[(model, precision, s)]) for s in ("own", "fitted")}
    out = {"bench": "blas_fit", "model": model, "precision": precision, "own_core": own, "fitted_core": fitted,
           "repeats": repeats, "gemm_gflops": g, "tokens_per_s": t,
           "gemm_ratio": g["fitted"] / g["own"], "step_ratio": t["fitted"] / t["own"], **meta}
    print(json.dumps(out))
    print(f"{model:8} {precision:9} {g['own']:16.1f} {g['fitted']:16.1f} {out['gemm_ratio']:6.2f} "
          f"{t['own']:16.0f} {t['fitted']:18.0f} {out['step_ratio']:6.2f}", file=sys.stderr)
PY
