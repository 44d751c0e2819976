#!/usr/bin/env bash
# Kills run_mlm with SIGKILL at several moments while it writes a checkpoint every step, and checks
# each time that the newest complete checkpoint still loads (exported through run_mlm --export_hf),
# and that a rerun resumes from it. Also: bad flags give one line and exit 2.
set -euo pipefail
bin=$1; src=$2
work=$(mktemp -d /tmp/mpibert-atomic.XXXXXX); trap 'rm -rf "$work"' EXIT
cd "$work"
# A small corpus of our own: the test must not depend on the network.
python3 - <<'PY'
import random
random.seed(5)
words = "the a cat dog sat ran on in under mat house tree red blue small big quickly slowly and but".split()
with open("corpus.txt", "w") as f:
    for d in range(300):
        for s in range(random.randint(2, 6)):
            f.write(" ".join(random.choice(words) for _ in range(random.randint(4, 14))) + " .\n")
        f.write("\n")
PY
"$bin/prepare_data" all --data.input corpus.txt --data.shards_dir shards --data.vocab_size 200 --data.seq_len 32 \
  --data.validation_fraction 0.1 >prep.log 2>&1 || { cat prep.log; exit 1; }
common=(--data.shards_dir shards --data.seq_len 32 --model.preset tiny --per_device_train_batch_size 4 --save_steps 1 --save_total_limit 2
        --logging_steps 1 --max_steps 400 --do_eval false --precision fp32 --dist.threads 1)

# Each round starts run_mlm (which resumes from the newest checkpoint once there is one), waits until it
# has completed a checkpoint of its own in this round, then kills it a moment later: with a checkpoint
# every step, the kill lands at various points of a save.
for delay in 0.05 0.2 0.35 0.6; do
  before=$(cat out/latest 2>/dev/null || true)
  "$bin/run_mlm" "${common[@]}" --output_dir out >run.log 2>&1 &
  pid=$!
  for _ in $(seq 1 1200); do  # up to 120 s for a cold start
    now=$(cat out/latest 2>/dev/null || true)
    [ -n "$now" ] && [ "$now" != "$before" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  sleep "$delay"
  kill -9 "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  [ -f out/latest ] || { echo "FAIL: no checkpoint was completed"; cat run.log; exit 1; }
  ck="out/$(cat out/latest)"
  "$bin/run_mlm" --export_hf "$ck" --output_dir "export-$delay" >export.log 2>&1 \
    || { echo "FAIL: checkpoint $ck does not load after SIGKILL"; cat export.log; exit 1; }
  test -f "export-$delay/model.safetensors"
  echo "ok: killed ${delay}s after a save, $ck loads"
done
test -f out/latest || { echo "FAIL: no checkpoint was ever completed"; exit 1; }
# Stale temporary directories never count as checkpoints and are cleaned on the next start.
"$bin/run_mlm" "${common[@]}" --output_dir out --max_steps 1 >resume.log 2>&1 || true
grep -q "resuming from" resume.log || grep -q "resuming from" out/logs/rank-0.log \
  || { echo "FAIL: the rerun did not resume"; cat resume.log; exit 1; }
if ls -d out/.tmp-checkpoint-* >/dev/null 2>&1; then echo "FAIL: stale temporary checkpoint left"; exit 1; fi

# Bad input: one line, exit 2.
set +e
"$bin/run_mlm" --learning_rat 1 >bad.out 2>bad.err; code=$?
set -e
[ "$code" = 2 ] || { echo "FAIL: bad flag exit code $code"; exit 1; }
[ "$(wc -l <bad.err)" = 1 ] || { echo "FAIL: expected one error line"; cat bad.err; exit 1; }
grep -q "did you mean '--learning_rate'" bad.err
set +e
"$bin/run_mlm" --data.shards_dir /nonexistent --output_dir o2 >/dev/null 2>bad2.err; code=$?
set -e
[ "$code" = 2 ] || { echo "FAIL: missing shards exit code $code"; cat bad2.err; exit 1; }
echo "checkpoint_atomic: all checks passed"
