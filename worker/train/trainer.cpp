#include "worker/train/trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "common/data/batch_sampler.h"
#include "common/data/shard_reader.h"
#include "common/data/wordpiece.h"
#include "common/error.h"
#include "common/io/atomic_file.h"
#include "common/io/json_file.h"
#include "common/log/log.h"
#include "worker/comm/tensor_collectives.h"
#include "worker/io/hf_export.h"
#include "worker/io/hf_import.h"
#include "worker/model/bert.h"
#include "worker/model/bert_config.h"
#include "worker/model/precision.h"
#include "worker/optim/lr_schedule.h"
#include "worker/optim/optimizer.h"
#include "worker/train/checkpoint.h"
#include "worker/train/gradient_reducer.h"
#include "worker/train/masking.h"
#include "worker/train/run_files.h"
#include "worker/train/runtime_env.h"
#include "worker/train/stop_signal.h"

namespace fs = std::filesystem;

namespace mpibert {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kEvalEpoch = -1;  // evaluation masks: fixed from the seed, the same at every evaluation

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  int64_t t = static_cast<int64_t>(s + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(t / 3600),
                static_cast<long long>(t / 60 % 60), static_cast<long long>(t % 60));
  return buf;
}

// Dropout stream of (seed, step, rank, micro-step), as DESIGN.md "Data order, masking and loss" says.
uint64_t dropout_seed(uint64_t seed, int64_t step, int rank, int64_t micro) {
  uint64_t k = data::mix64(seed ^ 0x6d707962657274ULL);
  k = data::mix64(k ^ static_cast<uint64_t>(step));
  k = data::mix64(k ^ (static_cast<uint64_t>(rank) << 32) ^ static_cast<uint64_t>(micro));
  return k;
}

void wait_or_abort(HcclLike& comm, const WorkPtr& work, double timeout_s) {
  try {
    work->wait(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  } catch (const CollectiveTimeout& e) {
    comm.abortJob(1, e.what());
  }
}

std::string broadcast_string(HcclLike& comm, std::string s, double timeout_s) {
  int64_t n = static_cast<int64_t>(s.size());
  wait_or_abort(comm, comm.broadcast(&n, 1, DataType::I64, 0), timeout_s);
  s.resize(static_cast<size_t>(n));
  wait_or_abort(comm, comm.broadcast(s.data(), s.size(), DataType::U8, 0), timeout_s);
  return s;
}

// Peak matrix-multiply FLOP/s of this rank in the training precision, measured now: MFU's denominator.
double measure_peak_flops(bool bf16) {
  torch::NoGradGuard ng;
  const int64_t n = 1024;
  auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat;
  auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
  auto c = torch::mm(a, b);  // warm up
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = Clock::now();
    for (int i = 0; i < 2; ++i) c = torch::mm(a, b);
    double s = seconds_between(t0, Clock::now());
    best = std::max(best, 2 * 2.0 * n * n * n / s);
  }
  return best;
}

}  // namespace

struct Trainer::Impl {
  RunConfig cfg;
  HcclLike& comm;
  int rank = 0, world = 1;
  fs::path out_dir;
  std::string resume_dir;  // checkpoint to resume from ("" = none)
  bool bf16 = false;
  int threads = 1;
  double timeout_s = 1800;

  std::optional<data::ShardDataset> train_ds, eval_ds;
  std::string vocab_path, tokenizer_config_path;
  model::BertConfig mcfg;
  model::BertForMaskedLM model{nullptr};
  std::vector<std::pair<std::string, at::Tensor>> named_params;
  std::vector<at::Tensor> params;
  std::unique_ptr<optim::Optimizer> opt;
  std::unique_ptr<optim::LrSchedule> schedule;
  std::unique_ptr<GradientReducer> reducer;
  std::unique_ptr<data::GlobalBatchSampler> sampler;
  std::unique_ptr<train::MlmMasker> masker;
  std::vector<uint8_t> is_continuation;
  MetricsLog metrics;

