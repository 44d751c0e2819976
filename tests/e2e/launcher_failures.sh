#!/usr/bin/env bash
# gaudi_spawn end to end, the failure paths: a rank exiting 3 makes gaudi_spawn exit 3; a rank killed
# with SIGKILL ends the job non-zero within 10 s; both name the rank, its host and its last lines and
# leave no process behind; --timeout gives 124; SIGTERM/SIGINT reach the job, and a clean stop (exit 75)
# gets one line saying where to resume from; a worker's usage error shows the worker's line and
# gaudi_spawn's, with mpirun's boxes in the log only; bad options, a missing program, a directory as
# PROGRAM and an unresolvable host give exit 2 and one line. Every check writes its own output files: a check that waits
# for a line must not find the line an earlier run left.
# Usage: launcher_failures.sh BIN_DIR SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
source "$src/tests/e2e/helpers/launcher_lib.sh"
G="$bin/gaudi_spawn"
R="$src/tests/e2e/helpers/fake_rank.sh"
make_work_dir
tag="e2e-$$"

echo "== a rank exiting 3"
"$G" --world_size 2 "$R" exit 1 3 "$tag-exit" >"$work/exit.out" 2>"$work/exit.err"
expect_code 3 $? "gaudi_spawn exits with the failing rank's code"
expect_grep '^gaudi_spawn: error: rank 1 on host [^ ]+ exited with code 3; last 2 lines of its output:$' "$work/exit.err" \
  "the failing rank and host are named"
expect_grep '^  \| rank 1: failing now$' "$work/exit.err" "its last lines are shown"
no_leftovers "$tag-exit"

echo "== a rank killed with SIGKILL"
start=$(now)
"$G" --world_size 2 --log_dir "$work/logs" "$R" sigkill 1 "$tag-kill" >"$work/kill.out" 2>"$work/kill.err"
code=$?
took=$(seconds_since "$start")
[ "$code" -ne 0 ] && pass "non-zero exit ($code)" || fail "a SIGKILLed rank gave exit 0"
expect_code 137 "$code" "128 + SIGKILL"
[ "$took" -le "$(scaled 10)" ] && pass "the job ended within $(scaled 10) s ($took s)" || fail "the job took $took s to end"
expect_grep "^gaudi_spawn: error: rank 1 on host [^ ]+ was killed by signal 9 \(SIGKILL\); last 1 line of its output \($work/logs/rank-1.log\):" \
  "$work/kill.err" "the killed rank, its host and its log are named"
no_leftovers "$tag-kill"

echo "== --timeout"
"$G" --world_size 2 --timeout 2 "$R" sleep "$tag-timeout" >"$work/timeout.out" 2>"$work/timeout.err"
expect_code 124 $? "a job past --timeout exits 124"
expect_grep 'error: the job ran past --timeout 2 s; stopping it' "$work/timeout.err" "the timeout is said"
no_leftovers "$tag-timeout"

for sig in TERM INT; do
  echo "== SIG$sig to gaudi_spawn reaches the job"
  # The output files are new for this signal: the line waited for comes from this run's rank 0, so the
  # signal reaches gaudi_spawn itself, never the shell's child before it has become gaudi_spawn.
  "$G" --world_size 2 "$R" sleep "$tag-$sig" >"$work/sig$sig.out" 2>"$work/sig$sig.err" &
  pid=$!
  wait_for_grep '^rank 0: sleeping' "$work/sig$sig.out" || fail "rank 0 did not start"
  kill -s "$sig" "$pid"
  wait "$pid"
  code=$?
  [ "$sig" = TERM ] && want=143 || want=130
  expect_code "$want" "$code" "gaudi_spawn stops on SIG$sig with 128 + signal"
  expect_grep "got SIG$sig, passing it on to the job" "$work/sig$sig.err" "the signal is announced"
  no_leftovers "$tag-$sig"
done

echo "== a stop request reaches every rank's program, which may end cleanly (as run_mlm does: exit 75)"
"$G" --world_size 2 --log_dir "$work/graceful" "$R" graceful "$tag-graceful" >"$work/graceful.out" 2>"$work/graceful.err" &
pid=$!
wait_for_grep '^rank 0: waiting for a stop request' "$work/graceful.out" || fail "rank 0 did not start"
wait_for_grep '^rank 1: waiting for a stop request' "$work/graceful/rank-1.log" || fail "rank 1 did not start"
kill -INT "$pid"
wait "$pid"
expect_code 75 $? "the ranks' own exit code after a clean stop"
for r in 0 1; do
  expect_grep "^rank $r: got SIGINT, stopping cleanly" "$work/graceful/rank-$r.log" "rank $r got SIGINT itself"
done
# One line from gaudi_spawn after its "passing it on": where to resume from, no error, no mpirun boxes.
expect_lines 1 <(grep '^gaudi_spawn: ' "$work/graceful.err" | grep -v 'got SIGINT, passing it on') \
  "a clean stop: one line from gaudi_spawn"
