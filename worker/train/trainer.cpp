#include "worker/train/trainer.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <optional>

#include "common/comm/agreement.h"
#include "common/comm/mpi_environment.h"
#include "common/data/batch_sampler.h"
#include "common/error.h"
#include "common/io/atomic_file.h"
#include "common/io/json_file.h"
#include "common/report/logging_dir.h"
#include "common/report/timeline.h"
#include "common/version.h"
#include "worker/comm/tensor_collectives.h"
#include "worker/optim/lr_schedule.h"
#include "worker/optim/optimizer.h"
#include "worker/train/best_model.h"
#include "worker/train/checkpoint.h"
#include "worker/train/checkpointer.h"
#include "worker/train/gradient_reducer.h"
#include "worker/train/model_card.h"
#include "worker/train/reporter.h"
#include "worker/train/run_plot.h"
#include "worker/train/runtime_env.h"
#include "worker/train/step_loop.h"
#include "worker/train/stop_signal.h"

namespace mpibert::train {

struct Trainer::Impl {
  RunContext& ctx;
  Task& task;
  const TrainConfig& train;
  const DistConfig& dist;
  std::vector<at::Tensor> params;
  NamedTensors named_params;
  int64_t global_batch = 0, total_steps = 0, step = 0;
  std::optional<data::GlobalBatchSampler> sampler;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<optim::LrSchedule> schedule;
  std::unique_ptr<GradientReducer> reducer;
  std::unique_ptr<Reporter> reporter;
  Checkpointer checkpointer;
  Evaluator evaluator;
  BestModel best;
  bool stopped_early = false;
  nlohmann::json resumed_log_history = nlohmann::json::array();
  std::string resumed_logging_dir;
  double resumed_tokens_seen = 0;  // tokens the runs before a resume processed
  nlohmann::json train_results;
  Metrics last_eval;

  std::string run_config_yaml;

  Impl(RunContext& c, Task& t, const TrainConfig& tr, const DistConfig& d, std::string yaml)
      : ctx(c),
        task(t),
        train(tr),
        dist(d),
        checkpointer(c, t, tr, yaml),
        evaluator(c, t, tr.per_device_eval_batch_size, tr.max_eval_samples),
        best(tr) {
    if (train.do_train) open_timeline();  // first: a path it cannot write stops the run before a step
    for (auto& item : task.model().named_parameters(/*recurse=*/true)) {
      named_params.emplace_back(item.key(), item.value());
      params.push_back(item.value());
    }
    broadcast_initial_weights();
    if (train.do_train) plan_training();
    reporter = std::make_unique<Reporter>(ctx, train, total_steps, sampler ? sampler->steps_per_epoch() : 0);
    if (train.do_train) build_optimizer();
    if (!ctx.dir.resume_from().empty()) resume(ctx.dir.resume_from());
    if (ctx.rank == 0) write_start_files(yaml);
    run_config_yaml = yaml;
  }

  // Every rank starts from rank 0's weights.
  void broadcast_initial_weights() {
    torch::NoGradGuard ng;
    std::vector<WorkPtr> works;
    for (auto& p : params) works.push_back(broadcast(ctx.comm, p, 0));
    for (auto& w : works) wait_or_abort(ctx.comm, w, ctx.timeout_s);
  }

  void plan_training() {
    const int64_t examples = task.num_examples(Split::Train);
    if (examples <= 0) throw UsageError("do_train: there is no training data");
    global_batch = ctx.world * train.per_device_train_batch_size * train.gradient_accumulation_steps;
    sampler.emplace(examples, global_batch, static_cast<uint64_t>(train.seed));
    total_steps = train.max_steps > 0
                      ? train.max_steps
                      : static_cast<int64_t>(std::ceil(train.num_train_epochs * sampler->steps_per_epoch()));
    spdlog::info(
        "data: {} training examples ({} steps per epoch at global batch {} = {} rank(s) x {} x {} "
        "accumulation); {} steps",
        examples, sampler->steps_per_epoch(), global_batch, ctx.world, train.per_device_train_batch_size,
        train.gradient_accumulation_steps, total_steps);
  }