  int64_t seq_len = 0, global_batch = 0, total_steps = 0, step = 0;
  double peak_flops = 0, flops_per_token = 0;
  Clock::time_point start_time = Clock::now();

  Impl(const RunConfig& c, HcclLike& cm) : cfg(c), comm(cm), rank(cm.rank()), world(cm.size()) {
    timeout_s = cfg.dist.timeout_s;
    out_dir = cfg.train.output_dir;
    decide_output_dir();
    init_logging({rank, world, cfg.train.log_level, (out_dir / "logs" / ("rank-" + std::to_string(rank) + ".log")).string()});
    setup_runtime();
    open_data();
    build_model();
    if (!resume_dir.empty()) restore(resume_dir);
    if (rank == 0) write_start_files();
  }

  // Hugging Face's rules: a non-empty output_dir is refused unless overwrite_output_dir; one holding
  // checkpoints resumes from the latest. Rank 0 decides (no shared file system is assumed) and tells all.
  void decide_output_dir() {
    std::string decision, error;
    if (rank == 0) {
      const auto& t = cfg.train;
      try {
        if (!t.resume_from_checkpoint.empty() && t.resume_from_checkpoint != "latest") {
          decision = t.resume_from_checkpoint;
        } else if (t.do_train) {
          remove_stale_checkpoint_temps(out_dir.string());
          auto latest = find_latest_checkpoint(out_dir.string());
          if (t.resume_from_checkpoint == "latest") {
            if (!latest)
              throw UsageError("--resume_from_checkpoint: no checkpoint in " + out_dir.string() +
                               " to resume from (give a checkpoint directory, or drop the flag)");
            decision = *latest;
          } else if (latest && !t.overwrite_output_dir) {
            decision = *latest;
          } else if (!latest && !t.overwrite_output_dir && fs::is_directory(out_dir)) {
            bool empty = true;
            for (const auto& e : fs::directory_iterator(out_dir)) {
              if (e.path().filename() != "logs") empty = false;
            }
            if (!empty)
              throw UsageError("output_dir " + out_dir.string() +
                               " already exists and is not empty (no checkpoint to resume from); use "
                               "--overwrite_output_dir to train into it anyway, or choose another --output_dir");
          }
        }
      } catch (const UsageError& e) {
        error = e.what();
      }
    }
    error = broadcast_string(comm, error, timeout_s);
    if (!error.empty()) throw UsageError(error);
    resume_dir = broadcast_string(comm, decision, timeout_s);
  }

  void setup_runtime() {
    threads = choose_threads(cfg.dist.threads);
    apply_threads(threads);
    BlasInfo blas = detect_blas();
    if (blas.slow_reference())
      spdlog::warn("BLAS: {} — install libopenblas0-pthread (scripts/install-deps.sh does) for ~7x faster steps", blas.details);
    else
      spdlog::info("BLAS: {} ({})", blas.name, blas.details);
    std::string precision = model::resolve_precision(cfg.train.precision);
    bf16 = precision == "bf16";
    spdlog::info("precision: {} (requested {}; CPU bf16 support: {}), {} thread(s) per rank, world size {}", precision,
                 cfg.train.precision, model::cpu_supports_bf16_fast() ? "yes" : "no", threads, world);
    spdlog::info("libtorch {}, {}", torch_version(), mpi_library_version());
    install_stop_signal_handlers();
  }

