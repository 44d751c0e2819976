#!/usr/bin/env bash
# Builds mpibert with GCC + AddressSanitizer + UndefinedBehaviorSanitizer into build-asan/ and runs tests
# there. Any sanitizer report fails the run: UBSan errors are fatal (-fno-sanitize-recover), ASan stops at
# the first error, LeakSanitizer reports leaks at exit. Open MPI's, hwloc's and PMIx's own allocations
# that live until exit are suppressed by name (tests/sanitize/lsan.supp); leaks in our code are not.
#
#   scripts/sanitize.sh          CI: common_tests, launcher_tests, and common_mpi_tests at 2 ranks
#   scripts/sanitize.sh --all    the whole CTest suite (worker, multi-rank and end-to-end tests included);
#                                slow, run by hand. libtorch itself is not instrumented (see
#                                docs/fuzzing-and-sanitizers.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

all=0
case "${1:-}" in
  --all) all=1 ;;
  "") ;;
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
  *) echo "sanitize.sh: error: unknown argument '$1' (valid: --all)" >&2; exit 2 ;;
esac

start=$(date +%s)
build=build-asan
flags="-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMPIBERT_BUILD_BENCH=OFF \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" \
    >"/tmp/mpibert-asan-cmake.$$.log" 2>&1 || { cat "/tmp/mpibert-asan-cmake.$$.log" >&2; exit 1; }
  rm -f "/tmp/mpibert-asan-cmake.$$.log"
fi
if [ "$all" = 1 ]; then
  targets=()
else
  targets=(--target common_tests launcher_tests common_mpi_tests)
fi
cmake --build "$build" -j "${MPIBERT_JOBS:-$(nproc)}" "${targets[@]}" >"$build/build.log" 2>&1 \
  || { tail -50 "$build/build.log" >&2; exit 1; }
built=$(date +%s)

supp=$PWD/tests/sanitize/lsan.supp
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1:strict_string_checks=1
export LSAN_OPTIONS=suppressions=$supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# A leak report's exit code is ASan's (23): any sanitizer report makes the run fail.

failed=0
run_step() {  # NAME COMMAND...: one result line per step, the log kept in build-asan/logs/NAME.log
  local name=$1 log="$build/logs/$1.log"
  shift
  mkdir -p "$build/logs"
  local t0 rc
  t0=$(date +%s)
  set +e
  "$@" >"$log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ] && ! grep -q 'ERROR: \(Address\|Leak\)Sanitizer\|: runtime error: ' "$log"; then
    echo "sanitize: $name: ok ($(($(date +%s) - t0)) s)"
  else
    failed=1
    echo "sanitize: $name: FAILED (exit $rc) log: $log"
    grep -m5 'ERROR: \(Address\|Leak\)Sanitizer\|: runtime error: \|FAILED  \]' "$log" | sed 's/^/  /' || true
  fi
}

read -r -a mpirun_flags <<<"--oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none --mca btl ^openib"
[ "$(id -u)" != 0 ] || mpirun_flags+=(--allow-run-as-root)
if [ "$all" = 1 ]; then
  # CTest gives every case its own process, so each leak check is per case; mpirun passes the
  # environment on to the ranks.
  run_step ctest bash -c "cd $build && ctest --output-on-failure -j ${MPIBERT_JOBS:-$(nproc)} --timeout 3600"
else
  run_step common_tests "$build/bin/common_tests" --gtest_brief=1
  run_step launcher_tests "$build/bin/launcher_tests" --gtest_brief=1
  run_step common_mpi_np2 mpirun "${mpirun_flags[@]}" -x ASAN_OPTIONS -x LSAN_OPTIONS -x UBSAN_OPTIONS \
    -np 2 "$build/bin/common_mpi_tests" --gtest_brief=1
fi
echo "sanitize.sh: build $((built - start)) s, tests $(($(date +%s) - built)) s"
exit "$failed"
