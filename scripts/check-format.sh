#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what clang-format 14 (.clang-format) makes of it, so every
# machine formats alike. `scripts/check-format.sh --fix` rewrites the files instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fix=0
case "${1:-}" in
  --fix) fix=1 ;;
  "") ;;
  *) echo "check-format.sh: error: unknown argument '$1' (valid: --fix)" >&2; exit 2 ;;
esac
tool=$(command -v clang-format-14 || true)
[ -n "$tool" ] || { echo "check-format.sh: error: clang-format-14 not found (scripts/install-deps.sh installs it)" >&2; exit 2; }
mapfile -t files < <(git ls-files '*.cpp' '*.h')
if [ "$fix" = 1 ]; then
  "$tool" -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$tool" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  printf '%s\n' "${bad[@]}"
  echo "check-format.sh: ${#bad[@]} file(s) are not formatted; run scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format.sh: ${#files[@]} files formatted"