  void build_optimizer() {
    optim::OptimizerOptions oo;
    oo.type = train.optimizer;
    oo.weight_decay = train.weight_decay;
    oo.beta1 = train.adam_beta1;
    oo.beta2 = train.adam_beta2;
    oo.eps = train.adam_epsilon;
    optimizer = std::make_unique<optim::Optimizer>(named_params, oo);
    optim::LrScheduleOptions so;
    so.type = train.lr_scheduler_type;
    so.base_lr = train.learning_rate;
    so.warmup_steps = optim::resolve_warmup_steps(train.warmup_steps, train.warmup_ratio, total_steps);
    so.total_steps = total_steps;
    so.lr_end = train.lr_end;
    so.power = train.power;
    schedule = std::make_unique<optim::LrSchedule>(so);
    ReducerOptions ro;
    ro.first_bucket_mb = dist.first_bucket_mb;
    ro.bucket_cap_mb = dist.bucket_cap_mb;
    ro.overlap = dist.overlap;
    ro.comm_dtype = dist.grad_comm_dtype == "bf16" ? DataType::BF16 : DataType::F32;
    ro.timeout_s = ctx.timeout_s;
    reducer = std::make_unique<GradientReducer>(ctx.comm, params, ro);
    spdlog::info("gradients: {} bucket(s), all-reduce {}", reducer->buckets().size(),
                 dist.overlap ? "overlapped with backward" : "after backward");
    reporter->measure_peak();
  }

  void resume(const std::string& dir) {
    const nlohmann::json state = checkpointer.restore(dir, optimizer.get());
    const int64_t ck_batch = state.at("global_batch").get<int64_t>();
    if (train.do_train && ck_batch != global_batch)
      throw UsageError("resume from " + dir + ": the checkpoint was trained with global batch " +
                       std::to_string(ck_batch) + " but this run has " + std::to_string(global_batch) + " (" +
                       std::to_string(ctx.world) + " rank(s) x " + std::to_string(train.per_device_train_batch_size) +
                       " x " + std::to_string(train.gradient_accumulation_steps) +
                       " accumulation): set train.global_batch_size " + std::to_string(ck_batch) +
                       " (accumulation then follows from the world size), or per_device_train_batch_size and "
                       "gradient_accumulation_steps so that world_size x batch x accumulation = " +
                       std::to_string(ck_batch));
    const int64_t consumed = state.at("consumed_sequences").get<int64_t>();
    step = consumed / ck_batch;
    resumed_log_history = state.value("log_history", nlohmann::json::array());
    resumed_logging_dir = state.value("logging_dir", std::string());
    resumed_tokens_seen = state.value("tokens_seen", 0.0);
    best.restore(state);
    stopped_early = state.value("stopped_early", false);
    spdlog::info("resuming from {} at step {} ({} examples consumed; trained with {} rank(s), now {})", dir, step,
                 consumed, state.value("world_size", 0), ctx.world);
  }

  void write_start_files(const std::string& yaml) {
    std::filesystem::create_directories(ctx.dir.path());
    io::write_json_file(ctx.dir.file("config.json"), task.model_config_json());
    io::write_file_atomic(ctx.dir.file("run_config.yaml"), yaml);
    spdlog::debug("resolved configuration:\n{}", yaml);
    spdlog::info("resolved configuration written to {}", ctx.dir.file("run_config.yaml"));
  }