  void open_data() {
    const std::string& dir = cfg.data.shards_dir;
    if (cfg.train.do_train) train_ds = data::ShardDataset::open(dir, "train");
    if (cfg.train.do_eval) {
      try {
        eval_ds = data::ShardDataset::open(dir, "validation", train_ds ? train_ds->vocab_size() : -1);
      } catch (const UsageError& e) {
        if (!train_ds) throw;
        spdlog::warn("no evaluation: {}", e.what());
      }
    }
    const data::ShardDataset& ds = train_ds ? *train_ds : *eval_ds;
    seq_len = ds.seq_len();
    vocab_path = ds.vocab_path();
    tokenizer_config_path = (fs::path(dir) / "tokenizer_config.json").string();
    auto tok = data::WordPieceTokenizer::from_vocab_file(vocab_path, ds.lowercase());
    is_continuation.resize(tok.vocab_size());
    for (size_t i = 0; i < tok.vocab_size(); ++i) is_continuation[i] = tok.is_continuation(static_cast<int32_t>(i));
    train::MaskingOptions mo;
    mo.mlm_probability = cfg.train.mlm_probability;
    mo.whole_word = cfg.train.whole_word_masking;
    auto ids = ds.special_ids();
    mo.special_ids = {ids.pad, ids.unk, ids.cls, ids.sep, ids.mask};
    mo.vocab_size = ds.vocab_size();
    mo.pad_id = ids.pad;
    mo.mask_id = ids.mask;
    mo.is_continuation = &is_continuation;
    masker = std::make_unique<train::MlmMasker>(mo);

    const auto& t = cfg.train;
    global_batch = world * t.per_device_train_batch_size * t.gradient_accumulation_steps;
    if (train_ds) {
      sampler = std::make_unique<data::GlobalBatchSampler>(train_ds->num_sequences(), global_batch,
                                                           static_cast<uint64_t>(t.seed));
      total_steps = t.max_steps > 0 ? t.max_steps
                                    : static_cast<int64_t>(std::ceil(t.num_train_epochs * sampler->steps_per_epoch()));
      spdlog::info("data: {} training sequences of {} tokens ({} steps per epoch at global batch {} = {} rank(s) x {} x {} "
                   "accumulation); {} steps", train_ds->num_sequences(), seq_len, sampler->steps_per_epoch(), global_batch,
                   world, t.per_device_train_batch_size, t.gradient_accumulation_steps, total_steps);
    }
  }

  void build_model() {
    const int64_t vocab = train_ds ? train_ds->vocab_size() : eval_ds->vocab_size();
    std::optional<io::LoadedHfModel> init;
    if (!cfg.model.init_from.empty()) {
      // Rank 0 reads the directory (no shared file system is assumed) and tells the others its config.
      std::string config_text, error;
      if (rank == 0) {
        try {
          init = io::load_hf_model_dir(cfg.model.init_from);
          config_text = model::to_hf_config_json(init->config).dump();
        } catch (const std::exception& e) {
          error = e.what();
        }
      }
      error = broadcast_string(comm, error, timeout_s);
      if (!error.empty()) throw UsageError(error);
      mcfg = model::from_hf_config_json(nlohmann::json::parse(broadcast_string(comm, config_text, timeout_s)),
                                        cfg.model.init_from + "/config.json");
      if (mcfg.vocab_size != vocab)
        throw UsageError("model.init_from " + cfg.model.init_from + ": the model's vocab_size is " +
                         std::to_string(mcfg.vocab_size) + " but the shards in " + cfg.data.shards_dir + " use " +
                         std::to_string(vocab) + " tokens: prepare the data with that model's vocab.txt (data.vocab_file)");
      if (seq_len > mcfg.max_position_embeddings)
        throw UsageError("model.init_from " + cfg.model.init_from + ": seq_len " + std::to_string(seq_len) +
                         " exceeds its max_position_embeddings " + std::to_string(mcfg.max_position_embeddings));
      if (cfg.model.hidden_dropout_prob >= 0) mcfg.hidden_dropout_prob = cfg.model.hidden_dropout_prob;
      if (cfg.model.attention_probs_dropout_prob >= 0) mcfg.attention_probs_dropout_prob = cfg.model.attention_probs_dropout_prob;
    } else {
      mcfg = model::resolve_model_config(cfg.model, vocab, seq_len);
    }
    model = model::BertForMaskedLM(mcfg, static_cast<uint64_t>(cfg.train.seed));
    if (init) {
      auto report = io::load_into(model, init->tensors, cfg.model.init_from);
      spdlog::info("initialised from {}{}", cfg.model.init_from,
                   report.ignored.empty() ? "" : " (ignored " + std::to_string(report.ignored.size()) + " tensors it has no use for)");
      init.reset();
    }
    for (auto& np : model->named_parameters()) {
      named_params.emplace_back(np.key(), np.value());
      params.push_back(np.value());
    }
    // Every rank starts from rank 0's weights.
    {
      torch::NoGradGuard ng;
      std::vector<WorkPtr> works;
      for (auto& p : params) works.push_back(broadcast(comm, p, 0));
      for (auto& w : works) wait_or_abort(comm, w, timeout_s);
    }
    int64_t n_params = 0;
    for (auto& p : params) n_params += p.numel();
    spdlog::info("model: {} layers x {} hidden, {} heads, vocab {}, {:.1f}M parameters, {} head", mcfg.num_hidden_layers,
                 mcfg.hidden_size, mcfg.num_attention_heads, mcfg.vocab_size, n_params / 1e6,
                 cfg.model.sparse_head ? "sparse (masked positions only)" : "dense");
    flops_per_token = model::flops_per_token(mcfg, seq_len, cfg.train.mlm_probability, cfg.model.sparse_head);

    if (!train_ds) return;
    const auto& t = cfg.train;
    optim::OptimizerOptions oo;
    oo.type = t.optimizer;
    oo.weight_decay = t.weight_decay;
    oo.beta1 = t.adam_beta1;
    oo.beta2 = t.adam_beta2;
    oo.eps = t.adam_epsilon;
    opt = std::make_unique<optim::Optimizer>(named_params, oo);
    optim::LrScheduleOptions so;
    so.type = t.lr_scheduler_type;
    so.base_lr = t.learning_rate;
    so.warmup_steps = optim::resolve_warmup_steps(t.warmup_steps, t.warmup_ratio, total_steps);
    so.total_steps = total_steps;
    so.lr_end = t.lr_end;
    so.power = t.power;
    schedule = std::make_unique<optim::LrSchedule>(so);
    ReducerOptions ro;
    ro.first_bucket_mb = cfg.dist.first_bucket_mb;
    ro.bucket_cap_mb = cfg.dist.bucket_cap_mb;
    ro.overlap = cfg.dist.overlap;
    ro.timeout_s = timeout_s;
    reducer = std::make_unique<GradientReducer>(comm, params, ro);
    spdlog::info("gradients: {} bucket(s), all-reduce {}", reducer->buckets().size(),
                 cfg.dist.overlap ? "overlapped with backward" : "after backward");
    peak_flops = measure_peak_flops(bf16);
  }

