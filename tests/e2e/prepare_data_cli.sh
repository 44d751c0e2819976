#!/usr/bin/env bash
# prepare_data end to end: `all` from a YAML config on the real corpus (data/corpus, from
# scripts/fetch-corpus.sh; a generated text when it is absent), a rerun that does nothing, 2 ranks
# (gaudi_spawn) and 3 ranks (mpirun) giving byte-identical files, --overwrite, data.vocab_file,
# line_by_line, encode, progress lines (one final line per phase from rank 0 in a log, redrawn with \r
# on a terminal), and every user error as one line on stderr with exit code 2. Reliability: a damaged
# shard is found by the rerun's sha256 check and rebuilt identically; a second run on a shards_dir in
# use exits 2 naming the first (held at MPIBERT_TEST_PAUSE_AFTER_LOCK), also on 2 ranks; a run killed
# between its new shards and manifest.json (at MPIBERT_TEST_PAUSE_BEFORE_PUBLISH) leaves the old set
# intact, and the reruns remove its leftovers and complete; a run killed after its switch but before
# prepare_data.json (MPIBERT_TEST_PAUSE_AFTER_PUBLISH) is rebuilt by the rerun, not taken as up to date.
# Usage: prepare_data_cli.sh BIN_DIR SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
P="$bin/prepare_data"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
expect_code() {  # expected actual what
  [ "$1" = "$2" ] && pass "$3 (exit $2)" || { fail "$3: exit $2, expected $1"; sed 's/^/     | /' "$work/err" | tail -5; }
}
# expect_error WHAT FRAGMENT COMMAND...: exit 2, exactly one "prepare_data: error:" line holding FRAGMENT.
expect_error() {
  local what=$1 fragment=$2
  shift 2
  "$@" >"$work/out" 2>"$work/err"
  local code=$?
  expect_code 2 $code "$what"
  local n
  n=$(grep -c '^prepare_data: error: ' "$work/err")
  [ "$n" = 1 ] || fail "$what: $n error lines, expected 1"
  grep -F -q -- "$fragment" "$work/err" && pass "$what: says '$fragment'" ||
    { fail "$what: no '$fragment' in: $(grep error "$work/err")"; }
}
same_files() {  # dir_a dir_b what: vocab, tokenizer config, manifest and every shard byte-identical
  local a=$1 b=$2 what=$3 ok=1 f
  for f in vocab.txt tokenizer_config.json manifest.json $(cd "$a" && ls *.h5); do
    cmp -s "$a/$f" "$b/$f" || { ok=0; fail "$what: $f differs"; }
  done
  [ $ok = 1 ] && pass "$what: $(cd "$a" && ls *.h5 | wc -l) shards, manifest and vocab byte-identical"
}
manifest_key() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }
# check_set DIR: manifest.json lists every shard file of DIR and nothing else, each named
# SPLIT-NNNNN-<first 16 hex digits of its sha256>.h5 and with that sha256.
check_set() {
  python3 - "$1" <<'PY'
import hashlib, json, os, re, sys
d = sys.argv[1]
m = json.load(open(d + "/manifest.json"))
assert m["format"] == "mpibert-mlm" and m["version"] == 1
index = {}
for s in m["shards"]:
    sha = hashlib.sha256(open(d + "/" + s["file"], "rb").read()).hexdigest()
    assert sha == s["sha256"], (s["file"], sha)
    k = index[s["split"]] = index.get(s["split"], -1) + 1
    assert s["file"] == "%s-%05d-%s.h5" % (s["split"], k, sha[:16]), s["file"]
files = sorted(f for f in os.listdir(d) if re.match(r"(train|validation)-", f))
assert files == sorted(s["file"] for s in m["shards"]), files
PY
}
# wait_for_file FILE PID: until FILE exists (a test hook reached); fails if PID ends first.
wait_for_file() {
  while [ ! -e "$1" ]; do
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
}

# MPI flags as CTest passes them (space-separated); without CTest, the defaults of
# cmake/mpibert_helpers.cmake.
mpi_flags=${MPIBERT_MPIRUN_FLAGS:-}
[[ "$mpi_flags" == *--mca* ]] ||
  mpi_flags="--oversubscribe --bind-to none --mca btl_vader_single_copy_mechanism none --mca btl ^openib"
