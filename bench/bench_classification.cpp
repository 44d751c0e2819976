// bench_classification: one rank's fine-tuning step as run_classification's engine runs it (StepLoop:
// BertForSequenceClassification forward + summed loss / units under AutocastGuard, backward into the
// GradientReducer's flat buckets, clip_grad_norm, fused AdamW) against bench/baseline_classification.py
// (eager PyTorch BertForSequenceClassification as Hugging Face computes it and its Trainer steps it), on
// the same batch, in interleaved runs of the same process environment and thread count.
//
//   bench_classification [--models mini,small] [--precisions fp32,bf16] [--batch 32] [--seq_len 128]
//                        [--num_labels 2] [--threads 2] [--steps 5] [--warmup 2] [--repeats 1] ...
//   (--help lists every option)
//
// The batch follows baseline_classification.py's documented generator (rows of various lengths, row 0
// the longest): this program writes it as a batch directory that the baseline reads (--batch_dir), and
// checks that the baseline counted the same real tokens. Ours pads it as run_classification does: to the
// batch's longest row, with an attention mask only when some row is shorter, token types only for pairs.
//
// One JSON object per line: {"bench":"gemm",...} per precision, then {"bench":"classification",...} per
// (model, precision): samples/s and tokens/s of both, the ratio, first/last losses of both, MFU against
// the GEMM peak measured next to each run, and our phase split.
#include <torch/torch.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_args.h"
#include "bench/bench_env.h"
#include "common/comm/hccl_like.h"
#include "common/error.h"
#include "common/platform/blas_fit.h"
#include "worker/model/bert_classifier.h"
#include "worker/model/bert_config.h"
#include "worker/model/precision.h"
#include "worker/optim/optimizer.h"
#include "worker/train/gradient_reducer.h"
#include "worker/train/step_loop.h"