  // Rank 0 reads the checkpoint and broadcasts weights, optimizer state and trainer state.
  void restore(const std::string& dir) {
    std::string state_text, error;
    std::optional<LoadedCheckpoint> ck;
    if (rank == 0) {
      try {
        ck = load_checkpoint(dir);
        model->load_hf_state_dict(ck->model, dir + "/model.safetensors", /*strict=*/true);
        if (opt) opt->load_state(ck->optimizer, ck->trainer_state.value("optimizer_step", int64_t(0)));
        state_text = ck->trainer_state.dump();
      } catch (const std::exception& e) {
        error = e.what();
      }
    }
    error = broadcast_string(comm, error, timeout_s);
    if (!error.empty()) throw UsageError("resume from " + dir + ": " + error);
    auto state = nlohmann::json::parse(broadcast_string(comm, state_text, timeout_s));
    {
      torch::NoGradGuard ng;
      std::vector<WorkPtr> works;
      for (auto& p : params) works.push_back(broadcast(comm, p, 0));
      if (opt)
        for (auto& st : opt->state_tensors()) works.push_back(broadcast(comm, st.second, 0));
      for (auto& w : works) wait_or_abort(comm, w, timeout_s);
    }
    if (opt) {
      // The broadcast wrote the state in place; this sets the step count on every rank.
      std::map<std::string, at::Tensor> current;
      for (auto& st : opt->state_tensors()) current.emplace(st.first, st.second);
      opt->load_state(current, state.value("optimizer_step", int64_t(0)));
    }
    const int64_t ck_batch = state.at("global_batch").get<int64_t>();
    if (train_ds && ck_batch != global_batch)
      throw UsageError("resume from " + dir + ": the checkpoint was trained with global batch " + std::to_string(ck_batch) +
                       " but this run has " + std::to_string(global_batch) + " (" + std::to_string(world) + " rank(s) x " +
                       std::to_string(cfg.train.per_device_train_batch_size) + " x " +
                       std::to_string(cfg.train.gradient_accumulation_steps) +
                       " accumulation): set per_device_train_batch_size and gradient_accumulation_steps so that "
                       "world_size x batch x accumulation = " + std::to_string(ck_batch));
    step = state.at("consumed_sequences").get<int64_t>() / ck_batch;
    spdlog::info("resuming from {} at step {} ({} sequences consumed; trained with {} rank(s), now {})", dir, step,
                 state.at("consumed_sequences").get<int64_t>(), state.value("world_size", 0), world);
  }

