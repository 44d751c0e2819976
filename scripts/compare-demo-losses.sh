#!/usr/bin/env bash
# Proves that a change leaves training numerics untouched: builds BASE (a commit) and the working tree
# side by side on this machine, runs the demo pipeline (prepare_data + run_mlm on 2 ranks) with each,
# and compares the shard hashes, every logged loss and the evaluation results bit for bit.
# A golden file would differ across CPUs and BLAS kernels; two builds on one machine do not.
#
#   scripts/compare-demo-losses.sh [--base REV] [--config FILE] [--max_steps N]
#
# Defaults: --base origin/main if it exists else HEAD~1, --config configs/demo.yaml, the config's steps.
# Exit 0 when identical, 1 when anything differs (the differing rows are printed), 2 on bad usage.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

base=""
config=configs/demo.yaml
steps=()
while [ $# -gt 0 ]; do
  case "$1" in
    --base) base=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --max_steps) steps=(--max_steps "$2"); shift 2 ;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare-demo-losses.sh: error: unknown argument '$1' (valid: --base REV, --config FILE, --max_steps N)" >&2
       exit 2 ;;
  esac
done
if [ -z "$base" ]; then
  base=HEAD~1
  git rev-parse -q --verify origin/main >/dev/null && base=origin/main
fi
base_commit=$(git rev-parse --verify -q "$base^{commit}") ||
  { echo "compare-demo-losses.sh: error: --base '$base' is not a commit" >&2; exit 2; }
[ -f "$config" ] || { echo "compare-demo-losses.sh: error: --config $config: no such file" >&2; exit 2; }

bash scripts/fetch-corpus.sh >/dev/null
work=$(mktemp -d /tmp/mpibert-compare.XXXXXX)
cleanup() {
  if [ "$BASHPID" = "$$" ]; then
    git -C "$root" worktree remove --force "$work/base-src" >/dev/null 2>&1 || true
    rm -rf "$work"
  fi
}
trap cleanup EXIT

targets=(gaudi_spawn prepare_data run_mlm)
echo "== building base $base_commit and the working tree"
git worktree add -q --detach "$work/base-src" "$base_commit"
mkdir -p "$work/base-src/data" && ln -s "$root/data/corpus" "$work/base-src/data/corpus"
(cd "$work/base-src" && bash scripts/build.sh --target "${targets[@]}" >"$work/base-build.log" 2>&1) ||
  { tail -n 30 "$work/base-build.log" >&2; exit 1; }
bash scripts/build.sh --target "${targets[@]}" >"$work/head-build.log" 2>&1 ||
  { tail -n 30 "$work/head-build.log" >&2; exit 1; }

# run NAME SRC: the demo pipeline with SRC's programs, into $work/NAME.
run() {
  local name=$1 src=$2 bin=$2/build/bin
  echo "== $name: prepare_data + run_mlm (2 ranks)"
  (cd "$src" && "$bin/gaudi_spawn" --world_size 2 prepare_data all --config "$root/$config" \
      --data.shards_dir "$work/$name-shards" >"$work/$name-prepare.log" 2>&1) ||
    { tail -n 20 "$work/$name-prepare.log" >&2; exit 1; }
  (cd "$src" && "$bin/gaudi_spawn" --world_size 2 --use_mpi run_mlm --config "$root/$config" \
      --data.shards_dir "$work/$name-shards" --output_dir "$work/$name-run" --overwrite_output_dir \
      "${steps[@]}" >"$work/$name-train.log" 2>&1) ||
    { tail -n 20 "$work/$name-train.log" >&2; exit 1; }
}
run base "$work/base-src"
run head "$root"

# The numbers that must agree: shard hashes, each logged step's loss/grad_norm/lr, evaluation results.
python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
def shards(name):
    return [(s["file"], s["sha256"]) for s in json.load(open(f"{work}/{name}-shards/manifest.json"))["shards"]]
def rows(name):
    keep = ("step", "loss", "learning_rate", "grad_norm", "eval_loss", "eval_accuracy")
    out = []
    for line in open(f"{work}/{name}-run/metrics.jsonl"):
        r = json.loads(line)
        out.append({k: r[k] for k in keep if k in r})
    return out
bad = 0
if shards("base") != shards("head"):
    print("shards differ:", shards("base"), shards("head")); bad += 1
b, h = rows("base"), rows("head")
if len(b) != len(h):
    print(f"metrics.jsonl: {len(b)} rows in base, {len(h)} in head"); bad += 1
for rb, rh in zip(b, h):
    if rb != rh:
        print("differs:", rb, "vs", rh); bad += 1
steps = [r["step"] for r in b if "loss" in r]
print(f"compared {len(b)} metrics rows (steps {steps[0]}..{steps[-1]}) and {len(shards('base'))} shards: "
      + ("bit-identical" if bad == 0 else f"{bad} difference(s)"))
sys.exit(1 if bad else 0)
EOF
