#!/usr/bin/env bash
# gaudi_spawn across hosts, for real: two "hosts" as network namespaces on a bridge (tests/e2e/multihost/
# hosts.sh), each with its own hostname, h2 with its own /tmp (no shared file system), Open MPI's remote
# agent replaced by tests/e2e/multihost/agent.sh (gaudi_spawn --launch_agent), gaudi_spawn started on h1.
# Checks: rank 1 ran on h2 (h2's interface counted the traffic; its logs are in h2's /tmp only); the step
# losses equal those of the same 2 ranks on one host (<= 1e-5); SIGINT to gaudi_spawn ends in a clean stop
# with a checkpoint on h1 and the rerun resumes; a rank killed on h2, every process of h2 killed, an
# unresolvable host and a cut link each end the job with one line naming the host; with --max_restarts a
# crash of h2 restarts the run on h1 alone, which finishes with the losses of a plain 1-rank resume; no
# status file, Open MPI daemon or session directory is left on h2. Needs root, iproute2 and unshare (exit 77 otherwise).
# Usage: tests/e2e/multihost.sh BIN_DIR SOURCE_DIR   (as root; CTest runs it alone: RUN_SERIAL)
set -uo pipefail
bin=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/e2e/helpers/launcher_lib.sh"
skip() {
  echo "SKIP: $*"
  exit 77
}
[ "$(id -u)" = 0 ] || skip "needs root (network namespaces, mounts)"
for tool in ip unshare hostname getent timeout python3; do
  command -v "$tool" >/dev/null || skip "needs $tool (iproute2, util-linux)"
done
for p in gaudi_spawn prepare_data run_mlm; do
  [ -x "$bin/$p" ] || { echo "FAIL: $bin/$p is not built" >&2; exit 1; }
done
G="$bin/gaudi_spawn"
R="$src/tests/e2e/helpers/fake_rank.sh"
agent="$src/tests/e2e/multihost/agent.sh"
started=$(now)

