#!/usr/bin/env python3
"""What each of our step's fusions is worth: runs `bench_step --no_baseline` with the default settings, then
with one fusion switched at a time (fp32 attention tiles off, bf16 attention tiles on, fused dropout + residual +
LayerNorm off, fused bias + GELU on; the default fusions all off), interleaved over --repeats rounds, one process per run, and reports the median
tokens/s of each variant and its ratio to the default step measured in the same rounds. (A variant that does
not apply to a precision, such as the fp32 tiles in a bf16 run, measures the default again: run-to-run noise.)

Prints one JSON object per model, precision and variant on stdout:
  {"bench": "fusion_ab", "model": M, "precision": P, "variant": V, "flags": [...], "tokens_per_s": T,
   "tokens_per_s_runs": [...], "ratio_to_default": T / T_default, ...}
and a table on stderr.

Usage: bench/fusion_ab.py [--models mini,base] [--precisions fp32,bf16] [--repeats 5] [--bin build/bin]
[ARGS for bench_step ...]; the default bench_step arguments are --vocab 8000 --batch 16 --seq_len 128
--steps 4 --warmup 2 --gemm_n 256 --threads 2. Environment variables reach bench_step (for example
ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 makes oneDNN leave AMX alone, as on a CPU without it).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

VARIANTS = [
    ("default", []),
    ("aten_attention", ["--fused_attention", "0"]),
    ("fused_bf16_attention", ["--fused_bf16_attention", "1"]),
    ("aten_add_norm", ["--fused_add_norm", "0"]),
    ("fused_bias_gelu", ["--fused_bias_gelu", "1"]),
    ("no_fusion", ["--fused_attention", "0", "--fused_add_norm", "0"]),
]


def run_once(bench, model, precision, flags, extra):
    cmd = [bench, "--no_baseline", "--models", model, "--precisions", precision] + extra + flags
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"fusion_ab.py: {' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
    rows = [json.loads(l) for l in run.stdout.splitlines() if l.startswith("{")]
    step = next(r for r in rows if "ours_tokens_per_s" in r)
    return step["ours_tokens_per_s"], step.get("blas", "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="mini,base")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "build", "bin"))
    args, extra = ap.parse_known_args()
    extra = extra or "--vocab 8000 --batch 16 --seq_len 128 --steps 4 --warmup 2 --gemm_n 256 --threads 2".split()
    bench = os.path.join(args.bin, "bench_step")
    if not os.access(bench, os.X_OK):
        sys.exit(f"fusion_ab.py: {bench} is not built (--bin DIR)")
    print(f"{'model':6} {'prec':5} {'variant':16} {'tokens/s':>9} {'ratio':>6}", file=sys.stderr)
    for model in args.models.split(","):
        for precision in args.precisions.split(","):
            runs = {name: [] for name, _ in VARIANTS}
            blas = ""
            for _ in range(args.repeats):
                for name, flags in VARIANTS:
                    tps, blas = run_once(bench, model, precision, flags, extra)
                    runs[name].append(tps)
            base = statistics.median(runs["default"])
            for name, flags in VARIANTS:
                med = statistics.median(runs[name])
                out = {"bench": "fusion_ab", "model": model, "precision": precision, "variant": name,
                       "flags": flags, "tokens_per_s": med, "tokens_per_s_runs": runs[name],
                       "ratio_to_default": med / base, "blas": blas, "args": extra,
                       "onednn_max_cpu_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "")}
                print(json.dumps(out), flush=True)
                print(f"{model:6} {precision:5} {name:16} {med:9.0f} {med / base:6.2f}", file=sys.stderr)


if __name__ == "__main__":
    main()
