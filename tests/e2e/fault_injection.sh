#!/usr/bin/env bash
# Faults on purpose (MPIBERT_FAULT, worker/train/fault_injection.h) in a real 2-rank run_mlm job under
# gaudi_spawn: a rank produces NaN, SIGKILLs itself, stops (SIGSTOP, as a stuck host) or issues a
# collective the other rank does not. Each job must end non-zero within its bound with a message naming
# the rank and the cause, keep the last good checkpoint as `latest`, export nothing, and the rerun must
# resume from it with the losses of a run that never failed; with gaudi_spawn --max_restarts 1 a killed rank
# is restarted by itself and the run finishes with those losses.
# Usage: fault_injection.sh BIN_DIR SOURCE_DIR
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

tiny_corpus 11 60 >corpus.txt
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
  per_device_train_batch_size: 4
  max_steps: 6
  logging_steps: 1
  save_steps: 2
  save_total_limit: 5
  do_eval: false
  learning_rate: 1.0e-3
  precision: fp32
dist:
  threads: 1
  timeout_s: 20
YAML
"$bin/prepare_data" all --config tiny.yaml >prep.log 2>&1 || { cat prep.log >&2; exit 1; }

# run NAME FAULT [ARGS...]: a 2-rank job with MPIBERT_FAULT=FAULT into out-NAME, bounded at 150 s;
# sets $code and $seconds.
run() {
  local name=$1 fault=$2 start
  shift 2
  start=$(now)
  MPIBERT_FAULT=$fault timeout -k 5 "$(scaled 150)" "$G" --world_size 2 run_mlm --config tiny.yaml --output_dir "out-$name" "$@" \
    >"$name.out" 2>"$name.err"
  code=$?
  seconds=$(seconds_since "$start")
}

# losses FILE FROM TO: "step loss" lines of metrics.jsonl's training rows in [FROM, TO].
losses() {
  python3 - "$@" <<'PY'
import json, sys
path, lo, hi = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for line in open(path):
    r = json.loads(line)
    if "loss" in r and "eval_loss" not in r and lo <= r["step"] <= hi:
        print(r["step"], repr(r["loss"]))
PY
}

# after_fault NAME: the common checks of a failed job (non-zero, bounded, latest kept, nothing exported).
after_fault() {
  local name=$1 bound
  bound=$(scaled "$2")
  [ "$code" -ne 0 ] && pass "$name: the job failed (exit $code)" || fail "$name: exit 0"
  [ "$seconds" -lt "$(scaled 150)" ] || fail "$name: the job hung until the test's timeout"
  [ "$seconds" -le "$bound" ] && pass "$name: ended in ${seconds}s (bound ${bound}s)" \
    || fail "$name: took ${seconds}s (bound ${bound}s)"
  [ "$(cat "out-$name/latest" 2>/dev/null)" = checkpoint-2 ] && pass "$name: latest is still checkpoint-2" \
    || fail "$name: latest is '$(cat "out-$name/latest" 2>/dev/null)', expected checkpoint-2"
  [ ! -e "out-$name/final/model.safetensors" ] && pass "$name: nothing exported" || fail "$name: final/ exported"
}

echo "== a run without faults (the reference losses)"
run clean ""
expect_code 0 "$code" "clean run"
losses out-clean/metrics.jsonl 3 6 >clean.losses

echo "== nan@3:1: rank 1's loss is NaN at step 3 (train.nan_policy abort)"
run nan "nan@3:1"
after_fault nan 60
expect_grep 'step 3: the loss is nan .*non-finite on rank\(s\) 1' nan.err "nan: the message names the step, the rank and the cause"
expect_no_grep 'Segmentation|core dumped|terminate called' nan.err "nan: no crash"

echo "== rerun without the fault: resumes from checkpoint-2 with the clean run's losses"
run nan "" 
expect_code 0 "$code" "resumed run"
expect_grep 'resuming from .*checkpoint-2' out-nan/logs/rank-0.log "the rerun resumed from checkpoint-2"
losses out-nan/metrics.jsonl 3 6 >resumed.losses
if [ -s clean.losses ] && cmp -s clean.losses resumed.losses; then pass "losses of steps 3-6 equal the clean run's"; else
  fail "losses differ after the resume:"; paste clean.losses resumed.losses >&2
