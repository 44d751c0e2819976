#pragma once
// Everything a training run sets up before it touches data or a model: the output directory (and
// whether to resume), logging to the console and OUTPUT_DIR/logs/rank-N.log, threads, BLAS, precision
// and the stop-signal handlers. Shared by every task.
#include <string>

#include "common/comm/hccl_like.h"
#include "common/config/run_config.h"
#include "worker/train/run_directory.h"

namespace mpibert::train {

struct RunContext {
  HcclLike& comm;
  int rank = 0;
  int world = 1;
  double timeout_s = 0;  // collective timeout (dist.timeout_s)
  RunDirectory dir;
  bool bf16 = false;  // autocast to bf16 (train.precision resolved for this CPU)
  int threads = 1;    // intra-op threads per rank
  std::string program;
  std::string requested_precision;
  std::string command_line;  // this process's, as a shell would read it (for the model card)
};

// `program` names the worker in the log ("run_mlm", "run_classification"). With log_file false nothing
// is written into output_dir until open_log_file() (a run checks its input first; bad input then gets
// one error line and leaves no trace), which also writes what was logged until then into the file.
RunContext open_run(const TrainConfig& train, const DistConfig& dist, HcclLike& comm, const std::string& program,
                    bool log_file = true);
// Adds OUTPUT_DIR/logs/rank-N.log to the console log and logs the runtime (BLAS, precision, threads).
void open_log_file(const RunContext& ctx, const TrainConfig& train);

}  // namespace mpibert::train
