#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang-14 + ASan + UBSan into build-fuzz/ and runs each
# for a fixed time from a fixed seed, starting from the seed corpora. One result line per target; the exit
# status is 1 when any target found something (crash, sanitizer report, uncaught exception, broken
# property, hang, leak or out-of-memory), with the reproducer's path; the end of the report and the
# reproducer itself (base64) are printed too, so that a CI log alone is enough to reproduce it.
#
#   scripts/fuzz.sh [--seconds N] [--target NAME]... [--keep-corpus]
#     --seconds N     fuzzing time per target (default 30: the CI smoke run; 300+ for a local run)
#     --target NAME   only this target (config, safetensors, hostfile, wordpiece, manifest); repeatable
#     --keep-corpus   go on from build-fuzz/corpus/ (what earlier runs found) instead of the seeds alone
#
# Reproduce a finding: build-fuzz/bin/fuzz_NAME FILE (prints the report again); from a CI log:
#   base64 -d > crash <<'B64' ... B64  (the printed block), then build-fuzz/bin/fuzz_NAME crash.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds=30
keep_corpus=0
targets=()
all_targets=(config safetensors hostfile wordpiece manifest)
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds)
      [ $# -ge 2 ] && [[ "$2" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: error: --seconds needs a positive integer" >&2; exit 2; }
      seconds=$2; shift 2 ;;
    --target)
      [ $# -ge 2 ] && [[ " ${all_targets[*]} " == *" $2 "* ]] \
        || { echo "fuzz.sh: error: --target needs one of: ${all_targets[*]}" >&2; exit 2; }
      targets+=("$2"); shift 2 ;;
    --keep-corpus) keep_corpus=1; shift ;;
    -h|--help) usage ;;
    *) echo "fuzz.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

start=$(date +%s)
build=build-fuzz
if [ ! -f "$build/build.ninja" ]; then
  command -v clang++-14 >/dev/null || { echo "fuzz.sh: error: clang++-14 not found (scripts/install-deps.sh)" >&2; exit 2; }
  CC=clang-14 CXX=clang++-14 cmake -S . -B "$build" -G Ninja -DMPIBERT_BUILD_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
    >"/tmp/mpibert-fuzz-cmake.$$.log" 2>&1 || { cat "/tmp/mpibert-fuzz-cmake.$$.log" >&2; exit 1; }
  rm -f "/tmp/mpibert-fuzz-cmake.$$.log"
fi
cmake --build "$build" -j "${MPIBERT_JOBS:-$(nproc)}" >"$build/build.log" 2>&1 || { cat "$build/build.log" >&2; exit 1; }
built=$(date +%s)

# Seeds written by our own writers (safetensors, manifests), next to the committed ones.
rm -rf "$build/seeds"
"$build/bin/fuzz_make_seeds" "$build/seeds"

# The readers that take a path write their input to a scratch file: keep those in memory when we can.
scratch=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/mpibert-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# Every sanitizer report is fatal and says where; leaks are findings (libFuzzer checks after each input).
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

seeds_of() {
  case "$1" in
    config) echo tests/fuzz/corpus/config configs ;;
    safetensors) echo "$build/seeds/safetensors" ;;
    manifest) echo "$build/seeds/manifest" tests/fuzz/corpus/manifest ;;
    *) echo "tests/fuzz/corpus/$1" ;;
  esac
}

# ASan runtimes older than LLVM 18 (GCC 12's, clang 14's) fail at random with "AddressSanitizer:DEADLYSIGNAL"
# on kernels whose mmap randomization exceeds 28 bits: run without address randomization there.
no_aslr=()
if [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)" -gt 28 ] && setarch "$(uname -m)" -R true 2>/dev/null; then
  no_aslr=(setarch "$(uname -m)" -R)
fi

# The end of the log and the reproducer (base64), for CI logs that outlive the machine.
report_finding() {  # LOG REPRODUCER
  echo "---- last 60 lines of $1 ----"
  tail -n 60 "$1"
  if [ -n "$2" ] && [ "$(stat -c %s "$2")" -le 65536 ]; then
    echo "---- reproducer $(basename "$2") (base64) ----"
    echo "base64 -d > $(basename "$2") <<'B64'"
    base64 "$2"
    echo "B64"
  fi
  echo "----"
}

failed=0
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t" findings="$build/findings/$t" log="$build/logs/$t.log"
  [ "$keep_corpus" = 1 ] || rm -rf "$corpus"
  rm -rf "$findings"
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  set +e
  # shellcheck disable=SC2046  # the seed directories are words
  TMPDIR=$scratch timeout $((seconds + 300)) "${no_aslr[@]}" "$build/bin/fuzz_$t" -seed=1 -max_total_time="$seconds" \
    -max_len=4096 -timeout=30 -rss_limit_mb=2048 -dict="tests/fuzz/dict/$t.dict" \
    -artifact_prefix="$findings/" -print_final_stats=1 "$corpus" $(seeds_of "$t") >"$log" 2>&1
  rc=$?
  set -e
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
  reproducer=$(find "$findings" -type f | head -1)
  if [ "$rc" -eq 0 ] && [ -z "$reproducer" ]; then
    echo "fuzz_$t: ok ($runs inputs in ${seconds} s, coverage ${cov:-?} edges, corpus $(find "$corpus" -type f | wc -l) inputs)"
  else
    failed=1
    kind=$(grep -o 'SUMMARY: [A-Za-z]*: [a-z-]*\|fuzz property failed' "$log" | head -1)
    echo "fuzz_$t: FAILED (exit $rc${kind:+, $kind}) reproducer: ${reproducer:-none written} log: $log"
    report_finding "$log" "$reproducer"
  fi
done
echo "fuzz.sh: build $((built - start)) s, fuzzing $(($(date +%s) - built)) s, ${#targets[@]} target(s)"
exit "$failed"