# h2's /tmp is a directory under $work, which is under the machine's /tmp: paths under /tmp are the same
# on both hosts but hold different files.
work=$(mktemp -d /tmp/mpibert-multihost.XXXXXX)
id="mh$$"
id=${id:0:8}
source "$src/tests/e2e/multihost/hosts.sh"
# `ip netns add` makes /run/netns a mount point; where it was not one before (e.g. a chroot, where the
# setup then fails), the mount is ours to remove once the namespaces are gone.
netns_mounted_before=$(mountpoint -q /run/netns 2>/dev/null && echo 1 || echo 0)
cleanup() {
  [ "$BASHPID" = "$$" ] || return
  mh_teardown
  [ "$netns_mounted_before" = 1 ] || ! mountpoint -q /run/netns 2>/dev/null || umount /run/netns 2>/dev/null
  [ -n "${MH_KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if ! mh_setup 2 2>"$work/setup.err"; then
  skip "cannot make network namespaces here: $(head -1 "$work/setup.err")"
fi
h2tmp=$(mh_tmp h2)
cd "$work"

# Everything the ranks read, at the same path on both hosts.
tiny_corpus 11 60 >corpus.txt
cat >tiny.yaml <<YAML
data:
  input: $work/corpus.txt
  shards_dir: $work/shards
  vocab_size: 120
  min_frequency: 1
  seq_len: 32
  validation_fraction: 0.1
model:
  preset: tiny
train:
  output_dir: $work/out
  per_device_train_batch_size: 4
  max_steps: 6
  logging_steps: 1
  save_steps: 0
  eval_steps: 0
  do_eval: false
  report_to: none
  learning_rate: 1.0e-3
dist:
  timeout_s: 20
YAML
"$bin/prepare_data" all --config tiny.yaml >prep.log 2>&1 || { sed 's/^/    /' prep.log >&2; fail "prepare_data"; finish; }
mkdir -p "$h2tmp/${work#/tmp/}"
cp -a tiny.yaml shards "$h2tmp/${work#/tmp/}/"

# spawn OUT_PREFIX GAUDI_SPAWN_ARGS...: gaudi_spawn on h1, output in OUT_PREFIX.out/.err, exit code returned.
mh_spawn_args=(--launch_agent "$agent $work/hosts.map" --network_interface 198.18.0.0/24 --bind_to none)
spawn() {
  local out=$1
  shift
  timeout -s KILL "$(scaled 240)" ip netns exec "$(mh_ns h1)" unshare --uts sh -c 'hostname h1 && exec "$@"' h1 "$G" \
    "${mh_spawn_args[@]}" "$@" >"$out.out" 2>"$out.err"
}
# The same in the background; sets $pid (gaudi_spawn's, once it has started).
spawn_bg() {
  local out=$1
  shift
  ip netns exec "$(mh_ns h1)" unshare --uts sh -c 'hostname h1 && exec "$@"' h1 "$G" \
    "${mh_spawn_args[@]}" "$@" >"$out.out" 2>"$out.err" &
  pid=$!
}
# wait_for_step N FILE: run_mlm's rank 0 has logged step N.
wait_for_step() {
  local i
  for i in $(seq 1 "$(scaled 1200)"); do
    grep -Eq "\[rank 0\] \[info\] step $1/" "$2" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
losses() { python3 -c 'import json,sys; [print(json.loads(l)["step"], json.loads(l)["loss"]) for l in open(sys.argv[1]) if "loss" in l]' "$1"; }
# one_line WHAT FILE PATTERN: FILE (gaudi_spawn's stderr, after rank 0's own lines) ends in exactly one
# gaudi_spawn line, and it matches PATTERN.
gaudi_lines() { grep -c '^gaudi_spawn: ' "$1"; }
one_line() {
  expect_lines 1 <(grep '^gaudi_spawn: ' "$2" | grep -v 'got SIG.*passing it on') "$1: one line from gaudi_spawn"
  expect_grep "$3" <(grep '^gaudi_spawn: ' "$2" | tail -1) "$1: the line says what happened"
  echo "    the user sees: $(grep '^gaudi_spawn: ' "$2" | tail -1)"
}
no_leftovers_on_h2() {
  local i
  for i in $(seq 1 "$(scaled 600)"); do
    [ -z "$(mh_pids h2)" ] && break
    sleep 0.2
  done
  [ -z "$(mh_pids h2)" ] && pass "$1: no process left on h2" ||
    fail "$1: left on h2: $(ps -o pid=,args= -p "$(mh_pids h2 | paste -sd,)")"
  local left
  left=$(cd "$h2tmp" && ls -d ompi.* openmpi-sessions-* prte.* gaudi_spawn.* 2>/dev/null)
  [ -z "$left" ] && pass "$1: no session directory or status file on h2" || fail "$1: left in h2's /tmp: $left"
}

echo "== the same 2 ranks on one host (h1:2) and on two hosts (h1:1,h2:1): threads, losses, placement"
"$G" --dry_run --hosts h1:2 run_mlm >dry1.out 2>&1
"$G" --dry_run --hosts h1:1,h2:1 run_mlm >dry2.out 2>&1
t1=$(sed -n 's/^# threads per rank: \([0-9]*\).*/\1/p' dry1.out)
t2=$(sed -n 's/^# threads per rank: \([0-9]*\).*/\1/p' dry2.out)
[ -n "$t1" ] && [ "$t1" = "$t2" ] && pass "the same threads per rank by default on one host and two ($t1)" ||
  fail "threads per rank differ: one host $t1, two hosts $t2"
spawn one --hosts h1:2 "$bin/run_mlm" --config tiny.yaml --output_dir "$work/out-one"
expect_code 0 $? "2 ranks on h1"
before=$(mh_bytes h2)
spawn two --hosts h1:1,h2:1 --log_dir "$work/launcher-logs" "$bin/run_mlm" --config tiny.yaml --output_dir "$work/out-two"
code=$?
expect_code 0 "$code" "rank 0 on h1, rank 1 on h2"
[ "$code" -eq 0 ] || sed 's/^/    /' two.err >&2
moved=$(($(mh_bytes h2) - before))
[ "$moved" -gt 100000 ] && pass "h2's interface carried the training's traffic ($moved bytes)" ||
  fail "h2's interface carried only $moved bytes"
h2work="$h2tmp/${work#/tmp/}"  # $work as h2 sees it
expect_grep '^rank 1 ' <(echo "rank 1 "; cat "$h2work/launcher-logs/rank-1.log" 2>/dev/null) "rank 1's log exists"
[ -f "$h2work/launcher-logs/rank-1.log" ] && [ ! -e "$work/launcher-logs/rank-1.log" ] &&
  pass "rank 1's console log is in h2's /tmp only" || fail "rank 1's log is not (only) on h2"
[ -f "$h2work/out-two/logs/rank-1.log" ] && pass "run_mlm's rank 1 wrote its log on h2" ||
  fail "no run_mlm rank-1 log on h2"
if python3 - out-one/metrics.jsonl out-two/metrics.jsonl <<'PY'; then pass "step losses equal (<= 1e-5)"; else fail "step losses differ"; fi
import json, sys
rows = [[json.loads(l) for l in open(p) if '"loss"' in l] for p in sys.argv[1:]]
a = {r["step"]: r["loss"] for r in rows[0]}
b = {r["step"]: r["loss"] for r in rows[1]}
assert a.keys() == b.keys() and len(a) == 6, (a, b)
worst = max(abs(a[s] - b[s]) for s in a)
print(f"    largest step-loss difference: {worst:.3g}")
assert worst <= 1e-5
PY
no_leftovers_on_h2 "after a good run"

echo "== SIGINT to gaudi_spawn: a checkpoint on h1, a clean stop, and the rerun resumes"
spawn_bg int --hosts h1:1,h2:1 "$bin/run_mlm" --config tiny.yaml --output_dir "$work/out-int" --max_steps 100000
wait_for_step 2 int.err || fail "training did not reach step 2"
kill -INT "$pid"
wait "$pid"
expect_code 75 $? "a clean stop after SIGINT"
one_line "SIGINT" int.err '^gaudi_spawn: stopped cleanly at step [0-9]+, checkpoint /tmp/.*/out-int/checkpoint-[0-9]+; rerun the same command to resume$'
ckpt=$(sed -n 's/.*checkpoint \(.*\); rerun.*/\1/p' int.err | tail -1)
[ -n "$ckpt" ] && [ -d "$ckpt" ] && [ ! -e "$h2tmp$ckpt" ] && pass "the checkpoint is on h1 ($ckpt), not on h2" ||
  fail "checkpoint '$ckpt' not on h1 only"
step=${ckpt##*-}
spawn resume --hosts h1:1,h2:1 "$bin/run_mlm" --config tiny.yaml --output_dir "$work/out-int" --max_steps $((step + 2))
expect_code 0 $? "the rerun"
expect_grep "resuming from .*checkpoint-$step at step $step" resume.err "the rerun resumed from step $step"
no_leftovers_on_h2 "after SIGINT"

echo "== a rank killed on h2 (its daemon alive): named with its host, no contradiction, nothing left on h2"
spawn kill1 --hosts h1:1,h2:1 "$R" sigkill 1 "mh-$$"
expect_code 137 $? "128 + SIGKILL"
one_line "rank 1 killed" kill1.err '^gaudi_spawn: error: rank 1 on host h2 was killed by signal 9 \(SIGKILL\)'
expect_no_grep 'no rank reported' kill1.err "the report does not contradict itself"
expect_no_grep '^-----|ORTE|mpirun' kill1.err "mpirun's messages stay off the console"
no_leftovers_on_h2 "after a rank was killed"

echo "== an unresolvable host"
spawn unresolved --hosts h1:1,h9:1 "$R" hello
code=$?
[ "$code" -ne 0 ] && pass "non-zero exit ($code)" || fail "exit 0 with an unresolvable host"
expect_lines 1 unresolved.err "one line on stderr"
one_line "unresolvable host" unresolved.err '^gaudi_spawn: error: host h9 cannot be resolved'

echo "== every process of h2 killed (a host crash)"
spawn_bg crash --hosts h1:1,h2:1 "$bin/run_mlm" --config tiny.yaml --output_dir "$work/out-crash" --max_steps 100000
wait_for_step 2 crash.err || fail "training did not reach step 2"
t0=$(now)
mh_kill_all h2
wait "$pid"
code=$?
crash_s=$(seconds_since "$t0")
[ "$code" -ne 0 ] && pass "non-zero exit ($code) after ${crash_s} s" || fail "exit 0 after h2 crashed"
# Named by mpirun (its daemon on h2 is gone) or, when mpirun notices later, by rank 0's collective timeout.
one_line "h2 crashed" crash.err \
  '^gaudi_spawn: error: (lost contact with host h2: .*\(rank 1 ran there\)|host h2 is unreachable or rank 1 on it stopped)'
rm -rf "$h2tmp"/ompi.* "$h2tmp"/openmpi-sessions-*  # a crashed host's /tmp; the next case checks its own

echo "== elastic: every process of h2 killed mid-run with --max_restarts 1: the run finishes on h1"
# The same global batch (8) on 2 ranks x 4 and, after h2 is dropped, 1 rank x 4 x 2 accumulation.
# Every checkpoint kept (save_total_limit 0): the one the restart resumed from is resumed again below.
elastic_args=(--config tiny.yaml --max_steps 10 --save_steps 2 --save_total_limit 0 --global_batch_size 8
  --save_on_each_node)
spawn_bg elastic --hosts h1:1,h2:1 --max_restarts 1 --log_dir "$work/elastic-logs" "$bin/run_mlm" \
  "${elastic_args[@]}" --output_dir "$work/out-elastic"
wait_for_step 5 elastic.err || fail "training did not reach step 5"
ls -d "$h2work"/out-elastic/checkpoint-* >/dev/null 2>&1 && pass "h2 wrote its own checkpoints (--save_on_each_node)" ||
  fail "no checkpoint on h2 with --save_on_each_node"
mh_kill_all h2
wait "$pid"
expect_code 0 $? "the elastic job finished"
expect_grep '^gaudi_spawn: restarting in 1 s without host h2, from the latest checkpoint \(restart 1 of 1\)$' \
  elastic.err "gaudi_spawn said it restarts without h2"
expect_grep '^gaudi_spawn: restart 1 of 1 \(job .*\): 1 rank on 1 host \(h1: rank 0\)' elastic.err "the restart ran on h1 alone"
threads=$(sed -n 's/^gaudi_spawn: restart 1 of 1 .*), \([0-9]*\) threads\{0,1\} per rank.*/\1/p' elastic.err)
[ -n "$threads" ] && pass "the restart kept $threads thread(s) per rank" || fail "the restart line names no threads per rank"
expect_grep 'elastic job .*: attempt 2 \(restart 1 of at most 1\), 1 rank' elastic.err "run_mlm logged its attempt"
[ -f out-elastic/final/model.safetensors ] && pass "the restarted run exported final/" || fail "no final/ export"
expect_grep '"host": "h2"' elastic-logs/error.json "the error file names h2"
resumed=$(sed -n 's/.*resuming from .*checkpoint-\([0-9]*\) at step.*/\1/p' elastic.err | tail -1)
if [ -n "$resumed" ]; then
  pass "the restart resumed from checkpoint-$resumed"
  # A plain resume of the same checkpoint on 1 rank must give the same losses after it, at the threads
  # per rank the restart kept from the first attempt (h1:1 alone would get more, and BLAS kernels may
  # sum in another order with another thread count).
  mkdir -p out-plain && cp -a "out-elastic/checkpoint-$resumed" out-plain/
  spawn plain --hosts h1:1 --threads_per_rank "${threads:-1}" "$bin/run_mlm" "${elastic_args[@]}" \
    --output_dir "$work/out-plain"
  expect_code 0 $? "a plain resume on 1 rank"
  expect_grep "resuming from .*checkpoint-$resumed at step $resumed" plain.err "the plain run resumed from it too"
  if python3 - out-elastic/metrics.jsonl out-plain/metrics.jsonl "$resumed" <<'PY'; then
import json, sys
after = int(sys.argv[3])
rows = [{r["step"]: r["loss"] for r in map(json.loads, open(p)) if "loss" in r and r["step"] > after} for p in sys.argv[1:3]]
assert rows[0].keys() == rows[1].keys() and rows[0], rows
worst = max(abs(rows[0][s] - rows[1][s]) for s in rows[0])
print(f"    steps {min(rows[0])}-{max(rows[0])}: largest loss difference to a plain 1-rank resume {worst:.3g}")
if worst > 1e-5:
    for s in sorted(rows[0]):
        print(f"    step {s}: after the restart {rows[0][s]!r}, plain resume {rows[1][s]!r}")
assert worst <= 1e-5
PY
    pass "losses after the restart equal a plain resume on 1 rank"
  else
    fail "losses after the restart differ from a plain resume"
  fi
else
  fail "the restart did not resume from a checkpoint"
fi
rm -rf "$h2tmp"/ompi.* "$h2tmp"/openmpi-sessions-*

echo "== the link to h2 cut"
spawn_bg cut --hosts h1:1,h2:1 "$bin/run_mlm" --config tiny.yaml --output_dir "$work/out-cut" --max_steps 100000
wait_for_step 2 cut.err || fail "training did not reach step 2"
t0=$(now)
ip -n "$(mh_ns h2)" link set eth0 down
wait "$pid"
code=$?
cut_s=$(seconds_since "$t0")
ip -n "$(mh_ns h2)" link set eth0 up
[ "$code" -ne 0 ] && pass "non-zero exit ($code) after ${cut_s} s" || fail "exit 0 with the link cut"
one_line "link cut" cut.err '^gaudi_spawn: error: (host h2 is unreachable|lost contact with host h2)'
no_leftovers_on_h2 "after the link came back"

echo "harness time: $(seconds_since "$started") s (h2 crash named after ${crash_s:-?} s, link cut after ${cut_s:-?} s)"
finish
