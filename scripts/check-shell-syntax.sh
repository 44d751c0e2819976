#!/usr/bin/env bash
# `bash -n` over every shell script of the repository, the deployment ones included (docker/slurm.sbatch
# cannot run here: no Slurm): a syntax error is found before a user or a cluster finds it.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bad=0
count=0
while IFS= read -r f; do
  [ -f "$f" ] || continue
  count=$((count + 1))
  bash -n "$f" || { echo "check-shell-syntax: $f has a syntax error" >&2; bad=1; }
done < <(git ls-files '*.sh' '*.sbatch' 2>/dev/null || find . -name '*.sh' -o -name '*.sbatch')
[ "$bad" = 0 ] && echo "check-shell-syntax.sh: $count script(s) parse"
exit "$bad"
