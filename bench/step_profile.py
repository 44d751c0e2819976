#!/usr/bin/env python3
"""Where a training step's time goes, per kind of operation: runs `bench_step --profile` (one profiled step of
ours, after warm-up) for each model and precision, then sums the self time of every range in the Chrome
trace by category: GEMM, attention, LayerNorm, GELU, dropout, softmax, loss, embedding, optimizer, casts and
copies, other element-wise work; what no range covers (kernels between ranges, the profiler's own cost) is
"unattributed". A range inside one of our named ranges (mpibert::attention, ::dropout, ::cross_entropy,
::optimizer and their backward) counts for that range's category, whatever ATen ops it calls.

Prints one JSON object per model and precision on stdout:
  {"bench": "step_profile", "model": M, "precision": P, "step_ms": S, "phases_ms": {"forward": F, ...},
   "categories_ms": {"gemm": G, ...}, "categories_share": {"gemm": G / S, ...}}
and a table on stderr.

Usage: bench/step_profile.py [--models mini,base] [--precisions fp32,bf16] [--bin build/bin] [ARGS for
bench_step ...]; the default bench_step arguments are --vocab 8000 --batch 8 --seq_len 128 --warmup 3
--gemm_n 512 --threads 2.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

# Our named ranges: everything inside counts for their category.
SCOPES = {
    "mpibert::attention": "attention",
    "mpibert::attention_backward": "attention",
    "mpibert::dropout": "dropout",
    "mpibert::cross_entropy": "loss",
    "mpibert::cross_entropy_backward": "loss",
    "mpibert::optimizer": "optimizer",
    "mpibert::add_layer_norm": "layernorm",
    "mpibert::add_layer_norm_backward": "layernorm",
    "mpibert::bias_gelu": "gelu",
    "mpibert::bias_gelu_backward": "gelu",
}
PHASES = {"mpibert::forward": "forward", "mpibert::backward": "backward", "mpibert::optimizer": "optimizer"}
# ATen ops by the name of the op (or of its autograd node), first match wins.
BY_NAME = [
    ("gemm", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear",
              "aten::mkldnn_", "aten::_mkldnn")),
    ("layernorm", ("layer_norm", "LayerNorm")),
    ("gelu", ("gelu", "Gelu")),
    ("softmax", ("softmax", "Softmax")),
    ("dropout", ("dropout", "Dropout", "bernoulli")),
    ("embedding", ("embedding", "Embedding", "index_select", "IndexSelect", "index_add")),
    ("loss", ("cross_entropy", "nll_loss", "log_softmax", "NllLoss", "LogSoftmax")),
    ("casts_copies", ("aten::to", "aten::_to_copy", "aten::copy_", "ToCopy", "aten::contiguous", "aten::clone")),
]
CATEGORIES = ["gemm", "attention", "layernorm", "gelu", "dropout", "softmax", "loss", "embedding", "optimizer",
              "casts_copies", "other", "unattributed"]


def category_of(name):
    for category, needles in BY_NAME:
        if any(n in name for n in needles):
            return category
    return "other"


def self_times(events):
    """Yields (event, self time in µs, enclosing names) for complete ('X') events, per thread."""
    by_tid = {}
    for e in events:
        if e.get("ph") == "X":
            by_tid.setdefault(e.get("tid"), []).append(e)
    for evs in by_tid.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack, children = [], {}
        for e in evs:
            while stack and stack[-1]["ts"] + stack[-1]["dur"] <= e["ts"]:
                stack.pop()
            if stack:
                children[id(stack[-1])] = children.get(id(stack[-1]), 0.0) + e["dur"]
            e["_parents"] = [p["name"] for p in stack]
            stack.append(e)
        for e in evs:
            yield e, max(0.0, e["dur"] - children.get(id(e), 0.0)), e["_parents"]


def summarize(trace_path):
    events = json.load(open(trace_path))
    events = events["traceEvents"] if isinstance(events, dict) else events
    categories = {c: 0.0 for c in CATEGORIES}
    phases = {p: 0.0 for p in PHASES.values()}
    for e, self_us, parents in self_times(events):
        if e["name"] in PHASES and not any(p in PHASES for p in parents):
            phases[PHASES[e["name"]]] += e["dur"] / 1000
        if e["name"] in PHASES and e["name"] != "mpibert::optimizer":
            continue  # the phase ranges' own self time is work no finer range covers: unattributed below
        scope = next((SCOPES[p] for p in parents + [e["name"]] if p in SCOPES), None)
        categories[scope or category_of(e["name"])] += self_us / 1000
    step_ms = sum(phases.values())
    categories["unattributed"] = max(0.0, step_ms - sum(categories.values()))
    return step_ms, phases, categories


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="mini,base")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin"))
    args, extra = ap.parse_known_args()
    extra = extra or "--vocab 8000 --batch 8 --seq_len 128 --warmup 3 --gemm_n 512 --threads 2".split()
    bench = os.path.join(args.bin, "bench_step")
    if not os.access(bench, os.X_OK):
        sys.exit(f"step_profile.py: {bench} is not built (--bin DIR)")
    header = f"{'model':6} {'prec':5} {'step ms':>8} " + " ".join(f"{c[:9]:>9}" for c in CATEGORIES)
    print(header, file=sys.stderr)
    with tempfile.TemporaryDirectory() as work:
        for model in args.models.split(","):
            for precision in args.precisions.split(","):
                prefix = os.path.join(work, f"{model}-{precision}")
                cmd = [bench, "--no_baseline", "--models", model, "--precisions", precision, "--steps", "1",
                       "--profile", prefix] + extra
                run = subprocess.run(cmd, capture_output=True, text=True)
                if run.returncode != 0:
                    sys.exit(f"step_profile.py: {' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
                blas = next((json.loads(l).get("blas", "") for l in run.stdout.splitlines() if l.startswith("{")), "")
                trace = glob.glob(prefix + "-*.trace.json")[0]
                step_ms, phases, cats = summarize(trace)
                out = {"bench": "step_profile", "model": model, "precision": precision, "step_ms": step_ms,
                       "phases_ms": phases, "categories_ms": cats,
                       "categories_share": {c: v / step_ms for c, v in cats.items()} if step_ms else {},
                       "blas": blas, "args": extra}
                print(json.dumps(out), flush=True)
                print(f"{model:6} {precision:5} {step_ms:8.1f} " +
                      " ".join(f"{100 * cats[c] / step_ms:8.1f}%" for c in CATEGORIES), file=sys.stderr)


if __name__ == "__main__":
    main()