namespace {

namespace fs = std::filesystem;
using namespace mpibert;
using bench::Clock;
using bench::median;
using bench::split_list;

constexpr const char* kProblemTypes[] = {"single_label_classification", "multi_label_classification", "regression"};

struct Args : bench::StepBenchOptions {
  int64_t num_labels = 0, seed = 0;
  std::optional<int64_t> min_len;
  std::string problem_type;  // "" = as BertForSequenceClassification infers it
  std::string batch_dir;     // "" = a temporary directory
  bool pairs = false;
};

// function-size: table
config::Schema<Args> build_schema() {
  config::Schema<Args> s;
  bench::declare_step_bench_keys(s, bench::baseline_presets(),
                                 (fs::path(__FILE__).parent_path() / "baseline_classification.py").string());
  s.set_default("optim.lr", "5e-5");  // Hugging Face TrainingArguments' defaults, as run_classification's
  s.set_default("optim.weight_decay", "0");
  s.add<int64_t>(
       "data.num_labels", [](Args& a) -> int64_t& { return a.num_labels; }, 2,
       "classifier outputs (1 = regression unless --problem_type says otherwise)")
      .range(1, 1 << 20)
      .alias("num_labels");
  s.add<std::string>(
       "data.problem_type", [](Args& a) -> std::string& { return a.problem_type; }, "",
       "single_label_classification, multi_label_classification or regression (\"\" = regression "
       "for one label, else single-label)")
      .satisfies(
          [](const std::string& t) {
            return t.empty() || t == kProblemTypes[0] || t == kProblemTypes[1] || t == kProblemTypes[2];
          },
          "single_label_classification, multi_label_classification, regression or \"\"")
      .alias("problem_type");
  s.add<std::string>(
       "data.batch_dir", [](Args& a) -> std::string& { return a.batch_dir; }, "",
       "write the batch files (baseline_classification.py's batch directory format) here and keep them (\"\" = "
       "a temporary directory, removed at the end)")
      .alias("batch_dir");
  s.add<std::optional<int64_t>>(
       "data.min_len", [](Args& a) -> std::optional<int64_t>& { return a.min_len; }, std::nullopt,
       "shortest generated row (row 0 always has seq_len tokens)")
      .range(4, 512)
      .when_unset("seq_len / 2")
      .alias("min_len");
  s.add<bool>(
       "data.pairs", [](Args& a) -> bool& { return a.pairs; }, false,
       "rows are sentence pairs ([SEP] in the middle, token type 1 after it)")
      .alias("pairs");
  s.add<int64_t>(
       "data.seed", [](Args& a) -> int64_t& { return a.seed; }, 0,
       "seed of the batch generator, of both models' initialisation and of dropout")
      .range(0, 9e18)
      .alias("seed");
  return s;
}

const char* const kUsage =
    "bench_classification [options]: one rank's fine-tuning step (ours, as run_classification's engine) against\n"
    "bench/baseline_classification.py (eager PyTorch, Hugging Face's BertForSequenceClassification), same batch,\n"
    "interleaved runs, one JSON object per line. --omp_wait_policy and --malloc_keep apply to both sides.";

Args parse(int argc, char** argv) {
  static const config::Schema<Args> schema = build_schema();
  Args a;
  bench::parse_bench_args(schema, a, argc, argv, kUsage);
  if (a.seq_len < 4) throw UsageError("--seq_len " + std::to_string(a.seq_len) + " is too short (at least 4)");
  if (!a.min_len) a.min_len = a.seq_len / 2;
  if (*a.min_len < 4 || *a.min_len > a.seq_len)
    throw UsageError("--min_len " + std::to_string(*a.min_len) + " must be in [4, seq_len " +
                     std::to_string(a.seq_len) + "]");
  if (a.problem_type.empty()) a.problem_type = a.num_labels == 1 ? kProblemTypes[2] : kProblemTypes[0];
  if (a.problem_type == kProblemTypes[0] && a.num_labels < 2)
    throw UsageError("--problem_type single_label_classification needs --num_labels >= 2");
  if (a.problem_type == kProblemTypes[2] && a.num_labels != 1)
    throw UsageError("--problem_type regression needs --num_labels 1 (got " + std::to_string(a.num_labels) + ")");
  return a;
}

// The batch as baseline_classification.py's make_batch generates it, padded to seq_len (the files).
struct GeneratedBatch {
  torch::Tensor ids, mask, types, labels;
  int64_t longest = 0, real_tokens = 0;
};

// baseline_classification.py's documented 64-bit LCG.
struct Lcg {
  uint64_t s;
  uint64_t draw() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return s >> 33;
  }
};

void draw_label(Lcg& rng, const Args& a, int64_t r, torch::Tensor& labels) {
  if (a.problem_type == kProblemTypes[0]) {
    labels.data_ptr<int64_t>()[r] = static_cast<int64_t>(rng.draw() % static_cast<uint64_t>(a.num_labels));
  } else if (a.problem_type == kProblemTypes[1]) {
    for (int64_t k = 0; k < a.num_labels; ++k)
      labels.data_ptr<float>()[r * a.num_labels + k] = static_cast<float>(rng.draw() % 2);
  } else {
    labels.data_ptr<float>()[r] = static_cast<float>(static_cast<double>(rng.draw() % 5001) / 1000.0);
  }
}

