#pragma once
// The model card written beside an exported model (OUTPUT_DIR/final/README.md), in the style of the
// Hugging Face Trainer's: YAML front matter (tags, pipeline, base model), what was trained on what data,
// the results, the hyper-parameters, the training curve as a table and a picture, the exact command
// and resolved configuration, time, throughput and the estimated cost. Torch-free.
#include <nlohmann/json.hpp>
#include <string>

namespace mpibert::train {

// What the task says about itself for the card.
struct CardFacts {
  std::string architecture;  // "BertForMaskedLM"
  std::string pipeline_tag;  // "fill-mask" | "text-classification"
  std::string base_model;    // init_from ("" = trained from scratch)
  std::string data;          // Markdown: what the data was (files, examples, tokens per example)
  std::string metric_note;   // Markdown: what the evaluation measures
};

struct CardInputs {
  CardFacts task;
  std::string model_name;  // the output directory's name
  std::string command_line;
  std::string run_config_yaml;
  nlohmann::json trainer_state;  // log_history, global_step, ...
  nlohmann::json train_results;  // train_results.json
  nlohmann::json eval_results;   // the last evaluation ({} = none)
  double tokens_seen = 0;        // tokens processed in training (this run and the runs it resumed)
  double cost_per_hour = 0;
  std::string versions;   // "mpibert 0.1.0, libtorch 1.13.0, Open MPI v4.1.4"
  std::string plot_file;  // picture beside the card ("" = none drawn)
};

std::string model_card_markdown(const CardInputs& in);

}  // namespace mpibert::train