  nlohmann::json trainer_state(int64_t at_step) const {
    nlohmann::json j = {
        {"global_step", at_step},
        {"epoch", reporter->epoch_at(at_step)},
        {"max_steps", total_steps},
        {"consumed_sequences", at_step * global_batch},
        {"global_batch", global_batch},
        {"world_size", ctx.world},
        {"per_device_train_batch_size", train.per_device_train_batch_size},
        {"gradient_accumulation_steps", train.gradient_accumulation_steps},
        {"logging_steps", train.logging_steps},
        {"eval_steps", train.eval_steps},
        {"save_steps", train.save_steps},
        {"optimizer_step", optimizer ? optimizer->step_count() : 0},
        {"scheduler", {{"type", train.lr_scheduler_type}, {"last_lr", schedule ? schedule->lr_at(at_step) : 0.0}}},
        {"seed", train.seed},
        {"optimizer", train.optimizer},
        {"data_fingerprint", task.data_fingerprint()},
        {"rng",
         {{"scheme", "derived"},
          {"detail",
           "no generator state is carried: data order from (seed, epoch), masks from (seed, epoch, "
           "example index), dropout from (seed, step, rank, micro-step)"}}},
        {"versions", {{"mpibert", version()}, {"torch", torch_version()}, {"mpi", mpi_library_version()}}},
        {"stopped_early", stopped_early},
        {"logging_dir", reporter->tensorboard_dir()},
        {"tokens_seen", resumed_tokens_seen + reporter->tokens_seen()},
        {"log_history", reporter->log_history()}};
    best.describe(j);
    return j;
  }

  void save(int64_t at_step) {
    report::TimelineScope scope(report::Track::Io, "checkpoint-" + std::to_string(at_step));
    const std::string path = checkpointer.save(at_step, trainer_state(at_step), optimizer.get(), best.checkpoint());
    best.on_save(at_step, path);
  }

  // Evaluates during training; returns true when early stopping ends training.
  bool evaluate_in_training() {
    {
      report::TimelineScope scope(report::Track::Io, "evaluate");
      last_eval = evaluator.evaluate(Split::Validation);
    }
    reporter->on_eval(step, last_eval, task.eval_summary(last_eval));
    return best.on_eval(step, last_eval);
  }

  bool eval_due(int64_t at_step) const {
    if (evaluator.num_examples(Split::Validation) == 0) return false;
    if (train.eval_strategy == "steps") return train.eval_steps > 0 && at_step % train.eval_steps == 0;
    if (train.eval_strategy == "epoch") return at_step % sampler->steps_per_epoch() == 0;
    return false;
  }

  // TensorBoard's directory: the configured one, else the one this run had before a resume (so that
  // its purge applies), else Hugging Face's default OUTPUT_DIR/runs/<date>_<host>.
  std::string tensorboard_dir() const {
    if (!train.logging_dir.empty()) return train.logging_dir;
    if (!resumed_logging_dir.empty()) return resumed_logging_dir;
    return report::default_logging_dir(ctx.dir.path().string());
  }

  // --profile DIR: this rank's timeline (common/report/timeline.h), DIR/timeline-rank-N.json.
  void open_timeline() const {
    if (train.profile_dir.empty()) return;
    const auto path =
        std::filesystem::path(train.profile_dir) / ("timeline-rank-" + std::to_string(ctx.rank) + ".json");
    report::timeline_open(path.string(), ctx.rank,
                          "rank " + std::to_string(ctx.rank) + " (" + report::host_name() + ")");
    if (ctx.rank == 0) spdlog::info("timeline: {} (one per rank; chrome://tracing or ui.perfetto.dev)", path.string());
  }

  int train_loop() {
    reporter->start_training(step, resumed_log_history);
    if (train.report_to != "none") reporter->open_tensorboard(tensorboard_dir(), run_config_yaml);
    if (stopped_early) {
      spdlog::info("training stopped early at step {} (early_stopping_patience); nothing left to train", step);
      total_steps = step;
    }
    if (step >= total_steps && !stopped_early)
      spdlog::info("nothing to train: resumed at step {} and the run has {} steps (raise max_steps to go on)", step,
                   total_steps);
    task.model().train();
    StepLoop loop(ctx, task, train, *sampler, params, *optimizer, *schedule, *reducer);
    bool preempted = false, out_of_time = false;
    while (step < total_steps) {
      const StepResult r = loop.run(step);
      report::timeline_flush();
      step = r.record.step;
      reporter->on_step(r.record);
      preempted = r.stop_requested;
      out_of_time = r.out_of_time;
      bool last = step == total_steps || preempted || out_of_time;
      const bool evaluated = !last && eval_due(step);
      if (evaluated && evaluate_in_training()) {
        stopped_early = true;
        last = true;
        spdlog::info("early stopping at step {}: {} has not improved for {} evaluation(s)", step, best.metric_name(),
                     train.early_stopping_patience);
      }
      if ((train.save_steps > 0 && step % train.save_steps == 0) || last || (evaluated && train.load_best_model_at_end))
        save(step);
      if (last) break;
    }
    train_results = reporter->finish_training(step);
    report::timeline_close();
    if (preempted) {
      spdlog::warn("stopped by signal {} after step {}: checkpoint written; rerun the same command to resume",
                   stop_signal_number(), step);
      return kExitPreempted;
    }
    if (out_of_time) spdlog::info("max_time of {} s reached after step {}", train.max_time, step);
    return 0;
  }