expect_grep '^gaudi_spawn: stopped cleanly at step 7, checkpoint out/checkpoint-7; rerun the same command to resume$' \
  "$work/graceful.err" "a clean stop says the step, the checkpoint and how to resume"
expect_no_grep 'error|-----|job aborted|Primary job' "$work/graceful.err" "a clean stop shows no error and no mpirun box"
no_leftovers "$tag-graceful"

echo "== a worker's usage error on every rank: the worker's line and gaudi_spawn's, mpirun's boxes in the log"
"$G" --world_size 2 --log_dir "$work/usage-logs" "$R" usage >"$work/wusage.out" 2>"$work/wusage.err"
expect_code 2 $? "the ranks' exit code"
expect_grep "^fake_rank.sh: error: unknown option '--bogus'" "$work/wusage.err" "rank 0's own line is on the console"
expect_lines 1 <(grep '^gaudi_spawn: ' "$work/wusage.err") "one line from gaudi_spawn"
expect_grep '^gaudi_spawn: error: rank [01] on host [^ ]+ exited with code 2' "$work/wusage.err" "it names the rank"
expect_lines 0 <(grep -Ev "^(gaudi_spawn: |fake_rank.sh: error: |  \| )" "$work/wusage.err") "nothing else on stderr"
expect_no_grep '-----|job aborted|Primary job|mpirun detected' "$work/wusage.err" "mpirun's boxes are not on the console"
expect_grep 'Primary job|mpirun detected|exited with non-zero status' "$work/usage-logs/mpirun.log" \
  "mpirun's messages are in --log_dir/mpirun.log"

"$G" --world_size 2 --timeout 2 --log_dir "$work/graceful-timeout" "$R" graceful "$tag-gtimeout" \
  >"$work/gtimeout.out" 2>"$work/gtimeout.err"
expect_code 124 $? "--timeout still exits 124 when the ranks stop cleanly"
expect_grep '^rank 1: got SIGTERM, stopping cleanly' "$work/graceful-timeout/rank-1.log" "--timeout asks the ranks with SIGTERM"
no_leftovers "$tag-gtimeout"

echo "== SIGTERM with one rank (no mpirun)"
"$G" "$R" sleep "$tag-direct" >"$work/direct.out" 2>"$work/direct.err" &
pid=$!
wait_for_grep '^rank 0: sleeping' "$work/direct.out" || fail "the program did not start"
kill -TERM "$pid"
wait "$pid"
expect_code 143 $? "one rank: SIGTERM passed on"
no_leftovers "$tag-direct"

echo "== usage errors: exit 2 and one line"
printf 'localhost slots=1\nlocalhost slots=1\n' >"$work/dup-hosts"
printf 'localhost slots=one\n' >"$work/bad-hosts"
usage_checks=0
check_usage() {
  local what=$1 pattern=$2
  shift 2
  usage_checks=$((usage_checks + 1))
  local out="$work/usage-$usage_checks.out" err="$work/usage-$usage_checks.err"
  "$G" "$@" >"$out" 2>"$err"
  expect_code 2 $? "$what"
  expect_lines 1 "$err" "$what: one line on stderr"
  expect_grep "^gaudi_spawn: error: .*$pattern" "$err" "$what: says what is wrong"
  expect_lines 0 "$out" "$what: nothing on stdout"
}
check_usage "missing program" "program 'no_such_program_e2e' not found" --world_size 2 no_such_program_e2e
check_usage "missing PROGRAM" "missing PROGRAM" --world_size 2
check_usage "unknown option" "did you mean '--world_size'" --world_sise 2 "$R" hello
check_usage "bad number" "--world_size: '0' is out of range" --world_size 0 "$R" hello
check_usage "bad choice" "did you mean 'core'" --bind_to cores "$R" hello
check_usage "mpirun spelling" "did you mean '--world_size'" -np 2 "$R" hello
check_usage "duplicate host" "host 'localhost' is listed twice" --hostfile "$work/dup-hosts" "$R" hello
check_usage "bad hostfile line" "bad-hosts line 1: slots: 'one' is not a valid count" --hostfile "$work/bad-hosts" "$R" hello
check_usage "too few slots" "needs 2 slots but --hosts localhost:1 offers 1" --hosts localhost:1 --world_size 2 "$R" hello
check_usage "unset --env" "--env E2E_UNSET_VARIABLE: E2E_UNSET_VARIABLE is not set" --world_size 2 --env E2E_UNSET_VARIABLE "$R" hello
check_usage "switch with a value" "option '--dry_run' takes no value" --dry_run=yes "$R" hello
check_usage "directory as PROGRAM" "program '$work' \\($work\\) is a directory" --world_size 2 "$work"
check_usage "unresolvable host" "host no-such-host.invalid cannot be resolved" \
  --hosts localhost:1,no-such-host.invalid:1 "$R" hello
check_usage "open quote" "--mpirun_args: unterminated ' quote" --mpirun_args "--mca 'x" "$R" hello

finish
