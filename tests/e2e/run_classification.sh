#!/usr/bin/env bash
# run_classification and classify end to end, from a model run_mlm pre-trained: a tiny BERT pre-trained
# on real text (the fetched Brown corpus when present, else generated text), fine-tuned on 2 ranks
# through gaudi_spawn with evaluation, the best checkpoint and predictions; the export checked by
# hf_cls_check.py; classify in text, JSON and stdin modes; a rerun that resumes; and every bad input
# (one line on stderr, exit 2, nothing written to output_dir).
# Usage: run_classification.sh BIN_DIR SOURCE_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/e2e/helpers/launcher_lib.sh"
for p in gaudi_spawn prepare_data run_mlm run_classification classify; do
  [ -x "$bin/$p" ] || { echo "FAIL: $bin/$p is not built" >&2; exit 1; }
done
failures=0
make_work_dir
cd "$work"

# --- data: passages with labels (3 classes of the Brown coarse task, or generated topics) ---------------
genres="$src/data/brown-genres"
if [ -f "$genres/train-coarse.csv" ]; then
  python3 - "$genres" <<'PY'
import csv, sys
src = sys.argv[1]
keep = {"press", "learned", "fiction"}
for split, n in (("train", 240), ("validation", 60), ("test", 45)):
    rows = [r for r in csv.DictReader(open(f"{src}/{split}-coarse.csv")) if r["label"] in keep]
    rows = [r for i, r in enumerate(rows) if i % max(1, len(rows) // n) == 0][:n]
    with open(f"{split}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for r in rows:
            w.writerow([r["text"], r["label"]])
with open("corpus.txt", "w") as out:
    for r in csv.DictReader(open(f"{src}/train-coarse.csv")):
        out.write(r["text"] + "\n\n")
PY
  echo "data: Brown passages ($genres)"
else
  python3 - <<'PY'
import csv, random
rnd = random.Random(7)
topics = {"sport": "ball team game goal player coach match score win season",
          "food": "bread soup cook kitchen salt taste dinner fresh bake sweet",
          "law": "court judge law trial case jury guilty lawyer appeal rule"}
common = "the a and of to in was he she it said that with for on".split()
def passage(t):
    return " ".join(rnd.choice(topics[t].split() + common) for _ in range(rnd.randint(12, 30))) + " ."
for split, n in (("train", 240), ("validation", 60), ("test", 45)):
    with open(f"{split}.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(n):
            t = sorted(topics)[i % 3]
            w.writerow([passage(t), t])
with open("corpus.txt", "w") as out:
    for i in range(600):
        out.write(passage(sorted(topics)[i % 3]) + "\n\n")
PY
  echo "data: generated topics (no fetched corpus)"
fi

# --- pre-train a tiny model (1 rank, a few steps: the point is the hand-over) ------------------------
cat >mlm.yaml <<YAML
data: {input: $work/corpus.txt, shards_dir: $work/shards, vocab_size: 1500, min_frequency: 2, seq_len: 64,
       validation_fraction: 0.05}
model: {preset: tiny}
train: {output_dir: $work/mlm, overwrite_output_dir: true, per_device_train_batch_size: 8, max_steps: 20,
        logging_steps: 10, save_steps: 0, do_eval: false, learning_rate: 1.0e-3, precision: fp32}
YAML
"$bin/prepare_data" all --config mlm.yaml >prep.out 2>&1
expect_code 0 $? "prepare_data"
"$bin/run_mlm" --config mlm.yaml --dist.threads 1 >mlm.out 2>&1
expect_code 0 $? "run_mlm pre-training"
[ -f mlm/final/model.safetensors ] && pass "pre-trained model exported" || fail "no mlm/final"

# --- fine-tune on 2 ranks ------------------------------------------------------------------------
cls_args=(--model_name_or_path "$work/mlm/final" --train_file train.csv --validation_file validation.csv
          --test_file test.csv --text_column_names text --label_column_name label --max_seq_length 64
          --per_device_train_batch_size 8 --learning_rate 1e-3 --warmup_ratio 0.1 --logging_steps 5
          --eval_strategy steps --eval_steps 10 --save_steps 10 --save_total_limit 1 --load_best_model_at_end
          --metric_for_best_model f1 --do_eval --do_predict --precision fp32 --seed 3)
"$bin/gaudi_spawn" --world_size 2 --timeout "$(scaled 600)" run_classification "${cls_args[@]}" --max_steps 30 \
  --output_dir "$work/cls" >cls.out 2>cls.err
expect_code 0 $? "run_classification on 2 ranks"
grep -q "newly initialised (not in it): .*bert.pooler.dense.weight.*classifier.weight" cls.out cls.err &&
  pass "the log names the pooler and classifier it initialised" || fail "no 'newly initialised' line naming the head"
grep -q "confusion matrix" cls.out cls.err && pass "evaluation table printed" || fail "no evaluation table in the output"
python3 - "$work/cls" <<'PY' && pass "output files as the HF Trainer leaves them" || fail "output files"
import json, os, sys
d = sys.argv[1]
cfg = json.load(open(f"{d}/final/config.json"))
assert cfg["architectures"] == ["BertForSequenceClassification"], cfg["architectures"]
assert cfg["id2label"] and cfg["label2id"], "labels missing"
assert cfg["problem_type"] == "single_label_classification"
ev = json.load(open(f"{d}/eval_results.json"))
for k in ("eval_loss", "eval_accuracy", "eval_f1", "eval_confusion_matrix"): assert k in ev, k
state = json.load(open(f"{d}/trainer_state.json"))
assert os.path.isdir(state["best_model_checkpoint"]), state["best_model_checkpoint"]
assert state["global_step"] == 30
lines = open(f"{d}/predict_results.txt").read().splitlines()
assert lines[0].split("\t") == ["index", "line", "prediction", "scores"], lines[0]
assert len(lines) == 1 + sum(1 for _ in open("test.csv")) - 1, len(lines)
test = json.load(open(f"{d}/test_results.json"))
assert test["test_samples"] == len(lines) - 1
allr = json.load(open(f"{d}/all_results.json"))
for k in ("train_loss", "eval_f1", "test_accuracy"): assert k in allr, k
PY
/usr/bin/python3 "$src/tests/e2e/hf_cls_check.py" "$work/cls/final" >check.out 2>&1 &&
  pass "hf_cls_check: the export has Hugging Face's layout" || { fail "hf_cls_check"; cat check.out >&2; }

# --- classify ------------------------------------------------------------------------------------
text=$(python3 -c "import csv; print(next(csv.DictReader(open('test.csv')))['text'])")
"$bin/classify" --model cls/final --top_k 2 "$text" "a second text ." >classify.out 2>classify.err
expect_code 0 $? "classify"
[ "$(wc -l <classify.out)" = 6 ] && pass "classify prints the text and two labels for each query" ||
  fail "classify output: $(cat classify.out)"
"$bin/classify" --model cls/final --top_k 0 --json "$text" >classify.json 2>/dev/null
python3 - cls/final/config.json classify.json <<'PY' && pass "classify --json: every label with scores summing to 1" || fail "classify --json"
import json, sys
labels = set(json.load(open(sys.argv[1]))["id2label"].values())
out = json.loads(open(sys.argv[2]).read())
assert [list(x) for x in out] == [["label", "score"]] * len(labels), out
assert {x["label"] for x in out} == labels
assert abs(sum(x["score"] for x in out) - 1) < 1e-6
assert out == sorted(out, key=lambda x: -x["score"])
PY
printf '%s\n\n%s\n' "$text" "another one ." | "$bin/classify" --model cls/final --json >stdin.out 2>/dev/null
[ "$(wc -l <stdin.out)" = 2 ] && pass "classify reads one text per stdin line, blank lines skipped" || fail "stdin mode"
"$bin/classify" --model mlm/final "a text" >/dev/null 2>mlm_classify.err
expect_code 2 $? "classify on a masked-LM model"
grep -q "not a sequence-classification model" mlm_classify.err && pass "classify names why" || fail "$(cat mlm_classify.err)"

# --- a rerun with more steps resumes from the latest checkpoint ------------------------------------
"$bin/gaudi_spawn" --world_size 2 --timeout "$(scaled 600)" run_classification "${cls_args[@]}" --max_steps 40 \
  --output_dir "$work/cls" >resume.out 2>resume.err
expect_code 0 $? "rerun resumes"
grep -q "resuming from .*checkpoint-30 at step 30" resume.out resume.err && pass "resumed at step 30" || fail "no resume line"
python3 -c "import json; assert json.load(open('$work/cls/trainer_state.json'))['global_step'] == 40" &&
  pass "training went on to step 40" || fail "global_step after resume"

# --- bad input: one line, exit 2, nothing written -------------------------------------------------
printf 'text,label\n"an open quote,press\nfine,press\n' >malformed.csv
printf 'text,label\n' >empty.csv
printf 'text,label\nsome words,never_seen_label\n' >unseen.csv
printf 'text,label\n,press\n,fiction\n' >blank.csv
mkdir -p notbert && echo '{"model_type": "roberta"}' >notbert/config.json
bad() {  # bad NAME EXPECTED-TEXT ARGS...: exit 2, one stderr line containing the text, no output_dir
  local name=$1 want=$2
  shift 2
  "$bin/run_classification" --model_name_or_path "$work/mlm/final" --train_file train.csv --text_column_names text \
    --output_dir "$work/bad-$name" --max_steps 2 --dist.threads 1 "$@" >"bad-$name.out" 2>"bad-$name.err"
  local code=$?
  if [ "$code" = 2 ] && [ "$(wc -l <"bad-$name.err")" = 1 ] && grep -q -- "$want" "bad-$name.err" &&
    [ ! -e "$work/bad-$name" ]; then
    pass "bad input '$name': $(cat "bad-$name.err")"
  else
    fail "bad input '$name': exit $code, stderr: $(cat "bad-$name.err"), output_dir exists: $([ -e "$work/bad-$name" ] && echo yes || echo no)"
  fi
}
bad missing-column "'body'.*text" --text_column_names body
bad missing-label "no label column 'genre'" --label_column_name genre
bad empty-file "empty.csv" --train_file empty.csv
bad unseen-label "never_seen_label" --do_eval --validation_file unseen.csv
bad malformed-csv "malformed.csv:2" --train_file malformed.csv
bad not-bert "roberta" --model_name_or_path "$work/notbert"
bad empty-texts "empty in every row" --train_file blank.csv
bad no-vocab "vocab" --model_name_or_path "" --model.preset tiny
"$bin/gaudi_spawn" --world_size 2 --timeout "$(scaled 300)" run_classification --model_name_or_path "$work/mlm/final" \
  --train_file train.csv --text_column_names body --output_dir "$work/bad-2ranks" >bad2.out 2>bad2.err
expect_code 2 $? "a usage error on 2 ranks ends the job with exit 2"
[ ! -e "$work/bad-2ranks" ] && pass "nothing written on 2 ranks either" || fail "bad-2ranks exists"

[ "$failures" = 0 ] && echo "run_classification e2e: all checks passed" || echo "run_classification e2e: $failures failure(s)"
exit $((failures > 0))
