#!/usr/bin/env bash
# Bad and mismatched inputs to run_mlm (the Reliability issue): vocabularies, shard sets, optimizers and
# sequence lengths that do not match, non-finite weights, an output_dir under a file, two writers of one
# directory, --overwrite_output_dir, --export_hf without the optimizer file and a Hub id as
# --gaudi_config_id. Each refusal: exit 2 naming the file, key or value.
# Usage: reliability_inputs.sh BIN_DIR SOURCE_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
src=$2
source "$src/tests/e2e/helpers/launcher_lib.sh"
for p in prepare_data run_mlm; do
  [ -x "$bin/$p" ] || { echo "FAIL: $bin/$p is not built" >&2; exit 1; }
done
make_work_dir
cd "$work"

# corpus SEED WORDS...: documents of short sentences over the given words.
corpus() {
  local seed=$1
  shift
  awk -v seed="$seed" -v words="$*" 'BEGIN {
    srand(seed); n = split(words, w, " ")
    for (d = 0; d < 50; d++) {
      for (l = 0; l < 8; l++) {
        s = ""; len = 6 + int(rand() * 10)
        for (i = 0; i < len; i++) s = s (i ? " " : "") w[1 + int(rand() * n)]
        print s " ."
      }
      print ""
    }
  }'
}
corpus 3 the a man woman dog cat went to store park house saw big small red blue ran quickly slowly and then \
  said that was happy sad old young tree river city walked looked >corpus.txt
corpus 4 one two three four five six seven eight nine ten eleven twelve north south east west up down left \
  right inside outside above below near far early late >other.txt
prep() {  # prep INPUT DIR [ARGS...]
  local input=$1 dir=$2
  shift 2
  "$bin/prepare_data" all --data.input "$input" --data.shards_dir "$dir" --data.vocab_size 120 \
    --data.min_frequency 1 --data.seq_len 32 --data.validation_fraction 0.1 "$@" >"prep-$dir.log" 2>&1 \
    || { echo "FAIL: prepare_data $dir" >&2; cat "prep-$dir.log" >&2; exit 1; }
}
prep corpus.txt shards
prep other.txt other-shards
prep corpus.txt rebuilt-shards --data.validation_fraction 0.2
common=(--data.shards_dir shards --data.seq_len 32 --model.preset tiny --per_device_train_batch_size 4
        --logging_steps 1 --precision fp32 --dist.threads 1 --do_eval false)
"$bin/run_mlm" "${common[@]}" --output_dir base --max_steps 4 --save_steps 2 >base.log 2>&1
expect_code 0 $? "a 4-step base run with checkpoints at steps 2 and 4"

# refused WHAT PATTERN COMMAND...: exit 2 and a message matching PATTERN on stderr.
refused() {
  local what=$1 pattern=$2
  shift 2
  "$@" >refused.out 2>refused.err
  expect_code 2 $? "$what"
  expect_grep "$pattern" refused.err "$what: the message"
}
copy() { rm -rf "$2" && cp -r "$1" "$2"; }

echo "== identity, not just sizes"
refused "init_from a model with another vocabulary" "vocab.txt differs from the vocabulary the shards were prepared with" \
  "$bin/run_mlm" "${common[@]}" --data.shards_dir other-shards --model.init_from base/final --output_dir o1 --max_steps 1
copy base resume-data
refused "resume on rebuilt shards" "trained on other data .*--ignore_data_change" \
  "$bin/run_mlm" "${common[@]}" --data.shards_dir rebuilt-shards --output_dir resume-data --max_steps 6
"$bin/run_mlm" "${common[@]}" --data.shards_dir rebuilt-shards --output_dir resume-data --max_steps 6 \
  --ignore_data_change >ignore.log 2>&1
expect_code 0 $? "the same resume with --ignore_data_change"
copy base resume-opt
refused "resume with another optimizer" "optimizer state is adamw's but this run uses train.optimizer lamb: resume with --optim adamw" \
  "$bin/run_mlm" "${common[@]}" --output_dir resume-opt --max_steps 6 --optim lamb
refused "data.seq_len other than the shards'" "data.seq_len 64 differs from the shards' 32" \
  "$bin/run_mlm" "${common[@]}" --data.seq_len 64 --output_dir o2 --max_steps 1

