#pragma once
// "Rank 0 decides, every rank learns the outcome": rank 0 runs a function; its result (or its error,
// re-thrown with the same type on every rank) reaches all ranks. No shared file system is assumed, so
// rank 0 alone looks at output_dir, checkpoints and model files.
#include <functional>
#include <string>

#include "common/comm/hccl_like.h"

namespace mpibert::train {

// fn() runs on rank 0 and returns text; every rank returns that text. A UsageError (or any other
// exception) thrown by fn on rank 0 is thrown on every rank as UsageError (or std::runtime_error)
// with the same message.
std::string rank0_decides(HcclLike& comm, double timeout_s, const std::function<std::string()>& fn);

// Waits for a collective; a timeout aborts the whole job (a collective cannot be cancelled).
void wait_or_abort(HcclLike& comm, const WorkPtr& work, double timeout_s);

}  // namespace mpibert::train
