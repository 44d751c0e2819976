#!/usr/bin/env bash
# Installs Hugging Face tokenizers for Node (npm "tokenizers", prebuilt native binaries inside) into
# node_modules/ beside this script (git-ignored), unless it is already there.
# Exit 0: installed (prints the node_modules path); exit 3: node/npm missing or the install failed
# (callers treat this as "reference unavailable"); the reason goes to stderr.
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSION="0.23.2"
MODULES="$HERE/node_modules"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install.sh: node or npm not found" >&2
  exit 3
fi
check() {
  TOKENIZERS_NODE_MODULES="$MODULES" node -e \
    "const t=require(process.env.TOKENIZERS_NODE_MODULES+'/tokenizers'); if(!t.bertNormalizer) process.exit(1)" \
    >/dev/null 2>&1
}
if [[ -f "$MODULES/tokenizers/package.json" ]] && grep -q "\"version\": \"$VERSION\"" "$MODULES/tokenizers/package.json" && check; then
  echo "$MODULES"
  exit 0
fi
log="$(mktemp /tmp/mpibert-npm.XXXXXX)"
if ! npm install --prefix "$HERE" --no-save --no-package-lock --no-audit --no-fund "tokenizers@$VERSION" >"$log" 2>&1; then
  grep -v 'Unknown user config' "$log" | tail -n 5 | sed 's/^/  npm: /' >&2
  rm -f "$log"
  echo "install.sh: 'npm install tokenizers@$VERSION' failed (offline or registry unreachable?)" >&2
  exit 3
fi
rm -f "$log"
if ! check; then
  echo "install.sh: tokenizers@$VERSION installed but does not load on this platform ($(uname -sm))" >&2
  exit 3
fi
echo "$MODULES"