  void write_start_files() {
    fs::create_directories(out_dir);
    io::write_json_file((out_dir / "config.json").string(), model::to_hf_config_json(mcfg));
    io::write_file_atomic((out_dir / "run_config.yaml").string(), run_schema().to_yaml(&cfg));
    spdlog::debug("resolved configuration:\n{}", run_schema().to_yaml(&cfg));
    spdlog::info("resolved configuration written to {}", (out_dir / "run_config.yaml").string());
  }

  // Reads, masks and stacks one micro-batch of this rank. Returns the masked-token count.
  int64_t make_micro_batch(const std::vector<int64_t>& indices, int64_t epoch, const data::ShardDataset& ds,
                           at::Tensor* input_ids, at::Tensor* attention_mask, at::Tensor* labels) const {
    const int64_t rows = static_cast<int64_t>(indices.size());
    std::vector<int32_t> ids(static_cast<size_t>(rows * seq_len));
    ds.read_many(indices, ids.data());
    *input_ids = torch::empty({rows, seq_len}, torch::kLong);
    *labels = torch::empty({rows, seq_len}, torch::kLong);
    int64_t masked = masker->mask_batch(ids.data(), rows, seq_len, indices.data(), static_cast<uint64_t>(cfg.train.seed),
                                        epoch, input_ids->data_ptr<int64_t>(), labels->data_ptr<int64_t>());
    const int32_t pad = ds.special_ids().pad;
    bool any_pad = false;
    for (int32_t id : ids) any_pad |= id == pad;
    *attention_mask = any_pad ? torch::from_blob(ids.data(), {rows, seq_len}, torch::kInt).ne(pad) : at::Tensor();
    return masked;
  }

  EvalResult evaluate() {
    EvalResult r;
    r.step = step;
    if (!eval_ds) return r;
    model->eval();
    torch::NoGradGuard ng;
    int64_t n = eval_ds->num_sequences();
    if (cfg.train.max_eval_samples > 0) n = std::min(n, cfg.train.max_eval_samples);
    const int64_t b = cfg.train.per_device_eval_batch_size;
    double sums[4] = {0, 0, 0, 0};  // loss sum, masked, correct, sequences
    std::vector<int64_t> mine;
    for (int64_t i = rank; i < n; i += world) mine.push_back(i);
    for (size_t off = 0; off < mine.size(); off += b) {
      std::vector<int64_t> idx(mine.begin() + off, mine.begin() + std::min(mine.size(), off + b));
      at::Tensor input, mask, labels;
      make_micro_batch(idx, kEvalEpoch, *eval_ds, &input, &mask, &labels);
      model::MlmOutput out;
      {
        model::AutocastGuard ag(bf16);
        out = model->forward_mlm(input, mask, labels, cfg.model.sparse_head);
      }
      sums[0] += out.loss_sum.item<double>();
      sums[1] += out.num_masked.item<int64_t>();
      sums[2] += out.num_correct.item<int64_t>();
      sums[3] += idx.size();
    }
    wait_or_abort(comm, comm.allReduce(sums, sums, 4, DataType::F64, ReduceOp::Sum), timeout_s);
    model->train();
    r.masked_tokens = static_cast<int64_t>(sums[1]);
    r.samples = static_cast<int64_t>(sums[3]);
    r.loss = sums[1] > 0 ? sums[0] / sums[1] : 0;
    r.accuracy = sums[1] > 0 ? sums[2] / sums[1] : 0;
    r.perplexity = std::exp(r.loss);
    return r;
  }