  void load_best() {
    if (!train.load_best_model_at_end || best.checkpoint().empty()) return;
    spdlog::info("loading the best checkpoint {} ({} = {})", best.checkpoint(), best.metric_name(), best.value());
    checkpointer.restore(best.checkpoint(), nullptr);
  }

  void export_final() {
    if (ctx.rank != 0) return;
    const std::string dir = ctx.dir.file("final");
    task.export_model(dir, train.save_dtype);
    spdlog::info("exported the model in Hugging Face format to {}", dir);
  }

  // final/README.md, with the curves drawn by plot_run when it can (rank 0, after everything else).
  void write_model_card() {
    if (ctx.rank != 0 || !std::filesystem::is_directory(ctx.dir.file("final"))) return;
    CardInputs in;
    in.task = task.card_facts();
    in.model_name = std::filesystem::absolute(ctx.dir.path()).lexically_normal().filename().string();
    in.command_line = ctx.command_line;
    in.run_config_yaml = run_config_yaml;
    in.trainer_state = trainer_state(step);
    in.train_results = train_results;
    in.eval_results = nlohmann::json(last_eval);
    in.tokens_seen = resumed_tokens_seen + reporter->tokens_seen();
    in.cost_per_hour = train.cost_per_hour;
    in.versions = std::string("mpibert ") + version() + ", libtorch " + torch_version() + ", " + mpi_library_version();
    const std::string png = ctx.dir.file("final/training_curves.png");
    if (draw_run_plot(ctx.dir.path().string(), png, ctx.dir.file("logs/plot_run.log")))
      in.plot_file = "training_curves.png";
    else
      spdlog::warn("no training-curve picture for the model card (see {})", ctx.dir.file("logs/plot_run.log"));
    io::write_file_atomic(ctx.dir.file("final/README.md"), model_card_markdown(in));
    spdlog::info("model card written to {}", ctx.dir.file("final/README.md"));
  }
};

Trainer::Trainer(RunContext& ctx, Task& task, const TrainConfig& train, const DistConfig& dist,
                 std::string run_config_yaml)
    : impl_(std::make_unique<Impl>(ctx, task, train, dist, std::move(run_config_yaml))) {}
Trainer::~Trainer() = default;

Evaluator& Trainer::evaluator() {
  return impl_->evaluator;
}
int64_t Trainer::global_step() const {
  return impl_->step;
}

int Trainer::run() {
  Impl& im = *impl_;
  int code = 0;
  if (im.train.do_train) {
    code = im.train_loop();
    if (code == 0) {
      im.load_best();
      im.export_final();
    }
  }
  if (im.train.do_eval && code == 0) {
    if (im.evaluator.num_examples(Split::Validation) > 0) {
      im.last_eval = im.evaluator.evaluate(Split::Validation);
      im.reporter->on_eval(im.step, im.last_eval, im.task.eval_summary(im.last_eval));
    } else {
      spdlog::warn("do_eval: there is no validation data; nothing evaluated");
    }
  }
  if (code == 0) im.reporter->write_all_results(im.train_results, im.last_eval);
  if (code == 0 && im.train.do_train && im.ctx.rank == 0)
    io::write_json_file(im.ctx.dir.file("trainer_state.json"), im.trainer_state(im.step), 2);
  im.reporter->close();
  if (code == 0 && im.train.do_train) im.write_model_card();
  wait_or_abort(im.ctx.comm, im.ctx.comm.barrier(), im.ctx.timeout_s);
  return code;
}

}  // namespace mpibert::train
