#!/usr/bin/env bash
# Baseline for bench_tokenizer: Hugging Face tokenizers (npm, the Rust library behind
# BertTokenizerFast) encoding TEXT with VOCAB on one thread; prints one JSON line.
# Usage: bench/bench_tokenizer_hf.sh VOCAB TEXT [--cased] [--batch N]
# Installs npm tokenizers into tests/e2e/tokenizer_reference/node_modules on first use.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 2 ]] || { echo "usage: bench/bench_tokenizer_hf.sh VOCAB TEXT [--cased] [--batch N]" >&2; exit 2; }
if ! modules=$("$ROOT/tests/e2e/tokenizer_reference/install.sh"); then
  echo '{"bench":"hf_tokenizers_encode","skipped":"npm tokenizers unavailable"}'
  exit 0
fi
RAYON_NUM_THREADS=1 RAYON_RS_NUM_CPUS=1 TOKENIZERS_PARALLELISM=false TOKENIZERS_NODE_MODULES="$modules" \
  node "$ROOT/tests/e2e/tokenizer_reference/hf.mjs" bench --vocab "$1" --input "$2" "${@:3}"