fi

echo "== nan@3:1 with train.nan_policy skip_step: the step is skipped, the run finishes"
run skip "nan@3:1" --train.nan_policy skip_step
expect_code 0 "$code" "skip_step run"
expect_grep 'step 3: non-finite loss .*update skipped' skip.err "skip: the skipped step is named"
[ -f out-skip/final/model.safetensors ] && pass "skip: final/ exported" || fail "skip: no final/"

echo "== kill@3:1: rank 1 is killed by SIGKILL at step 3"
run kill "kill@3:1"
after_fault kill 60
expect_grep 'rank 1.*(signal 9|SIGKILL|killed)' kill.err "kill: gaudi_spawn names rank 1 and the signal"

echo "== kill@3:1 with gaudi_spawn --max_restarts 1: restarted on the same host, finishes with the clean losses"
# The launch host is never dropped; the fault fires in the first attempt only.
MPIBERT_FAULT=kill@3:1 timeout -k 5 "$(scaled 150)" "$G" --world_size 2 --max_restarts 1 --log_dir "$work/elastic-logs" \
  run_mlm --config tiny.yaml --output_dir out-elastic >elastic.out 2>elastic.err
expect_code 0 $? "elastic: the job finished"
expect_grep '^gaudi_spawn: error: rank 1 on host .* was killed by signal 9' elastic.err "elastic: the failure is named"
expect_grep '^gaudi_spawn: restarting in 1 s on the same hosts, from the latest checkpoint \(restart 1 of 1\)$' \
  elastic.err "elastic: the restart is announced"
expect_grep '^gaudi_spawn: restart 1 of 1 \(job [^)]*\): 2 ranks on 1 host' elastic.err "elastic: with its plan"
expect_grep 'elastic job .*: attempt 2 \(restart 1 of at most 1\), 2 rank' out-elastic/logs/rank-0.log \
  "elastic: run_mlm logged its attempt"
expect_grep 'resuming from .*checkpoint-2' out-elastic/logs/rank-0.log "elastic: resumed from checkpoint-2"
losses out-elastic/metrics.jsonl 3 6 >elastic.losses
if [ -s clean.losses ] && cmp -s clean.losses elastic.losses; then pass "elastic: losses of steps 3-6 equal the clean run's"; else
  fail "elastic: losses differ:"; paste clean.losses elastic.losses >&2
fi
[ -f out-elastic/final/model.safetensors ] && pass "elastic: final/ exported" || fail "elastic: no final/"
expect_grep '"rank": 1' elastic-logs/error.json "elastic: the error file names rank 1"
expect_grep '"then": "restart 1 on the same hosts"' elastic-logs/error.json "elastic: and what followed"

echo "== hang@3:1: rank 1 stops (SIGSTOP) at step 3; dist.timeout_s 20"
run hang "hang@3:1"
after_fault hang 90
expect_grep 'rank 1 \(host [^)]*\) has not issued it' hang.err "hang: the message names rank 1 and its host"
expect_grep 'did not finish within 20 s' hang.err "hang: and the timeout"

echo "== mismatch@3:1 under dist.debug detail: rank 1 issues a collective rank 0 does not"
run mismatch "mismatch@3:1" --dist.debug detail
after_fault mismatch 60
expect_grep 'the ranks issued different collectives: rank 0 issued allReduce #[0-9]+ \(4 x f64, sum\), rank 1 issued allReduce #[0-9]+ \(3 x f64, sum\)' \
  mismatch.err "mismatch: both sides are named"

echo "== dist.stall_warning_s: a warning names the missing rank long before the timeout"
run stall "hang@3:1" --dist.stall_warning_s 3
expect_grep 'warning: .* has waited 3 s: rank 1 \(host [^)]*\) has not issued it' stall.err "stall: warned at 3 s"

echo "== a malformed MPIBERT_FAULT is a usage error"
MPIBERT_FAULT=explode@1 "$bin/run_mlm" --config tiny.yaml --output_dir out-bad >bad.out 2>bad.err
expect_code 2 $? "MPIBERT_FAULT=explode@1"
expect_grep "MPIBERT_FAULT='explode@1' is not valid" bad.err "the error names the variable and the valid forms"
no_leftovers "out-(nan|kill|hang|mismatch|stall)"
finish
