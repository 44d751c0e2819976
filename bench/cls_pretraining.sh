#!/usr/bin/env bash
# Does pre-training help? Fine-tunes the same architecture on the Brown genre task from a pre-trained
# model and from random initialisation (same config.json and vocabulary), over several seeds, and
# prints one JSON line per run and a summary line per initialisation (mean and spread of test
# accuracy and macro-F1), plus the majority-class and bag-of-words baselines (bench_cls_baselines).
#
#   bench/cls_pretraining.sh MODEL_DIR [TASK] [SEEDS] [EXTRA run_classification ARGS...]
#
# MODEL_DIR: a run_mlm export (e.g. runs/demo/final). TASK: coarse (default, 4 classes) or genre (15).
# SEEDS: "34 35 36" by default. Runs on 2 ranks with configs/demo-classification.yaml's recipe.
# MPIBERT_BIN: the programs' directory (default build/bin; a copy lets a rebuild go on meanwhile).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
model=${1:?usage: bench/cls_pretraining.sh MODEL_DIR [coarse|genre] [SEEDS] [ARGS...]}
task=${2:-coarse}
seeds=${3:-"34 35 36"}
shift $(( $# < 3 ? $# : 3 ))
[ -f "$model/config.json" ] || { echo "cls_pretraining.sh: error: $model has no config.json" >&2; exit 2; }
case "$task" in
  coarse) suffix=-coarse ;;
  genre) suffix= ;;
  *) echo "cls_pretraining.sh: error: task '$task' (valid: coarse, genre)" >&2; exit 2 ;;
esac
bin=${MPIBERT_BIN:-build/bin}
data=data/brown-genres
[ -f "$data/train$suffix.csv" ] || bash scripts/fetch-corpus.sh >/dev/null
work=$(mktemp -d /tmp/mpibert-cls-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

run() {  # run INIT SEED: one fine-tuning run, prints its JSON line
  local init=$1 seed=$2 out="$work/$1-$2" from
  shift 2  # the rest: extra run_classification arguments
  if [ "$init" = pretrained ]; then
    from=(--model_name_or_path "$model")
  else
    # The same architecture and vocabulary, random weights: the config's init_from is unset.
    from=(--model.init_from "" --model.preset "$model/config.json" --tokenizer_name "$model/vocab.txt")
  fi
  "$bin/gaudi_spawn" --world_size 2 run_classification --config configs/demo-classification.yaml \
    "${from[@]}" --train_file "$data/train$suffix.csv" --validation_file "$data/validation$suffix.csv" \
    --test_file "$data/test$suffix.csv" --seed "$seed" --output_dir "$out" --overwrite_output_dir "$@" \
    >"$out.log" 2>&1 || { tail -n 20 "$out.log" >&2; exit 1; }
  python3 - "$out" "$init" "$seed" "$task" <<'PY'
import json, sys
out, init, seed, task = sys.argv[1:]
r = json.load(open(f"{out}/all_results.json"))
print(json.dumps({"bench": "cls_pretraining", "task": task, "init": init, "seed": int(seed),
                  "test_accuracy": r["test_accuracy"], "test_f1": r["test_f1"], "eval_f1": r["eval_f1"],
                  "train_runtime": r["train_runtime"], "train_samples_per_second": r["train_samples_per_second"]}))
PY
}

for seed in $seeds; do
  for init in pretrained random; do run "$init" "$seed" "$@" | tee -a "$work/runs.jsonl"; done
done
python3 - "$work/runs.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
summary = {}
for init in ("pretrained", "random"):
    acc = [r["test_accuracy"] for r in rows if r["init"] == init]
    f1 = [r["test_f1"] for r in rows if r["init"] == init]
    summary[init] = {"acc_mean": statistics.mean(acc), "acc_stdev": statistics.pstdev(acc),
                     "f1_mean": statistics.mean(f1), "f1_stdev": statistics.pstdev(f1), "runs": len(acc)}
    print(json.dumps({"bench": "cls_pretraining_summary", "task": rows[0]["task"], "init": init, **summary[init]}))
p, r = summary["pretrained"], summary["random"]
print(json.dumps({"bench": "cls_pretraining_gain", "task": rows[0]["task"],
                  "accuracy_gain": p["acc_mean"] - r["acc_mean"], "f1_gain": p["f1_mean"] - r["f1_mean"],
                  "pretrained_beats_random": p["acc_mean"] > r["acc_mean"] and p["f1_mean"] > r["f1_mean"]}))
PY
if [ -x "$bin/bench_cls_baselines" ]; then "$bin/bench_cls_baselines" "$data" 2>/dev/null | grep -i "$task\|majority" || true; fi
