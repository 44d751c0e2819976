#include "worker/train/rank_zero.h"

#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "common/error.h"

namespace mpibert::train {
namespace {

std::string broadcast_string(HcclLike& comm, std::string s, double timeout_s) {
  int64_t n = static_cast<int64_t>(s.size());
  wait_or_abort(comm, comm.broadcast(&n, 1, DataType::I64, 0), timeout_s);
  s.resize(static_cast<size_t>(n));
  wait_or_abort(comm, comm.broadcast(s.data(), s.size(), DataType::U8, 0), timeout_s);
  return s;
}

}  // namespace

void wait_or_abort(HcclLike& comm, const WorkPtr& work, double timeout_s) {
  try {
    work->wait(std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
  } catch (const CollectiveTimeout& e) {
    comm.abortJob(1, e.what());
  }
}

std::string rank0_decides(HcclLike& comm, double timeout_s, const std::function<std::string()>& fn) {
  std::string result, error = "0";  // error: "0" none, "U..." usage error, "R..." runtime error
  if (comm.rank() == 0) {
    try {
      result = fn();
    } catch (const UsageError& e) {
      error = std::string("U") + e.what();
    } catch (const std::exception& e) {
      error = std::string("R") + e.what();
    }
  }
  error = broadcast_string(comm, error, timeout_s);
  if (error[0] == 'U') throw UsageError(error.substr(1));
  if (error[0] == 'R') throw std::runtime_error(error.substr(1));
  return broadcast_string(comm, result, timeout_s);
}

}  // namespace mpibert::train