GeneratedBatch generate_batch(const Args& a) {
  const int64_t B = a.batch, L = a.seq_len, min_len = *a.min_len;
  GeneratedBatch b;
  b.ids = torch::zeros({B, L}, torch::kLong);
  b.mask = torch::zeros({B, L}, torch::kLong);
  b.types = torch::zeros({B, L}, torch::kLong);
  b.labels = a.problem_type == kProblemTypes[0]   ? torch::zeros({B}, torch::kLong)
             : a.problem_type == kProblemTypes[1] ? torch::zeros({B, a.num_labels}, torch::kFloat)
                                                  : torch::zeros({B}, torch::kFloat);
  Lcg rng{static_cast<uint64_t>(a.seed)};
  for (int64_t r = 0; r < B; ++r) {
    const int64_t n = r == 0 ? L : min_len + static_cast<int64_t>(rng.draw() % static_cast<uint64_t>(L - min_len + 1));
    int64_t* id = b.ids.data_ptr<int64_t>() + r * L;
    for (int64_t j = 0; j < n; ++j)
      id[j] = 1000 + static_cast<int64_t>(rng.draw() % static_cast<uint64_t>(a.vocab - 1000));
    id[0] = 101;
    id[n - 1] = 102;
    std::fill(b.mask.data_ptr<int64_t>() + r * L, b.mask.data_ptr<int64_t>() + r * L + n, 1);
    if (a.pairs) {
      id[n / 2] = 102;
      std::fill(b.types.data_ptr<int64_t>() + r * L + n / 2 + 1, b.types.data_ptr<int64_t>() + r * L + n, 1);
    }
    draw_label(rng, a, r, b.labels);
    b.longest = std::max(b.longest, n);
    b.real_tokens += n;
  }
  return b;
}

void write_raw(const fs::path& p, const torch::Tensor& t) {
  std::ofstream out(p, std::ios::binary);
  out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  if (!out) throw std::runtime_error("bench_classification: cannot write " + p.string());
}

// What ClassificationTask::make_batch hands the model: padded to the longest row, the attention mask
// only when some row is shorter, token types only for sentence pairs.
struct EngineBatch {
  torch::Tensor ids, mask, types, labels;
  int64_t len = 0;
};

EngineBatch engine_batch(const GeneratedBatch& g, bool pairs) {
  EngineBatch e;
  e.len = g.longest;
  e.ids = g.ids.narrow(1, 0, e.len).contiguous();
  const torch::Tensor mask = g.mask.narrow(1, 0, e.len).contiguous();
  if (mask.min().item<int64_t>() == 0) e.mask = mask;
  if (pairs) e.types = g.types.narrow(1, 0, e.len).contiguous();
  e.labels = g.labels;
  return e;
}

// The engine at one rank, without MPI: a one-rank collective leaves its data as it is.
class SingleRankComm : public HcclLike {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  WorkPtr allReduce(const void* send, void* recv, size_t count, DataType dtype, ReduceOp) override {
    return copied(send, recv, count, dtype);
  }
  WorkPtr broadcast(void*, size_t, DataType, int) override { return done(); }
  WorkPtr allGather(const void* send, void* recv, size_t count, DataType dtype) override {
    return copied(send, recv, count, dtype);
  }
  WorkPtr reduceScatter(const void* send, void* recv, size_t count, DataType dtype, ReduceOp) override {
    return copied(send, recv, count, dtype);
  }
  WorkPtr barrier() override { return done(); }
  WorkPtr gatherv(const void* send, void* recv, const std::vector<size_t>& counts, DataType dtype, int) override {
    return copied(send, recv, counts.at(0), dtype);
  }
  WorkPtr allGatherv(const void* send, void* recv, const std::vector<size_t>& counts, DataType dtype) override {
    return copied(send, recv, counts.at(0), dtype);
  }
  [[noreturn]] void abortJob(int, const std::string& why) override { throw std::runtime_error(why); }

 private:
  struct Done : Work {
    bool isCompleted() const override { return true; }
    void wait(std::chrono::milliseconds) override {}
    void waitAlive(std::chrono::milliseconds) override {}
  };
  static WorkPtr done() { return std::make_shared<Done>(); }
  static WorkPtr copied(const void* send, void* recv, size_t count, DataType dtype) {
    if (send != recv) std::memcpy(recv, send, count * dtype_size(dtype));
    return done();
  }
};

struct OursResult {
  double samples_per_second = 0, loss_first = 0, loss_last = 0;
  double forward_s = 0, backward_s = 0, optimizer_s = 0;  // per step, means over the timed steps
  std::vector<double> step_seconds;
};

