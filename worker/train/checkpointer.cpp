#include "worker/train/checkpointer.h"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "common/comm/agreement.h"
#include "common/error.h"
#include "common/io/sha256.h"
#include "worker/comm/tensor_collectives.h"
#include "worker/model/hf_state.h"
#include "worker/train/checkpoint.h"

namespace mpibert::train {

Checkpointer::Checkpointer(RunContext& ctx, Task& task, const TrainConfig& train, std::string run_config_yaml)
    : ctx_(ctx), task_(task), train_(train), run_config_yaml_(std::move(run_config_yaml)) {}

namespace {

// A checkpoint belongs to this run's data and optimizer: the same vocabulary file, the same training data
// (unless told otherwise), the same optimizer type when its state is to be loaded.
void check_identity(const std::string& dir, const LoadedCheckpoint& ck, const Task& task, const TrainConfig& train,
                    bool with_optimizer) {
  const std::string ours = task.vocab_file(), theirs = dir + "/vocab.txt";
  if (std::filesystem::exists(theirs) && !ours.empty() && io::sha256_file(theirs) != io::sha256_file(ours))
    throw UsageError("the checkpoint's vocabulary " + theirs + " differs from the data's " + ours +
                     ": the token ids would mean other words; use the data prepared with that vocabulary");
  const std::string data = ck.trainer_state.value("data_fingerprint", std::string());
  if (!data.empty() && data != task.data_fingerprint() && !train.ignore_data_change)
    throw UsageError("the checkpoint was trained on other data (fingerprint " + data.substr(0, 12) + "..., now " +
                     task.data_fingerprint().substr(0, 12) +
                     "...): rebuilt shards change the data order and the validation set; pass "
                     "--ignore_data_change to resume anyway");
  const std::string opt = ck.trainer_state.value("optimizer", std::string());
  if (with_optimizer && !opt.empty() && opt != train.optimizer)
    throw UsageError("the checkpoint's optimizer state is " + opt + "'s but this run uses train.optimizer " +
                     train.optimizer + ": resume with --optim " + opt +
                     ", or start a new run from its weights "
                     "(--model.init_from with an export)");
}

// The first rank of each host (Open MPI's local rank 0). The weights and optimizer state are the same on
// every rank, so any rank can write them.
bool first_rank_on_its_host() {
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  return local == nullptr || std::atoi(local) == 0;
}

}  // namespace

std::string Checkpointer::save(int64_t step, const nlohmann::json& trainer_state, const optim::Optimizer* optimizer,
                               const std::string& keep) {
  std::string path;
  if (ctx_.rank == 0 || (train_.save_on_each_node && first_rank_on_its_host())) {
    CheckpointContents c;
    for (auto& item : task_.model().named_parameters(/*recurse=*/true)) c.model.emplace_back(item.key(), item.value());
    if (optimizer) c.optimizer = optimizer->state_tensors();
    c.trainer_state = trainer_state;
    c.run_config_yaml = run_config_yaml_;
    c.model_config = task_.model_config_json();
    c.files = task_.checkpoint_files();
    path = save_checkpoint(ctx_.dir.path().string(), step, c, train_.save_total_limit, keep);
    spdlog::info("saved {}", path);
  }
  wait_or_abort(ctx_.comm, ctx_.comm.barrier(), ctx_.timeout_s);
  return (ctx_.dir.path() / checkpoint_name(step)).string();
}

void Checkpointer::broadcast_tensors(NamedTensors tensors) {
  torch::NoGradGuard no_grad;
  std::vector<WorkPtr> works;
  for (auto& item : tensors) works.push_back(broadcast(ctx_.comm, item.second, 0));
  for (auto& w : works) wait_or_abort(ctx_.comm, w, ctx_.timeout_s);
}

nlohmann::json Checkpointer::restore(const std::string& dir, optim::Optimizer* optimizer) {
  const std::string state_text = agree_on_root(
      ctx_.comm,
      [&] {
        try {
          LoadedCheckpoint ck = load_checkpoint(dir, optimizer != nullptr);
          check_identity(dir, ck, task_, train_, optimizer != nullptr);
          task_.load_checkpoint_tensors(ck.model, dir + "/model.safetensors");
          if (optimizer) {
            for (const auto& [name, t] : ck.optimizer) model::check_finite(name, t, dir + "/optimizer.safetensors");
            optimizer->load_state(ck.optimizer, ck.trainer_state.value("optimizer_step", int64_t(0)));
          }
          return ck.trainer_state.dump();
        } catch (const std::exception& e) {
          throw UsageError("resume from " + dir + ": " + e.what());
        }
      },
      silence_limit(ctx_.timeout_s));
  auto state = nlohmann::json::parse(state_text);
  NamedTensors params;
  for (auto& item : task_.model().named_parameters(/*recurse=*/true)) params.emplace_back(item.key(), item.value());
  broadcast_tensors(params);
  if (optimizer) {
    broadcast_tensors(optimizer->state_tensors());
    // The broadcast wrote the state in place; this sets the step count on every rank.
    std::map<std::string, at::Tensor> current;
    for (auto& st : optimizer->state_tensors()) current.emplace(st.first, st.second);
    optimizer->load_state(current, state.value("optimizer_step", int64_t(0)));
  }
  return state;
}

}  // namespace mpibert::train
