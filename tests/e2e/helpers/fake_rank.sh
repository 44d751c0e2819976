#!/usr/bin/env bash
# A stand-in rank for the launcher's end-to-end tests. Usage: fake_rank.sh MODE [ARGS...] [TAG]
#   hello ARGS...        print rank, thread variables and ARGS on stdout, a line on stderr, exit 0
#   exit RANK CODE TAG   rank RANK prints and exits CODE; the others sleep (the job must stop them)
#   sigkill RANK TAG     rank RANK kills itself with SIGKILL; the others sleep
#   sleep TAG            every rank prints and sleeps (timeouts, signal forwarding)
#   graceful TAG         every rank prints and waits; on SIGTERM/SIGINT it says so and exits 75, as
#                        run_mlm does after writing its preemption checkpoint
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
    trap 'echo "rank $rank: got SIGTERM, stopping cleanly"; exit 75' TERM
    trap 'echo "rank $rank: got SIGINT, stopping cleanly"; exit 75' INT
    echo "rank $rank: waiting for a stop request"
    while :; do sleep 0.1; done
    ;;
  *)
    echo "fake_rank.sh: unknown mode '$mode'" >&2
    exit 64
    ;;
esac
