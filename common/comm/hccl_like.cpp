#include "common/comm/hccl_like.h"

namespace mpibert {

size_t dtype_size(DataType d) {
  switch (d) {
    case DataType::F32:
      return 4;
    case DataType::F64:
      return 8;
    case DataType::F16:
      return 2;
    case DataType::BF16:
      return 2;
    case DataType::I32:
      return 4;
    case DataType::I64:
      return 8;
    case DataType::U8:
      return 1;
  }
  return 0;
}

const char* dtype_name(DataType d) {
  switch (d) {
    case DataType::F32:
      return "f32";
    case DataType::F64:
      return "f64";
    case DataType::F16:
      return "f16";
    case DataType::BF16:
      return "bf16";
    case DataType::I32:
      return "i32";
    case DataType::I64:
      return "i64";
    case DataType::U8:
      return "u8";
  }
  return "unknown";
}

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return "sum";
    case ReduceOp::Avg:
      return "avg";
    case ReduceOp::Min:
      return "min";
    case ReduceOp::Max:
      return "max";
    case ReduceOp::Prod:
      return "prod";
  }
  return "unknown";
}

bool is_floating(DataType d) {
  return d == DataType::F32 || d == DataType::F64 || d == DataType::F16 || d == DataType::BF16;
}

void wait_or_abort(HcclLike& comm, const WorkPtr& work, double timeout_s) {
  try {
    work->wait(silence_limit(timeout_s));
  } catch (const CollectiveTimeout& e) {
    comm.abortJob(1, e.what());
  }
}

std::chrono::milliseconds silence_limit(double timeout_s) {
  return std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
}

}  // namespace mpibert
