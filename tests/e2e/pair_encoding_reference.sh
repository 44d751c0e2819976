#!/usr/bin/env bash
# End-to-end check of the sequence-classification encoding (common/data/text_classification.h) against
# Hugging Face tokenizers (npm "tokenizers", the Rust library behind BertTokenizerFast):
# tokenizer(a, b, truncation=True, max_length=L) on 400 real pairs from the fetched Brown corpus
# (neighbouring sentences, one sentence against four, a sentence twice, ...) at L = 8, 13, 16, 24, 32,
# 64, 128 (odd and even budgets), and single texts at L = 16 and 128, with a vocab HF trains on the
# corpus. Every input_ids and token_type_ids line must be identical. The statistics lines say how many
# inputs were truncated and how many pairs tokenizers <= 0.22 (full-length comparison) and the slow
# Python tokenizer's rule would have cut differently (see text_classification.h).
# Usage: pair_encoding_reference.sh BIN_DIR SOURCE_DIR. Exits 77 (skipped) only when the reference
# cannot be installed from npm.
set -euo pipefail
BIN="${1:?usage: pair_encoding_reference.sh BIN_DIR SOURCE_DIR}"
SRC="${2:?usage: pair_encoding_reference.sh BIN_DIR SOURCE_DIR}"
REF="$SRC/tests/e2e/tokenizer_reference"
TOOL="$BIN/bench_cls_encoding"

fail() { echo "pair_encoding_reference: FAIL: $*" >&2; exit 1; }

if ! modules=$("$REF/install.sh"); then
  echo "pair_encoding_reference: skipped: npm unavailable (could not install npm tokenizers; see the message above)"
  exit 77  # CTest reports it as skipped (SKIP_RETURN_CODE), not passed
fi
export TOKENIZERS_NODE_MODULES="$modules"
[[ -x "$TOOL" ]] || fail "$TOOL is not built"
"$SRC/scripts/fetch-corpus.sh" >/dev/null || fail "scripts/fetch-corpus.sh could not provide data/corpus"
CORPUS="$SRC/data/corpus/brown.txt"

WORK="$(mktemp -d /tmp/mpibert-pairref.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

node "$REF/hf.mjs" train --input "$CORPUS" --output "$WORK/vocab.txt" >/dev/null || fail "HF vocab training failed"
node "$REF/pairs.mjs" make --corpus "$CORPUS" --output "$WORK/pairs.jsonl" --count 400 || fail "making pairs failed"

# check NAME MAX_LENGTH [--single]: HF's and our ids for every pair must be identical.
check() {
  local name="$1" max="$2" single="${3:-}"
  local second=(--second b)
  [[ -n "$single" ]] && second=()
  node "$REF/pairs.mjs" encode --vocab "$WORK/vocab.txt" --input "$WORK/pairs.jsonl" --max-length "$max" \
    --output "$WORK/$name.hf" $single || fail "HF encode of $name failed"
  "$TOOL" --write-ids "$WORK/$name.ours" --vocab "$WORK/vocab.txt" --input "$WORK/pairs.jsonl" --first a \
    "${second[@]}" --max-seq-length "$max" || fail "bench_cls_encoding --write-ids for $name failed"
  if ! cmp -s "$WORK/$name.hf" "$WORK/$name.ours"; then
    local line
    line=$({ cmp "$WORK/$name.hf" "$WORK/$name.ours" 2>&1 || true; } | grep -o 'line [0-9]*' | grep -o '[0-9]*' | head -n 1)
    line=${line:-1}
    echo "  pair $line: $(sed -n "${line}p" "$WORK/pairs.jsonl" | cut -c 1-300)" >&2
    echo "  hf  : $(sed -n "${line}p" "$WORK/$name.hf")" >&2
    echo "  ours: $(sed -n "${line}p" "$WORK/$name.ours")" >&2
    fail "$name: ids differ from Hugging Face tokenizers (first at line $line)"
  fi
}

for max in 8 13 16 24 32 64 128; do check "pair$max" "$max"; done
for max in 16 128; do check "single$max" "$max" --single; done
echo "pair_encoding_reference: OK (400 pairs x 7 lengths, 400 single texts x 2 lengths identical to HF tokenizers)"
