#!/usr/bin/env bash
# End-to-end check of `prepare_data encode` against Hugging Face tokenizers (npm "tokenizers", the Rust
# library behind BertTokenizerFast), uncased BERT:
#   1. the fetched corpus (data/corpus, scripts/fetch-corpus.sh) with a vocab HF trains on it:
#      every line must give the same ids;
#   2. a file of hard cases (accents, CJK, emoji, controls, ill-formed UTF-8, long words, marks,
#      special tokens, ...) with that vocab plus every character as a token: every line the same;
#   3. every Unicode code point c as the line "x<c>x" with the same vocab: differences are allowed
#      only for code points whose Unicode version differs between the two sides (tokenizers' category
#      tables are Unicode 8.0), never in the protected blocks, and at most 1000 (see hf.mjs).
# Usage: tokenizer_reference.sh BIN_DIR SOURCE_DIR. Exits 0 with "skipped: npm unavailable" only when
# the reference cannot be installed from npm.
set -euo pipefail
BIN="${1:?usage: tokenizer_reference.sh BIN_DIR SOURCE_DIR}"
SRC="${2:?usage: tokenizer_reference.sh BIN_DIR SOURCE_DIR}"
REF="$SRC/tests/e2e/tokenizer_reference"
PREPARE="$BIN/prepare_data"

fail() { echo "tokenizer_reference: FAIL: $*" >&2; exit 1; }

if ! modules=$("$REF/install.sh"); then
  echo "tokenizer_reference: skipped: npm unavailable (could not install npm tokenizers; see the message above)"
  exit 0
fi
export TOKENIZERS_NODE_MODULES="$modules"
[[ -x "$PREPARE" ]] || fail "$PREPARE is not built"

"$SRC/scripts/fetch-corpus.sh" || fail "scripts/fetch-corpus.sh could not provide data/corpus"
CORPUS_FILES=("$SRC/data/corpus/brown.txt" "$SRC/data/corpus/nlp-corpus.txt")

WORK="$(mktemp -d /tmp/mpibert-tokref.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
hf() { node "$REF/hf.mjs" "$@"; }

# encode_both NAME VOCAB TEXT: ids from HF and from prepare_data.
encode_both() {
  local name="$1" vocab="$2" text="$3"
  hf encode --vocab "$vocab" --input "$text" --output "$WORK/$name.hf" || fail "HF encode of $name failed"
  "$PREPARE" encode --vocab "$vocab" --input "$text" --output "$WORK/$name.ours" >"$WORK/$name.log" 2>&1 || {
    cat "$WORK/$name.log" >&2
    fail "prepare_data encode --vocab $vocab --input $text failed"
  }
}

echo "tokenizer_reference: training an HF WordPiece vocab on the corpus"
hf train --input "$(IFS=,; echo "${CORPUS_FILES[*]}")" --output "$WORK/vocab.txt" >/dev/null
cat "${CORPUS_FILES[@]}" > "$WORK/corpus.txt"
encode_both corpus "$WORK/vocab.txt" "$WORK/corpus.txt"
hf compare --expected "$WORK/corpus.hf" --actual "$WORK/corpus.ours" --vocab "$WORK/vocab.txt" --label corpus ||
  fail "corpus ids differ from Hugging Face tokenizers"

hf char-vocab --vocab "$WORK/vocab.txt" --output "$WORK/char_vocab.txt"
hf hard-cases --output "$WORK/hard.txt"
encode_both hard "$WORK/char_vocab.txt" "$WORK/hard.txt"
hf compare --expected "$WORK/hard.hf" --actual "$WORK/hard.ours" --vocab "$WORK/char_vocab.txt" --label hard_cases ||
  fail "hard-case ids differ from Hugging Face tokenizers"

hf sweep --output "$WORK/sweep.txt"
encode_both sweep "$WORK/char_vocab.txt" "$WORK/sweep.txt"
hf compare --expected "$WORK/sweep.hf" --actual "$WORK/sweep.ours" --vocab "$WORK/char_vocab.txt" --sweep \
  --label every_code_point || fail "code point sweep differs beyond the known Unicode-version skew"

echo "tokenizer_reference: OK"