echo "== non-finite weights"
# nan_tensor FILE NAME: sets the first element of a float32 tensor of a safetensors file to NaN.
nan_tensor() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
path, name = sys.argv[1], sys.argv[2]
data = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
entry = json.loads(data[8:8 + n])[name]
assert entry["dtype"] == "F32", entry
at = 8 + n + entry["data_offsets"][0]
data[at:at + 4] = struct.pack("<f", float("nan"))
open(path, "wb").write(data)
PY
}
copy base/final nan-model
nan_tensor nan-model/model.safetensors bert.embeddings.position_embeddings.weight
refused "init_from a model with a NaN weight" "tensor 'bert.embeddings.position_embeddings.weight' has 1 non-finite" \
  "$bin/run_mlm" "${common[@]}" --model.init_from nan-model --output_dir o3 --max_steps 1
copy base nan-resume
nan_tensor nan-resume/checkpoint-4/model.safetensors bert.embeddings.position_embeddings.weight
refused "resume from a checkpoint with a NaN weight" "non-finite" \
  "$bin/run_mlm" "${common[@]}" --output_dir nan-resume --max_steps 6
refused "export a checkpoint with a NaN weight" "bert.embeddings.position_embeddings.weight.*non-finite" \
  "$bin/run_mlm" --export_hf nan-resume/checkpoint-4 --output_dir nan-export
[ ! -e nan-export/model.safetensors ] && pass "nothing exported" || fail "a NaN model was exported"
copy base/checkpoint-4 no-optimizer
rm -f no-optimizer/optimizer.safetensors
"$bin/run_mlm" --export_hf no-optimizer --output_dir export-no-opt >export.log 2>&1
expect_code 0 $? "--export_hf of a checkpoint without its optimizer file"
[ -f export-no-opt/model.safetensors ] && pass "exported" || fail "no model.safetensors"

echo "== output directories"
touch a-file
refused "output_dir under a file" "a-file is a file, not a directory" \
  "$bin/run_mlm" "${common[@]}" --output_dir a-file/out --max_steps 1
copy base overwrite
"$bin/run_mlm" "${common[@]}" --output_dir overwrite --overwrite_output_dir --max_steps 1 --save_steps 0 >ow.log 2>&1
expect_code 0 $? "--overwrite_output_dir over a run with checkpoints"
[ ! -e overwrite/checkpoint-4 ] && [ ! -e overwrite/checkpoint-2 ] && pass "the previous checkpoints are gone" \
  || fail "previous checkpoints survived --overwrite_output_dir: $(ls overwrite)"

echo "== one writer per directory"
"$bin/run_mlm" "${common[@]}" --output_dir busy --max_steps 100000 --save_steps 0 >busy.log 2>&1 &
busy=$!
wait_for_grep '"pid"' busy/.mpibert.lock || fail "the first run never held busy/"
refused "a second run_mlm into the same output_dir" "busy is in use: run_mlm \(output_dir\) by pid $busy on host" \
  "$bin/run_mlm" "${common[@]}" --output_dir busy --max_steps 1
refused "prepare_data over shards a run is reading" "shards is in use: run_mlm \(shards\) by pid $busy" \
  "$bin/prepare_data" all --data.input corpus.txt --data.shards_dir shards --data.vocab_size 120 \
  --data.min_frequency 1 --data.seq_len 32 --overwrite
kill -TERM "$busy"
wait "$busy"
expect_code 75 $? "the first run stops cleanly"
"$bin/run_mlm" "${common[@]}" --output_dir busy --max_steps 1 >after.log 2>&1
[ $? -ne 2 ] && pass "once it is gone, the directory is free" || { fail "still locked"; cat after.log >&2; }

echo "== a Hugging Face Hub id as --gaudi_config_id"
"$bin/run_mlm" "${common[@]}" --output_dir gaudi --max_steps 1 \
  --gaudi_config_id philschmid/bert-base-uncased-2022-habana >gaudi.out 2>gaudi.err
expect_code 0 $? "the run goes on"
[ "$(grep -c 'gaudi_config_id philschmid/bert-base-uncased-2022-habana is no local file' gaudi.err)" = 1 ] \
  && pass "one note" || { fail "expected one note"; cat gaudi.err >&2; }
finish
