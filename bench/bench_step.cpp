// bench_step: training throughput of one rank's step (forward_mlm with the sparse head + backward +
// clip + fused AdamW) against the Python baseline users run today (bench/baseline_step.py: eager
// PyTorch BertForMaskedLM as HF computes it, dense head, CrossEntropyLoss, torch.optim.AdamW),
// on the same batch, in the same run. Also measures the GEMM peak of each precision for MFU.
//
//   bench_step [--models mini,small] [--precisions fp32,bf16] [--batch 32] [--seq_len 128]
//              [--threads 2] [--steps 5] [--warmup 2] [--repeats 1] [--vocab 30522] [--no_baseline]
//              [--python /usr/bin/python3] [--baseline_script PATH] [--fused_qkv 1] [--gemm_n 2048] ...
//   (--help lists every option; the command line is declared once in bench_args.h and below)
//
// One JSON object per line: {"bench":"gemm",...} per precision, then {"bench":"step",...} per
// (model, precision) with tokens/s of both, the ratio, both losses, MFU and the phase split.
#include <ATen/record_function.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_args.h"
#include "bench/bench_env.h"
#include "common/error.h"
#include "common/platform/blas_fit.h"
#include "worker/model/bert.h"
#include "worker/model/bert_config.h"
#include "worker/model/precision.h"
#include "worker/optim/optimizer.h"
#include "worker/train/masking.h"
#include "worker/train/runtime_env.h"

namespace {

namespace fs = std::filesystem;
using namespace mpibert;
using bench::Clock;
using bench::median;
using bench::split_list;

struct Args : bench::StepBenchOptions {
  bool fused_qkv = true, fused_attention = true, fused_bf16_attention = false, fused_add_norm = true,
       fused_bias_gelu = false, baseline_sparse = false, sparse = true, gradient_checkpointing = false;
  std::string profile;  // chrome trace of one timed step of ours ("" = none)
};

// function-size: table
config::Schema<Args> build_schema() {
  config::Schema<Args> s;
  bench::declare_step_bench_keys(s, bench::baseline_presets(),
                                 (fs::path(__FILE__).parent_path() / "baseline_step.py").string());
  s.add<bool>(
       "model.fused_qkv", [](Args& a) -> bool& { return a.fused_qkv; }, true,
       "one GEMM for the query, key and value projections")
      .alias("fused_qkv");
  s.add<bool>(
       "model.fused_attention", [](Args& a) -> bool& { return a.fused_attention; }, true, "fused fp32 attention tiles")
      .alias("fused_attention");
  s.add<bool>(
       "model.fused_bf16_attention", [](Args& a) -> bool& { return a.fused_bf16_attention; }, false,
       "fused bf16 attention tiles (oneDNN's bf16 GEMM per tile)")
      .alias("fused_bf16_attention");
  s.add<bool>(
       "model.fused_add_norm", [](Args& a) -> bool& { return a.fused_add_norm; }, true,
       "dropout + residual + LayerNorm in one kernel")
      .alias("fused_add_norm");
  s.add<bool>(
       "model.fused_bias_gelu", [](Args& a) -> bool& { return a.fused_bias_gelu; }, false,
       "the FFN's bias + GELU in one kernel")
      .alias("fused_bias_gelu");
  s.add<bool>(
       "baseline.sparse_head", [](Args& a) -> bool& { return a.baseline_sparse; }, false,
       "the baseline's head on masked positions only: the best eager recipe instead of Hugging Face's")
      .alias("baseline_sparse");
  s.add<bool>(
       "model.sparse_head", [](Args& a) -> bool& { return a.sparse; }, true, "the MLM head on masked positions only")
      .alias("sparse");
  s.add<bool>(
       "model.gradient_checkpointing", [](Args& a) -> bool& { return a.gradient_checkpointing; }, false,
       "recompute each layer in backward instead of keeping its activations (less memory, more time)")
      .alias("gradient_checkpointing");
  s.add<std::string>(
       "bench.profile", [](Args& a) -> std::string& { return a.profile; }, "",
       "chrome trace of one timed step of ours: PREFIX-<layers>x<hidden>-<precision>.trace.json "
       "(\"\" = none)")
      .alias("profile");
  return s;
}

const char* const kUsage =
    "bench_step [options]: one rank's MLM training step (ours) against bench/baseline_step.py (eager PyTorch),\n"
    "same batch, interleaved runs, one JSON object per line. --omp_wait_policy and --malloc_keep apply to both\n"
    "sides (the baseline inherits the environment); both are read when the libraries load, so bench_step\n"
    "re-executes itself with them.";

Args parse(int argc, char** argv) {
  static const config::Schema<Args> schema = build_schema();
  Args a;
  bench::parse_bench_args(schema, a, argc, argv, kUsage);
  return a;
}

// One packed pre-training batch: [CLS] random non-special tokens [SEP], no padding, masked at 15%.
struct Batch {
  torch::Tensor ids, labels;
  int64_t masked = 0;
};
Batch make_batch(const Args& a) {
  const int64_t B = a.batch, L = a.seq_len;
  std::vector<int32_t> raw(static_cast<size_t>(B * L));
  uint64_t s = 12345;
  for (int64_t r = 0; r < B; ++r)
    for (int64_t j = 0; j < L; ++j) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      int32_t id = static_cast<int32_t>(1000 + (s >> 33) % static_cast<uint64_t>(a.vocab - 1000));
      if (j == 0) id = 101;
      if (j == L - 1) id = 102;
      raw[static_cast<size_t>(r * L + j)] = id;
    }
  train::MaskingOptions mo;
  mo.vocab_size = a.vocab;
  mo.pad_id = 0;
  mo.mask_id = 103;
  mo.special_ids = {0, 100, 101, 102, 103};
  train::MlmMasker masker(mo);
  Batch b;
  b.ids = torch::empty({B, L}, torch::kLong);
  b.labels = torch::empty({B, L}, torch::kLong);
  std::vector<int64_t> index(static_cast<size_t>(B));
  for (int64_t r = 0; r < B; ++r) index[static_cast<size_t>(r)] = r;
  b.masked =
      masker.mask_batch(raw.data(), B, L, index.data(), 34, 0, b.ids.data_ptr<int64_t>(), b.labels.data_ptr<int64_t>());
  return b;
}

