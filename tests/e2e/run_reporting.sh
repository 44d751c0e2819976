#!/usr/bin/env bash
# What a run shows: TensorBoard event files that an independent reader (tfevents_read.py, written from
# upstream's event.proto field numbers) accepts, CRC by CRC, with the same values as metrics.jsonl; a
# resume from an earlier checkpoint that drops the later rows from metrics.jsonl and purges them in
# TensorBoard (SessionLog START); the model card with its training-curve picture; progress lines.
# Usage: run_reporting.sh BIN_DIR SOURCE_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/e2e/helpers/launcher_lib.sh"
for p in prepare_data run_mlm plot_run; do
  [ -x "$bin/$p" ] || { echo "FAIL: $bin/$p is not built" >&2; exit 1; }
done
failures=0
make_work_dir
cd "$work"

python3 - <<'PY'
import random
rnd = random.Random(11)
words = "the a man woman dog cat went to store park house saw big small red blue ran and then said was".split()
with open("corpus.txt", "w") as f:
    for d in range(120):
        for s in range(6):
            f.write(" ".join(rnd.choice(words) for _ in range(rnd.randint(6, 14))) + " .\n")
        f.write("\n")
PY
cat >tiny.yaml <<YAML
data: {input: $work/corpus.txt, shards_dir: $work/shards, vocab_size: 120, min_frequency: 1, seq_len: 32,
       validation_fraction: 0.1}
model: {preset: tiny}
train: {output_dir: $work/out, overwrite_output_dir: true, per_device_train_batch_size: 8, max_steps: 12,
        logging_steps: 2, save_steps: 4, save_total_limit: 0, eval_steps: 4, max_eval_samples: 16,
        learning_rate: 1.0e-3, precision: fp32, cost_per_hour: 3.0}
dist: {threads: 1}
YAML
"$bin/prepare_data" all --config tiny.yaml >prep.out 2>&1
expect_code 0 $? "prepare_data"
"$bin/run_mlm" --config tiny.yaml >run1.out 2>&1
expect_code 0 $? "run_mlm 12 steps"
grep -q "evaluate (rank 0's share): 16/16 examples" run1.out && pass "evaluation reports its progress" ||
  fail "no evaluation progress line"

check_events() {  # check_events WHAT: the event files agree with metrics.jsonl, after TensorBoard's purge
  python3 - "$src/tests/e2e/tfevents_read.py" out <<'PY'
import glob, json, math, os, subprocess, sys
reader, out = sys.argv[1], sys.argv[2]
dirs = glob.glob(f"{out}/runs/*")
assert len(dirs) == 1, f"one logging dir expected under {out}/runs, got {dirs}"
got = json.loads(subprocess.run([sys.executable, reader, "--purge", dirs[0]], check=True,
                                capture_output=True, text=True).stdout)
for f in got["files"]:
    assert f["file_version"] == "brain.Event:2", f
scalars = {}
for wall, step, tag, value in got["scalars"]:
    assert (tag, step) not in scalars, f"{tag} at step {step} twice after the purge"
    scalars[(tag, step)] = value
rows = [json.loads(l) for l in open(f"{out}/metrics.jsonl")]
steps = [r["step"] for r in rows if "loss" in r]
assert steps == sorted(set(steps)), f"metrics.jsonl steps repeat or go back: {steps}"
checked = 0
for r in rows:
    prefix = "eval/" if "eval_loss" in r else "train/"
    for key, value in r.items():
        if key == "step" or not isinstance(value, (int, float)):
            continue
        tag = prefix + (key[5:] if key.startswith("eval_") else key)
        stored = scalars.get((tag, r["step"]))
        assert stored is not None, f"{tag} at step {r['step']} missing from the event files"
        assert math.isclose(stored, value, rel_tol=1e-6, abs_tol=1e-30), (tag, r["step"], stored, value)
        checked += 1
texts = [t for t in got["texts"] if t[2] == "args/text_summary"]
assert texts and "train:" in texts[0][3], "the run configuration is missing"
print(f"{checked} values equal metrics.jsonl; {len(got['files'])} file(s); session logs {got['session_logs']}")
PY
}
check_events >events1.out 2>&1 && pass "event files: $(cat events1.out)" || { fail "event files"; cat events1.out >&2; }

