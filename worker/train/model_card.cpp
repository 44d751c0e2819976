#include "worker/train/model_card.h"

#include <fmt/format.h>

#include <cmath>

namespace mpibert::train {
namespace {

std::string number(const nlohmann::json& v) {
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  if (v.is_number()) return fmt::format("{:.4f}", v.get<double>());
  return v.dump();
}

std::string front_matter(const CardInputs& in) {
  std::string s = "---\nlibrary_name: transformers\ntags:\n- generated_from_trainer\n- mpibert\n- " +
                  in.task.pipeline_tag + "\npipeline_tag: " + in.task.pipeline_tag + "\n";
  if (!in.task.base_model.empty()) s += "base_model: " + in.task.base_model + "\n";
  return s + "model-index:\n- name: " + in.model_name + "\n  results: []\n---\n\n";
}

std::string results(const CardInputs& in) {
  std::string s;
  if (in.eval_results.is_object() && !in.eval_results.empty()) {
    s += "It achieves the following results on the evaluation set:\n";
    for (const auto& [key, value] : in.eval_results.items())
      if (value.is_number()) s += "- " + key + ": " + number(value) + "\n";
    s += "\n" + in.task.metric_note + "\n\n";
  }
  return s;
}

std::string hyperparameters(const CardInputs& in) {
  const auto& st = in.trainer_state;
  std::string s = "### Training hyperparameters\n\n";
  for (const char* key : {"per_device_train_batch_size", "gradient_accumulation_steps", "world_size", "global_batch",
                          "max_steps", "seed"})
    if (st.contains(key)) s += fmt::format("- {}: {}\n", key, number(st[key]));
  if (st.contains("scheduler")) s += "- lr_scheduler_type: " + st["scheduler"].value("type", std::string()) + "\n";
  return s + "- distributed_type: MPI (mpibert's HcclLike)\n\nThe full resolved configuration is below.\n\n";
}

// Training loss, and each evaluation's loss and main metric, per logged step (the Trainer's table).
std::string curve_table(const nlohmann::json& history) {
  std::string s =
      "### Training results\n\n| Step | Epoch | Training Loss | Validation Loss | Metric |\n|---|---|---|---|---|\n";
  double last_loss = NAN;
  for (const auto& row : history) {
    if (row.contains("loss")) last_loss = row["loss"].get<double>();
    if (!row.contains("eval_loss")) continue;
    std::string metric = "";
    for (const char* key : {"eval_f1", "eval_accuracy", "eval_mse"})
      if (metric.empty() && row.contains(key)) metric = std::string(key + 5) + " " + number(row[key]);
    s += fmt::format("| {} | {} | {} | {} | {} |\n", number(row.value("step", nlohmann::json(0))),
                     number(row.value("epoch", nlohmann::json(0.0))),
                     std::isnan(last_loss) ? "-" : fmt::format("{:.4f}", last_loss), number(row["eval_loss"]), metric);
  }
  return s + "\n";
}

std::string speed_and_cost(const CardInputs& in) {
  const auto& r = in.train_results;
  if (!r.is_object() || r.empty()) return "";
  const double seconds = r.value("train_runtime", 0.0);
  std::string s = fmt::format(
      "### Time and throughput\n\n- training time: {:.0f} s ({:.2f} h) on {} rank(s), {} precision, {} thread(s) "
      "per rank\n- tokens seen: {:.0f}\n- throughput: {:.1f} samples/s, {:.0f} tokens/s, MFU {:.1f}%\n",
      seconds, seconds / 3600, number(r.value("world_size", nlohmann::json(1))), r.value("precision", std::string("?")),
      number(r.value("threads_per_rank", nlohmann::json(1))), in.tokens_seen, r.value("train_samples_per_second", 0.0),
      r.value("train_tokens_per_second", 0.0), 100 * r.value("mfu", 0.0));
  if (in.cost_per_hour > 0)
    s += fmt::format("- estimated cost: ${:.2f} at ${:.2f} per hour for the whole job\n",
                     seconds / 3600 * in.cost_per_hour, in.cost_per_hour);
  return s + "\n";
}

}  // namespace

std::string model_card_markdown(const CardInputs& in) {
  std::string s = front_matter(in);
  s += "# " + in.model_name + "\n\n";
  s += "This " + in.task.architecture + " was " +
       (in.task.base_model.empty() ? std::string("trained from scratch")
                                   : "fine-tuned from `" + in.task.base_model + "`") +
       " with mpibert (C++ on libtorch, data-parallel over MPI) on the data below.\n\n";
  s += results(in);
  if (!in.plot_file.empty()) s += "![training curves](" + in.plot_file + ")\n\n";
  s += "## Training data\n\n" + in.task.data + "\n\n## Training procedure\n\n";
  s += hyperparameters(in) + curve_table(in.trainer_state.value("log_history", nlohmann::json::array()));
  s += speed_and_cost(in);
  s += "### Command\n\n```sh\n" + in.command_line + "\n```\n\n### Resolved configuration\n\n```yaml\n" +
       in.run_config_yaml + "```\n\n### Framework versions\n\n- " + in.versions + "\n";
  return s;
}

}  // namespace mpibert::train
