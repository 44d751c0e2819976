#pragma once
// What one rank does in run_mlm: data-parallel BERT masked-LM pre-training (DESIGN.md "Data order,
// masking and loss"), evaluation, checkpoints with exact resume, and the run's output files.
#include <memory>
#include <string>

#include "common/comm/hccl_like.h"
#include "common/config/run_config.h"

namespace mpibert {

struct EvalResult {
  double loss = 0, accuracy = 0, perplexity = 0;
  int64_t samples = 0, masked_tokens = 0, step = 0;
};

class Trainer {
 public:
  Trainer(const RunConfig& cfg, HcclLike& comm);
  ~Trainer();
  // do_train and/or do_eval as configured; returns the process exit code (0, or kExitPreempted).
  int run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// `run_mlm --export_hf CHECKPOINT --output_dir DIR`: writes the Hugging Face directory (one process).
void export_checkpoint_to_hf(const RunConfig& cfg);

}  // namespace mpibert
