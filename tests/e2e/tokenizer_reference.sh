#!/usr/bin/env bash
# End-to-end check of `prepare_data encode` against Hugging Face tokenizers (npm "tokenizers", the Rust
# library behind BertTokenizerFast), uncased and cased BERT (prepare_data reads the case from the
# tokenizer_config.json beside the vocab):
#   1. the fetched corpus (data/corpus, scripts/fetch-corpus.sh) with a vocab HF trains on it:
#      every line must give the same ids;
#   2. a file of hard cases (accents, CJK, emoji, controls, ill-formed UTF-8, long words, marks,
#      special tokens, ...) with that vocab plus every character as a token: every line the same;
#   3. every Unicode code point c as the line "x<c>x" with the same vocab: differences are allowed
#      only for code points whose Unicode version differs between the two sides (tokenizers' category
#      tables are Unicode 8.0), never in the protected blocks, and at most 1000 (see hf.mjs).
# Usage: tokenizer_reference.sh BIN_DIR SOURCE_DIR. Exits 77 (skipped) with "skipped: npm unavailable" only when
# the reference cannot be installed from npm.
set -euo pipefail
BIN="${1:?usage: tokenizer_reference.sh BIN_DIR SOURCE_DIR}"
SRC="${2:?usage: tokenizer_reference.sh BIN_DIR SOURCE_DIR}"
REF="$SRC/tests/e2e/tokenizer_reference"
PREPARE="$BIN/prepare_data"

fail() { echo "tokenizer_reference: FAIL: $*" >&2; exit 1; }

if ! modules=$("$REF/install.sh"); then
  echo "tokenizer_reference: skipped: npm unavailable (could not install npm tokenizers; see the message above)"
  exit 77  # CTest reports it as skipped (SKIP_RETURN_CODE), not passed
fi
export TOKENIZERS_NODE_MODULES="$modules"
[[ -x "$PREPARE" ]] || fail "$PREPARE is not built"

"$SRC/scripts/fetch-corpus.sh" || fail "scripts/fetch-corpus.sh could not provide data/corpus"
CORPUS_FILES=("$SRC/data/corpus/brown.txt" "$SRC/data/corpus/nlp-corpus.txt")

WORK="$(mktemp -d /tmp/mpibert-tokref.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
hf() { node "$REF/hf.mjs" "$@"; }

# encode_both NAME VOCAB TEXT [--cased]: ids from HF and from prepare_data.
encode_both() {
  local name="$1" vocab="$2" text="$3" flag="${4:-}"
  hf encode --vocab "$vocab" --input "$text" --output "$WORK/$name.hf" $flag || fail "HF encode of $name failed"
  "$PREPARE" encode --vocab "$vocab" --input "$text" --output "$WORK/$name.ours" >"$WORK/$name.log" 2>&1 || {
    cat "$WORK/$name.log" >&2
    fail "prepare_data encode --vocab $vocab --input $text failed"
  }
}

cat "${CORPUS_FILES[@]}" > "$WORK/corpus.txt"
hf hard-cases --output "$WORK/hard.txt"
hf sweep --output "$WORK/sweep.txt"

# check_mode uncased|cased: prepare_data takes the case from tokenizer_config.json beside the vocab.
check_mode() {
  local mode="$1" dir="$WORK/$1" flag="" lower=true
  [[ "$mode" == cased ]] && flag="--cased" && lower=false
  mkdir -p "$dir"
  printf '{"tokenizer_class": "BertTokenizer", "do_lower_case": %s}\n' "$lower" > "$dir/tokenizer_config.json"
  echo "tokenizer_reference: $mode: training an HF WordPiece vocab on the corpus"
  hf train --input "$(IFS=,; echo "${CORPUS_FILES[*]}")" --output "$dir/vocab.txt" $flag >/dev/null
  encode_both "$mode/corpus" "$dir/vocab.txt" "$WORK/corpus.txt" $flag
  hf compare --expected "$WORK/$mode/corpus.hf" --actual "$WORK/$mode/corpus.ours" --vocab "$dir/vocab.txt" \
    --label "$mode/corpus" || fail "$mode: corpus ids differ from Hugging Face tokenizers"

  hf char-vocab --vocab "$dir/vocab.txt" --output "$dir/char_vocab.txt"
  encode_both "$mode/hard" "$dir/char_vocab.txt" "$WORK/hard.txt" $flag
  hf compare --expected "$WORK/$mode/hard.hf" --actual "$WORK/$mode/hard.ours" --vocab "$dir/char_vocab.txt" \
    --label "$mode/hard_cases" || fail "$mode: hard-case ids differ from Hugging Face tokenizers"

  encode_both "$mode/sweep" "$dir/char_vocab.txt" "$WORK/sweep.txt" $flag
  hf compare --expected "$WORK/$mode/sweep.hf" --actual "$WORK/$mode/sweep.ours" --vocab "$dir/char_vocab.txt" \
    --sweep --label "$mode/every_code_point" || fail "$mode: code point sweep differs beyond the known Unicode-version skew"
}
check_mode uncased
check_mode cased

echo "tokenizer_reference: OK"