// StepLoop::run at one rank and one micro-step, timed per phase.
OursResult run_ours(const Args& a, const model::BertConfig& cfg, const EngineBatch& b, bool bf16) {
  model::BertForSequenceClassification m(cfg, static_cast<uint64_t>(a.seed));
  m->train();
  std::vector<std::pair<std::string, torch::Tensor>> named;
  std::vector<torch::Tensor> params;
  for (const auto& p : m->named_parameters(/*recurse=*/true)) {
    named.emplace_back(p.key(), p.value());
    params.push_back(p.value());
  }
  optim::OptimizerOptions oo;
  oo.weight_decay = a.weight_decay;
  optim::Optimizer opt(named, oo);
  SingleRankComm comm;
  GradientReducer reducer(comm, params, ReducerOptions{});
  const double units =
      static_cast<double>(model::classification_loss_units(b.ids.size(0), cfg.num_labels, a.problem_type));
  OursResult r;
  double fwd = 0, bwd = 0, upd = 0, total = 0;
  for (int64_t step = 0; step < a.warmup + a.steps; ++step) {
    const auto t0 = Clock::now();
    reducer.zero_grad();
    m->set_dropout_seed(train::dropout_seed(static_cast<uint64_t>(a.seed), step, 0, 0));
    torch::Tensor loss_sum, loss;
    {
      model::AutocastGuard autocast(bf16);
      loss_sum = model::classification_loss_sum(m->logits(b.ids, b.mask, b.types), b.labels, a.problem_type);
      loss = loss_sum / units;
    }
    const auto t1 = Clock::now();
    reducer.prepare_for_backward(true);
    loss.backward();
    const double value = loss_sum.item<double>() / units;
    reducer.finish();
    const auto t2 = Clock::now();
    optim::clip_grad_norm(params, a.max_grad_norm);
    opt.step(a.lr);
    const auto t3 = Clock::now();
    if (step == 0) r.loss_first = value;
    r.loss_last = value;
    if (step < a.warmup) continue;
    fwd += std::chrono::duration<double>(t1 - t0).count();
    bwd += std::chrono::duration<double>(t2 - t1).count();
    upd += std::chrono::duration<double>(t3 - t2).count();
    r.step_seconds.push_back(std::chrono::duration<double>(t3 - t0).count());
    total += r.step_seconds.back();
  }
  r.samples_per_second = static_cast<double>(a.batch * a.steps) / total;
  r.forward_s = fwd / a.steps;
  r.backward_s = bwd / a.steps;
  r.optimizer_s = upd / a.steps;
  return r;
}

nlohmann::json run_baseline(const Args& a, const std::string& preset, const std::string& precision, const fs::path& dir,
                            int64_t real_tokens) {
  auto num = [](double v) { return config::format_float_shortest(v); };
  std::ostringstream cmd;
  cmd << "OMP_NUM_THREADS=" << a.threads << " OPENBLAS_NUM_THREADS=" << a.threads << " " << a.python << " "
      << a.baseline_script << " bench --preset " << preset << " --batch_dir " << dir.string() << " --batch " << a.batch
      << " --seq_len " << a.seq_len << " --num_labels " << a.num_labels << " --problem_type " << a.problem_type
      << " --vocab " << a.vocab << " --precision " << precision << " --threads " << a.threads << " --min_len "
      << *a.min_len << " --steps " << a.steps << " --warmup " << a.warmup << " --lr " << num(a.lr) << " --weight_decay "
      << num(a.weight_decay) << " --max_grad_norm " << num(a.max_grad_norm) << " --seed " << a.seed;
  nlohmann::json j = bench::run_json_child(cmd.str(), "bench_classification");
  if (j.value("batch_source", "") != "dir" || j.value("real_tokens", int64_t{-1}) != real_tokens)
    throw std::runtime_error("bench_classification: the baseline did not train on our batch (it reports " +
                             j.value("batch_source", std::string("?")) + ", " +
                             std::to_string(j.value("real_tokens", int64_t{-1})) + " real tokens; we have " +
                             std::to_string(real_tokens) + ")");
  return j;
}

// Ours and the baseline `repeats` times, alternating which goes first, with the GEMM peak measured
// next to each pair: a load change on the shared machine hits both sides.
struct Measured {
  std::vector<OursResult> ours;
  std::vector<nlohmann::json> base;
  std::vector<double> ours_sps, base_sps, peaks;
};

