# Shared checks for tests/e2e/launcher_*.sh (sourced). Each check prints what it saw when it fails.
failures=0

# Time bounds and waits of the checks are for a normal build; CTest passes MPIBERT_TEST_TIME_SCALE (the
# build's MPIBERT_TEST_TIMEOUT_SCALE, 4 in scripts/sanitize.sh's ASan build) to stretch them all.
time_scale=${MPIBERT_TEST_TIME_SCALE:-1}
scaled() { echo $(($1 * time_scale)); }

# make_work_dir: sets $work to a fresh directory that is removed when the script exits. Only the main
# shell removes it: a forked child of this script (a background job between fork and exec) that gets
# SIGINT or SIGTERM runs the EXIT trap as well, and must not delete the directory under the checks.
make_work_dir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/launcher_e2e.XXXXXX")
  trap '[ "$BASHPID" = "$$" ] && rm -rf "$work"' EXIT
}

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

pass() { echo "ok: $*"; }

# expect_code WANT GOT WHAT
expect_code() {
  if [ "$2" -eq "$1" ]; then pass "$3 (exit $2)"; else fail "$3: exit $2, expected $1"; fi
}

# expect_grep PATTERN FILE WHAT  (extended regex)
expect_grep() {
  if grep -Eq -- "$1" "$2"; then pass "$3"; else
    fail "$3: /$1/ not in $2:"
    sed 's/^/    /' "$2" >&2
  fi
}

expect_no_grep() {
  if grep -Eq -- "$1" "$2"; then
    fail "$3: /$1/ unexpectedly in $2:"
    sed 's/^/    /' "$2" >&2
  else pass "$3"; fi
}

# expect_lines N FILE WHAT: the file has exactly N lines.
expect_lines() {
  local n
  n=$(wc -l <"$2")
  if [ "$n" -eq "$1" ]; then pass "$3"; else
    fail "$3: $n lines in $2, expected $1:"
    sed 's/^/    /' "$2" >&2
  fi
}

# no_leftovers TAG: no fake rank tagged TAG may outlive its job (a few seconds are allowed for teardown).
no_leftovers() {
  local i pids
  for i in $(seq 1 "$(scaled 50)"); do
    pids=$(pgrep -f -- "$1" || true)
    [ -z "$pids" ] && { pass "no processes left behind ($1)"; return; }
    sleep 0.2
  done
  fail "processes left behind by $1: $(ps -o pid=,args= -p "$(echo $pids | tr ' ' ',')")"
  for p in $pids; do kill -KILL "$p" 2>/dev/null; done
}

# wait_for_grep PATTERN FILE: waits up to 30 s (scaled) for the pattern to appear. FILE must be new to this check
# (a file an earlier run wrote would match at once).
wait_for_grep() {
  local i
  for i in $(seq 1 "$(scaled 300)"); do
    grep -Eq -- "$1" "$2" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

now() { date +%s.%N; }
# seconds_since START -> integer seconds (rounded up)
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { s = b - a; printf "%d", (s == int(s)) ? s : int(s) + 1 }'; }

finish() {
  if [ "$failures" -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
  fi
  echo "all checks passed"
}

# tiny_corpus SEED DOCS: DOCS documents of 8 short sentences over a small vocabulary, separated by blank
# lines, on stdout (deterministic for a seed).
tiny_corpus() {
  awk -v seed="$1" -v docs="$2" 'BEGIN {
    srand(seed)
    n = split("the a man woman dog cat went to store park house saw big small red blue ran quickly slowly " \
              "and then said that was happy sad old young tree river city walked looked", w, " ")
    for (d = 0; d < docs; d++) {
      for (l = 0; l < 8; l++) {
        s = ""; len = 6 + int(rand() * 10)
        for (i = 0; i < len; i++) s = s (i ? " " : "") w[1 + int(rand() * n)]
        print s " ."
      }
      print ""
    }
  }'
}
