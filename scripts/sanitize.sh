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
#   scripts/sanitize.sh --all --tests REGEX
#                                only the CTest entries matching REGEX (ctest -R), e.g. 'mpi_np|e2e_'
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

all=0
tests=""
while [ $# -gt 0 ]; do
  case "$1" in
    --all) all=1 ;;
    --tests)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "sanitize.sh: error: --tests needs a CTest regex (e.g. 'mpi_np|e2e_')" >&2; exit 2; }
      tests=$2
      shift
      ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) echo "sanitize.sh: error: unknown argument '$1' (valid: --all, --tests REGEX)" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$tests" ] && [ "$all" = 0 ]; then
  echo "sanitize.sh: error: --tests selects among the whole suite's entries: give --all with it" >&2
  exit 2
fi

start=$(date +%s)
build=build-asan
# -O0 -g1: a third of the compile time of -O1 -g (CI builds this tree from scratch on 2 cores); the
# frame pointers and line tables still give whole, symbolized stacks. Debug keeps assert() on; its own
# -g is dropped so that -g1 holds.
flags="-O0 -g1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
# The -O0 ASan build runs the torch tests several times slower: every CTest time limit x 4 (they catch hangs).
if [ ! -f "$build/build.ninja" ] || ! grep -qxF "CMAKE_CXX_FLAGS:STRING=$flags" "$build/CMakeCache.txt" ||
  ! grep -qxF "MPIBERT_TEST_TIMEOUT_SCALE:STRING=4" "$build/CMakeCache.txt"; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMPIBERT_BUILD_BENCH=OFF -DMPIBERT_TEST_TIMEOUT_SCALE=4 \
    -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS_DEBUG= -DCMAKE_CXX_FLAGS_DEBUG= \
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

# The first sanitizer report of a log (80 lines of it), or the end of the log when there is none.
report_excerpt() {
  local first
  first=$(grep -n -m1 'ERROR: \(Address\|Leak\)Sanitizer\|: runtime error: ' "$1" | cut -d: -f1 || true)
  if [ -n "$first" ]; then sed -n "${first},$((first + 79))p" "$1"; else tail -n 80 "$1"; fi
}

# ASan runtimes older than LLVM 18 (GCC 12's, clang 14's) fail at random with "AddressSanitizer:DEADLYSIGNAL"
# on kernels whose mmap randomization exceeds 28 bits: run without address randomization there.
no_aslr=()
if [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)" -gt 28 ] && setarch "$(uname -m)" -R true 2>/dev/null; then
  no_aslr=(setarch "$(uname -m)" -R)
fi

failed=0
# Seconds per step (a hang fails the step, not CI's budget): 20 minutes, 6 hours for the whole suite
# (CTest's own per-test limit applies inside it).
default_timeout=1200
[ "$all" = 0 ] || default_timeout=21600
step_timeout=${MPIBERT_SANITIZE_STEP_TIMEOUT:-$default_timeout}
run_step() {  # NAME COMMAND...: one result line per step, the log kept in build-asan/logs/NAME.log
  local name=$1 log="$build/logs/$1.log"
  shift
  mkdir -p "$build/logs"
  local t0 rc
  t0=$(date +%s)
  set +e
  timeout --kill-after=30 "$step_timeout" "${no_aslr[@]}" "$@" >"$log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -eq 0 ] && ! grep -q 'ERROR: \(Address\|Leak\)Sanitizer\|: runtime error: ' "$log"; then
    echo "sanitize: $name: ok ($(($(date +%s) - t0)) s)"
  else
    failed=1
    echo "sanitize: $name: FAILED (exit $rc) log: $log"
    [ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] || echo "  timed out after $step_timeout s"
    grep -m5 'ERROR: \(Address\|Leak\)Sanitizer\|: runtime error: \|FAILED  \]' "$log" | sed 's/^/  /' || true
    # CI keeps only the console: the report itself (its first 80 lines) goes there too.
    echo "  ---- $log (from the first report, or the last 80 lines) ----"
    report_excerpt "$log" | sed 's/^/  /'
  fi
}

read -r -a mpirun_flags <<<"--oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none --mca btl ^openib"
[ "$(id -u)" != 0 ] || mpirun_flags+=(--allow-run-as-root)
if [ "$all" = 1 ]; then
  # CTest gives every case its own process, so each leak check is per case; mpirun passes the
  # environment on to the ranks.
  ASAN_OPTIONS=$ASAN_OPTIONS:fast_unwind_on_malloc=0 run_step ctest \
    bash -c "cd $build && ctest --output-on-failure -j ${MPIBERT_JOBS:-$(nproc)} --timeout 3600 ${tests:+-R '$tests'}"
else
  run_step common_tests "$build/bin/common_tests" --gtest_brief=1
  run_step launcher_tests "$build/bin/launcher_tests" --gtest_brief=1
  # Open MPI's components are built without frame pointers and dlclose()d by MPI_Finalize: only the slow
  # unwinder records the whole allocation stack, with the libopen-pal frame that lsan.supp matches.
  # use_tls=0: the dynamic TLS of those unloaded components leaves a stale entry that GCC 12's leak
  # checker follows and crashes on at exit ("Tracer caught signal 11", half the runs). Without TLS as a
  # root, more is reported, not less: lsan.supp names the HDF5 per-thread objects that then show up.
  ASAN_OPTIONS=$ASAN_OPTIONS:fast_unwind_on_malloc=0 LSAN_OPTIONS=$LSAN_OPTIONS:use_tls=0 \
    run_step common_mpi_np2 mpirun "${mpirun_flags[@]}" \
    -x ASAN_OPTIONS -x LSAN_OPTIONS -x UBSAN_OPTIONS -np 2 "$build/bin/common_mpi_tests" --gtest_brief=1
fi
echo "sanitize.sh: build $((built - start)) s, tests $(($(date +%s) - built)) s"
exit "$failed"
