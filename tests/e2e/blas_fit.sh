#!/usr/bin/env bash
# OpenBLAS's core fitted to the CPU: blas_probe checks a core in its own process; run_mlm logs which core
# runs and why; a user's OPENBLAS_CORETYPE is kept; MPIBERT_BLAS_FIT=0 keeps OpenBLAS's own choice; and
# where OpenBLAS fell back on this CPU, run_mlm re-executes itself with the fitting core (or keeps the
# fallback with a warning when the probe fails), and gaudi_spawn exports the core to its ranks. Usage: blas_fit.sh BIN_DIR SOURCE_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
source "$src/tests/e2e/helpers/launcher_lib.sh"
for p in prepare_data run_mlm blas_probe gaudi_spawn; do
  [ -x "$bin/$p" ] || { echo "FAIL: $bin/$p is not built" >&2; exit 1; }
done
make_work_dir
cd "$work"
unset OPENBLAS_CORETYPE MPIBERT_BLAS_FIT MPIBERT_BLAS_FIT_CORE MPIBERT_BLAS_FIT_NOTE

"$bin/blas_probe" >probe.out 2>&1
expect_code 0 $? "blas_probe with OpenBLAS's own core"
expect_grep '^blas_probe: core .*: sgemm matches a double-precision product in every case$' probe.out "it says so"
if grep -q 'core not OpenBLAS' probe.out; then
  echo "not OpenBLAS here: nothing to fit, nothing more to check"
  finish
fi
OPENBLAS_CORETYPE=NoSuchCore "$bin/blas_probe" >bogus.out 2>&1
expect_code 3 $? "blas_probe with a core OpenBLAS does not take"
expect_grep '^blas_probe: OpenBLAS did not take OPENBLAS_CORETYPE=NoSuchCore' bogus.out "it names the setting"
"$bin/blas_probe" --bogus >usage.out 2>&1
expect_code 2 $? "blas_probe with an argument"

tiny_corpus 5 40 >corpus.txt
cat >tiny.yaml <<YAML
data: {input: $work/corpus.txt, shards_dir: $work/shards, vocab_size: 120, min_frequency: 1, seq_len: 32,
       validation_fraction: 0.1}
model: {preset: tiny}
train: {output_dir: $work/out, overwrite_output_dir: true, per_device_train_batch_size: 4, max_steps: 2,
        do_eval: false, report_to: none}
dist: {threads: 1}
YAML
"$bin/prepare_data" all --config tiny.yaml >prep.out 2>&1
expect_code 0 $? "prepare_data"

# run_mlm [ENV...]: one short run; its console in run.out
run() {
  env "$@" "$bin/run_mlm" --config tiny.yaml >run.out 2>&1
}
core_of_run() { sed -n 's/.*\] BLAS: OpenBLAS (OpenBLAS .* \([A-Za-z0-9_]*\) MAX_THREADS.*/\1/p' run.out | head -1; }

# Prescott's SSE3 kernels run on every x86-64 CPU: as the user's setting it is kept, fallback or not.
run OPENBLAS_CORETYPE=Prescott
expect_code 0 $? "run_mlm with OPENBLAS_CORETYPE=Prescott"
expect_grep 'BLAS core: OPENBLAS_CORETYPE=Prescott from the environment, kept' run.out "the user's core is kept"
[ "$(core_of_run)" = Prescott ] && pass "OpenBLAS runs Prescott" || fail "OpenBLAS runs '$(core_of_run)', not Prescott"

run MPIBERT_BLAS_FIT=0
expect_code 0 $? "run_mlm with MPIBERT_BLAS_FIT=0"
expect_grep "BLAS core: MPIBERT_BLAS_FIT=0: OpenBLAS's own choice kept" run.out "fitting turned off"
own_core=$(core_of_run)

run
expect_code 0 $? "run_mlm as it starts by default"
if grep -q 'BLAS core: OpenBLAS core .*, chosen for this CPU: OpenBLAS picked its fallback core' run.out; then
  chosen=$(sed -n 's/.*BLAS core: OpenBLAS core \([A-Za-z0-9_]*\), chosen.*/\1/p' run.out)
  pass "OpenBLAS fell back to $own_core here; run_mlm chose $chosen"
  [ "$(core_of_run)" = "$chosen" ] && pass "OpenBLAS runs $chosen after the re-execution" ||
    fail "OpenBLAS runs '$(core_of_run)', not the chosen $chosen"
  expect_grep "blas_probe: core $chosen: sgemm matches" run.out "the log carries the probe's result"

  # gaudi_spawn decides once for ranks on this host and exports the core: they start with it.
  "$bin/gaudi_spawn" --world_size 2 --dry_run "$bin/run_mlm" >dry.out 2>&1
  expect_grep "^# BLAS core: OpenBLAS core $chosen, chosen for this CPU: .*; exported to the ranks$" dry.out \
    "gaudi_spawn --dry_run says which core it exports"
  expect_grep "^OPENBLAS_CORETYPE=$chosen$" dry.out "every rank gets OPENBLAS_CORETYPE=$chosen"
  "$bin/gaudi_spawn" --world_size 2 --env OPENBLAS_CORETYPE=Prescott --dry_run "$bin/run_mlm" >dry.out 2>&1
  expect_no_grep "OPENBLAS_CORETYPE=$chosen" dry.out "gaudi_spawn --env OPENBLAS_CORETYPE=Prescott wins"
  "$bin/gaudi_spawn" --world_size 2 "$bin/run_mlm" --config tiny.yaml >spawn.out 2>&1
  expect_code 0 $? "2 ranks under gaudi_spawn"
  expect_grep "BLAS core: OpenBLAS core $chosen, chosen for this CPU" spawn.out "rank 0 runs $chosen"

  # A probe that fails (a kernel the CPU cannot run, say): the fallback is kept, with a warning.
  mkdir -p badbin
  cp "$bin/run_mlm" badbin/
  printf '#!/bin/sh\necho "blas_probe: core $OPENBLAS_CORETYPE computes a wrong product: (simulated)"\nexit 1\n' \
    >badbin/blas_probe
  chmod +x badbin/blas_probe
  env badbin/run_mlm --config tiny.yaml >run.out 2>&1
  expect_code 0 $? "run_mlm whose probe fails"
  expect_grep "\[warning\] BLAS core: OpenBLAS picked its fallback core $own_core .*; kept it: blas_probe with OPENBLAS_CORETYPE=$chosen failed \(exit 1\): blas_probe: core $chosen computes a wrong product" \
    run.out "the fallback is kept, with a warning naming the probe's result"
  [ "$(core_of_run)" = "$own_core" ] && pass "OpenBLAS still runs $own_core" || fail "OpenBLAS runs '$(core_of_run)'"
else
  expect_grep "BLAS core: OpenBLAS core $own_core, its own choice for this CPU" run.out \
    "OpenBLAS's own choice ($own_core) fits this CPU: kept, and the log says so"
  [ "$(core_of_run)" = "$own_core" ] && pass "no re-execution" || fail "OpenBLAS runs '$(core_of_run)'"
fi
finish
