#!/usr/bin/env bash
# A stand-in rank for the launcher's end-to-end tests. Usage: fake_rank.sh MODE [ARGS...] [TAG]
#   hello ARGS...        print rank, thread variables and ARGS on stdout, a line on stderr, exit 0
#   exit RANK CODE TAG   rank RANK prints and exits CODE; the others sleep (the job must stop them)
#   sigkill RANK TAG     rank RANK kills itself with SIGKILL; the others sleep
#   sleep TAG            every rank prints and sleeps (timeouts, signal forwarding)
#   graceful TAG         every rank prints and waits; on SIGTERM/SIGINT it says so, prints run_mlm's
#                        checkpoint and stop lines (step 7, checkpoint out/checkpoint-7) and
#                        exits 75, as run_mlm does after writing its preemption checkpoint
#   usage                every rank says "unknown option" on stderr and exits 2 (a worker's usage error)
# Waiting ranks carry TAG in their command line, so a test can look for leftovers of its own.
rank=${OMPI_COMM_WORLD_RANK:-0}
size=${OMPI_COMM_WORLD_SIZE:-1}
mode=$1
shift
case "$mode" in
  hello)
    echo "rank $rank of $size: hello OMP_NUM_THREADS=$OMP_NUM_THREADS OPENBLAS_NUM_THREADS=$OPENBLAS_NUM_THREADS" \
         "MPIBERT_THREADS_PER_RANK=$MPIBERT_THREADS_PER_RANK E2E_VAR=${E2E_VAR-unset} args=[$*]"
    echo "rank $rank: a line on stderr" >&2
    ;;
  exit)
    if [ "$rank" = "$1" ]; then
      echo "rank $rank: about to fail with code $2"
      sleep 0.5
      echo "rank $rank: failing now" >&2
      exit "$2"
    fi
    echo "rank $rank: waiting"
    exec -a "fake-rank-sleep-$3" sleep 300
    ;;
  sigkill)
    if [ "$rank" = "$1" ]; then
      echo "rank $rank: about to be killed"
      sleep 0.5
      kill -KILL $$
    fi
    echo "rank $rank: waiting"
    exec -a "fake-rank-sleep-$2" sleep 300
    ;;
  sleep)
    echo "rank $rank: sleeping"
    exec -a "fake-rank-sleep-$1" sleep 300
    ;;
  graceful)
    # run_mlm's lines (worker/train/checkpointer.cpp, trainer.cpp), which gaudi_spawn reads.
    stop() {
      echo "rank $rank: got SIG$1, stopping cleanly"
      echo "[2026-01-01 00:00:00.000] [rank $rank] [info] saved out/checkpoint-7"
      echo "[2026-01-01 00:00:00.001] [rank $rank] [warning] stopped by signal $2 after step 7: checkpoint written;" \
           "rerun the same command to resume"
      exit 75
    }
    trap 'stop TERM 15' TERM
    trap 'stop INT 2' INT
    echo "rank $rank: waiting for a stop request"
    while :; do sleep 0.1; done
    ;;
  usage)
    echo "fake_rank.sh: error: unknown option '--bogus' (valid: hello, exit, ...)" >&2
    exit 2
    ;;
  *)
    echo "fake_rank.sh: unknown mode '$mode'" >&2
    exit 64
    ;;
esac