# Resume from checkpoint-4: rows after step 4 disappear from metrics.jsonl and, by the purge, from TensorBoard.
"$bin/run_mlm" --config tiny.yaml --overwrite_output_dir false --resume_from_checkpoint "$work/out/checkpoint-4" \
  --max_steps 10 >run2.out 2>&1
expect_code 0 $? "resume from checkpoint-4 to step 10"
check_events >events2.out 2>&1 && grep -q "START" events2.out && pass "after the resume: $(cat events2.out)" ||
  { fail "event files after the resume"; cat events2.out >&2; }
python3 -c "
import json
rows = [json.loads(l) for l in open('out/metrics.jsonl')]
steps = [r['step'] for r in rows if 'loss' in r]
assert steps == [2, 4, 6, 8, 10], steps
" && pass "metrics.jsonl tells one history (steps 2..10)" || fail "metrics.jsonl after the resume"

# The model card and its picture.
card=out/final/README.md
[ -f "$card" ] && pass "model card written" || fail "no $card"
for want in "pipeline_tag: fill-mask" "## Training data" "### Training results" "estimated cost" "### Command" \
            "run_mlm --config tiny.yaml" "![training curves](training_curves.png)"; do
  grep -qF -- "$want" "$card" && pass "card has '$want'" || fail "card lacks '$want'"
done
/usr/bin/python3 "$src/tests/e2e/png_check.py" out/final/training_curves.png 1200 1050 >png.out 2>&1 &&
  pass "training-curve picture: $(cat png.out)" || { fail "training-curve picture"; cat png.out >&2; }

# --profile DIR: the rank's timeline, a Chrome trace with the steps, their phases, checkpoints and collectives.
"$bin/run_mlm" --config tiny.yaml --output_dir "$work/out-prof" --max_steps 4 --save_steps 2 --report_to none \
  --profile "$work/prof" >prof.out 2>&1
expect_code 0 $? "run_mlm --profile"
python3 - "$work/prof/timeline-rank-0.json" <<'PY' >prof.check 2>&1 && pass "timeline: $(cat prof.check)" ||
import json, sys
events = json.load(open(sys.argv[1]))  # valid JSON once the run closed it
tracks = {e["args"]["name"]: e["tid"] for e in events if e["name"] == "thread_name"}
spans = [e for e in events if e["ph"] == "X"]
names = lambda tid: [e["name"] for e in spans if e["tid"] == tid]
assert names(tracks["steps"]) == [f"step {i}" for i in range(1, 5)], names(tracks["steps"])
for phase in ("data", "forward", "gradient all-reduce: wait", "clip + optimizer"):
    assert phase in names(tracks["phases"]), phase
assert any(n.startswith("backward") for n in names(tracks["phases"]))
assert names(tracks["checkpoints and evaluation"]) == ["checkpoint-2", "checkpoint-4"]
coll = [e for e in spans if e["tid"] == tracks["collectives (progress thread)"]]
assert any(e["name"].startswith("allReduce #") and " x f32, sum)" in e["name"] for e in coll), coll[:3]
assert all(e["dur"] >= 0 and "queued_us" in e["args"] for e in coll)
step1 = next(e for e in spans if e["name"] == "step 1")
inside = [e for e in spans if e["tid"] == tracks["phases"] and step1["ts"] <= e["ts"] <= step1["ts"] + step1["dur"]]
assert inside, "no phase inside step 1"
print(f"{len(spans)} spans: 4 steps, phases inside them, 2 checkpoints, {len(coll)} collectives")
PY
  { fail "the timeline"; cat prof.check >&2; }

[ "$failures" = 0 ] && echo "run_reporting e2e: all checks passed" || echo "run_reporting e2e: $failures failure(s)"
exit $((failures > 0))
