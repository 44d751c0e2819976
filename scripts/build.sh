#!/usr/bin/env bash
# Configures and builds mpibert into build/ (Release, Ninja, ccache when present).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs=${MPIBERT_JOBS:-$(nproc)}
if [ ! -f build/build.ninja ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/tmp/mpibert-cmake.log 2>&1 \
    || { cat /tmp/mpibert-cmake.log >&2; exit 1; }
fi
cmake --build build -j "$jobs" "$@"