  void report_eval(const EvalResult& r) {
    spdlog::info("eval at step {}: loss {:.4f}, accuracy {:.4f}, perplexity {:.2f} ({} sequences, {} masked tokens)", r.step,
                 r.loss, r.accuracy, r.perplexity, r.samples, r.masked_tokens);
    if (rank != 0) return;
    nlohmann::json j = {{"eval_loss", r.loss}, {"eval_accuracy", r.accuracy}, {"perplexity", r.perplexity},
                        {"eval_samples", r.samples}, {"step", r.step}};
    io::write_json_file((out_dir / "eval_results.json").string(), j);
    if (metrics.is_open()) metrics.append(j);
  }

  NamedTensors optimizer_state() const { return opt ? opt->state_tensors() : NamedTensors{}; }

  void save(int64_t at_step) {
    if (rank == 0) {
      CheckpointContents c;
      c.model = named_params;
      c.optimizer = optimizer_state();
      c.trainer_state = {{"global_step", at_step},
                         {"epoch", static_cast<double>(at_step) / sampler->steps_per_epoch()},
                         {"consumed_sequences", at_step * global_batch},
                         {"global_batch", global_batch},
                         {"world_size", world},
                         {"per_device_train_batch_size", cfg.train.per_device_train_batch_size},
                         {"gradient_accumulation_steps", cfg.train.gradient_accumulation_steps},
                         {"optimizer_step", opt->step_count()},
                         {"scheduler", {{"type", cfg.train.lr_scheduler_type}, {"last_lr", schedule->lr_at(at_step)}}},
                         {"seed", cfg.train.seed},
                         {"rng", {{"scheme", "derived"},
                                  {"detail", "no generator state is carried: data order from (seed, epoch), masks from "
                                             "(seed, epoch, sequence index), dropout from (seed, step, rank, micro-step)"}}},
                         {"versions", {{"mpibert", "0.1.0"}, {"torch", torch_version()}, {"mpi", mpi_library_version()}}}};
      c.run_config_yaml = run_schema().to_yaml(&cfg);
      c.model_config = model::to_hf_config_json(mcfg);
      c.vocab_path = vocab_path;
      c.tokenizer_config_path = tokenizer_config_path;
      auto path = save_checkpoint(out_dir.string(), at_step, c, cfg.train.save_total_limit);
      spdlog::info("saved {}", path);
    }
    wait_or_abort(comm, comm.barrier(), timeout_s);
  }

  void export_final() {
    if (rank != 0) return;
    auto dir = out_dir / "final";
    io::export_hf_model(dir.string(), mcfg, model->hf_state_dict(), vocab_path, train_ds->lowercase(), cfg.train.save_dtype);
    spdlog::info("exported the model in Hugging Face format to {}", dir.string());
  }