read -r -a mpi_flags <<<"${mpi_flags//;/ }"
[ "$(id -u)" = 0 ] && [[ " ${mpi_flags[*]} " != *" --allow-run-as-root "* ]] && mpi_flags+=(--allow-run-as-root)
MPIRUN=(mpirun "${mpi_flags[@]}")

corpus="$src/data/corpus"
if ls "$corpus"/*.txt >/dev/null 2>&1; then
  echo "== corpus: $corpus ($(du -sh "$corpus" | cut -f1), real text)"
  vocab_size=4000
else
  corpus="$work/corpus"
  mkdir -p "$corpus"
  echo "== corpus: generated ($corpus has no real text; run scripts/fetch-corpus.sh for it)"
  words=(the a cat dog sat ran on over mat hill while Rain fell, softly. BERT learns words from context and
         pieces like pre-training tokenizers "naïve" "résumé" shard rank data parallel)
  for doc in $(seq 1 400); do
    for line in $(seq 1 $((doc % 4 + 1))); do
      s=""
      for w in $(seq 1 $(((doc * 7 + line * 3) % 23 + 3))); do s+="${words[$(((doc * 31 + line * 17 + w * 13) % ${#words[@]}))]} "; done
      echo "$s."
    done
    echo
  done >"$corpus/generated.txt"
  vocab_size=300
fi

cat >"$work/run.yaml" <<EOF
data:
  input: $corpus
  shards_dir: $work/s1
  vocab_size: $vocab_size
  seq_len: 64
  validation_fraction: 0.05
  sequences_per_shard: 4000
  shuffle_seed: 34
EOF

echo "== all --config, then the same again (nothing to do)"
"$P" all --config "$work/run.yaml" >"$work/out" 2>"$work/err"
expect_code 0 $? "prepare_data all"
for f in manifest.json vocab.txt tokenizer_config.json; do
  [ -s "$work/s1/$f" ] && pass "wrote $f" || fail "no $f"
done
for f in train-00000 validation-00000; do
  shard=$(compgen -G "$work/s1/$f-*.h5" | head -1)
  [ -s "$shard" ] && pass "wrote $(basename "$shard")" || fail "no $f-<hash>.h5"
done
[ "$(manifest_key "$work/s1/manifest.json" seq_len)" = 64 ] && pass "manifest seq_len 64" || fail "manifest seq_len"
[ "$(manifest_key "$work/s1/manifest.json" vocab_size)" = "$(wc -l <"$work/s1/vocab.txt")" ] &&
  pass "manifest vocab_size = lines of vocab.txt" || fail "manifest vocab_size"
check_set "$work/s1" && pass "manifest lists every shard, named by and matching its sha256" || fail "manifest / shards"
[ "$(python3 -c "import json,sys; print(sorted({s['split'] for s in json.load(open(sys.argv[1]))['shards']}))" \
  "$work/s1/manifest.json")" = "['train', 'validation']" ] && pass "train and validation shards" || fail "splits"
before=$(sha256sum "$work"/s1/* | sha256sum)
"$P" all --config "$work/run.yaml" >"$work/out" 2>"$work/err"
expect_code 0 $? "rerun with the same config"
grep -q "up to date" "$work/err" && pass "rerun says up to date" || fail "rerun did not say up to date"
[ "$(sha256sum "$work"/s1/* | sha256sum)" = "$before" ] && pass "rerun left every file untouched" || fail "rerun changed files"
echo "     | $(grep -o 'checked the sha256 of .*' "$work/err")"

echo "== a damaged shard: the rerun checks every shard's sha256 and rebuilds it identically"
shard=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['shards'][0]['file'])" "$work/s1/manifest.json")
shard_sha=$(sha256sum <"$work/s1/$shard")
truncate -s $(($(stat -c %s "$work/s1/$shard") / 2)) "$work/s1/$shard"
"$P" all --config "$work/run.yaml" >"$work/out" 2>"$work/err"
expect_code 0 $? "rerun after truncating $shard"
grep -q "$shard: sha256 .*: rebuilding the shards" "$work/err" && pass "rerun names the damaged shard and rebuilds" ||
  fail "rerun did not notice the damaged shard: $(grep -E 'up to date|rebuild' "$work/err")"
[ "$(sha256sum <"$work/s1/$shard")" = "$shard_sha" ] && pass "$shard repaired (sha256 as before)" || fail "$shard differs"
[ "$(sha256sum "$work"/s1/* | sha256sum)" = "$before" ] && pass "every file as before the damage" ||
  fail "the repaired directory differs"

echo "== two runs on one shards_dir: the second exits 2 naming the first, which completes"
pause="$work/paused-after-lock"
MPIBERT_TEST_PAUSE_AFTER_LOCK="$pause" "$P" all --config "$work/run.yaml" --data.shards_dir "$work/lk" \
  >"$work/out1" 2>"$work/err1" &
first=$!
wait_for_file "$pause" $first && pass "first run holds $work/lk" || fail "first run ended before its lock: $(tail -2 "$work/err1")"
expect_error "second run while the first holds the directory" \
  "$work/lk is in use: prepare_data all by pid $first on host $(uname -n) since " \
  "$P" shards --config "$work/run.yaml" --data.shards_dir "$work/lk"
grep -q "wait for it or use another directory" "$work/err" && pass "says what to do" || fail "no advice"
expect_error "2 ranks while the first holds the directory (agreed: one line, exit 2)" \
  "$work/lk is in use: prepare_data all by pid $first on host $(uname -n) since " \
  "${MPIRUN[@]}" -np 2 "$P" shards --config "$work/run.yaml" --data.shards_dir "$work/lk"
rm -f "$pause"
wait $first
expect_code 0 $? "the first run, let go on"
same_files "$work/s1" "$work/lk" "the first run's output"

echo "== killed between its new shards and manifest.json: the old set stays; the reruns complete"
pause="$work/paused-before-publish"
manifest_before=$(sha256sum <"$work/lk/manifest.json")
MPIBERT_TEST_PAUSE_BEFORE_PUBLISH="$pause" "$P" shards --config "$work/run.yaml" --data.shards_dir "$work/lk" \
  --data.seq_len 32 --overwrite >"$work/out1" 2>"$work/err1" &
victim=$!
wait_for_file "$pause" $victim && pass "run stopped before its switch" || fail "run ended early: $(tail -2 "$work/err1")"
listed=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['shards']))" "$work/lk/manifest.json")
on_disk=$(ls "$work"/lk/*.h5 | wc -l)
[ "$on_disk" -gt "$listed" ] && pass "new shards written beside the $listed listed ones" || fail "$on_disk shard files"
kill -9 $victim
wait $victim 2>/dev/null
rm -f "$pause"
[ "$(sha256sum <"$work/lk/manifest.json")" = "$manifest_before" ] && pass "manifest.json untouched" ||
  fail "manifest.json changed"
[ "$(manifest_key "$work/lk/manifest.json" seq_len)" = 64 ] && pass "the listed set is still the old one (seq_len 64)" ||
  fail "manifest seq_len"
"$P" all --config "$work/run.yaml" --data.shards_dir "$work/lk" >"$work/out" 2>"$work/err"
expect_code 0 $? "rerun with the old settings (the killed run's lock is gone)"
grep -q "up to date" "$work/err" && pass "old set intact: every listed shard's sha256 checked" || fail "old set not intact"
grep -q "removed $((on_disk - listed)) shard file(s) no manifest lists" "$work/err" &&
  pass "the killed run's leftovers removed" || fail "leftovers: $(ls "$work"/lk/*.h5 | wc -l) shard files"
check_set "$work/lk" && same_files "$work/s1" "$work/lk" "the old set after the cleanup" || fail "old set after the cleanup"
"$P" shards --config "$work/run.yaml" --data.shards_dir "$work/lk" --data.seq_len 32 --overwrite \
  >"$work/out" 2>"$work/err"
expect_code 0 $? "the interrupted run again"
[ "$(manifest_key "$work/lk/manifest.json" seq_len)" = 32 ] && check_set "$work/lk" &&
  pass "new set published (seq_len 32), old shards removed" || fail "new set after the rerun"

echo "== killed after its switch, before prepare_data.json: the record no longer describes the set; a rerun rebuilds"
pause="$work/paused-after-publish"
MPIBERT_TEST_PAUSE_AFTER_PUBLISH="$pause" "$P" shards --config "$work/run.yaml" --data.shards_dir "$work/lk" \
  --overwrite >"$work/out1" 2>"$work/err1" &
victim=$!
wait_for_file "$pause" $victim && pass "run stopped after its switch" || fail "run ended early: $(tail -2 "$work/err1")"
kill -9 $victim
wait $victim 2>/dev/null
rm -f "$pause"
[ "$(manifest_key "$work/lk/manifest.json" seq_len)" = 64 ] && pass "manifest.json switched to seq_len 64" ||
  fail "manifest seq_len after the switch"
"$P" shards --config "$work/run.yaml" --data.shards_dir "$work/lk" --data.seq_len 32 >"$work/out" 2>"$work/err"
expect_code 0 $? "rerun with the settings prepare_data.json still records (seq_len 32)"
grep -q "is not the one prepare_data.json describes" "$work/err" && pass "rerun sees the unrecorded set and rebuilds" ||
  fail "rerun trusted a stale record: $(grep -E 'up to date|rebuild' "$work/err")"
[ "$(manifest_key "$work/lk/manifest.json" seq_len)" = 32 ] && check_set "$work/lk" &&
  pass "seq_len 32 set published again" || fail "set after the rerun"

echo "== 2 ranks through gaudi_spawn, 3 ranks through mpirun: byte-identical to 1 rank"
# Not a terminal (a log file, CI): each phase's progress ends in one final log line, from rank 0 only.
if [ -x "$bin/gaudi_spawn" ]; then
  MPIBERT_CONSOLE_IS_TTY=0 "$bin/gaudi_spawn" --world_size 2 --use_mpi "$P" all --config "$work/run.yaml" \
    --data.shards_dir "$work/s2" >"$work/out" 2>"$work/err"
  expect_code 0 $? "gaudi_spawn --world_size 2 prepare_data all"
else
  MPIBERT_CONSOLE_IS_TTY=0 "${MPIRUN[@]}" -np 2 "$P" all --config "$work/run.yaml" --data.shards_dir "$work/s2" \
    >"$work/out" 2>"$work/err"
  expect_code 0 $? "mpirun -np 2 prepare_data all (no gaudi_spawn built)"
fi
same_files "$work/s1" "$work/s2" "2 ranks vs 1"
phases=("count words (rank 0's share)|bytes" "train WordPiece (merges)|tokens" "tokenize (rank 0's share)|bytes"
        "write shards|sequences")
# progress_lines FILE MODE: each phase's final line exactly once and from rank 0 only. MODE log: as a
# rank 0 log line, and no \r anywhere; MODE tty: drawn with \r and ended by a newline, never logged.
progress_lines() {
  python3 - "$1" "$2" "${phases[@]}" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8", newline="").read()  # keeps every \r
mode, ok = sys.argv[2], True
logged = lambda rank, rest: re.findall(r"^\[[^]]*\] \[rank " + rank + r"\] \[info\] " + rest, text, re.M)
for phase in sys.argv[3:]:
    label, unit = phase.split("|")
    final = re.escape(label) + r": (\d+)/(\d+) " + unit + r" in \d+:\d\d:\d\d \| [\d.]+ " + unit + "/s"
    if mode == "log":
        found, elsewhere = logged("0", final + "$"), logged(r"[1-9]\d*", re.escape(label))
    else:
        found, elsewhere = re.findall("\r" + final + " *\n", text), logged(r"\d+", re.escape(label))
    # The merges may stop short of their total (min_frequency); the rest always count to the end.
    complete = label.startswith("train") or all(done == total for done, total in found)
    print(f"{label}: final line(s) {found}, {len(elsewhere)} elsewhere")
    ok = ok and len(found) == 1 and complete and not elsewhere
if mode == "log" and "\r" in text:
    print("a carriage return in a log")
    ok = False
sys.exit(0 if ok else 1)
PY
}
progress_lines "$work/err" log >"$work/progress" && pass "not a terminal: each phase's final line once, from rank 0" ||
  { fail "progress lines in a log"; sed "s/^/     | /" "$work/progress"; }
if [ -x "$bin/gaudi_spawn" ]; then
  # A terminal (MPIBERT_CONSOLE_IS_TTY=1, as gaudi_spawn exports when its own console is one): redrawn with \r.
  "$bin/gaudi_spawn" --world_size 2 --use_mpi --env MPIBERT_CONSOLE_IS_TTY=1 "$P" all --config "$work/run.yaml" \
    --data.shards_dir "$work/tty" >"$work/out" 2>"$work/err"
  expect_code 0 $? "prepare_data all on 2 ranks with MPIBERT_CONSOLE_IS_TTY=1"
  progress_lines "$work/err" tty >"$work/progress" && pass "terminal: each phase redrawn with \\r, final line once" ||
    { fail "progress lines on a terminal"; sed 's/^/     | /' "$work/progress"; }
fi
"${MPIRUN[@]}" -np 3 "$P" all --config "$work/run.yaml" --data.shards_dir "$work/s3" --threads 1 \
  >"$work/out" 2>"$work/err"
expect_code 0 $? "mpirun -np 3 prepare_data all"
same_files "$work/s1" "$work/s3" "3 ranks vs 1"

echo "== data.vocab_file: the same vocabulary copied gives the same shards"
"$P" shards --config "$work/run.yaml" --data.vocab_file "$work/s1/vocab.txt" --data.shards_dir "$work/s4" \
  >"$work/out" 2>"$work/err"
expect_code 0 $? "shards with data.vocab_file"
same_files "$work/s1" "$work/s4" "vocab_file copy vs trained"
before=$(sha256sum "$work"/s4/* | sha256sum)
"$P" all --config "$work/run.yaml" --data.vocab_file "$work/s1/vocab.txt" --data.shards_dir "$work/s4" \
  >"$work/out" 2>"$work/err"
expect_code 0 $? "rerun with the same data.vocab_file"
[ "$(grep -c 'up to date' "$work/err")" = 2 ] && [ "$(sha256sum "$work"/s4/* | sha256sum)" = "$before" ] &&
  pass "vocabulary and shards up to date, files untouched" || fail "rerun with data.vocab_file redid work"

echo "== line_by_line: one padded sequence per line, 1 rank vs 2 ranks"
for np in 1 2; do
  "${MPIRUN[@]}" -np $np "$P" all --config "$work/run.yaml" --data.shards_dir "$work/lbl$np" \
    --data.vocab_file "$work/s1/vocab.txt" --data.line_by_line true --data.document_separator line \
    >"$work/out" 2>"$work/err"
  expect_code 0 $? "line_by_line on $np rank(s)"
done
same_files "$work/lbl1" "$work/lbl2" "line_by_line 2 ranks vs 1"
lines=$(cat "$corpus"/*.txt | grep -c '[^[:space:]]')
seqs=$(python3 -c "import json,sys; print(sum(s['num_sequences'] for s in json.load(open(sys.argv[1]))['shards']))" \
  "$work/lbl1/manifest.json")
# A line whose text gives no token at all is skipped, so allow a few fewer sequences than lines.
[ "$seqs" -le "$lines" ] && [ "$seqs" -ge $((lines * 99 / 100)) ] && pass "line_by_line: $seqs sequences for $lines lines" ||
  fail "line_by_line: $seqs sequences for $lines non-blank lines"

echo "== --overwrite replaces shards made with other settings"
expect_error "changed seq_len without --overwrite" "other settings (seq_len 64 -> 32)" \
  "$P" all --config "$work/run.yaml" --data.seq_len 32
"$P" all --config "$work/run.yaml" --data.seq_len 32 --overwrite >"$work/out" 2>"$work/err"
expect_code 0 $? "changed seq_len with --overwrite"
[ "$(manifest_key "$work/s1/manifest.json" seq_len)" = 32 ] && pass "manifest now seq_len 32" || fail "seq_len not replaced"
check_set "$work/s1" && pass "the seq_len 64 shards removed after the switch" || fail "shard files after --overwrite"

echo "== encode"
head -c 200000 "$(ls "$corpus"/*.txt | head -1)" >"$work/sample.txt"
MPIBERT_CONSOLE_IS_TTY=0 "$P" encode --vocab "$work/s1/vocab.txt" --input "$work/sample.txt" \
  --output "$work/sample.ids" --threads 2 >"$work/out" 2>"$work/err"
expect_code 0 $? "encode"
grep -q '^prepare_data encode: .* MB/s' "$work/err" && pass "encode prints a summary with MB/s" || fail "no encode summary"
sample_bytes=$(wc -c <"$work/sample.txt")  # up to 200000: the first corpus file may be smaller
[ "$(grep -c -E "\] encode: $sample_bytes/$sample_bytes bytes in [0-9]+:[0-9]{2}:[0-9]{2} \|" "$work/err")" = 1 ] &&
  pass "encode progress: one final line" || fail "encode progress: $(grep 'encode: ' "$work/err")"
[ "$(wc -l <"$work/sample.ids")" = "$(grep -c '[^[:space:]]' "$work/sample.txt")" ] &&
  pass "one id line per non-blank input line" || fail "encode line count"
grep -q -v '^[0-9 ]*$' "$work/sample.ids" && fail "encode output holds something besides ids" || pass "encode output is ids"

echo "== user errors: one line, exit 2"
mkdir -p "$work/blank" && printf '\n   \n\t\n' >"$work/blank/empty.txt"
printf 'just a few words\n' >"$work/tiny.txt"
expect_error "missing input" "does not exist" "$P" all --config "$work/run.yaml" --data.input "$work/nope"
expect_error "empty corpus (tokenizer)" "holds no words" \
  "$P" train-tokenizer --data.input "$work/blank" --data.shards_dir "$work/e1"
expect_error "empty corpus (shards)" "holds no text" \
  "$P" shards --data.input "$work/blank" --data.shards_dir "$work/e2" --data.vocab_file "$work/s1/vocab.txt"
expect_error "corpus shorter than one sequence" "no full sequence of 512 tokens" \
  "$P" shards --data.input "$work/tiny.txt" --data.shards_dir "$work/e3" --data.vocab_file "$work/s1/vocab.txt" \
  --data.seq_len 512
expect_error "seq_len < 8" "out of range" "$P" all --config "$work/run.yaml" --data.seq_len 7
expect_error "shards without a vocabulary" "vocab.txt: missing" "$P" shards --config "$work/run.yaml" \
  --data.shards_dir "$work/e4"
expect_error "lowercase differs from the vocabulary" "vocab mismatch" \
  "$P" shards --config "$work/run.yaml" --data.seq_len 32 --data.lowercase false
printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nother\n' >"$work/other-vocab.txt"
expect_error "data.vocab_file differs from the vocab in shards_dir" "vocab mismatch" \
  "$P" shards --config "$work/run.yaml" --data.vocab_file "$work/other-vocab.txt"
expect_error "train-tokenizer over a vocab made with other settings" "other settings (vocab_size" \
  "$P" train-tokenizer --config "$work/run.yaml" --data.vocab_size 1000
mkdir -p "$work/e5" && cp "$work/s1/vocab.txt" "$work/e5/"
expect_error "train-tokenizer over a vocab it did not make" "already exists" \
  "$P" train-tokenizer --config "$work/run.yaml" --data.shards_dir "$work/e5"
mkdir -p "$work/e6" && cp "$work/s1/vocab.txt" "$work/e6/" && touch "$work/e6/train-00000.h5"
expect_error "shards over foreign shard files" "already holds shard files" \
  "$P" shards --config "$work/run.yaml" --data.shards_dir "$work/e6"
expect_error "unknown command" "did you mean 'shards'" "$P" shard --config "$work/run.yaml"
expect_error "unknown option" "unknown option '--data.seqlen'" "$P" all --data.seqlen 8
expect_error "missing config file" "cannot open config file" "$P" all --config "$work/none.yaml"
expect_error "encode without --input" "encode needs --input" "$P" encode --vocab "$work/s1/vocab.txt"
expect_error "error on 2 ranks is printed once" "does not exist" \
  "${MPIRUN[@]}" -np 2 "$P" all --config "$work/run.yaml" --data.input "$work/nope"

echo "== $failures failure(s)"
[ "$failures" = 0 ]
