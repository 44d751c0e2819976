#!/usr/bin/env bash
# gaudi_spawn with the real worker: prepares a tiny corpus with `gaudi_spawn --world_size 2 prepare_data
# all`, trains a tiny BERT for 3 steps with `gaudi_spawn --world_size 2 run_mlm` and checks the exit code,
# train_results.json (world_size 2), the console and both ranks' logs; then stops a long run with SIGTERM
# and expects run_mlm's clean preemption (checkpoint, exit 75) through gaudi_spawn. PROGRAM is given by
# name: gaudi_spawn finds run_mlm and prepare_data next to its own binary.
# Usage: launcher_run_mlm.sh BIN_DIR SOURCE_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
src=$2
source "$src/tests/e2e/helpers/launcher_lib.sh"
G="$bin/gaudi_spawn"
for p in gaudi_spawn prepare_data run_mlm; do
  [ -x "$bin/$p" ] || { echo "FAIL: $bin/$p is not built" >&2; exit 1; }
done
make_work_dir
cd "$work"

# A small deterministic corpus: documents of short sentences, separated by blank lines.
tiny_corpus 7 80 >corpus.txt

cat >tiny.yaml <<YAML
data:
  input: $work/corpus.txt
  shards_dir: $work/shards
  vocab_size: 120
  min_frequency: 1
  seq_len: 32
  validation_fraction: 0.1
model:
  preset: tiny
train:
  output_dir: $work/out
  overwrite_output_dir: true
  per_device_train_batch_size: 4
  per_device_eval_batch_size: 4
  max_steps: 3
  logging_steps: 1
  save_steps: 0
  eval_steps: 0
  max_eval_samples: 8
  learning_rate: 1.0e-3
YAML

echo "== gaudi_spawn --world_size 2 prepare_data all"
"$G" --world_size 2 --timeout "$(scaled 300)" prepare_data all --config tiny.yaml >prep.out 2>prep.err
code=$?
expect_code 0 "$code" "prepare_data on 2 ranks"
[ "$code" -eq 0 ] || { sed 's/^/    /' prep.out prep.err >&2; finish; }
[ -f shards/manifest.json ] && pass "shards/manifest.json written" || fail "no shards/manifest.json"

echo "== gaudi_spawn --world_size 2 run_mlm (3 steps)"
"$G" --world_size 2 --use_mpi --log_dir logs --timeout "$(scaled 500)" run_mlm --config tiny.yaml >train.out 2>train.err
code=$?
expect_code 0 "$code" "run_mlm on 2 ranks"
[ "$code" -eq 0 ] || sed 's/^/    /' train.out train.err >&2
if python3 - out/train_results.json <<'PY'; then pass "train_results.json: world_size 2, samples/s > 0"; else fail "train_results.json"; fi
import json, sys
r = json.load(open(sys.argv[1]))
assert r["world_size"] == 2, r
assert r["train_samples_per_second"] > 0, r
PY
expect_grep '\[rank 0\] \[info\] step 3/3 ' train.err "rank 0's progress reaches the console"
expect_grep '\[rank 0\] \[info\] step 3/3 ' logs/rank-0.log "and logs/rank-0.log"
# run_mlm's other ranks log warnings only, so rank-1.log may well be empty; it must exist.
[ -f logs/rank-1.log ] && pass "logs/rank-1.log captured" || fail "logs/rank-1.log missing"

echo "== SIGTERM to gaudi_spawn: run_mlm finishes its step, saves a checkpoint and exits 75"
"$G" --world_size 2 run_mlm --config tiny.yaml --max_steps 100000 --output_dir out-preempt >pre.out 2>pre.err &
pid=$!
wait_for_grep '\[rank 0\] \[info\] step 2/' pre.err || fail "training did not reach step 2"
kill -TERM "$pid"
wait "$pid"
code=$?
expect_code 75 "$code" "gaudi_spawn exits with run_mlm's preemption code"
[ "$code" -eq 75 ] || sed 's/^/    /' pre.err >&2
ls -d out-preempt/checkpoint-* >/dev/null 2>&1 && pass "a checkpoint was written on the way out" \
  || fail "no checkpoint in out-preempt"

finish