  int train() {
    const auto& t = cfg.train;
    const int64_t accum = t.gradient_accumulation_steps;
    if (rank == 0) metrics.open((out_dir / "metrics.jsonl").string());
    model->train();
    const int64_t first_step = step;
    double interval_loss = 0, run_loss = 0, last_grad_norm = 0;
    int64_t interval_steps = 0, run_steps = 0, timed_steps = 0;
    Clock::time_point loop_start = Clock::now(), timed_start = loop_start, interval_start = loop_start;
    double timed_seconds = 0;
    bool preempted = false, out_of_time = false;
    while (step < total_steps) {
      const int64_t epoch = sampler->epoch_of_step(step);
      std::vector<at::Tensor> inputs(accum), masks(accum), labels(accum);
      double counts[1] = {0};
      for (int64_t m = 0; m < accum; ++m) {
        auto idx = sampler->slice(step, rank, world, static_cast<int>(m), static_cast<int>(accum));
        counts[0] += make_micro_batch(idx, epoch, *train_ds, &inputs[m], &masks[m], &labels[m]);
      }
      // The loss is the sum over every masked token of the global batch divided by their total count.
      wait_or_abort(comm, comm.allReduce(counts, counts, 1, DataType::F64, ReduceOp::Sum), timeout_s);
      const double global_masked = std::max(1.0, counts[0]);
      reducer->zero_grad();
      double stats[4] = {0, 0, 0, 0};  // loss sum, correct, stop-signal votes, out-of-time votes
      for (int64_t m = 0; m < accum; ++m) {
        model->set_dropout_seed(dropout_seed(static_cast<uint64_t>(t.seed), step, rank, m));
        model::MlmOutput out;
        at::Tensor loss;
        {
          model::AutocastGuard ag(bf16);
          out = model->forward_mlm(inputs[m], masks[m], labels[m], cfg.model.sparse_head);
          loss = out.loss_sum / global_masked;
        }
        reducer->prepare_for_backward(m == accum - 1);
        loss.backward();
        stats[0] += out.loss_sum.item<double>();
        stats[1] += out.num_correct.item<int64_t>();
      }
      reducer->finish();
      const double elapsed = seconds_between(start_time, Clock::now());
      stats[2] = stop_requested() ? 1 : 0;
      stats[3] = t.max_time > 0 && elapsed > t.max_time ? 1 : 0;
      auto stats_work = comm.allReduce(stats, stats, 4, DataType::F64, ReduceOp::Sum);
      last_grad_norm = optim::clip_grad_norm(params, t.max_grad_norm);
      const double lr = schedule->lr_at(step);
      opt->step(lr);
      wait_or_abort(comm, stats_work, timeout_s);
      ++step;
      const double step_loss = stats[0] / global_masked;
      if (!std::isfinite(step_loss)) throw std::runtime_error("loss is " + std::to_string(step_loss) + " at step " + std::to_string(step) + ": training diverged (lower the learning rate or use fp32)");
      interval_loss += step_loss;
      run_loss += step_loss;
      ++interval_steps;
      ++run_steps;
      const auto now = Clock::now();
      if (step - first_step == t.throughput_warmup_steps) timed_start = now;
      if (step - first_step > t.throughput_warmup_steps) {
        timed_steps = step - first_step - t.throughput_warmup_steps;
        timed_seconds = seconds_between(timed_start, now);
      }
      if (step % t.logging_steps == 0 || step == total_steps) {
        log_progress(step, interval_loss / interval_steps, lr, last_grad_norm, interval_steps,
                     seconds_between(interval_start, now), timed_steps, timed_seconds);
        interval_loss = 0;
        interval_steps = 0;
        interval_start = Clock::now();
      }
      preempted = stats[2] > 0;
      out_of_time = !preempted && stats[3] > 0;
      const bool last = step == total_steps || preempted || out_of_time;
      if (t.eval_steps > 0 && step % t.eval_steps == 0 && !last) report_eval(evaluate());
      if ((t.save_steps > 0 && step % t.save_steps == 0) || last) save(step);
      if (preempted || out_of_time) break;
    }
    const double runtime = seconds_between(loop_start, Clock::now());
    write_train_results(runtime, run_steps, run_loss, timed_steps, timed_seconds);
    if (preempted) {
      spdlog::warn("stopped by signal {} after step {}: checkpoint written; rerun the same command to resume", stop_signal_number(), step);
      return kExitPreempted;
    }
    if (out_of_time) spdlog::info("max_time of {} s reached after step {}", t.max_time, step);
    return 0;
  }

  double mfu(double tokens_per_second) const {
    return peak_flops > 0 ? flops_per_token * tokens_per_second / (peak_flops * world) : 0;
  }