Measured measure(const Args& a, const std::string& preset, const std::string& precision, const model::BertConfig& cfg,
                 const EngineBatch& batch, const fs::path& dir, int64_t real_tokens) {
  const bool bf16 = precision == "bf16";
  Measured m;
  for (int64_t r = 0; r < a.repeats; ++r) {
    m.peaks.push_back(bench::gemm_gflops(a.gemm_n, bf16 ? at::kBFloat16 : at::kFloat, 0.5));
    auto ours = [&] {
      m.ours.push_back(run_ours(a, cfg, batch, bf16));
      m.ours_sps.push_back(m.ours.back().samples_per_second);
    };
    auto base = [&] {
      m.base.push_back(run_baseline(a, preset, precision, dir, real_tokens));
      m.base_sps.push_back(m.base.back().at("samples_per_second").get<double>());
    };
    if (a.no_baseline) {
      ours();
    } else if (r % 2 == 0) {
      ours();
      base();
    } else {
      base();
      ours();
    }
  }
  return m;
}

// function-size: table
nlohmann::json result_json(const Args& a, const std::string& preset, const std::string& precision,
                           const model::BertConfig& cfg, const EngineBatch& batch, int64_t real_tokens,
                           const bench::BenchEnvironment& env, const Measured& m) {
  const double tokens_per_row = static_cast<double>(batch.len);
  const double flops = model::flops_per_token(cfg, batch.len, 0.0, /*sparse_head=*/true);  // as the engine counts
  const double peak = median(m.peaks) * 1e9;
  const double ours = median(m.ours_sps), real_per_row = static_cast<double>(real_tokens) / a.batch;
  const OursResult& last = m.ours.back();
  nlohmann::json j = {
      {"bench", "classification"},
      {"model", preset},
      {"precision", precision},
      {"batch", a.batch},
      {"seq_len", a.seq_len},
      {"padded_len", batch.len},
      {"real_tokens", real_tokens},
      {"padding_fraction", 1.0 - real_per_row / tokens_per_row},
      {"attention_mask", batch.mask.defined()},
      {"pairs", a.pairs},
      {"num_labels", a.num_labels},
      {"problem_type", a.problem_type},
      {"vocab", a.vocab},
      {"threads", a.threads},
      {"steps", a.steps},
      {"warmup", a.warmup},
      {"repeats", a.repeats},
      {"omp_wait_policy", env.omp_wait_policy},
      {"openblas_coretype", env.openblas_coretype},
      {"malloc_keep", env.malloc_keep},
      {"dropout", cfg.hidden_dropout_prob},
      {"attention_dropout", cfg.attention_probs_dropout_prob},
      {"classifier_dropout", cfg.classifier_dropout >= 0 ? cfg.classifier_dropout : cfg.hidden_dropout_prob},
      {"lr", a.lr},
      {"weight_decay", a.weight_decay},
      {"max_grad_norm", a.max_grad_norm},
      {"ours_samples_per_s", ours},
      {"ours_samples_per_s_runs", m.ours_sps},
      {"ours_tokens_per_s", ours * tokens_per_row},
      {"ours_real_tokens_per_s", ours * real_per_row},
      {"ours_loss_first", last.loss_first},
      {"ours_loss_last", last.loss_last},
      {"ours_step_s", last.step_seconds},
      {"ours_forward_s", last.forward_s},
      {"ours_backward_s", last.backward_s},
      {"ours_clip_adamw_s", last.optimizer_s},
      {"ours_mfu", flops * ours * tokens_per_row / peak},
      {"peak_gflops", median(m.peaks)},
      {"peak_gflops_runs", m.peaks}};
  if (a.no_baseline) return j;
  const nlohmann::json& base = m.base.back();
  const double bs = median(m.base_sps);
  j["baseline_samples_per_s"] = bs;
  j["baseline_samples_per_s_runs"] = m.base_sps;
  j["baseline_tokens_per_s"] = bs * a.seq_len;  // the baseline runs the files' full seq_len
  j["baseline_real_tokens_per_s"] = bs * real_per_row;
  j["baseline_loss_first"] = base.at("loss_first");
  j["baseline_loss_last"] = base.at("loss_last");
  j["baseline_step_s"] = base.at("step_seconds");
  j["baseline_mfu"] = model::flops_per_token(cfg, a.seq_len, 0.0, true) * bs * a.seq_len / peak;
  j["baseline_torch"] = base.at("torch");
  j["ratio"] = ours / bs;
  std::vector<double> pairs;  // ours / baseline of each interleaved pair: the load they shared
  for (size_t r = 0; r < m.ours_sps.size() && r < m.base_sps.size(); ++r)
    pairs.push_back(m.ours_sps[r] / m.base_sps[r]);
  j["ratio_runs"] = pairs;
  if (precision == "bf16") {  // the goal: at least twice the eager baseline's samples/s in bf16
    j["goal_ratio"] = 2.0;
    j["meets_goal"] = ours / bs >= 2.0;
  }
  return j;
}

