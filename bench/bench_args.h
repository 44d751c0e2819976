#pragma once
// The benchmarks' command lines on the project's declare-once schema (common/config/schema.h): keys
// "section.name" with flat aliases that keep every historical flag spelling (--batch, --no_baseline,
// --max-seq-length), the generated --help, `--config FILE` (YAML), and bad input as one UsageError line
// (run_main prints it and exits 2). Torch-free: the tokenizer and table benches use it too.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "common/config/schema.h"
#include "common/error.h"

namespace mpibert::bench {

// Parses argv into cfg (the schema's defaults first). --help prints the generated help and exits 0.
// Returns the positional arguments; more than max_positionals is a UsageError.
template <class Root>
std::vector<std::string> parse_bench_args(const config::Schema<Root>& schema, Root& cfg, int argc, char** argv,
                                          const std::string& usage, size_t max_positionals = 0) {
  cfg = schema.defaults();
  const config::ParsedArgs parsed = schema.parse_args(&cfg, argc, argv);
  if (parsed.help) {
    std::printf(
        "%s\n\nOptions: --section.key VALUE or its flat alias; --config FILE reads the same keys from YAML\n"
        "(section: key: value), and flags override it.\n%s",
        usage.c_str(), schema.options_help().c_str());
    std::fflush(stdout);
    std::exit(kExitOk);
  }
  if (parsed.positionals.size() > max_positionals)
    throw UsageError("unexpected argument '" + parsed.positionals[max_positionals] + "' (--help lists the options)");
  return parsed.positionals;
}

// "a,b,,c" -> {"a", "b", "c"}.
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

// A comma-separated list whose every item is one of `valid` (and at least one item).
inline bool is_list_of(const std::string& text, const std::vector<std::string>& valid) {
  const auto items = split_list(text);
  for (const auto& item : items) {
    bool known = false;
    for (const auto& v : valid) known |= item == v;
    if (!known) return false;
  }
  return !items.empty();
}

inline std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// The model presets both sides of the training benches know: baseline_step.py's PRESETS, also
// spelled bert-<name> (our presets have more aliases, e.g. bert-base-uncased).
inline std::vector<std::string> baseline_presets() {
  std::vector<std::string> names = {"tiny", "mini", "small", "medium", "base", "large"};
  for (size_t i = 0, n = names.size(); i < n; ++i) names.push_back("bert-" + names[i]);
  return names;
}

// What the side-by-side training benches (bench_step, bench_classification) share: what is measured,
// the optimizer, the process environment and the Python baseline they run next to themselves.
struct StepBenchOptions {
  std::string models, precisions;
  int64_t batch = 0, seq_len = 0, threads = 0, steps = 0, warmup = 0, repeats = 0, gemm_n = 0, vocab = 0;
  double lr = 0, weight_decay = 0, max_grad_norm = 0;
  std::string omp_wait_policy;    // "" = leave the environment alone
  std::string openblas_coretype;  // "" = leave the environment alone
  bool malloc_keep = false;       // glibc: no mmap for big blocks, no trimming (no page faults per step)
  bool no_baseline = false;
  std::string python, baseline_script;
};

// Declares StepBenchOptions' keys on a schema of R (R derives from StepBenchOptions). `presets` are
// the valid model names; the defaults that differ between the benches are set with set_default.
// function-size: table
template <class R>
void declare_step_bench_keys(config::Schema<R>& s, const std::vector<std::string>& presets,
                             const std::string& baseline_script) {
  s.template add<std::string>(
       "bench.models", [](R& o) -> std::string& { return o.models; }, "mini,small",
       "models to measure, comma-separated presets")
      .satisfies([presets](const std::string& t) { return is_list_of(t, presets); },
                 "comma-separated presets of " + joined(presets))
      .alias("models");
  s.template add<std::string>(
       "bench.precisions", [](R& o) -> std::string& { return o.precisions; }, "fp32,bf16",
       "precisions to measure, comma-separated (bf16 = autocast, fp32 master weights)")
      .satisfies(
          [](const std::string& t) {
            return is_list_of(t, {"fp32", "bf16"});
          },
          "a list of fp32, bf16")
      .alias("precisions");
  s.template add<int64_t>(
       "bench.batch", [](R& o) -> int64_t& { return o.batch; }, 32, "sequences per step")
      .range(1, 1 << 20)
      .alias("batch");
  s.template add<int64_t>(
       "bench.seq_len", [](R& o) -> int64_t& { return o.seq_len; }, 128, "tokens per sequence")
      .range(2, 512)
      .alias("seq_len");
  s.template add<int64_t>(
       "bench.threads", [](R& o) -> int64_t& { return o.threads; }, 2,
       "threads of both sides (OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, torch)")
      .range(1, 4096)
      .alias("threads");
  s.template add<int64_t>(
       "bench.steps", [](R& o) -> int64_t& { return o.steps; }, 5, "timed steps per run")
      .range(1, 1e9)
      .alias("steps");
  s.template add<int64_t>(
       "bench.warmup", [](R& o) -> int64_t& { return o.warmup; }, 2, "untimed steps before them")
      .range(0, 1e9)
      .alias("warmup");
  s.template add<int64_t>(
       "bench.repeats", [](R& o) -> int64_t& { return o.repeats; }, 1,
       "interleaved runs of ours and the baseline; medians are reported")
      .range(1, 1e6)
      .alias("repeats");
  s.template add<int64_t>(
       "bench.gemm_n", [](R& o) -> int64_t& { return o.gemm_n; }, 2048,
       "size of the square mm that measures the GEMM peak of each precision")
      .range(16, 1 << 16)
      .alias("gemm_n");
  s.template add<int64_t>(
       "model.vocab_size", [](R& o) -> int64_t& { return o.vocab; }, 30522, "vocabulary size")
      .range(1001, 1 << 24)
      .alias("vocab");
  s.template add<double>(
       "optim.lr", [](R& o) -> double& { return o.lr; }, 1e-4, "learning rate (constant)")
      .range(0, 1)
      .alias("lr");
  s.template add<double>(
       "optim.weight_decay", [](R& o) -> double& { return o.weight_decay; }, 0.01,
       "AdamW weight decay (not on biases and LayerNorm weights)")
      .range(0, 1)
      .alias("weight_decay");
  s.template add<double>(
       "optim.max_grad_norm", [](R& o) -> double& { return o.max_grad_norm; }, 1.0, "gradient clipping norm (0 = none)")
      .range(0, 1e9)
      .alias("max_grad_norm");
  s.template add<std::string>(
       "env.omp_wait_policy", [](R& o) -> std::string& { return o.omp_wait_policy; }, "",
       "OMP_WAIT_POLICY of both sides (\"\" = the environment's); the bench re-executes "
       "itself with it, as libgomp reads it at load time")
      .satisfies(
          [](const std::string& t) {
            return t.empty() || t == "PASSIVE" || t == "ACTIVE" || t == "passive" || t == "active";
          },
          "PASSIVE or ACTIVE")
      .alias("omp_wait_policy");
  s.template add<std::string>(
       "env.openblas_coretype", [](R& o) -> std::string& { return o.openblas_coretype; }, "",
       "OPENBLAS_CORETYPE of both sides, e.g. Cooperlake, SkylakeX, Haswell (\"\" = the environment's): forces "
       "OpenBLAS's fp32 kernels where it does not recognise the CPU")
      .alias("openblas_coretype");
  s.template add<bool>(
       "env.malloc_keep", [](R& o) -> bool& { return o.malloc_keep; }, false,
       "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=64G for both sides (glibc keeps big blocks)")
      .alias("malloc_keep");
  s.template add<bool>(
       "baseline.skip", [](R& o) -> bool& { return o.no_baseline; }, false, "measure ours only")
      .alias("no_baseline");
  s.template add<std::string>(
       "baseline.python", [](R& o) -> std::string& { return o.python; }, "/usr/bin/python3",
       "the Python that runs the baseline (Debian's, with python3-torch)")
      .alias("python");
  s.template add<std::string>(
       "baseline.script", [](R& o) -> std::string& { return o.baseline_script; }, baseline_script,
       "the baseline script")
      .alias("baseline_script");
}

}  // namespace mpibert::bench