void write_raw(const fs::path& p, const torch::Tensor& t) {
  std::ofstream out(p, std::ios::binary);
  out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!out) throw std::runtime_error("bench_step: cannot write " + p.string());
}

struct OursResult {
  double tokens_per_second = 0, loss_first = 0, loss_last = 0;
  double forward_s = 0, backward_s = 0, optimizer_s = 0;  // per step, means over the timed steps
  std::vector<double> step_seconds;
};

std::string cfg_name(const model::BertConfig& c) {
  return std::to_string(c.num_hidden_layers) + "x" + std::to_string(c.hidden_size);
}

OursResult run_ours(const Args& a, const model::BertConfig& cfg, const Batch& batch, bool bf16) {
  model::BertForMaskedLM m(cfg, 0);
  m->train();
  m->set_fused_qkv(a.fused_qkv);
  m->set_gradient_checkpointing(a.gradient_checkpointing);
  m->set_fused_attention(a.fused_attention);
  m->set_fused_add_norm(a.fused_add_norm);
  m->set_fused_bias_gelu(a.fused_bias_gelu);
  m->set_fused_bf16_attention(a.fused_bf16_attention);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& p : m->named_parameters()) named.emplace_back(p.key(), p.value());
  optim::OptimizerOptions oo;
  oo.weight_decay = a.weight_decay;
  optim::Optimizer opt(named, oo);
  OursResult r;
  double fwd = 0, bwd = 0, upd = 0, total = 0;
  for (int64_t step = 0; step < a.warmup + a.steps; ++step) {
    std::unique_ptr<torch::autograd::profiler::RecordProfile> profiler;
    if (!a.profile.empty() && step == a.warmup)
      profiler = std::make_unique<torch::autograd::profiler::RecordProfile>(a.profile + "-" + cfg_name(cfg) +
                                                                            (bf16 ? "-bf16" : "-fp32") + ".trace.json");
    const auto t0 = Clock::now();
    opt.zero_grad();
    m->set_dropout_seed(static_cast<uint64_t>(step));
    model::MlmOutput out;
    torch::Tensor loss;
    {
      RECORD_USER_SCOPE("mpibert::forward");  // the phases, as named ranges in --profile's trace
      model::AutocastGuard autocast(bf16);
      out = m->forward_mlm(batch.ids, torch::Tensor(), batch.labels, a.sparse);
      loss = out.loss_sum / out.num_masked.to(torch::kFloat);
    }
    const auto t1 = Clock::now();
    {
      RECORD_USER_SCOPE("mpibert::backward");
      loss.backward();
    }
    const auto t2 = Clock::now();
    opt.clip_and_step(a.lr, a.max_grad_norm);
    const double value = loss.item<double>();
    const auto t3 = Clock::now();
    if (step == 0) r.loss_first = value;
    r.loss_last = value;
    if (step >= a.warmup) {
      fwd += std::chrono::duration<double>(t1 - t0).count();
      bwd += std::chrono::duration<double>(t2 - t1).count();
      upd += std::chrono::duration<double>(t3 - t2).count();
      r.step_seconds.push_back(std::chrono::duration<double>(t3 - t0).count());
      total += r.step_seconds.back();
    }
  }
  r.tokens_per_second = static_cast<double>(a.batch * a.seq_len * a.steps) / total;
  r.forward_s = fwd / a.steps;
  r.backward_s = bwd / a.steps;
  r.optimizer_s = upd / a.steps;
  return r;
}