void print_gemm_peaks(const Args& a, const bench::BenchEnvironment& env, const std::string& blas) {
  const auto features = model::cpu_bf16_features();
  std::map<std::string, double> peak;
  for (const auto& p : split_list(a.precisions)) {
    peak[p] = bench::gemm_gflops(a.gemm_n, p == "bf16" ? at::kBFloat16 : at::kFloat);
    nlohmann::json j = {{"bench", "gemm"},
                        {"precision", p},
                        {"n", a.gemm_n},
                        {"threads", a.threads},
                        {"gflops", peak[p]},
                        {"blas", blas},
                        {"cpu_avx512_bf16", features.avx512_bf16},
                        {"cpu_amx_bf16", features.amx_bf16},
                        {"bf16_fast", model::cpu_supports_bf16_fast()},
                        {"omp_wait_policy", env.omp_wait_policy},
                        {"openblas_coretype", env.openblas_coretype},
                        {"malloc_keep", env.malloc_keep}};
    if (p == "bf16" && peak.count("fp32")) j["bf16_over_fp32"] = peak["bf16"] / peak["fp32"];
    std::cout << j.dump() << std::endl;
  }
}

int run(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const bench::BenchEnvironment env = bench::prepare_environment(a, argv, "bench_classification");
  print_gemm_peaks(a, env, bench::blas_info(static_cast<int>(a.threads)));

  const GeneratedBatch generated = generate_batch(a);
  const bool temporary = a.batch_dir.empty();
  const fs::path dir = temporary
                           ? fs::temp_directory_path() / ("mpibert_bench_classification_" + std::to_string(::getpid()))
                           : fs::path(a.batch_dir);
  fs::create_directories(dir);
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ec;
      if (!dir.empty()) fs::remove_all(dir, ec);
    }
  } cleanup{temporary ? dir : fs::path()};
  write_raw(dir / "input_ids.bin", generated.ids);
  write_raw(dir / "attention_mask.bin", generated.mask);
  write_raw(dir / "token_type_ids.bin", generated.types);
  write_raw(dir / "labels.bin", generated.labels);
  const EngineBatch batch = engine_batch(generated, a.pairs);

  for (const auto& preset : split_list(a.models)) {
    model::BertConfig cfg = model::preset(preset);
    cfg.vocab_size = a.vocab;
    cfg.num_labels = a.num_labels;
    cfg.problem_type = a.problem_type;
    for (const auto& precision : split_list(a.precisions)) {
      const Measured m = measure(a, preset, precision, cfg, batch, dir, generated.real_tokens);
      std::cout << result_json(a, preset, precision, cfg, batch, generated.real_tokens, env, m).dump() << std::endl;
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  mpibert::platform::fit_blas_to_cpu(argv);  // may re-execute this program with a better OpenBLAS core
  return mpibert::run_main("bench_classification", [&] { return run(argc, argv); });
}
