#!/usr/bin/env bash
# plot_run end to end: two small runs (one resumed, with rows logged twice; one classification run with
# eval_f1) drawn into one PNG whose size follows the figure size and dpi, and which is not blank (both
# runs' colours present); the default output name; the restart rule; every input error as one line
# with exit code 2.
# Usage: plot_run.sh BIN_DIR SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
PLOT="$bin/plot_run"
PY=/usr/bin/python3
CHECK="$PY $src/tests/e2e/png_check.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; failures=$((failures + 1)); }
$PY -c 'import matplotlib' 2>/dev/null || { fail "/usr/bin/python3 lacks matplotlib (scripts/install-deps.sh installs python3-matplotlib)"; exit 1; }
[ -x "$PLOT" ] || { fail "$PLOT is missing (build the plot_run target)"; exit 1; }
export MPLCONFIGDIR="$work/mplconfig"  # matplotlib's cache: private to this test

# make_run DIR KIND: a metrics.jsonl as run_mlm (mlm, mlm-resumed) or run_classification (cls) writes it.
make_run() {
  mkdir -p "$1"
  $PY - "$1/metrics.jsonl" "$2" <<'PY'
import json, math, sys
path, kind = sys.argv[1], sys.argv[2]
def train(step, shift=0.0):
    return {"step": step, "epoch": step / 100, "loss": 8 * math.exp(-step / 60) + 2 + shift,
            "learning_rate": 1e-4 * (1 - step / 200), "grad_norm": 1 + 2 * math.exp(-step / 30),
            "samples_per_second": 800 + 40 * (step % 30 == 0), "tokens_per_second": 102400.0, "mfu": 0.21}
def evaluation(step, f1=False, shift=0.0):
    row = {"step": step, "eval_loss": 8 * math.exp(-step / 60) + 2.3 + shift, "eval_accuracy": 0.6 - 0.4 * math.exp(-step / 50),
           "perplexity": math.exp(8 * math.exp(-step / 60) + 2.3)}
    if f1:
        row["eval_f1"] = row["eval_accuracy"] - 0.05
    return row
rows = []
if kind == "mlm-resumed":  # ran to 60, checkpoint at 40, resumed: 50 and 60 logged again, then on to 100
    rows = [train(s) for s in range(10, 50, 10)] + [train(50, 5.0), evaluation(50, shift=5.0), train(60, 5.0)]
    rows += [train(50), evaluation(50)] + [train(s) for s in range(60, 110, 10)] + [evaluation(100)]
elif kind == "cls":
    for s in range(10, 110, 10):
        rows.append(train(s, 0.5))
        if s % 20 == 0:
            rows.append(evaluation(s, f1=True))
else:
    rows = [{k: v for k, v in train(s).items() if k != "grad_norm"} for s in range(10, 110, 10)]
with open(path, "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in rows)
PY
}

make_run "$work/mlm-base" mlm-resumed
make_run "$work/cls-sst2" cls
make_run "$work/plain" mlm

# Two runs, five panels (loss, learning rate, grad norm, throughput, evaluation) in 3 rows of 2:
# 12 x 10.5 inches, at 100 dpi 1200 x 1050 pixels.
"$PLOT" "$work/mlm-base" "$work/cls-sst2" -o "$work/both.png" --title "two runs" >"$work/out" 2>"$work/err"
code=$?
[ $code = 0 ] && pass "two runs plotted (exit 0)" || { fail "two runs: exit $code: $(cat "$work/err")"; }
[ "$(cat "$work/out")" = "$work/both.png" ] && pass "prints the PNG path" || fail "stdout: $(cat "$work/out")"
# tab10's first two colours: each run drew its lines.
$CHECK "$work/both.png" 1200 1050 --colour 1f77b4 --colour ff7f0e && pass "PNG 1200 x 1050, not blank, both runs drawn" ||
  fail "two-run PNG"
"$PLOT" "$work/mlm-base" "$work/cls-sst2" -o "$work/both50.png" --dpi 50 >/dev/null 2>&1
$CHECK "$work/both50.png" 600 525 && pass "--dpi 50: 600 x 525" || fail "--dpi 50 PNG"

# One run without grad_norm or eval rows: loss, learning rate, throughput in 2 rows; OUTPUT_DIR/metrics.png.
"$PLOT" "$work/plain" >"$work/out" 2>"$work/err" && [ "$(cat "$work/out")" = "$work/plain/metrics.png" ] &&
  pass "one run: default output OUTPUT_DIR/metrics.png" || fail "one run: $(cat "$work/out" "$work/err")"
$CHECK "$work/plain/metrics.png" 1200 700 --colour 1f77b4 && pass "three panels: 1200 x 700" || fail "one-run PNG"

# The checker itself fails a blank picture of the right size.
$PY -c "import matplotlib; matplotlib.use('Agg'); import matplotlib.image as m, numpy as n; m.imsave('$work/blank.png', n.ones((700, 1200, 3)))"
$CHECK "$work/blank.png" 1200 700 2>/dev/null && fail "png_check accepted a blank PNG" || pass "png_check rejects a blank PNG"

# Restarts and repeats: the resumed run's rows after its checkpoint replace the interrupted ones.
if $PY -B - "$src/tools/plot_run.py" "$work/mlm-base" <<'PY'; then pass "resumed run: steps 10..100 once, the rows after the restart win"; else fail "restart rule"; fi
import importlib.util, math, sys
spec = importlib.util.spec_from_file_location("plot_run", sys.argv[1])
plot_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(plot_run)
run = plot_run.load_run(sys.argv[2])
steps, losses = plot_run.series(run["train"], "loss")
assert steps == list(range(10, 110, 10)), steps
assert all(abs(l - (8 * math.exp(-s / 60) + 2)) < 1e-12 for s, l in zip(steps, losses)), losses  # no +5 rows left
assert list(run["eval"]) == [50, 100], list(run["eval"])
assert run["eval"][50]["eval_loss"] < 6, run["eval"][50]  # the resumed run's evaluation, not the +5 one
PY

# A crash mid-write leaves a cut-short last line: skipped with a warning.
cp -r "$work/plain" "$work/cut" && printf '{"step": 110, "lo' >>"$work/cut/metrics.jsonl"
"$PLOT" "$work/cut" -o "$work/cut.png" >/dev/null 2>"$work/err" && grep -q "warning: .*metrics.jsonl:11: skipping an incomplete last line" "$work/err" &&
  pass "an incomplete last line is skipped with a warning" || fail "incomplete last line: $(cat "$work/err")"

# expect_error WHAT FRAGMENT ARGS...: exit 2 and exactly one line, "plot_run: error: ...FRAGMENT...".
expect_error() {
  local what=$1 fragment=$2
  shift 2
  "$PLOT" "$@" >"$work/out" 2>"$work/err"
  local code=$? lines
  lines=$(wc -l <"$work/err")
  if [ $code = 2 ] && [ "$lines" = 1 ] && grep -q "^plot_run: error: .*$fragment" "$work/err"; then
    pass "$what: exit 2, '$(cat "$work/err")'"
  else
    fail "$what: exit $code, $lines lines: $(cat "$work/err")"
  fi
}
mkdir -p "$work/nometrics" "$work/empty" "$work/bad"
: >"$work/empty/metrics.jsonl"
printf '{"step": 1, "loss": 2}\nnot json\n{"step": 3, "loss": 1}\n' >"$work/bad/metrics.jsonl"
expect_error "missing directory" "$work/nope: no such directory" "$work/nope"
expect_error "no metrics.jsonl" "$work/nometrics: no metrics.jsonl" "$work/nometrics"
expect_error "no rows" "$work/empty/metrics.jsonl: no rows" "$work/empty"
expect_error "malformed line" "$work/bad/metrics.jsonl:2: not a JSON object" "$work/bad"
expect_error "one bad run among good ones" "$work/nope: no such directory" "$work/plain" "$work/nope"
expect_error "no arguments" "the following arguments are required: OUTPUT_DIR"
expect_error "not a PNG name" "expected a .png file name" "$work/plain" -o "$work/x.jpg"
expect_error "bad dpi" "--dpi 5 is not valid" "$work/plain" --dpi 5

[ $failures = 0 ] && echo "all plot_run checks passed" || echo "$failures plot_run check(s) failed"
[ $failures = 0 ]