  void log_progress(int64_t at_step, double loss, double lr, double grad_norm, int64_t steps, double seconds,
                    int64_t timed_steps, double timed_seconds) {
    const double sps = seconds > 0 ? steps * global_batch / seconds : 0;
    const double tps = sps * seq_len;
    const double avg_step = timed_steps > 0 ? timed_seconds / timed_steps : (steps > 0 ? seconds / steps : 0);
    const double eta = avg_step * (total_steps - at_step);
    std::ostringstream line;
    line << "step " << at_step << "/" << total_steps << " | loss " << fmt::format("{:.4f}", loss) << " | lr "
         << fmt::format("{:.3e}", lr) << " | grad_norm " << fmt::format("{:.3f}", grad_norm) << " | "
         << fmt::format("{:.1f}", sps) << " samples/s | " << fmt::format("{:.0f}", tps) << " tokens/s | MFU "
         << fmt::format("{:.1f}%", 100 * mfu(tps)) << " | ETA " << format_duration(eta);
    if (cfg.train.cost_per_hour > 0) {
      const double so_far = seconds_between(start_time, Clock::now()) / 3600 * cfg.train.cost_per_hour;
      line << " | cost " << fmt::format("${:.2f}", so_far) << " (est. total "
           << fmt::format("${:.2f}", so_far + eta / 3600 * cfg.train.cost_per_hour) << ")";
    }
    spdlog::info("{}", line.str());
    if (rank == 0)
      metrics.append({{"step", at_step}, {"epoch", static_cast<double>(at_step) / sampler->steps_per_epoch()},
                      {"loss", loss}, {"learning_rate", lr}, {"grad_norm", grad_norm}, {"samples_per_second", sps},
                      {"tokens_per_second", tps}, {"mfu", mfu(tps)}});
  }

  void write_train_results(double runtime, int64_t steps, double loss_sum, int64_t timed_steps, double timed_seconds) {
    if (rank != 0) return;
    // Throughput leaves out the first throughput_warmup_steps steps (as Hugging Face's option does).
    const double s = timed_steps > 0 ? timed_seconds : runtime;
    const int64_t n = timed_steps > 0 ? timed_steps : steps;
    const double sps = s > 0 ? n * global_batch / s : 0;
    nlohmann::json j = {{"train_runtime", runtime},
                        {"train_samples_per_second", sps},
                        {"train_steps_per_second", s > 0 ? n / s : 0},
                        {"train_tokens_per_second", sps * seq_len},
                        {"train_loss", steps > 0 ? loss_sum / steps : 0},
                        {"total_flos", flops_per_token * static_cast<double>(steps * global_batch * seq_len)},
                        {"world_size", world},
                        {"mfu", mfu(sps * seq_len)},
                        {"global_step", step},
                        {"epoch", static_cast<double>(step) / sampler->steps_per_epoch()},
                        {"precision", bf16 ? "bf16" : "fp32"},
                        {"threads_per_rank", threads}};
    io::write_json_file((out_dir / "train_results.json").string(), j);
  }
};

Trainer::Trainer(const RunConfig& cfg, HcclLike& comm) : impl_(std::make_unique<Impl>(cfg, comm)) {}
Trainer::~Trainer() = default;

int Trainer::run() {
  auto& im = *impl_;
  int code = 0;
  if (im.cfg.train.do_train) {
    code = im.train();
    if (code == 0) im.export_final();
  }
  if (im.cfg.train.do_eval && code == 0) im.report_eval(im.evaluate());
  wait_or_abort(im.comm, im.comm.barrier(), im.timeout_s);
  return code;
}

void export_checkpoint_to_hf(const RunConfig& cfg) {
  const std::string& ck = cfg.train.export_hf;
  auto loaded = load_checkpoint(ck);
  auto mcfg = model::load_hf_config_file((fs::path(ck) / "config.json").string());
  model::BertForMaskedLM m(mcfg, 0);
  m->load_hf_state_dict(loaded.model, ck + "/model.safetensors", /*strict=*/true);
  bool lowercase = true;
  auto tc = fs::path(ck) / "tokenizer_config.json";
  if (fs::exists(tc)) lowercase = io::read_json_file(tc.string()).value("do_lower_case", true);
  io::export_hf_model(cfg.train.output_dir, mcfg, m->hf_state_dict(), (fs::path(ck) / "vocab.txt").string(), lowercase,
                      cfg.train.save_dtype);
}

}  // namespace mpibert