nlohmann::json run_baseline(const Args& a, const std::string& preset, const std::string& precision,
                            const fs::path& dir) {
  std::ostringstream cmd;
  cmd << "OMP_NUM_THREADS=" << a.threads << " OPENBLAS_NUM_THREADS=" << a.threads << " " << a.python << " "
      << a.baseline_script << " bench --preset " << preset << " --vocab " << a.vocab << " --batch " << a.batch
      << " --seq_len " << a.seq_len << " --batch_dir " << dir.string() << " --precision " << precision << " --threads "
      << a.threads << " --steps " << a.steps << " --warmup " << a.warmup << " --lr " << a.lr << " --weight_decay "
      << a.weight_decay << " --max_grad_norm " << a.max_grad_norm << (a.baseline_sparse ? " --sparse_head" : "");
  return bench::run_json_child(cmd.str(), "bench_step");
}

int run(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const bench::BenchEnvironment env = bench::prepare_environment(a, argv, "bench_step");
  const std::string& policy = env.omp_wait_policy;
  const std::string& coretype = env.openblas_coretype;
  const bool malloc_keep = env.malloc_keep;
  const std::string blas = bench::blas_info(static_cast<int>(a.threads));
  const int threads_reached = intra_op_threads_reached(static_cast<int>(a.threads));
  const auto features = model::cpu_bf16_features();

  std::map<std::string, double> peak;
  for (const auto& p : split_list(a.precisions)) {
    peak[p] = bench::gemm_gflops(a.gemm_n, p == "bf16" ? at::kBFloat16 : at::kFloat);
    nlohmann::json j = {{"bench", "gemm"},
                        {"precision", p},
                        {"n", a.gemm_n},
                        {"threads", a.threads},
                        {"intra_op_threads_reached", threads_reached},
                        {"gflops", peak[p]},
                        {"blas", blas},
                        {"cpu_avx512_bf16", features.avx512_bf16},
                        {"cpu_amx_bf16", features.amx_bf16},
                        {"bf16_fast", model::cpu_supports_bf16_fast()},
                        {"omp_wait_policy", policy},
                        {"openblas_coretype", coretype},
                        {"malloc_keep", malloc_keep}};
    if (p == "bf16" && peak.count("fp32")) j["bf16_over_fp32"] = peak["bf16"] / peak["fp32"];
    std::cout << j.dump() << std::endl;
  }

  const fs::path dir = fs::temp_directory_path() / ("mpibert_bench_step_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const Batch batch = make_batch(a);
  write_raw(dir / "input_ids.bin", batch.ids);
  write_raw(dir / "labels.bin", batch.labels);
  const double mask_fraction = static_cast<double>(batch.masked) / static_cast<double>(a.batch * a.seq_len);

  const std::map<std::string, std::pair<double, double>> goals = {// model -> (fp32, bf16) ratio goals
                                                                  {"mini", {2.0, 2.0}},
                                                                  {"small", {1.6, 1.5}}};
  for (const auto& preset : split_list(a.models)) {
    model::BertConfig cfg = model::preset(preset);
    cfg.vocab_size = a.vocab;
    const double needed = model::flops_per_token(cfg, a.seq_len, mask_fraction, true);
    const double dense = model::flops_per_token(cfg, a.seq_len, mask_fraction, false);
    for (const auto& precision : split_list(a.precisions)) {
      const bool bf16 = precision == "bf16";
      // Ours and the baseline alternate, so that a load change on a shared machine hits both.
      std::vector<OursResult> ours_runs;
      std::vector<nlohmann::json> base_runs;
      std::vector<double> ours_tps, base_tps, peaks;
      for (int64_t r = 0; r < a.repeats; ++r) {
        // The GEMM peak is re-measured next to every run: on a shared machine it drifts with the load.
        peaks.push_back(bench::gemm_gflops(a.gemm_n, bf16 ? at::kBFloat16 : at::kFloat, 0.5));
        ours_runs.push_back(run_ours(a, cfg, batch, bf16));
        ours_tps.push_back(ours_runs.back().tokens_per_second);
        if (!a.no_baseline) {
          base_runs.push_back(run_baseline(a, preset, precision, dir));
          base_tps.push_back(base_runs.back().at("tokens_per_second").get<double>());
        }
      }
      const OursResult& ours = ours_runs.back();
      const double ours_t = median(ours_tps);
      const double peak_flops = median(peaks) * 1e9;
      nlohmann::json j = {{"bench", "step"},
                          {"model", preset},
                          {"precision", precision},
                          {"batch", a.batch},
                          {"seq_len", a.seq_len},
                          {"vocab", a.vocab},
                          {"threads", a.threads},
                          {"steps", a.steps},
                          {"repeats", a.repeats},
                          {"omp_wait_policy", policy},
                          {"malloc_keep", malloc_keep},
                          {"masked_fraction", mask_fraction},
                          {"sparse_head", a.sparse},
                          {"fused_qkv", a.fused_qkv},
                          {"gradient_checkpointing", a.gradient_checkpointing},
                          {"max_rss_mb", bench::max_rss_mb()},
                          {"fused_attention", a.fused_attention},
                          {"fused_add_norm", a.fused_add_norm},
                          {"fused_bias_gelu", a.fused_bias_gelu},
                          {"fused_bf16_attention", a.fused_bf16_attention},
                          {"baseline_sparse_head", a.baseline_sparse},
                          {"ours_tokens_per_s", ours_t},
                          {"ours_tokens_per_s_runs", ours_tps},
                          {"ours_loss_first", ours.loss_first},
                          {"ours_loss_last", ours.loss_last},
                          {"ours_step_s", ours.step_seconds},
                          {"ours_forward_s", ours.forward_s},
                          {"ours_backward_s", ours.backward_s},
                          {"ours_clip_adamw_s", ours.optimizer_s},
                          {"ours_mfu", needed * ours_t / peak_flops},
                          {"ours_hfu", (a.sparse ? needed : dense) * ours_t / peak_flops},
                          {"peak_gflops", median(peaks)},
                          {"peak_gflops_runs", peaks},
                          {"blas", blas}};
      if (!a.no_baseline) {
        const nlohmann::json& base = base_runs.back();
        const double bt = median(base_tps);
        const double goal = bf16                  ? goals.count(preset) ? goals.at(preset).second : 0.0
                            : goals.count(preset) ? goals.at(preset).first
                                                  : 0.0;
        j["baseline_tokens_per_s"] = bt;
        j["baseline_tokens_per_s_runs"] = base_tps;
        j["baseline_loss_first"] = base.at("loss_first");
        j["baseline_loss_last"] = base.at("loss_last");
        j["baseline_step_s"] = base.at("step_seconds");
        j["baseline_mfu"] = needed * bt / peak_flops;
        j["baseline_hfu"] = dense * bt / peak_flops;
        j["baseline_torch"] = base.at("torch");
        j["ratio"] = ours_t / bt;
        if (goal > 0) {
          j["goal_ratio"] = goal;
          j["meets_goal"] = ours_t / bt >= goal;
        }
      }
      std::cout << j.dump() << std::endl;
    }
  }
  fs::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  mpibert::platform::fit_blas_to_cpu(argv);  // may re-execute this program with a better OpenBLAS core
  return mpibert::run_main("bench_step", [&] { return run(argc, argv); });
}
