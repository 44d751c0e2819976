#!/usr/bin/env bash
# gaudi_spawn end to end, the good paths: ranks start under mpirun, rank 0 on the console and every rank
# in --log_dir, thread variables and --env reach the ranks, program arguments pass through untouched,
# one rank runs directly, more ranks than cores still run, --dry_run runs nothing.
# Usage: launcher_basic.sh BIN_DIR SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
source "$src/tests/e2e/helpers/launcher_lib.sh"
G="$bin/gaudi_spawn"
R="$src/tests/e2e/helpers/fake_rank.sh"
make_work_dir

echo "== two ranks, --log_dir, --env, arguments after PROGRAM untouched"
"$G" --world_size 2 --use_mpi --log_dir "$work/logs" --env E2E_VAR="a b" \
  "$R" hello --world_size 9 -x "two words" >"$work/out" 2>"$work/err"
expect_code 0 $? "two ranks"
expect_grep '^rank 0 of 2: hello' "$work/out" "rank 0 prints on the console"
expect_no_grep 'rank 1' "$work/out" "rank 1 stays off the console (stdout)"
expect_no_grep 'rank 1' "$work/err" "rank 1 stays off the console (stderr)"
expect_grep '^rank 0: a line on stderr' "$work/err" "rank 0's stderr on the console's stderr"
expect_grep 'args=\[--world_size 9 -x two words\]' "$work/out" "program arguments passed through untouched"
expect_grep 'E2E_VAR=a b ' "$work/out" "--env reaches the ranks"
threads=$(sed -n 's/.* OMP_NUM_THREADS=\([0-9]*\) .*/\1/p' "$work/out")
expect_grep "OPENBLAS_NUM_THREADS=$threads MPIBERT_THREADS_PER_RANK=$threads " "$work/out" \
  "OMP, OpenBLAS and MPIBERT thread variables agree ($threads)"
expect_grep "^OMP_NUM_THREADS=$threads\$" <("$G" --world_size 2 --dry_run "$R" hello) "threads match the plan"
for r in 0 1; do
  expect_grep "^rank $r of 2: hello" "$work/logs/rank-$r.log" "rank-$r.log has rank $r's stdout"
  expect_grep "^rank $r: a line on stderr" "$work/logs/rank-$r.log" "rank-$r.log has rank $r's stderr"
done
leftover=$(ls -A "$work/logs" | grep -v '^rank-[0-9]*\.log$' || true)
[ -z "$leftover" ] && pass "only rank logs remain in --log_dir" || fail "extra files in --log_dir: $leftover"

echo "== --world_size=2 spelling, PROGRAM found on PATH, output captured without --log_dir"
PATH="$src/tests/e2e/helpers:$PATH" "$G" --world_size=2 fake_rank.sh hello >"$work/out" 2>"$work/err"
expect_code 0 $? "--world_size=2 with a program on PATH"
expect_grep '^rank 0 of 2: hello' "$work/out" "rank 0 of 2 ran"

echo "== one rank runs the program directly with the same variables"
"$G" --env E2E_VAR=direct "$R" hello one >"$work/out" 2>"$work/err"
expect_code 0 $? "one rank"
expect_grep '^rank 0 of 1: hello .*E2E_VAR=direct args=\[one\]' "$work/out" "no mpirun (no MPI rank variables), --env applied"
direct_threads=$("$G" --dry_run "$R" hello | sed -n 's/^OMP_NUM_THREADS=//p')
expect_grep "OMP_NUM_THREADS=$direct_threads OPENBLAS_NUM_THREADS=$direct_threads " "$work/out" \
  "one rank gets all cores' threads ($direct_threads)"
"$G" --log_dir "$work/one" "$R" exit 0 5 direct >"$work/out" 2>"$work/err"
expect_code 5 $? "one rank: the program's exit code is gaudi_spawn's"
expect_grep '^rank 0: about to fail with code 5' "$work/one/rank-0.log" "one rank with --log_dir writes rank-0.log"

echo "== four ranks (oversubscribed where cores are fewer)"
"$G" --world_size 4 --log_dir "$work/four" "$R" hello >"$work/out" 2>"$work/err"
expect_code 0 $? "four ranks"
for r in 0 1 2 3; do expect_grep "^rank $r of 4: hello" "$work/four/rank-$r.log" "rank $r of 4 ran"; done
if [ "$(nproc)" -lt 4 ]; then
  expect_grep 'warning: 4 ranks on .* cores: oversubscribing' "$work/err" "oversubscription is announced"
fi

echo "== --dry_run prints the command and environment and runs nothing"
"$G" --world_size 2 --dry_run --log_dir "$work/dry" "$R" hello x >"$work/out" 2>"$work/err"
expect_code 0 $? "dry run"
expect_grep '^# command:$' "$work/out" "dry run shows the command"
expect_grep "mpirun -np 2 .*--map-by .* -x OMP_NUM_THREADS=[0-9]+ .* -- $R hello x\$" "$work/out" "the exact mpirun command"
expect_grep '^OPENBLAS_NUM_THREADS=[0-9]+$' "$work/out" "dry run shows the environment"
[ ! -e "$work/dry" ] && pass "dry run started nothing" || fail "dry run created $work/dry"

finish
